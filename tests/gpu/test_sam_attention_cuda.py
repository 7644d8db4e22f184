"""On a CUDA GPU in bf16: the fused SAM attention (flash kernels) matches transformers' own.

The full-size SAM tower (random weights), so the fused kernels see the real head dims:
64 + 64 + 64 in the global layers, 64 + 14 + 14 (padded to 96) in the windowed ones.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers.models.deepseek_ocr2.configuration_deepseek_ocr2 import DeepseekOcr2SamVisionConfig
from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import DeepseekOcr2SamVisionEncoder

from deepseek_ocr2_loaders.engines.transformers._sam_attention import patch_sam_attention

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

CONFIG = Path(__file__).resolve().parents[2] / "benchmarks" / "configs" / "full-size-config.json"


@pytest.mark.parametrize("side", [1024, 768])  # the global view and a crop
def test_fused_sam_tower_matches_transformers_in_bf16(side):
    sam_config = DeepseekOcr2SamVisionConfig(**json.loads(CONFIG.read_text())["vision_config"]["sam_config"])
    sam_config._attn_implementation = "sdpa"
    torch.manual_seed(side)
    original = DeepseekOcr2SamVisionEncoder(sam_config).to("cuda", torch.bfloat16).eval()
    with torch.no_grad():  # every weight drawn here (construction may leave them uninitialised)
        for parameter in original.parameters():
            parameter.normal_(0, 0.05)
        for layer in original.layers:  # relative-position tables large enough to matter
            layer.attn.rel_pos_h.normal_(0, 0.5)
            layer.attn.rel_pos_w.normal_(0, 0.5)
    fused = copy.deepcopy(original)
    assert (
        patch_sam_attention(SimpleNamespace(model=SimpleNamespace(vision_tower=SimpleNamespace(sam_encoder=fused))))
        == 12
    )
    pixels = torch.randn(4, 3, side, side, device="cuda", dtype=torch.bfloat16)
    with torch.inference_mode():
        expected = original(pixels).last_hidden_state.float()
        got = fused(pixels).last_hidden_state.float()
    assert torch.isfinite(expected).all() and expected.abs().mean() > 1e-3
    assert torch.isfinite(got).all()
    error = (got - expected).norm() / expected.norm()
    assert error < 2e-2, float(error)
