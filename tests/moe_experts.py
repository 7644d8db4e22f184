"""Experts modules of transformers' DeepSeek-OCR-2 text model at the real sizes, and router outputs."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers.models.deepseek_ocr2 import modeling_deepseek_ocr2 as modeling

FULL_SIZE = Path(__file__).resolve().parents[1] / "benchmarks" / "configs" / "full-size-config.json"


def text_config(implementation: str, **sizes: int) -> modeling.DeepseekOcr2TextConfig:
    """The full-size model's text config (64 experts, 1280 -> 896), ``sizes`` overriding it."""
    config = modeling.DeepseekOcr2TextConfig(**(json.loads(FULL_SIZE.read_text())["text_config"] | sizes))
    config._experts_implementation = implementation
    return config


def experts(config: modeling.DeepseekOcr2TextConfig, dtype: torch.dtype, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    module = modeling.DeepseekOcr2TextExperts(config)
    with torch.no_grad():
        module.gate_up_proj.normal_(0, config.hidden_size**-0.5)
        module.down_proj.normal_(0, config.moe_intermediate_size**-0.5)
    return module.to(dtype)


def routing(tokens: int, config: modeling.DeepseekOcr2TextConfig, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The router's output shapes and values: top-k of a softmax, indices int64, weights fp32."""
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(tokens, config.n_routed_experts, generator=generator).softmax(-1)
    weights, index = torch.topk(scores, config.num_experts_per_tok, dim=-1, sorted=False)
    return index, weights * config.routed_scaling_factor
