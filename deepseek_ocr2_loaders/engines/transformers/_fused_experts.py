"""The routed experts of a decode step as two Triton kernels that read each expert's weights once.

At the decode step's widths (8 to 128 tokens, 6 experts each) transformers' grouped-GEMM path
spends more time around the GEMMs than in them: a sort, gathers, a scatter back, a kernel that
prepares the grouped problem, and two CUTLASS grouped GEMMs tuned for large groups (about
1.2 ms of a 5 ms step at 8 tokens for 2.6 GB of experts). Here one program takes one expert and
a tile of its output columns: it reads that tile of the expert's weights once and multiplies
every token routed to the expert by it, gate and up together with SiLU applied in the same
program; a second kernel does the down projection and the routing weight. The pairs are sorted
by expert with one small sort, and each expert's range is found by a binary search, so there is
no host sync and the step stays CUDA-graph capturable.

Rounding follows the grouped-GEMM path (bf16 after each projection and after SiLU and the
product, routing weights and the sum over a token's experts in fp32), so the result agrees with
it to bf16 rounding. Where the kernels do not apply (CPU, no Triton, prefill's thousands of
tokens, biases or expert parallelism) transformers' ``grouped_mm`` path runs unchanged.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Any

import torch
from transformers.integrations.moe import ALL_EXPERTS_FUNCTIONS, grouped_mm_experts_forward

__all__ = ["IMPLEMENTATION", "MAX_TOKENS", "fused_experts", "install", "reference_experts"]

IMPLEMENTATION = "ocr2_fused_grouped_mm"
"""The name the experts implementation is registered under in transformers' ``ExpertsInterface``."""

MAX_TOKENS = 256
"""Most tokens the fused kernels take (decode widths); more go to grouped GEMMs, which suit them."""

BLOCK_M, BLOCK_N, BLOCK_K = 16, 64, 64
"""Tokens, output columns and reduction depth of one tile (``tl.dot`` takes at least 16 rows)."""
NUM_WARPS, NUM_STAGES = 4, 3

TRITON = importlib.util.find_spec("triton") is not None
"""Whether the kernels can be built; a constant, so ``torch.compile`` traces the choice as one."""


def install(config: Any) -> None:
    """Route ``config``'s grouped-GEMM experts through :func:`_experts_forward` (idempotent).

    Calls of at most :data:`MAX_TOKENS` tokens on CUDA take the kernels (the slot decoder's
    steps, and ``model.generate``'s); prefill and every other call run the grouped-GEMM path.
    A config on the per-expert loop (fp32, CPU) is left alone.
    """
    if IMPLEMENTATION not in ALL_EXPERTS_FUNCTIONS:
        ALL_EXPERTS_FUNCTIONS.register(IMPLEMENTATION, _experts_forward)
    if config._experts_implementation == "grouped_mm":
        config._experts_implementation = IMPLEMENTATION


def _experts_forward(
    module: Any, hidden_states: torch.Tensor, top_k_index: torch.Tensor, top_k_weights: torch.Tensor
) -> torch.Tensor:
    if _kernels_fit(module, hidden_states):
        return fused_experts(hidden_states, top_k_index, top_k_weights, module.gate_up_proj, module.down_proj)
    return grouped_mm_experts_forward(module, hidden_states, top_k_index, top_k_weights)


def _tile(size: int, block: int) -> int:
    """The tile along a dimension of ``size``: ``block``, or the whole dimension where it is smaller."""
    return min(size, block)


def _tiles_fit(*sizes: int) -> bool:
    """Every tile a power of two of at least 16 (``tl.arange``, ``tl.dot``) that divides its dimension."""
    tiles = [(size, _tile(size, block)) for size in sizes for block in (BLOCK_N, BLOCK_K)]
    return all(tile >= 16 and tile & (tile - 1) == 0 and size % tile == 0 for size, tile in tiles)


_PLAIN_LAYOUT = {
    "has_gate": True,
    "has_bias": False,
    "is_transposed": False,
    "is_concatenated": True,
    "_is_expert_parallel": False,
}
"""The layout the kernels compute, as ``use_experts_implementation``'s flags; a flag an older 5.x
release lacks (5.17 has no expert parallelism) reads as its plain value."""


def _kernels_fit(module: Any, hidden_states: torch.Tensor) -> bool:
    plain = all(getattr(module, name, value) == value for name, value in _PLAIN_LAYOUT.items())
    return (
        plain
        and _tiles_fit(module.hidden_dim, module.intermediate_dim)
        and hidden_states.is_cuda
        and hidden_states.dtype in (torch.bfloat16, torch.float16)
        and hidden_states.shape[0] <= MAX_TOKENS
        and TRITON
    )


def reference_experts(
    hidden_states: torch.Tensor,
    top_k_index: torch.Tensor,
    top_k_weights: torch.Tensor,
    gate_up: torch.Tensor,
    down: torch.Tensor,
) -> torch.Tensor:
    """Token by token in torch, rounding where the kernels round: what they must equal."""
    dtype = hidden_states.dtype
    intermediate = down.shape[-1]
    out = torch.zeros(hidden_states.shape, dtype=torch.float32, device=hidden_states.device)
    for token, (experts, weights) in enumerate(zip(top_k_index, top_k_weights, strict=True)):
        for expert, weight in zip(experts.tolist(), weights, strict=True):
            projected = (hidden_states[token].float() @ gate_up[expert].float().T).to(dtype)
            gate, up = projected[:intermediate], projected[intermediate:]
            act = (torch.nn.functional.silu(gate.float()).to(dtype).float() * up.float()).to(dtype)
            out[token] += (act.float() @ down[expert].float().T).to(dtype).float() * weight.float()
    return out.to(dtype)


@torch.library.custom_op("deepseek_ocr2_loaders::fused_experts", mutates_args=())
def fused_experts(
    hidden_states: torch.Tensor,
    top_k_index: torch.Tensor,
    top_k_weights: torch.Tensor,
    gate_up: torch.Tensor,
    down: torch.Tensor,
) -> torch.Tensor:
    """``(tokens, hidden)`` through each token's ``top_k_index`` experts, weighted and summed.

    ``gate_up`` is ``(experts, 2 * intermediate, hidden)`` (gate rows first), ``down``
    ``(experts, hidden, intermediate)``: transformers' layout. One operator, so
    ``torch.compile`` calls it whole.
    """
    gate_up_kernel, down_kernel = _triton_kernels()  # type: ignore[misc]
    tokens, hidden = hidden_states.shape
    top_k = top_k_index.shape[1]
    experts, intermediate = down.shape[0], down.shape[2]
    sorted_experts, pairs = torch.sort(top_k_index.reshape(-1).to(torch.int32), stable=True)
    bounds = torch.searchsorted(
        sorted_experts, torch.arange(experts + 1, dtype=torch.int32, device=hidden_states.device)
    ).to(torch.int32)
    pairs = pairs.to(torch.int32)
    x = hidden_states.contiguous()
    act = torch.empty((tokens * top_k, intermediate), dtype=x.dtype, device=x.device)
    gate_up_columns, down_columns = _tile(intermediate, BLOCK_N), _tile(hidden, BLOCK_N)
    gate_up_kernel[(experts, intermediate // gate_up_columns)](
        x,
        gate_up,
        act,
        pairs,
        bounds,
        TOP_K=top_k,
        HIDDEN=hidden,
        INTERMEDIATE=intermediate,
        BLOCK_M=BLOCK_M,
        BLOCK_N=gate_up_columns,
        BLOCK_K=_tile(hidden, BLOCK_K),
        num_warps=NUM_WARPS,
        num_stages=NUM_STAGES,
    )
    per_pair = torch.empty((tokens * top_k, hidden), dtype=torch.float32, device=x.device)
    down_kernel[(experts, hidden // down_columns)](
        act,
        down,
        per_pair,
        top_k_weights.reshape(-1).float(),
        pairs,
        bounds,
        HIDDEN=hidden,
        INTERMEDIATE=intermediate,
        BLOCK_M=BLOCK_M,
        BLOCK_N=down_columns,
        BLOCK_K=_tile(intermediate, BLOCK_K),
        num_warps=NUM_WARPS,
        num_stages=NUM_STAGES,
    )
    return per_pair.view(tokens, top_k, hidden).sum(dim=1).to(x.dtype)


@fused_experts.register_fake  # type: ignore[misc]
def _(
    hidden_states: torch.Tensor,
    top_k_index: torch.Tensor,
    top_k_weights: torch.Tensor,
    gate_up: torch.Tensor,
    down: torch.Tensor,
) -> torch.Tensor:
    return torch.empty_like(hidden_states)


@functools.cache
def _triton_kernels() -> tuple[Any, Any] | None:
    """The gate-up and down kernels, or None where Triton is not installed."""
    try:
        import triton
        import triton.language as tl
    except ImportError:
        return None

    @triton.jit  # type: ignore[untyped-decorator]
    def gate_up_kernel(  # type: ignore[no-untyped-def]
        x_ptr,
        w_ptr,
        act_ptr,
        pairs_ptr,
        bounds_ptr,
        TOP_K: tl.constexpr,
        HIDDEN: tl.constexpr,
        INTERMEDIATE: tl.constexpr,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_K: tl.constexpr,
    ):
        expert = tl.program_id(0)
        columns = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
        first = tl.load(bounds_ptr + expert)
        last = tl.load(bounds_ptr + expert + 1)
        depth = tl.arange(0, BLOCK_K)
        weights = w_ptr + expert.to(tl.int64) * (2 * INTERMEDIATE * HIDDEN)
        for start in range(first, last, BLOCK_M):  # an expert no token chose does nothing
            rows = start + tl.arange(0, BLOCK_M)
            live = rows < last
            tokens = tl.load(pairs_ptr + rows, mask=live, other=0) // TOP_K
            gate = tl.zeros((BLOCK_M, BLOCK_N), tl.float32)
            up = tl.zeros((BLOCK_M, BLOCK_N), tl.float32)
            for k in range(0, HIDDEN, BLOCK_K):
                x = tl.load(x_ptr + tokens[:, None] * HIDDEN + (k + depth)[None, :], mask=live[:, None], other=0.0)
                w_gate = tl.load(weights + columns[None, :] * HIDDEN + (k + depth)[:, None])
                w_up = tl.load(weights + (INTERMEDIATE + columns)[None, :] * HIDDEN + (k + depth)[:, None])
                gate = tl.dot(x, w_gate, gate)
                up = tl.dot(x, w_up, up)
            dtype = act_ptr.dtype.element_ty
            gate = gate.to(dtype).to(tl.float32)
            silu = (gate / (1.0 + tl.exp(-gate))).to(dtype).to(tl.float32)
            act = silu * up.to(dtype).to(tl.float32)
            tl.store(act_ptr + rows[:, None] * INTERMEDIATE + columns[None, :], act.to(dtype), mask=live[:, None])

    @triton.jit  # type: ignore[untyped-decorator]
    def down_kernel(  # type: ignore[no-untyped-def]
        act_ptr,
        w_ptr,
        out_ptr,
        routing_ptr,
        pairs_ptr,
        bounds_ptr,
        HIDDEN: tl.constexpr,
        INTERMEDIATE: tl.constexpr,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_K: tl.constexpr,
    ):
        expert = tl.program_id(0)
        columns = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
        first = tl.load(bounds_ptr + expert)
        last = tl.load(bounds_ptr + expert + 1)
        depth = tl.arange(0, BLOCK_K)
        weights = w_ptr + expert.to(tl.int64) * (HIDDEN * INTERMEDIATE)
        for start in range(first, last, BLOCK_M):
            rows = start + tl.arange(0, BLOCK_M)
            live = rows < last
            pair = tl.load(pairs_ptr + rows, mask=live, other=0)
            acc = tl.zeros((BLOCK_M, BLOCK_N), tl.float32)
            for k in range(0, INTERMEDIATE, BLOCK_K):
                a = tl.load(
                    act_ptr + rows[:, None] * INTERMEDIATE + (k + depth)[None, :], mask=live[:, None], other=0.0
                )
                w = tl.load(weights + columns[None, :] * INTERMEDIATE + (k + depth)[:, None])
                acc = tl.dot(a, w, acc)
            routing = tl.load(routing_ptr + pair, mask=live, other=0.0)
            out = acc.to(act_ptr.dtype.element_ty).to(tl.float32) * routing[:, None]
            tl.store(out_ptr + pair[:, None] * HIDDEN + columns[None, :], out, mask=live[:, None])

    return gate_up_kernel, down_kernel
