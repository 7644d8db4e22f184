"""Decode attention over a paged KV cache: each sequence reads its own live tokens, nothing more.

The keys and values of every sequence live in fixed-size blocks of one pool per layer; a block
table maps each sequence's positions to its blocks. A decode step then costs what the live
sequences hold, not the token budget: on CUDA a small Triton kernel walks each sequence's
blocks up to its own length (no host sync, so the step stays CUDA-graph capturable); elsewhere
(CPU, or CUDA without Triton) the blocks in use are gathered and handed to SDPA under a mask.

The slot decoder reaches this through transformers' own attention modules: the text model's
attention implementation is swapped for one that runs paged attention when the decoder passes
a :class:`PagedBatch` and the original implementation otherwise (prefill, ``model.generate``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["PagedBatch", "install", "paged_attention", "reference_attention"]


@dataclass
class PagedBatch:
    """Where each sequence's keys and values are: the layer's pools, block table and lengths.

    ``keys[layer]``/``values[layer]`` are ``(blocks, block_size, kv_heads, head_dim)``;
    ``table`` is ``(sequences, blocks_per_sequence)`` of block ids; ``lengths`` counts each
    sequence's live tokens (the current one included). ``width`` is how many table columns
    the gathered fallback reads (all of them where it is captured in a graph).
    """

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    table: torch.Tensor
    lengths: torch.Tensor
    width: int


def reference_attention(
    query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, batch: PagedBatch, scale: float
) -> torch.Tensor:
    """Gather the blocks in use and run SDPA under a length mask: ``(S, 1, heads, head_dim)``."""
    blocks = batch.table[:, : batch.width]
    k = keys[blocks].flatten(1, 2).transpose(1, 2)  # (S, kv_heads, width * block_size, D)
    v = values[blocks].flatten(1, 2).transpose(1, 2)
    seen = torch.arange(k.shape[2], device=k.device)[None, :] < batch.lengths[:, None]
    out = torch.nn.functional.scaled_dot_product_attention(
        query, k, v, attn_mask=seen[:, None, None, :], scale=scale, enable_gqa=k.shape[1] != query.shape[1]
    )
    return out.transpose(1, 2)


@functools.cache
def _triton_kernels() -> tuple[Any, Any] | None:
    """The Triton decode kernels (split, then combine), or None where Triton is not installed."""
    try:
        import triton
        import triton.language as tl
    except ImportError:
        return None

    @triton.jit  # type: ignore[untyped-decorator]
    def split(  # type: ignore[no-untyped-def]
        q_ptr,
        k_ptr,
        v_ptr,
        acc_ptr,
        best_ptr,
        total_ptr,
        table_ptr,
        lengths_ptr,
        scale,
        stride_qs,
        stride_qh,
        stride_kb,
        stride_kt,
        stride_kh,
        stride_ts,
        GROUP: tl.constexpr,
        BLOCK: tl.constexpr,
        HEAD_DIM: tl.constexpr,
        PARTS: tl.constexpr,
        SPLIT: tl.constexpr,
    ):
        seq = tl.program_id(0)
        head = tl.program_id(1)
        part = tl.program_id(2)
        heads = tl.num_programs(1)
        length = tl.load(lengths_ptr + seq)
        begin = part * SPLIT
        if begin < length:  # a part past the sequence's end does nothing: combine stops before it
            kv_head = head // GROUP
            dims = tl.arange(0, HEAD_DIM)
            rows = tl.arange(0, BLOCK)
            q = tl.load(q_ptr + seq * stride_qs + head * stride_qh + dims).to(tl.float32) * scale
            best = tl.full((), float("-inf"), tl.float32)
            total = tl.full((), 0.0, tl.float32)
            acc = tl.zeros((HEAD_DIM,), tl.float32)
            end = tl.minimum(begin + SPLIT, length)
            for start in range(begin, end, BLOCK):
                block = tl.load(table_ptr + seq * stride_ts + start // BLOCK)
                live = (start + rows) < end
                offsets = block * stride_kb + rows[:, None] * stride_kt + kv_head * stride_kh + dims[None, :]
                k = tl.load(k_ptr + offsets, mask=live[:, None], other=0.0).to(tl.float32)
                scores = tl.where(live, tl.sum(k * q[None, :], axis=1), float("-inf"))
                new_best = tl.maximum(best, tl.max(scores, axis=0))
                weights = tl.exp(scores - new_best)
                rescale = tl.exp(best - new_best)
                v = tl.load(v_ptr + offsets, mask=live[:, None], other=0.0).to(tl.float32)
                total = total * rescale + tl.sum(weights, axis=0)
                acc = acc * rescale + tl.sum(weights[:, None] * v, axis=0)
                best = new_best
            at = (seq * heads + head) * PARTS + part
            tl.store(acc_ptr + at * HEAD_DIM + dims, acc)
            tl.store(best_ptr + at, best)
            tl.store(total_ptr + at, total)

    @triton.jit  # type: ignore[untyped-decorator]
    def combine(  # type: ignore[no-untyped-def]
        acc_ptr,
        best_ptr,
        total_ptr,
        lengths_ptr,
        out_ptr,
        stride_os,
        stride_oh,
        PARTS: tl.constexpr,
        HEAD_DIM: tl.constexpr,
        SPLIT: tl.constexpr,
    ):
        seq = tl.program_id(0)
        head = tl.program_id(1)
        heads = tl.num_programs(1)
        live = tl.cdiv(tl.load(lengths_ptr + seq), SPLIT)
        dims = tl.arange(0, HEAD_DIM)
        first = (seq * heads + head) * PARTS
        best = tl.full((), float("-inf"), tl.float32)
        total = tl.full((), 0.0, tl.float32)
        acc = tl.zeros((HEAD_DIM,), tl.float32)
        for part in range(0, live):
            part_best = tl.load(best_ptr + first + part)
            new_best = tl.maximum(best, part_best)
            old, new = tl.exp(best - new_best), tl.exp(part_best - new_best)
            total = total * old + tl.load(total_ptr + first + part) * new
            acc = acc * old + tl.load(acc_ptr + (first + part) * HEAD_DIM + dims) * new
            best = new_best
        out = acc / tl.maximum(total, 1e-30)
        tl.store(out_ptr + seq * stride_os + head * stride_oh + dims, out.to(out_ptr.dtype.element_ty))

    return split, combine


def _kernel_fits(query: torch.Tensor, keys: torch.Tensor) -> bool:
    head_dim, block = query.shape[-1], keys.shape[1]
    powers = all(n >= 16 and n & (n - 1) == 0 for n in (head_dim, block))
    return query.is_cuda and powers and keys.stride(-1) == 1 and _triton_kernels() is not None


def paged_attention(
    query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, batch: PagedBatch, scale: float
) -> torch.Tensor:
    """One decode token per sequence, ``query`` ``(S, heads, 1, D)`` -> ``(S, 1, heads, D)``."""
    return decode_attention(query, keys, values, batch.table, batch.lengths, batch.width, scale)


@torch.library.custom_op("deepseek_ocr2_loaders::decode_attention", mutates_args=())
def decode_attention(
    query: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    table: torch.Tensor,
    lengths: torch.Tensor,
    width: int,
    scale: float,
) -> torch.Tensor:
    """:func:`paged_attention` as one operator: ``torch.compile`` calls it whole, Triton kernel and all."""
    batch = PagedBatch([keys], [values], table, lengths, width)
    if not _kernel_fits(query, keys):
        return reference_attention(query, keys, values, batch, scale).contiguous()
    return triton_attention(query, keys, values, batch, scale)


@decode_attention.register_fake  # type: ignore[misc]
def _(
    query: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    table: torch.Tensor,
    lengths: torch.Tensor,
    width: int,
    scale: float,
) -> torch.Tensor:
    sequences, heads, _, head_dim = query.shape
    return query.new_empty((sequences, 1, heads, head_dim))


SPLIT_TOKENS = 512
"""Keys one program of the split kernel reads: a long sequence is read by many programs at once."""
SPLIT_WARPS, SPLIT_STAGES = 4, 3
"""The split kernel's warps per program and software-pipeline stages (Triton's defaults)."""


def triton_attention(
    query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, batch: PagedBatch, scale: float
) -> torch.Tensor:
    """Split-K decode attention (flash-decoding): parts of ``SPLIT_TOKENS`` keys, then one combine.

    One program per sequence and head would walk a long page's keys alone while most of the
    GPU idles (a few long pages are the tail of every batch); parts run side by side instead.
    The part count follows the table's width, not the lengths, so the launch is graph-capturable.
    """
    split, combine = _triton_kernels()  # type: ignore[misc]
    sequences, heads, _, head_dim = query.shape
    block = keys.shape[1]
    step = max(SPLIT_TOKENS // block, 1) * block
    parts = -(-batch.table.shape[1] * block // step)
    q = query[:, :, 0]
    acc = torch.empty((sequences, heads, parts, head_dim), dtype=torch.float32, device=query.device)
    best = torch.empty((sequences, heads, parts), dtype=torch.float32, device=query.device)
    total = torch.empty_like(best)
    split[(sequences, heads, parts)](
        q,
        keys,
        values,
        acc,
        best,
        total,
        batch.table,
        batch.lengths,
        scale,
        q.stride(0),
        q.stride(1),
        keys.stride(0),
        keys.stride(1),
        keys.stride(2),
        batch.table.stride(0),
        GROUP=heads // keys.shape[2],
        BLOCK=block,
        HEAD_DIM=head_dim,
        PARTS=parts,
        SPLIT=step,
        num_warps=SPLIT_WARPS,
        num_stages=SPLIT_STAGES,
    )
    out = torch.empty((sequences, 1, heads, head_dim), dtype=query.dtype, device=query.device)
    combine[(sequences, heads)](
        acc, best, total, batch.lengths, out, out.stride(0), out.stride(2), PARTS=parts, HEAD_DIM=head_dim, SPLIT=step
    )
    return out


def install(config: Any) -> None:
    """Route the text model's attention through :func:`_attention` (idempotent).

    The original implementation keeps serving every call without a :class:`PagedBatch`, and
    its mask function keeps building the masks, so prefill and ``model.generate`` are unchanged.
    """
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    base = config._attn_implementation
    if base.startswith(_PREFIX):
        return
    name = _PREFIX + base
    if name not in ALL_ATTENTION_FUNCTIONS:
        fallback = ALL_ATTENTION_FUNCTIONS[base] if base != "eager" else None
        AttentionInterface.register(name, functools.partial(_attention, fallback=fallback))
        ALL_MASK_ATTENTION_FUNCTIONS.register(name, ALL_MASK_ATTENTION_FUNCTIONS[base])
    config._attn_implementation = name


_PREFIX = "ocr2_paged_"


def _attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    *,
    fallback: Any,
    paged: PagedBatch | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    if paged is None:
        if fallback is None:  # eager: transformers' own module-level function
            from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import eager_attention_forward

            return eager_attention_forward(module, query, key, value, attention_mask, **kwargs)  # type: ignore[no-any-return]
        return fallback(module, query, key, value, attention_mask, **kwargs)  # type: ignore[no-any-return]
    layer = module.layer_idx
    scale = kwargs.get("scaling") or module.scaling
    return paged_attention(query, paged.keys[layer], paged.values[layer], paged, scale), None
