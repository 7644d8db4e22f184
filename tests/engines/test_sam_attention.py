"""The fused SAM attention (global and windowed layers) computes what transformers' module computes."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import DeepseekOcr2ForConditionalGeneration

from deepseek_ocr2_loaders.engines.transformers._sam_attention import patch_sam_attention


@pytest.mark.parametrize(
    ("windowed", "grid"),
    [(False, 64), (False, 48), (True, 14)],  # global: the 1024 view and a 768 crop; a 14 x 14 window
)
def test_fused_attention_matches_the_original(tiny_checkpoint, windowed, grid):
    model = DeepseekOcr2ForConditionalGeneration.from_pretrained(str(tiny_checkpoint), dtype=torch.float32).eval()
    layer = next(item for item in model.model.vision_tower.sam_encoder.layers if (item.window_size > 0) == windowed)
    assert not windowed or layer.window_size == grid
    torch.manual_seed(grid)
    with torch.no_grad():  # the checkpoint's weights are near zero: give the tables real values
        layer.attn.rel_pos_h.normal_(0, 0.5)
        layer.attn.rel_pos_w.normal_(0, 0.5)
        layer.attn.qkv.weight.normal_(0, 0.3)
        layer.attn.proj.weight.normal_(0, 0.3)
    original = copy.deepcopy(layer.attn)
    assert patch_sam_attention(model) == 2  # the tiny tower: one windowed layer, one global
    hidden = torch.randn(3, grid, grid, layer.attn.qkv.in_features)
    with torch.no_grad():
        expected, _ = original(hidden)
        got, _ = layer.attn(hidden)
    assert expected.abs().mean() > 1e-3
    error = (got - expected).norm() / expected.norm()
    assert error < 1e-5, float(error)


def test_the_whole_tower_is_unchanged(tiny_checkpoint):
    model = DeepseekOcr2ForConditionalGeneration.from_pretrained(str(tiny_checkpoint), dtype=torch.float32).eval()
    torch.manual_seed(0)
    tower = model.model.vision_tower.sam_encoder
    with torch.no_grad():  # the checkpoint's weights are near zero: give every weight a real value
        for parameter in tower.parameters():
            parameter.normal_(0, 0.2)
        pixels = torch.randn(2, 3, 1024, 1024)
        expected = tower(pixels).last_hidden_state
        patch_sam_attention(model)
        got = tower(pixels).last_hidden_state
    assert expected.abs().mean() > 1e-3
    error = (got - expected).norm() / expected.norm()
    assert error < 1e-5, float(error)
