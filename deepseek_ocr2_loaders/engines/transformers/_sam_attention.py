"""SAM attention without a materialised relative-position bias.

transformers' SDPA path for the SAM tower builds the decomposed relative-position bias as
a dense (batch, heads, tokens, tokens) tensor and passes it as ``attn_mask``, which rules
out the flash kernel: for a global layer that is ~400 MB per 1024 view; for the windowed
layers it is one 12 x 196 x 196 bias per 14 x 14 window, rebuilt in every layer (on an
H100 those bias additions were the largest block of the vision stage's time). The bias is
``q . Rh[qh, kh] + q . Rw[qw, kw]``: a per-query vector over key rows plus one over key
columns. Appending those vectors to the scaled query, and one-hot key-row / key-column
codes to the key, makes a single dot product carry both terms:

    [q * s, rel_h(q), rel_w(q)] . [k, onehot(kh), onehot(kw)] = s q.k + bias

so SDPA runs with no mask (flash / memory-efficient kernels), head dim 64 + rows + columns
(padded with zeros to a multiple of 8). The layer's own weights and relative-position
tables are used; nothing is copied.
"""

from __future__ import annotations

import types
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["fused_attention_forward", "patch_sam_attention"]


def fused_attention_forward(
    self: Any, hidden_states: torch.Tensor, output_attentions: bool = False
) -> tuple[torch.Tensor, None]:
    """Drop-in ``forward`` for a SAM attention module (global, or one window per batch row)."""
    batch, height, width, _ = hidden_states.shape
    heads = self.num_attention_heads
    tokens = height * width
    qkv = self.qkv(hidden_states).reshape(batch, tokens, 3, heads, -1).permute(2, 0, 3, 1, 4)
    query, key, value = qkv.unbind(0)  # (batch, heads, tokens, head_dim)
    head_dim = query.shape[-1]
    rel_rows = self.get_rel_pos(height, height, self.rel_pos_h).to(query.dtype)  # (qh, kh, head_dim)
    rel_cols = self.get_rel_pos(width, width, self.rel_pos_w).to(query.dtype)  # (qw, kw, head_dim)
    grid = query.reshape(batch, heads, height, width, head_dim)
    bias_rows = torch.einsum("bnhwc,hkc->bnhwk", grid, rel_rows).reshape(batch, heads, tokens, height)
    bias_cols = torch.einsum("bnhwc,wkc->bnhwk", grid, rel_cols).reshape(batch, heads, tokens, width)
    index = torch.arange(tokens, device=query.device)
    key_rows = F.one_hot(index // width, height).to(query.dtype).expand(batch, heads, tokens, height)
    key_cols = F.one_hot(index % width, width).to(query.dtype).expand(batch, heads, tokens, width)
    pad = -(head_dim + height + width) % 8  # fused kernels want a head dim that is a multiple of 8
    zeros = query.new_zeros(batch, heads, tokens, pad)
    query = torch.cat([query * self.scale, bias_rows, bias_cols, zeros], dim=-1)
    key = torch.cat([key, key_rows, key_cols, zeros], dim=-1)
    value = F.pad(value, (0, query.shape[-1] - head_dim))  # and one head dim for q, k and v
    out = F.scaled_dot_product_attention(query, key, value, scale=1.0)[..., :head_dim]
    out = out.reshape(batch, heads, height, width, head_dim).permute(0, 2, 3, 1, 4).reshape(batch, height, width, -1)
    return self.proj(out), None


def patch_sam_attention(model: Any, *, windowed: bool = True) -> int:
    """Give ``model``'s SAM attention layers the fused forward; returns how many were patched.

    ``windowed=False`` patches the global layers only (what the benchmark compares against).
    """
    patched = 0
    for layer in model.model.vision_tower.sam_encoder.layers:
        if getattr(layer.attn, "use_rel_pos", False) and (windowed or layer.window_size == 0):
            layer.attn.forward = types.MethodType(fused_attention_forward, layer.attn)
            patched += 1
    return patched
