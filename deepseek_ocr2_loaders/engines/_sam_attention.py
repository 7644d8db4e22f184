"""SAM global attention without a materialised relative-position bias.

transformers' SDPA path for the SAM tower builds the decomposed relative-position bias as
a dense (batch, heads, 4096, 4096) tensor per 1024 view and passes it as ``attn_mask``,
which rules out the fused attention kernels and costs ~400 MB per view. The bias is
``q . Rh[qh, kh] + q . Rw[qw, kw]``: a per-query vector over key rows plus one over key
columns. Appending those vectors to the scaled query, and one-hot key-row / key-column
codes to the key, makes a single dot product carry both terms:

    [q * s, rel_h(q), rel_w(q)] . [k, onehot(kh), onehot(kw)] = s q.k + bias

so SDPA runs with no mask (flash / memory-efficient kernels), head dim 64 + 64 + 64.
The layer's own weights and relative-position tables are used; nothing is copied.
"""

from __future__ import annotations

import types
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["fused_global_attention_forward", "patch_sam_global_attention"]


def fused_global_attention_forward(
    self: Any, hidden_states: torch.Tensor, output_attentions: bool = False
) -> tuple[torch.Tensor, None]:
    """Drop-in ``forward`` for a global (unwindowed) SAM attention module."""
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
    query = torch.cat([query * self.scale, bias_rows, bias_cols], dim=-1)
    key = torch.cat([key, key_rows, key_cols], dim=-1)
    extra = query.shape[-1] - head_dim
    value = F.pad(value, (0, extra))  # fused kernels want one head dim for q, k and v
    out = F.scaled_dot_product_attention(query, key, value, scale=1.0)[..., :head_dim]
    out = out.reshape(batch, heads, height, width, head_dim).permute(0, 2, 3, 1, 4).reshape(batch, height, width, -1)
    return self.proj(out), None


def patch_sam_global_attention(model: Any) -> int:
    """Give every global SAM attention layer of ``model`` the fused forward; returns how many."""
    patched = 0
    for layer in model.model.vision_tower.sam_encoder.layers:
        if layer.window_size == 0 and getattr(layer.attn, "use_rel_pos", False):
            layer.attn.forward = types.MethodType(fused_global_attention_forward, layer.attn)
            patched += 1
    return patched
