"""The slot decoder's paged KV cache, and how it meets transformers' decoder layers and GPU memory.

Slots own blocks of one pool per layer, lent as their pages grow, so memory follows the tokens
really in flight rather than the token budget; :meth:`PagedKVCache.update` is the method
transformers' attention modules call, so the model's own layers write into it unchanged.
"""

from __future__ import annotations

import copy
import inspect
import logging
from typing import Any

import torch

from ...errors import EngineError

__all__ = [
    "BlockAllocator",
    "PagedKVCache",
    "blocks_for",
    "cache_keyword",
    "fit_blocks",
    "layer_caches",
    "output_cache",
]

logger = logging.getLogger(__name__)


class PagedKVCache:
    """Keys/values of every slot in blocks of ``block_size`` tokens, one pool per layer.

    ``table[slot]`` lists the slot's blocks in position order; block 0 is scratch that no page
    owns (free slots point there, so their writes land nowhere that matters). The attention
    modules call :meth:`update` with the new token's keys/values: each slot writes at
    ``positions[slot]`` through its table, and :mod:`._paged_attention` reads the live tokens.
    """

    def __init__(
        self,
        layers: int,
        slots: int,
        heads: int,
        head_dim: int,
        *,
        blocks: int,
        block_size: int,
        blocks_per_slot: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        shape = (blocks, block_size, heads, head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.table = torch.zeros((slots, blocks_per_slot), dtype=torch.int32, device=device)
        self.positions = torch.zeros(slots, dtype=torch.long, device=device)
        self.lengths = torch.ones(slots, dtype=torch.int32, device=device)
        self.rows = torch.arange(slots, device=device)
        self.block_size = block_size

    def head(self, rows: int) -> PagedKVCache:
        """The same pools seen through the first ``rows`` slots (views: writes reach this cache)."""
        view = copy.copy(self)
        view.table, view.positions, view.lengths, view.rows = (
            t[:rows] for t in (self.table, self.positions, self.lengths, self.rows)
        )
        return view

    def slot_offsets(self, slot: int, count: int) -> torch.Tensor:
        """Flat pool offsets (``block * block_size + row``) of a slot's first ``count`` positions."""
        positions = torch.arange(count, device=self.table.device)
        blocks = self.table[slot, positions // self.block_size].long()
        return blocks * self.block_size + positions % self.block_size

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write one token per slot at its own position (attention then reads the pool itself)."""
        blocks = self.table[self.rows, self.positions // self.block_size].long()
        offsets = blocks * self.block_size + self.positions % self.block_size
        write_tokens(self.keys[layer_idx], self.values[layer_idx], offsets, key_states[:, :, 0], value_states[:, :, 0])
        return key_states, value_states


@torch.library.custom_op("deepseek_ocr2_loaders::write_tokens", mutates_args=("keys", "values"))
def write_tokens(
    keys: torch.Tensor, values: torch.Tensor, offsets: torch.Tensor, key: torch.Tensor, value: torch.Tensor
) -> None:
    """Write one token's keys/values per row at flat pool ``offsets`` (``block * block_size + row``).

    An operator of its own, so ``torch.compile`` sees an in-place write of two rows per slot
    and never turns it into a copy of the whole pool (it did, with static shapes).
    """
    keys.flatten(0, 1)[offsets] = key
    values.flatten(0, 1)[offsets] = value


@write_tokens.register_fake  # type: ignore[misc]
def _(keys: torch.Tensor, values: torch.Tensor, offsets: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> None:
    return None


def blocks_for(tokens: int, block_size: int) -> int:
    """Blocks that hold ``tokens`` positions."""
    return -(-tokens // block_size)


class BlockAllocator:
    """Host-side bookkeeping of the pool's free blocks and each slot's blocks (block 0 is never lent)."""

    def __init__(self, blocks: int, block_size: int) -> None:
        self.free = list(range(blocks - 1, 0, -1))
        self.owned: dict[int, list[int]] = {}
        self.block_size = block_size
        self.capacity = blocks - 1

    @property
    def used(self) -> int:
        return self.capacity - len(self.free)

    def needed(self, slot: int, tokens: int) -> int:
        """Blocks more the slot needs to hold ``tokens`` positions."""
        return max(0, blocks_for(tokens, self.block_size) - len(self.owned.get(slot, ())))

    def grow(self, slot: int, tokens: int) -> list[int] | None:
        """Lend the slot enough blocks for ``tokens`` positions; None (nothing lent) if too few are free."""
        more = self.needed(slot, tokens)
        if more > len(self.free):
            return None
        new = [self.free.pop() for _ in range(more)]
        self.owned.setdefault(slot, []).extend(new)
        return new

    def release(self, slot: int) -> None:
        self.free.extend(reversed(self.owned.pop(slot, [])))

    def move(self, source: int, target: int) -> None:
        """The blocks of slot ``source`` now belong to the free slot ``target``."""
        self.owned[target] = self.owned.pop(source, [])


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


def fit_blocks(model: Any, wanted: int, block_size: int, vision_pages: int) -> tuple[int, int]:
    """KV blocks and vision batch that fit the free GPU memory: ``(blocks, vision_pages)``.

    Free memory includes what PyTorch's allocator holds unused (an old decoder's pool, the
    last vision batch). The vision towers get at most a third of it (a small card encodes
    fewer pages at once rather than running out), and the pool 80% of the rest, capped at
    ``wanted`` blocks. All of ``wanted`` on a CPU.
    """
    param = next(model.parameters())
    if param.device.type != "cuda":
        return wanted, vision_pages
    config = model.model.language_model.config
    head_dim = config.hidden_size // config.num_attention_heads
    per_block = 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim * block_size * param.element_size()
    free, _ = torch.cuda.mem_get_info(param.device)
    free += torch.cuda.memory_reserved(param.device) - torch.cuda.memory_allocated(param.device)  # ours, cached
    per_page = VISION_BYTES_PER_PAGE * param.element_size() / 2
    vision_pages = max(1, min(vision_pages, int(free / 3 // per_page)))
    blocks = min(wanted, int((free - vision_pages * per_page) * 0.8 // per_block))
    if blocks < wanted:
        logger.info(
            "GPU memory holds %d KV blocks of %d tokens (%d would hold every slot at full length)",
            blocks,
            block_size,
            wanted,
        )
    return blocks, vision_pages
