"""Continuous-batching decode for DeepSeek-OCR-2 over transformers' own modules and weights.

``model.generate`` pads a batch to its longest page and runs every decode step through
Python-heavy code, so a batch waits for its slowest page and the GPU waits for the host.
This loop keeps ``slots`` sequences in flight instead:

* pages are prefilled through the language model without padding (pages of equal prompt
  length together), and their keys and values are copied into a paged KV cache whose blocks
  are lent as each page grows, so memory holds the tokens in flight, not the token budget;
* one decode step runs the model's own decoder layers for all slots at once, each slot
  writing at its own position and attending over its own live tokens only
  (:mod:`._paged_attention`), the routed experts read once per step by two kernels
  (:mod:`._fused_experts`); on CUDA the step is captured once in a CUDA graph and replayed;
* the host looks at the slots only every ``sync_every`` steps: finished pages are read
  out, their blocks returned, and their slots refilled with new pages, so short pages never
  wait for long ones. When blocks run out, the newest page gives its blocks back and is
  decoded again later from its prompt (greedy: the same tokens); no page fails for it.

Greedy decoding, the windowed n-gram guard and loop detection behave as in
:class:`~deepseek_ocr2_loaders.engines.transformers._engine.TransformersEngine`'s ``generate`` path.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from . import _fused_experts, _paged_attention
from ._guards import LoopCheck, WindowedNoRepeatNGram
from ._kv_cache import BlockAllocator, PagedKVCache, blocks_for, cache_keyword, layer_caches, output_cache
from ._vision import PagePrompt

__all__ = ["PageSource", "SlotDecoder", "SlotResult"]

logger = logging.getLogger(__name__)


@dataclass
class SlotResult:
    """Generated token ids of one page and why it ended."""

    index: int
    tokens: list[int]
    finish_reason: str
    output_tokens: int
    vision_tokens: int


def compiled_step(step: Any) -> Any:
    """``step`` through ``torch.compile``, one graph (no breaks) for every width.

    The rows' first dimension is marked dynamic (:meth:`SlotDecoder._rows`) and nothing else:
    with every size dynamic, a width equal to the head size was guarded as equal to it.

    The KV write and the paged attention are custom operators, so the pool is written in
    place and the Triton kernel runs as it is. Fused kernels round bf16 where eager rounds
    (``emulate_precision_casts``), so the tokens are eager's; inductor's coalescing analysis
    is off (on torch 2.11 it asserted on this step).
    """
    options = {"emulate_precision_casts": True, "triton.coalesce_tiling_analysis": False}
    return torch.compile(step, fullgraph=True, options=options)


class PageSource(Protocol):
    """Where the decoder takes its pages from: the engine's :class:`~._scheduler.Replica`."""

    def poll(self, limit: int, *, busy: bool) -> list[PagePrompt]:
        """Up to ``limit`` pages ready now; ``busy``: slots are decoding (they go on if none are ready)."""
        ...

    def prefetch(self) -> None:
        """A stretch of steps is running on the device: prepare the next pages beside it."""
        ...

    def wait(self) -> bool:
        """Block until a page is ready (the decoder is idle); False: none will come, stop."""
        ...

    def stopped(self) -> bool:
        """Drop what is decoding and return now (the engine is closing)."""
        ...


@dataclass
class _Slot:
    page: PagePrompt | None = None
    done: bool = True
    tokens: int = 0  # positions it may have written by the end of the current stretch (an upper bound)
    admitted: int = 0  # admission order: the newest page is preempted first


@dataclass
class _Rows:
    """The decode state of the first ``width`` slots: views of the decoder's tensors."""

    tokens: torch.Tensor
    recent: torch.Tensor
    generated: torch.Tensor
    counts: torch.Tensor
    limits: torch.Tensor
    finished: torch.Tensor
    cache: PagedKVCache
    paged: _paged_attention.PagedBatch


@dataclass
class SlotDecoder:
    """Greedy decoding of many pages through ``slots`` concurrent sequences.

    Args:
        model: A loaded ``DeepseekOcr2ForConditionalGeneration``.
        slots: Sequences decoded together at most (the decode batch).
        max_new_tokens: Token budget per page.
        prompt_room: Longest prompt (vision + text tokens) a slot must hold.
        eos_id, pad_id: End and padding token ids.
        guard: The windowed n-gram guard, applied to each slot's recent tokens.
        blocks: KV blocks in the pool (block 0 is scratch); default every slot at full length.
        block_size: Tokens per KV block.
        ignore_eos: Never stop at EOS (fixed-length benchmarks).
        loops: Judges which pages loop (``finish_reason="repetition"``); None never stops one.
        sync_every: Decode steps between looks from the host.
        use_cuda_graph: Capture the decode step once per width and replay it (CUDA only).
        compile_step: Run the step through ``torch.compile`` (one graph for every width, fused
            elementwise work); the plain step if compiling fails.

    A step runs only the first ``width`` slots, ``width`` the smallest of a few sizes (powers of
    two from 8, and ``slots``) that holds every occupied slot; pages fill the lowest free slots
    and move down when the batch thins out, so a few pages never pay for a full batch.
    """

    model: Any
    slots: int
    max_new_tokens: int
    prompt_room: int
    eos_id: int
    pad_id: int | None
    guard: WindowedNoRepeatNGram
    blocks: int | None = None
    block_size: int = 64
    ignore_eos: bool = False
    loops: LoopCheck | None = None
    sync_every: int = 32
    use_cuda_graph: bool = True
    compile_step: bool = False
    stats: dict[str, float] = field(default_factory=dict)
    device_lock: Any = None  # one per device: held for each refill and stretch (see run)

    def __post_init__(self) -> None:
        lm = self.model.model.language_model
        config = lm.config
        _paged_attention.install(config)
        _fused_experts.install(config)
        param = next(self.model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.length = self.prompt_room + self.max_new_tokens + self.sync_every + 1
        width = blocks_for(self.length, self.block_size)
        if self.blocks is None:
            self.blocks = self.slots * width + 1
        if self.blocks - 1 < width:
            raise ValueError(
                f"a KV pool of {self.blocks} blocks cannot hold one page of {self.length} tokens; free GPU memory"
            )
        self.cache = PagedKVCache(
            config.num_hidden_layers,
            self.slots,
            config.num_key_value_heads,
            config.hidden_size // config.num_attention_heads,
            blocks=self.blocks,
            block_size=self.block_size,
            blocks_per_slot=width,
            dtype=self.dtype,
            device=self.device,
        )
        self.table = torch.zeros_like(self.cache.table, device="cpu")  # the host's copy, sent before each stretch
        self.allocator = BlockAllocator(self.blocks, self.block_size)
        window, device = self.guard.window, self.device
        self.tokens = torch.zeros(self.slots, dtype=torch.long, device=device)  # last token per slot
        self.recent = torch.zeros(self.slots, window, dtype=torch.long, device=device)
        self.generated = torch.full((self.slots, self.max_new_tokens), -1, dtype=torch.long, device=device)
        self.counts = torch.zeros(self.slots, dtype=torch.long, device=device)
        self.limits = torch.full((self.slots,), self.max_new_tokens, dtype=torch.long, device=device)
        self.finished = torch.ones(self.slots, dtype=torch.bool, device=device)
        self.widths = sorted({min(self.slots, 1 << n) for n in range(3, self.slots.bit_length() + 1)} | {self.slots})
        self._cache_keyword = cache_keyword(lm.layers[0])
        self._views: dict[int, _Rows] = {}
        self._graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self._capture = self.use_cuda_graph and self.device.type == "cuda"
        self._compiled = compiled_step(self._step) if self.compile_step else None
        self._slots = [_Slot() for _ in range(self.slots)]
        self._waiting: deque[PagePrompt] = deque()  # pages taken from the source (or preempted), not in a slot
        self._admitted = 0

    def _rows(self, width: int) -> _Rows:
        if width not in self._views:
            cache = self.cache.head(width)
            columns = self.table.shape[1]
            self._views[width] = _Rows(
                tokens=self.tokens[:width],
                recent=self.recent[:width],
                generated=self.generated[:width],
                counts=self.counts[:width],
                limits=self.limits[:width],
                finished=self.finished[:width],
                cache=cache,
                paged=_paged_attention.PagedBatch(cache.keys, cache.values, cache.table, cache.lengths, columns),
            )
            if self.compile_step:  # the width is the one size that varies: one compiled graph serves them all
                rows = self._views[width]
                for tensor in (rows.tokens, rows.recent, rows.generated, rows.counts, rows.limits, rows.finished):
                    torch._dynamo.mark_dynamic(tensor, 0)
                for tensor in (cache.table, cache.positions, cache.lengths, cache.rows):
                    torch._dynamo.mark_dynamic(tensor, 0)
        return self._views[width]

    # -- one decode step (graph-capturable: no host syncs, static shapes) ----------------

    def _step(self, rows: _Rows) -> None:
        lm = self.model.model.language_model
        cache = rows.cache
        hidden = lm.embed_tokens(rows.tokens)[:, None, :]
        position_ids = cache.positions[:, None]
        cos_sin = lm.rotary_emb(hidden, position_ids)
        cache.lengths.copy_(cache.positions + 1)
        for layer in lm.layers:
            out = layer(
                hidden,
                attention_mask=None,
                position_ids=position_ids,
                use_cache=True,
                position_embeddings=cos_sin,
                paged=rows.paged,
                **{self._cache_keyword: cache},
            )
            hidden = out[0] if isinstance(out, tuple) else out
        logits = self.model.lm_head(lm.norm(hidden[:, 0])).float()
        if self.ignore_eos:
            logits[:, self.eos_id].fill_(float("-inf"))  # fill_ takes a scalar: no host copy in the graph
        logits = self.guard(rows.recent, logits)
        token = logits.argmax(-1)
        active = ~rows.finished
        at = rows.counts.clamp(max=self.max_new_tokens - 1)
        rows.generated[cache.rows, at] = torch.where(active, token, rows.generated[cache.rows, at])
        rows.counts += active.long()
        ended = rows.counts >= rows.limits
        if not self.ignore_eos:
            ended = ended | (token == self.eos_id)
        rows.recent.copy_(torch.cat([rows.recent[:, 1:], token[:, None]], dim=1))
        rows.tokens.copy_(token)
        cache.positions.copy_(cache.positions + active.long())  # a finished slot stays inside its blocks
        rows.finished |= ended

    def _run_step(self, width: int) -> None:
        rows = self._rows(width)
        if not self._capture:
            self._step_once(rows)
            return
        graph = self._graphs.get(width)
        if graph is None:
            graph = self._graphs[width] = self._capture_step(rows)
        graph.replay()

    def _capture_step(self, rows: _Rows) -> torch.cuda.CUDAGraph:
        """The step of these rows as a CUDA graph, the state left as it was."""
        stream = torch.cuda.Stream(self.device)  # type: ignore[no-untyped-call]
        stream.wait_stream(torch.cuda.current_stream(self.device))
        saved = [t.clone() for t in self._state()]
        with torch.cuda.stream(stream):
            for _ in range(2):  # warm up kernels and allocator outside the graph (and compile)
                self._step_once(rows)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        for tensor, copy in zip(self._state(), saved, strict=True):
            tensor.copy_(copy)
        graph = torch.cuda.CUDAGraph()
        step = self._compiled or self._step
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):  # other devices' threads go on
            step(rows)
        for tensor, copy in zip(self._state(), saved, strict=True):
            tensor.copy_(copy)
        return graph

    def _step_once(self, rows: _Rows) -> None:
        """One step, compiled where asked; a compile that fails leaves the plain step for good.

        A failure comes from tracing or code generation, before the compiled step runs (one
        graph, no breaks), so nothing has changed yet and the plain step takes this one over.
        """
        if self._compiled is None:
            self._step(rows)
            return
        try:
            self._compiled(rows)
        except torch.OutOfMemoryError:
            raise
        except Exception as exc:  # torch raises many kinds here (dynamo, inductor, triton)
            logger.warning("torch.compile of the decode step failed (%s); decoding with the plain step", exc)
            self._compiled = None
            self._step(rows)

    def _state(self) -> list[torch.Tensor]:
        """What a step changes, less the KV pool, for undoing the warm-up steps before capture.

        The pool needs no undo: a step writes each slot's keys and values at its position
        before attending, and attends only up to that position, so what the warm-up wrote
        past the restored positions is overwritten before it is ever read.
        """
        cache = self.cache
        return [self.tokens, self.recent, self.generated, self.counts, self.finished, cache.positions, cache.lengths]

    # -- prefill and the host loop ---------------------------------------------------------

    def _prefill(self, slots: list[int], pages: list[PagePrompt]) -> None:
        """Prefill pages of one prompt length together (no padding) into their slots' blocks."""
        lm = self.model.model.language_model
        length = pages[0].input_ids.shape[0]
        out = lm(inputs_embeds=torch.stack([page.embeds for page in pages]), use_cache=True)
        self.cache.table.copy_(self.table)
        offsets = torch.cat([self.cache.slot_offsets(slot, length) for slot in slots])
        for layer, (keys, values) in enumerate(layer_caches(output_cache(out))):
            self.cache.keys[layer].flatten(0, 1)[offsets] = keys.transpose(1, 2).flatten(0, 1)
            self.cache.values[layer].flatten(0, 1)[offsets] = values.transpose(1, 2).flatten(0, 1)
        logits = self.model.lm_head(out.last_hidden_state[:, -1]).float()
        rows = torch.tensor(slots, device=self.device)
        limits = torch.tensor([page.limit or self.max_new_tokens for page in pages], device=self.device)
        window = self.guard.window  # the guard sees generated tokens only: unique negatives never match
        recent = -torch.arange(window, 0, -1, device=self.device).expand(len(pages), -1)
        if self.ignore_eos:
            logits[:, self.eos_id].fill_(float("-inf"))
        token = self.guard(recent, logits).argmax(-1)
        self.recent[rows] = torch.cat([recent[:, 1:], token[:, None]], dim=1)
        self.tokens[rows] = token
        self.generated[rows] = -1
        self.generated[rows, 0] = token
        self.counts[rows] = 1
        self.limits[rows] = limits.clamp(max=self.max_new_tokens)
        self.cache.positions[rows] = length
        ended = limits <= 1
        if not self.ignore_eos:
            ended |= token == self.eos_id
        self.finished[rows] = ended

    def run(self, source: PageSource, *, prefill_batch: int = 8) -> Iterator[SlotResult]:
        """Decode every page the source gives; yields results as pages finish (not in input order).

        Free slots are refilled before each stretch of ``sync_every`` steps while the pool
        has blocks for them; new pages of equal prompt length (the same crop count) are
        prefilled together. Returns when the source says no more pages will come. Each
        refill and each stretch holds ``device_lock`` (not the waits between them), so
        decoders of other engines on the device never run beside a graph capture.
        """
        feed = source
        slots = self._slots
        while True:
            with self.device_lock or contextlib.nullcontext():
                self._refill(slots, feed, prefill_batch)
            if all(slot.done for slot in slots):
                if self._waiting or feed.wait():
                    continue
                return
            with self.device_lock or contextlib.nullcontext():
                finished = self._stretch(slots, feed)
            if feed.stopped():
                return
            yield from finished

    def _refill(self, slots: list[_Slot], source: PageSource, prefill_batch: int) -> None:
        """Admit pages into free slots and prefill them, equal prompt lengths together."""
        arrivals = self._admit(slots, source)
        begun = time.perf_counter()
        by_length: dict[int, list[tuple[int, PagePrompt]]] = {}
        for slot_index, page in arrivals:
            by_length.setdefault(page.input_ids.shape[0], []).append((slot_index, page))
        for group in by_length.values():
            for start in range(0, len(group), prefill_batch):
                part = group[start : start + prefill_batch]
                self._prefill([slot for slot, _ in part], [page for _, page in part])
        if arrivals:
            self._add("prefill_s", time.perf_counter() - begun)

    def _stretch(self, slots: list[_Slot], source: PageSource) -> list[SlotResult]:
        """``sync_every`` decode steps of the occupied slots; the pages that finished."""
        self._grow(slots)
        width = self._compact(slots)
        occupied = sum(not slot.done for slot in slots)  # the pages this stretch decodes
        begun = time.perf_counter()
        self.cache.table.copy_(self.table)
        if not self._capture:  # eager steps read only the table columns in use
            longest = max(slot.tokens for slot in slots if not slot.done)
            self._rows(width).paged.width = blocks_for(longest, self.block_size)
        for _ in range(self.sync_every):
            self._run_step(width)
        source.prefetch()  # the steps are queued on the device, not done: the host is free meanwhile
        finished = list(self._collect(slots, width))  # its host copy waits for the steps
        self._add("decode_s", time.perf_counter() - begun)
        self._add("steps", self.sync_every)
        self._add("slot_steps", self.sync_every * width)
        self.stats["pages_at_once_max"] = max(self.stats.get("pages_at_once_max", 0), occupied)
        self.stats["blocks_used_max"] = max(self.stats.get("blocks_used_max", 0), self.allocator.used)
        return finished

    def in_flight(self) -> list[PagePrompt]:
        """Pages taken from the source and not finished (to hand them to another decoder after a failure)."""
        return [slot.page for slot in self._slots if not slot.done and slot.page is not None] + list(self._waiting)

    def _admit(self, slots: list[_Slot], source: PageSource) -> list[tuple[int, PagePrompt]]:
        """Give free slots the next pages while the pool can also grow every running page one stretch."""
        waiting = self._waiting
        free = [index for index, slot in enumerate(slots) if slot.done]
        if len(waiting) < len(free):
            busy = len(free) < len(slots)
            waiting.extend(source.poll(len(free) - len(waiting), busy=busy))
        reserve = sum(
            self.allocator.needed(i, slot.tokens + self.sync_every) for i, slot in enumerate(slots) if not slot.done
        )
        arrivals: list[tuple[int, PagePrompt]] = []
        for index in free:
            if not waiting:
                break
            page = waiting[0]
            tokens = page.input_ids.shape[0]
            if tokens > self.prompt_room:
                raise ValueError(f"prompt of {tokens} tokens does not fit the slot ({self.prompt_room} reserved)")
            if self.allocator.needed(index, tokens + self.sync_every) + reserve > len(self.allocator.free):
                break
            waiting.popleft()
            self._lend(index, tokens)
            reserve += self.allocator.needed(index, tokens + self.sync_every)
            slot = slots[index]
            self._admitted += 1
            slot.page, slot.done, slot.tokens, slot.admitted = page, False, tokens, self._admitted
            arrivals.append((index, page))
        return arrivals

    def _lend(self, index: int, tokens: int) -> bool:
        """Blocks for the slot's first ``tokens`` positions, entered in the host table; False if too few."""
        have = len(self.allocator.owned.get(index, ()))
        new = self.allocator.grow(index, tokens)
        if new is None:
            return False
        self.table[index, have : have + len(new)] = torch.tensor(new, dtype=self.table.dtype)
        return True

    def _grow(self, slots: list[_Slot]) -> None:
        """Lend every running page the blocks of the next stretch, oldest first; preempt the newest if short."""
        running = sorted((i for i, slot in enumerate(slots) if not slot.done), key=lambda i: slots[i].admitted)
        for index in running:
            slot = slots[index]
            if slot.done:  # preempted below for an older page
                continue
            assert slot.page is not None
            limit = slot.page.limit or self.max_new_tokens
            tokens = min(slot.tokens + self.sync_every, slot.page.input_ids.shape[0] + limit)
            while not self._lend(index, tokens):
                newest = max((i for i in running if not slots[i].done), key=lambda i: slots[i].admitted)
                self._preempt(slots, newest)
                if newest == index:
                    break
            else:
                slot.tokens = tokens

    def _compact(self, slots: list[_Slot]) -> int:
        """Move pages down into free slots until the occupied ones fit the smallest width; return it."""
        occupied = [i for i, slot in enumerate(slots) if not slot.done]
        width = next(w for w in self.widths if w >= len(occupied))
        holes = [i for i in range(width) if slots[i].done]
        for source in (i for i in reversed(occupied) if i >= width):
            self._move(slots, source, holes.pop(0))
        return width

    def _move(self, slots: list[_Slot], source: int, target: int) -> None:
        """Slot ``source``'s page, state and blocks now live in slot ``target`` (which was free)."""
        for tensor in (self.tokens, self.recent, self.generated, self.counts, self.limits, self.finished):
            tensor[target] = tensor[source]
        self.cache.positions[target] = self.cache.positions[source]
        self.table[target] = self.table[source]
        self.allocator.move(source, target)
        slots[target], slots[source] = slots[source], _Slot()
        self.table[source] = 0
        self.finished[source] = True
        self.cache.positions[source] = 0

    def _preempt(self, slots: list[_Slot], index: int) -> None:
        """Take the slot's blocks back and queue its page to start again (it is never dropped)."""
        slot = slots[index]
        assert slot.page is not None
        self._waiting.appendleft(slot.page)
        self._free(slots, index)
        self._add("preempted", 1)
        logger.debug("KV pool full: page %d starts again later", slot.page.index)

    def _free(self, slots: list[_Slot], index: int) -> None:
        """Return the slot's blocks; it points at the scratch block from position 0 until refilled."""
        self.allocator.release(index)
        self.table[index] = 0
        self.finished[index] = True
        self.cache.positions[index] = 0
        slots[index].done = True

    def _add(self, key: str, value: float) -> None:
        self.stats[key] = self.stats.get(key, 0.0) + value

    def _collect(self, slots: list[_Slot], width: int) -> Iterator[SlotResult]:
        """Read out finished and looping slots among the first ``width`` (one small device-to-host copy)."""
        rows = self._rows(width)
        looped = torch.zeros(width, dtype=torch.bool, device=self.device)
        tail = torch.zeros(width, dtype=torch.long, device=self.device)
        if self.loops is not None:
            looped, tail = self.loops(_right_aligned(rows.generated, rows.counts), rows.counts)
        finished, looped_host, tail_host, counts = (
            t.tolist() for t in (rows.finished | looped, looped & ~rows.finished, tail, rows.counts)
        )
        for index in range(width):
            slot = slots[index]
            if slot.done or not finished[index] or slot.page is None:
                continue
            tokens = self.generated[index, : counts[index]].tolist()
            if looped_host[index]:
                reason, keep = "repetition", max(counts[index] - tail_host[index], 0)
            elif not self.ignore_eos and self.eos_id in tokens:
                reason, keep = "stop", tokens.index(self.eos_id)
            else:
                reason, keep = "length", len(tokens)
            page = slot.page
            self._free(slots, index)
            yield SlotResult(page.index, tokens[:keep], reason, counts[index], page.vision_tokens)


def _right_aligned(generated: torch.Tensor, counts: torch.Tensor, width: int = 2048) -> torch.Tensor:
    """The last ``width`` generated tokens of each slot, right-aligned; unique negatives where none."""
    width = min(width, generated.shape[1])
    offsets = counts[:, None] - width + torch.arange(width, device=generated.device)[None, :]
    gathered = generated.gather(1, offsets.clamp(min=0))
    filler = -1 - torch.arange(width, device=generated.device)[None, :].expand_as(offsets)
    return torch.where(offsets >= 0, gathered, filler)
