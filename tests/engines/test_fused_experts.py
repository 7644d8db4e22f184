"""The decode step's fused experts: the reference they must equal is transformers' grouped-GEMM path.

The Triton kernels run here under Triton's interpreter (fp32 and fp16: the interpreter has no
bf16); bf16 on the GPU, against the same reference, is in ``tests/gpu/test_fused_experts_cuda.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from moe_experts import experts, routing, text_config
from transformers.integrations.moe import ALL_EXPERTS_FUNCTIONS, grouped_mm_experts_forward

from deepseek_ocr2_loaders.engines.transformers import _fused_experts
from deepseek_ocr2_loaders.engines.transformers._fused_experts import IMPLEMENTATION, fused_experts, reference_experts


def test_the_reference_rounds_as_transformers_grouped_gemm_experts_do():
    config = text_config("grouped_mm")
    module = experts(config, torch.bfloat16)
    hidden = torch.randn(8, config.hidden_size, generator=torch.Generator().manual_seed(2)).bfloat16()
    index, weights = routing(8, config)
    with torch.no_grad():
        expected = grouped_mm_experts_forward(module, hidden, index, weights)
        got = reference_experts(hidden, index, weights, module.gate_up_proj, module.down_proj)
    assert got.dtype == expected.dtype == torch.bfloat16
    # the GEMMs sum in another order: a bf16 ulp here and there, never more
    torch.testing.assert_close(got, expected, rtol=1 / 128, atol=1e-3)
    assert (got != expected).float().mean() < 0.02


CASES = [(dtype, tokens) for dtype in ("float32", "float16") for tokens in (1, 7, 60)]


def compare(dtype_name: str, tokens: int) -> dict[str, object]:
    """Kernels against the reference at small dims (16 experts, 128 -> 64) so the interpreter is quick."""
    dtype = getattr(torch, dtype_name)
    config = text_config(
        "grouped_mm",
        n_routed_experts=16,
        hidden_size=128,
        moe_intermediate_size=64,
        num_attention_heads=4,
        num_key_value_heads=4,
    )
    module = experts(config, dtype)
    hidden = torch.randn(tokens, 128, generator=torch.Generator().manual_seed(tokens)).to(dtype)
    index, weights = routing(tokens, config, seed=tokens)
    with torch.no_grad():
        got = fused_experts(hidden, index, weights, module.gate_up_proj, module.down_proj)
        expected = reference_experts(hidden, index, weights, module.gate_up_proj, module.down_proj)
    try:
        # fp16: the sums run in another order, so a rounding step may land one ulp apart
        tolerance = {"rtol": 2e-3, "atol": 3e-4} if dtype == torch.float16 else {}
        torch.testing.assert_close(got, expected, **tolerance)
        mismatch = None
    except AssertionError as exc:
        mismatch = str(exc)
    return {
        "dtype": str(got.dtype),
        "shape": list(got.shape),
        "mismatch": mismatch,
        "mean_abs": expected.abs().mean().item(),
        "most_pairs_per_expert": torch.bincount(index.flatten()).max().item(),
    }


@pytest.fixture(scope="module")
def interpreted() -> dict[tuple[str, int], dict[str, object]]:
    """Every case run once in a child with ``TRITON_INTERPRET=1`` (read when Triton is imported)."""
    pytest.importorskip("triton")
    env = os.environ | {"TRITON_INTERPRET": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.run(
        [sys.executable, __file__], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert child.returncode == 0, child.stderr[-3000:]
    rows = json.loads(child.stdout.strip().splitlines()[-1])
    return {(row["case"][0], row["case"][1]): row for row in rows}


@pytest.mark.parametrize(("dtype", "tokens"), CASES)
def test_the_kernels_under_tritons_interpreter_equal_the_reference(interpreted, dtype, tokens):
    row = interpreted[(dtype, tokens)]
    assert row["mismatch"] is None, row["mismatch"]
    assert row["dtype"] == f"torch.{dtype}" and row["shape"] == [tokens, 128]
    assert row["mean_abs"] > 0.05  # the comparison is between real values, not zeros
    if tokens == 60:
        assert row["most_pairs_per_expert"] > _fused_experts.BLOCK_M  # an expert's rows span two tiles


def test_install_takes_grouped_gemm_configs_and_leaves_the_per_expert_loop_alone():
    grouped, eager = text_config("grouped_mm"), text_config("eager")
    _fused_experts.install(grouped)
    _fused_experts.install(grouped)
    _fused_experts.install(eager)
    assert IMPLEMENTATION in ALL_EXPERTS_FUNCTIONS
    assert grouped._experts_implementation == IMPLEMENTATION
    assert eager._experts_implementation == "eager"


def test_off_cuda_an_installed_module_computes_what_grouped_gemms_compute():
    """The kernels need CUDA: on the CPU the installed implementation is the grouped-GEMM path, unchanged."""
    config = text_config(
        "grouped_mm",
        n_routed_experts=16,
        hidden_size=128,
        moe_intermediate_size=64,
        num_attention_heads=4,
        num_key_value_heads=4,
    )
    module = experts(config, torch.bfloat16)
    hidden = torch.randn(5, 128).bfloat16()
    index, weights = routing(5, config)
    with torch.no_grad():
        expected = module(hidden, index, weights)
        _fused_experts.install(config)
        got = module(hidden, index, weights)
    assert config._experts_implementation == IMPLEMENTATION
    assert torch.equal(got, expected)


if __name__ == "__main__":  # the child of ``interpreted``
    sys.stdout.write(json.dumps([{"case": [dtype, tokens]} | compare(dtype, tokens) for dtype, tokens in CASES]) + "\n")
