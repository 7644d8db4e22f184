"""Continuous-batching decode for DeepSeek-OCR-2 over transformers' own modules and weights.

``model.generate`` pads a batch to its longest page and runs every decode step through
Python-heavy code, so a batch waits for its slowest page and the GPU waits for the host.
This loop keeps ``slots`` sequences in flight instead:

* pages are prefilled through the language model without padding (pages of equal prompt
  length together), and their keys and values are copied into a static per-slot cache;
* one decode step runs the model's own decoder layers for all slots at once, each slot
  writing at its own position (:class:`SlotKVCache` implements the ``update`` method the
  attention modules call); on CUDA the step is captured once in a CUDA graph and replayed;
* the host looks at the slots only every ``sync_every`` steps: finished pages are read
  out and their slots refilled with new pages, so short pages never wait for long ones.

Greedy decoding, the windowed n-gram guard and loop detection behave as in
:class:`~deepseek_ocr2_loaders.engines.transformers._engine.TransformersEngine`'s ``generate`` path.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from ._guards import LoopCheck, WindowedNoRepeatNGram
from ._kv_cache import SlotKVCache, cache_keyword, layer_caches, output_cache
from ._vision import PagePrompt

__all__ = ["SlotDecoder", "SlotResult"]

logger = logging.getLogger(__name__)


@dataclass
class SlotResult:
    """Generated token ids of one page and why it ended."""

    index: int
    tokens: list[int]
    finish_reason: str
    output_tokens: int
    vision_tokens: int


@dataclass
class _Slot:
    page: PagePrompt | None = None
    done: bool = True


@dataclass
class SlotDecoder:
    """Greedy decoding of many pages through ``slots`` concurrent sequences.

    Args:
        model: A loaded ``DeepseekOcr2ForConditionalGeneration``.
        slots: Sequences decoded together (the decode batch).
        max_new_tokens: Token budget per page.
        prompt_room: Longest prompt (vision + text tokens) a slot must hold.
        eos_id, pad_id: End and padding token ids.
        guard: The windowed n-gram guard, applied to each slot's recent tokens.
        ignore_eos: Never stop at EOS (fixed-length benchmarks).
        loops: Judges which pages loop (``finish_reason="repetition"``); None never stops one.
        sync_every: Decode steps between looks from the host.
        use_cuda_graph: Capture the decode step once and replay it (CUDA only).
    """

    model: Any
    slots: int
    max_new_tokens: int
    prompt_room: int
    eos_id: int
    pad_id: int | None
    guard: WindowedNoRepeatNGram
    ignore_eos: bool = False
    loops: LoopCheck | None = None
    sync_every: int = 32
    use_cuda_graph: bool = True
    stats: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        lm = self.model.model.language_model
        config = lm.config
        param = next(self.model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.length = self.prompt_room + self.max_new_tokens + 1
        self.cache = SlotKVCache(
            config.num_hidden_layers,
            self.slots,
            config.num_key_value_heads,
            self.length,
            config.hidden_size // config.num_attention_heads,
            dtype=self.dtype,
            device=self.device,
        )
        window = self.guard.window
        self.tokens = torch.zeros(self.slots, dtype=torch.long, device=self.device)  # last token per slot
        self.recent = torch.zeros(self.slots, window, dtype=torch.long, device=self.device)
        self.generated = torch.full((self.slots, self.max_new_tokens), -1, dtype=torch.long, device=self.device)
        self.counts = torch.zeros(self.slots, dtype=torch.long, device=self.device)
        self.finished = torch.ones(self.slots, dtype=torch.bool, device=self.device)
        self.span = torch.arange(self.length, device=self.device)
        self._cache_keyword = cache_keyword(lm.layers[0])
        self._additive_mask = lm.config._attn_implementation == "eager"
        self._graph: torch.cuda.CUDAGraph | None = None

    # -- one decode step (graph-capturable: no host syncs, static shapes) ----------------

    def _step(self) -> None:
        lm = self.model.model.language_model
        cache = self.cache
        hidden = lm.embed_tokens(self.tokens)[:, None, :]
        position_ids = cache.positions[:, None]
        cos_sin = lm.rotary_emb(hidden, position_ids)
        mask = (self.span[None, :] <= cache.positions[:, None])[:, None, None, :]
        if self._additive_mask:  # eager attention adds the mask to the scores: 0 where seen, -inf elsewhere
            mask = torch.zeros(mask.shape, dtype=self.dtype, device=self.device).masked_fill(~mask, float("-inf"))
        for layer in lm.layers:
            out = layer(
                hidden,
                attention_mask=mask,
                position_ids=position_ids,
                use_cache=True,
                position_embeddings=cos_sin,
                **{self._cache_keyword: cache},
            )
            hidden = out[0] if isinstance(out, tuple) else out
        logits = self.model.lm_head(lm.norm(hidden[:, 0])).float()
        if self.ignore_eos:
            logits[:, self.eos_id].fill_(float("-inf"))  # fill_ takes a scalar: no host copy in the graph
        logits = self.guard(self.recent, logits)
        token = logits.argmax(-1)
        active = ~self.finished
        self.generated[cache.rows, self.counts.clamp(max=self.max_new_tokens - 1)] = torch.where(
            active, token, self.generated[cache.rows, self.counts.clamp(max=self.max_new_tokens - 1)]
        )
        self.counts += active.long()
        ended = self.counts >= self.max_new_tokens
        if not self.ignore_eos:
            ended = ended | (token == self.eos_id)
        self.finished |= ended
        self.recent.copy_(torch.cat([self.recent[:, 1:], token[:, None]], dim=1))
        self.tokens.copy_(token)
        cache.positions.copy_((cache.positions + 1).clamp(max=self.length - 1))

    def _run_step(self) -> None:
        if not (self.use_cuda_graph and self.device.type == "cuda"):
            self._step()
            return
        if self._graph is None:
            stream = torch.cuda.Stream()  # type: ignore[no-untyped-call]
            stream.wait_stream(torch.cuda.current_stream())
            saved = [t.clone() for t in self._state()]
            with torch.cuda.stream(stream):
                for _ in range(2):  # warm up kernels and allocator outside the graph
                    self._step()
            torch.cuda.current_stream().wait_stream(stream)
            for tensor, copy in zip(self._state(), saved, strict=True):
                tensor.copy_(copy)
            self._graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self._graph):
                self._step()
            for tensor, copy in zip(self._state(), saved, strict=True):
                tensor.copy_(copy)
        self._graph.replay()

    def _state(self) -> list[torch.Tensor]:
        """What a step changes, less the KV cache, for undoing the warm-up steps before capture.

        The cache needs no undo: a step writes each slot's keys and values at its position
        before attending, and attends only up to that position, so what the warm-up wrote
        past the restored positions is overwritten before it is ever read. (Copying the
        cache would briefly double the largest allocation of all.)
        """
        return [self.tokens, self.recent, self.generated, self.counts, self.finished, self.cache.positions]

    # -- prefill and the host loop ---------------------------------------------------------

    def _prefill(self, slots: list[int], pages: list[PagePrompt]) -> None:
        """Prefill pages of one prompt length together (no padding) into their slots."""
        lm = self.model.model.language_model
        length = pages[0].input_ids.shape[0]
        if length + self.max_new_tokens + 1 > self.length:
            raise ValueError(f"prompt of {length} tokens does not fit the slot ({self.prompt_room} reserved)")
        out = lm(inputs_embeds=torch.stack([page.embeds for page in pages]), use_cache=True)
        rows = torch.tensor(slots, device=self.device)
        for layer, (keys, values) in enumerate(layer_caches(output_cache(out))):
            self.cache.keys[layer][rows, :, :length] = keys
            self.cache.values[layer][rows, :, :length] = values
        logits = self.model.lm_head(out.last_hidden_state[:, -1]).float()
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
        self.cache.positions[rows] = length
        ended = torch.full_like(token, self.max_new_tokens <= 1, dtype=torch.bool)
        if not self.ignore_eos:
            ended |= token == self.eos_id
        self.finished[rows] = ended

    def run(self, pages: Iterator[PagePrompt], *, prefill_batch: int = 8) -> Iterator[SlotResult]:
        """Decode every page; yields results as pages finish (not in input order).

        Free slots are refilled before each stretch of ``sync_every`` steps; new pages of
        equal prompt length (the same crop count) are prefilled together.
        """
        slots = [_Slot() for _ in range(self.slots)]
        pending = iter(pages)
        while True:
            free = [index for index, slot in enumerate(slots) if slot.done]
            arrivals = list(itertools.islice(pending, len(free)))
            by_length: dict[int, list[tuple[int, PagePrompt]]] = {}
            for slot_index, page in zip(free, arrivals, strict=False):
                by_length.setdefault(page.input_ids.shape[0], []).append((slot_index, page))
                slots[slot_index].page, slots[slot_index].done = page, False
            begun = time.perf_counter()
            for group in by_length.values():
                for start in range(0, len(group), prefill_batch):
                    part = group[start : start + prefill_batch]
                    self._prefill([slot for slot, _ in part], [page for _, page in part])
            if arrivals:
                self._add("prefill_s", time.perf_counter() - begun)
            if all(slot.done for slot in slots):
                return
            begun = time.perf_counter()
            for _ in range(self.sync_every):
                self._run_step()
            finished = list(self._collect(slots))  # its host copy waits for the steps
            self._add("decode_s", time.perf_counter() - begun)
            self._add("steps", self.sync_every)
            yield from finished

    def _add(self, key: str, value: float) -> None:
        self.stats[key] = self.stats.get(key, 0.0) + value

    def _collect(self, slots: list[_Slot]) -> Iterator[SlotResult]:
        """Read out finished and looping slots (one small device-to-host copy)."""
        looped = torch.zeros(self.slots, dtype=torch.bool, device=self.device)
        tail = torch.zeros(self.slots, dtype=torch.long, device=self.device)
        if self.loops is not None:
            looped, tail = self.loops(_right_aligned(self.generated, self.counts), self.counts)
        finished, looped_host, tail_host, counts = (
            t.tolist() for t in (self.finished | looped, looped & ~self.finished, tail, self.counts)
        )
        for index, slot in enumerate(slots):
            if slot.done or not finished[index] or slot.page is None:
                continue
            tokens = self.generated[index, : counts[index]].tolist()
            if looped_host[index]:
                reason, keep = "repetition", max(counts[index] - tail_host[index], 0)
            elif not self.ignore_eos and self.eos_id in tokens:
                reason, keep = "stop", tokens.index(self.eos_id)
            else:
                reason, keep = "length", len(tokens)
            self.finished[index] = True
            slot.done = True
            yield SlotResult(slot.page.index, tokens[:keep], reason, counts[index], slot.page.vision_tokens)


def _right_aligned(generated: torch.Tensor, counts: torch.Tensor, width: int = 2048) -> torch.Tensor:
    """The last ``width`` generated tokens of each slot, right-aligned; unique negatives where none."""
    width = min(width, generated.shape[1])
    offsets = counts[:, None] - width + torch.arange(width, device=generated.device)[None, :]
    gathered = generated.gather(1, offsets.clamp(min=0))
    filler = -1 - torch.arange(width, device=generated.device)[None, :].expand_as(offsets)
    return torch.where(offsets >= 0, gathered, filler)
