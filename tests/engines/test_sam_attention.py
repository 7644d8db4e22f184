"""The fused SAM global attention computes what transformers' module computes."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import DeepseekOcr2ForConditionalGeneration

from deepseek_ocr2_loaders.engines._sam_attention import patch_sam_global_attention


@pytest.mark.parametrize("grid", [64, 48])  # the 1024 global view and a 768 crop
def test_fused_global_attention_matches_the_original(tiny_checkpoint, grid):
    model = DeepseekOcr2ForConditionalGeneration.from_pretrained(str(tiny_checkpoint), dtype=torch.float32).eval()
    layer = next(item for item in model.model.vision_tower.sam_encoder.layers if item.window_size == 0)
    torch.manual_seed(grid)
    with torch.no_grad():  # the checkpoint's weights are near zero: give the tables real values
        layer.attn.rel_pos_h.normal_(0, 0.5)
        layer.attn.rel_pos_w.normal_(0, 0.5)
        layer.attn.qkv.weight.normal_(0, 0.3)
        layer.attn.proj.weight.normal_(0, 0.3)
    original = copy.deepcopy(layer.attn)
    assert patch_sam_global_attention(model) == 1
    hidden = torch.randn(2, grid, grid, layer.attn.qkv.in_features)
    with torch.no_grad():
        expected, _ = original(hidden)
        got, _ = layer.attn(hidden)
    assert expected.abs().mean() > 1e-3
    error = (got - expected).norm() / expected.norm()
    assert error < 1e-5, float(error)
