"""The vision encoder's hybrid attention as two mask-free SDPA calls.

DeepSeek-OCR-2's second vision stage runs a Qwen2-shaped encoder over ``n`` image tokens
followed by ``n`` learned query tokens: image tokens attend to each other both ways, query
tokens attend to every image token and causally to the queries before them. transformers
builds that as a dense boolean mask per batch, which keeps SDPA off the flash kernel. The
same attention is two calls with no mask:

    query rows:  plain causal attention over the whole sequence: the query at position
                 n + i sees keys 0 .. n + i, every image token and the queries up to i
    image rows:  bidirectional attention over the image tokens alone

Both run on the flash / memory-efficient kernels; the causal call's image rows are
discarded (a quarter of a small attention: the encoder's cost is its linear layers).
"""

from __future__ import annotations

import types
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["patch_encoder_attention"]


def _attention_forward(
    self: Any,
    hidden_states: torch.Tensor,
    position_embeddings: tuple[torch.Tensor, torch.Tensor],
    attention_mask: torch.Tensor | None,
    past_key_values: Any = None,
    image_tokens: int | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Drop-in ``forward`` for ``DeepseekOcr2VisionAttention`` given the image-token count."""
    from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import apply_rotary_pos_emb

    if image_tokens is None:
        raise ValueError("the split encoder attention needs image_tokens")
    batch, length, _ = hidden_states.shape
    shape = (batch, length, -1, self.head_dim)
    query = self.q_proj(hidden_states).view(shape).transpose(1, 2)
    key = self.k_proj(hidden_states).view(shape).transpose(1, 2)
    value = self.v_proj(hidden_states).view(shape).transpose(1, 2)
    cos, sin = position_embeddings
    query, key = apply_rotary_pos_emb(query, key, cos, sin)
    groups = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    n = image_tokens
    causal = F.scaled_dot_product_attention(query, key, value, is_causal=True, scale=self.scaling)
    image = F.scaled_dot_product_attention(query[:, :, :n], key[:, :, :n], value[:, :, :n], scale=self.scaling)
    out = torch.cat([image, causal[:, :, n:]], dim=2).transpose(1, 2).reshape(batch, length, -1)
    return self.o_proj(out), None


def _encoder_forward(self: Any, inputs_embeds: torch.Tensor, num_patches: int, **kwargs: Any) -> Any:
    """Drop-in ``forward`` for ``DeepseekOcr2VisionEncoder``: no mask, the count goes to each layer."""
    from transformers.modeling_outputs import BaseModelOutputWithPast

    position_ids = torch.arange(inputs_embeds.shape[1], device=inputs_embeds.device).unsqueeze(0)
    hidden_states = inputs_embeds
    position_embeddings = self.rotary_emb(hidden_states, position_ids)
    for layer in self.layers[: self.config.num_hidden_layers]:
        hidden_states = layer(
            hidden_states,
            attention_mask=None,
            position_embeddings=position_embeddings,
            position_ids=position_ids,
            image_tokens=num_patches,
        )
    return BaseModelOutputWithPast(last_hidden_state=self.norm(hidden_states))


def patch_encoder_attention(model: Any) -> int:
    """Give ``model``'s vision encoder the split attention; returns the number of layers patched."""
    encoder = model.model.vision_tower.vision_encoder
    if any(getattr(layer.self_attn, "sliding_window", None) for layer in encoder.layers):
        return 0  # a sliding window would need a third mask term; keep transformers' path
    encoder.forward = types.MethodType(_encoder_forward, encoder)
    for layer in encoder.layers:
        layer.self_attn.forward = types.MethodType(_attention_forward, layer.self_attn)
    return len(encoder.layers)
