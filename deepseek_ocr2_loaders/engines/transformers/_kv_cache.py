"""The slot decoder's static KV cache, and how it meets transformers' decoder layers and GPU memory.

Each slot owns one row of a static per-layer cache; :meth:`SlotKVCache.update` is the method
transformers' attention modules call, so the model's own layers write into it unchanged.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import torch

from ...errors import EngineError

__all__ = ["SlotKVCache", "cache_keyword", "fit_slots", "layer_caches", "output_cache"]

logger = logging.getLogger(__name__)


class SlotKVCache:
    """Static keys/values per layer, shaped (slots, kv_heads, length, head_dim).

    The attention modules call :meth:`update` with the new token's keys/values; each slot
    writes at ``positions[slot]`` and attends over the whole static length under a mask.
    """

    def __init__(
        self,
        layers: int,
        slots: int,
        heads: int,
        length: int,
        head_dim: int,
        *,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        shape = (slots, heads, length, head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.positions = torch.zeros(slots, dtype=torch.long, device=device)
        self.rows = torch.arange(slots, device=device)
        self.length = length

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write one token per slot at its own position; return the full static cache of the layer."""
        keys, values = self.keys[layer_idx], self.values[layer_idx]
        keys[self.rows, :, self.positions] = key_states[:, :, 0]
        values[self.rows, :, self.positions] = value_states[:, :, 0]
        return keys, values


def cache_keyword(layer: torch.nn.Module) -> str:
    """The decoder layers' KV-cache argument: ``cache`` from transformers 5.24, ``past_key_values`` before.

    The old name still works on 5.24 with a deprecation warning and is removed in 5.40, where a
    ``**kwargs`` forward would swallow it silently and decode without a cache; so ask the signature.
    """
    parameters = inspect.signature(layer.forward).parameters
    if "cache" in parameters:
        return "cache"
    if "past_key_values" in parameters:
        return "past_key_values"
    raise EngineError(f"this transformers release's {type(layer).__name__}.forward takes no KV-cache argument")


def output_cache(output: Any) -> Any:
    """The DynamicCache of a model output: field ``cache`` from 5.24, ``past_key_values`` before."""
    fields = output.keys()
    return output["cache"] if "cache" in fields else output["past_key_values"]


def layer_caches(past: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(keys, values) per layer of a DynamicCache, across transformers 5 releases."""
    if hasattr(past, "layers"):
        return [(layer.keys, layer.values) for layer in past.layers]
    return list(zip(past.key_cache, past.value_cache, strict=True))  # pragma: no cover - older releases


VISION_BYTES_PER_PAGE = 0.4 * 2**30
"""GPU working memory of one page in the vision towers (bf16, 6 crops; measured on an H100).

Scaled by the element size for other dtypes.
"""


def fit_slots(model: Any, wanted: int, length: int, vision_pages: int = 0) -> int:
    """Slots whose KV cache fits in 80% of the free GPU memory left after the vision towers' share.

    Free memory includes what PyTorch's allocator holds unused (an old decoder's cache, the
    last vision batch). ``vision_pages`` pages are encoded together while slots decode, so
    their working memory is set aside first. All of ``wanted`` on a CPU.
    """
    param = next(model.parameters())
    if param.device.type != "cuda":
        return wanted
    config = model.model.language_model.config
    head_dim = config.hidden_size // config.num_attention_heads
    per_slot = 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim * length * param.element_size()
    free, _ = torch.cuda.mem_get_info(param.device)
    free += torch.cuda.memory_reserved(param.device) - torch.cuda.memory_allocated(param.device)  # ours, cached
    vision = vision_pages * VISION_BYTES_PER_PAGE * param.element_size() / 2
    fitting = max(1, int((free - vision) * 0.8 // per_slot))
    if fitting < wanted:
        logger.warning("GPU memory holds %d decode slots, not the %d asked for", fitting, wanted)
    return min(wanted, fitting)
