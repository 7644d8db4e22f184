"""On a CUDA GPU: the fused experts kernels in bf16 at the real model's sizes, eager and replayed.

Skipped without CUDA (CI has none); run on the device machine with ``pytest -m gpu``.
"""

from __future__ import annotations

import pytest
import torch
from moe_experts import experts, routing, text_config
from PIL import Image
from transformers.integrations.moe import grouped_mm_experts_forward

from deepseek_ocr2_loaders import TransformersEngine
from deepseek_ocr2_loaders.engines.transformers import _fused_experts
from deepseek_ocr2_loaders.engines.transformers._fused_experts import IMPLEMENTATION, fused_experts, reference_experts
from deepseek_ocr2_loaders.model._prompts import PROMPTS

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.fixture(scope="module")
def full_size() -> tuple[object, torch.nn.Module]:
    config = text_config("grouped_mm")
    return config, experts(config, torch.bfloat16).cuda()


@pytest.mark.parametrize("tokens", [1, 8, 128, 256])
def test_the_kernels_equal_the_reference_and_grouped_gemms_in_bf16(full_size, tokens):
    config, module = full_size
    hidden = torch.randn(tokens, config.hidden_size, device="cuda").bfloat16()
    index, weights = (t.cuda() for t in routing(tokens, config, seed=tokens))
    with torch.no_grad():
        got = fused_experts(hidden, index, weights, module.gate_up_proj, module.down_proj)
        expected = reference_experts(hidden, index, weights, module.gate_up_proj, module.down_proj)
        grouped = grouped_mm_experts_forward(module, hidden, index, weights)
    assert expected.abs().mean() > 0.05
    for other in (expected, grouped):  # one bf16 ulp here and there (the sums' order), never more
        torch.testing.assert_close(got, other, rtol=1 / 128, atol=2e-3)
        assert (got != other).float().mean() < 0.05


def test_a_captured_graph_replays_the_kernels_for_new_routing(full_size):
    config, module = full_size
    hidden = torch.randn(8, config.hidden_size, device="cuda").bfloat16()
    index, weights = (t.cuda() for t in routing(8, config, seed=3))
    with torch.no_grad():
        fused_experts(hidden, index, weights, module.gate_up_proj, module.down_proj)  # compile before capture
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = fused_experts(hidden, index, weights, module.gate_up_proj, module.down_proj)
        for seed in (4, 5):
            new_index, new_weights = routing(8, config, seed=seed)
            index.copy_(new_index)
            weights.copy_(new_weights)
            hidden.normal_()
            graph.replay()
            assert torch.equal(out, fused_experts(hidden, index, weights, module.gate_up_proj, module.down_proj))


def test_the_engine_decodes_through_the_kernels_on_cuda_in_bf16(tiny_checkpoint, monkeypatch):
    calls = []
    kernels = _fused_experts.fused_experts

    def counted(*args):
        calls.append(args[0].shape[0])
        return kernels(*args)

    monkeypatch.setattr(_fused_experts, "fused_experts", counted)
    engine = TransformersEngine(
        str(tiny_checkpoint), device="cuda", dtype="bfloat16", max_new_tokens=8, cuda_graphs=False, ignore_eos=True
    )
    [output] = engine.generate([Image.new("RGB", (640, 640), "white")], PROMPTS["markdown"])
    assert output.output_tokens == 8
    assert engine._acquire().model.model.language_model.config._experts_implementation == IMPLEMENTATION
    assert 8 in calls  # the decode step's width
