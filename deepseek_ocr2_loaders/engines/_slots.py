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
:class:`~deepseek_ocr2_loaders.engines.transformers.TransformersEngine`'s ``generate`` path.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import EngineError
from ._guards import LoopCheck, WindowedNoRepeatNGram

__all__ = ["PagePrompt", "SlotDecoder", "SlotKVCache", "SlotResult", "fit_slots", "page_prompts"]

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


@dataclass
class PagePrompt:
    """One page ready for decoding: prompt token ids and prompt embeddings (vision merged in)."""

    index: int
    input_ids: torch.Tensor  # (T,)
    embeds: torch.Tensor  # (T, hidden)
    vision_tokens: int


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
        self._graph: torch.cuda.CUDAGraph | None = None

    # -- one decode step (graph-capturable: no host syncs, static shapes) ----------------

    def _step(self) -> None:
        lm = self.model.model.language_model
        cache = self.cache
        hidden = lm.embed_tokens(self.tokens)[:, None, :]
        position_ids = cache.positions[:, None]
        cos_sin = lm.rotary_emb(hidden, position_ids)
        mask = (self.span[None, :] <= cache.positions[:, None])[:, None, None, :]
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
        for layer, (keys, values) in enumerate(_layer_caches(_output_cache(out))):
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


def _output_cache(output: Any) -> Any:
    """The DynamicCache of a model output: field ``cache`` from 5.24, ``past_key_values`` before."""
    fields = output.keys()
    return output["cache"] if "cache" in fields else output["past_key_values"]


def _layer_caches(past: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(keys, values) per layer of a DynamicCache, across transformers 5 releases."""
    if hasattr(past, "layers"):
        return [(layer.keys, layer.values) for layer in past.layers]
    return list(zip(past.key_cache, past.value_cache, strict=True))  # pragma: no cover - older releases


def _right_aligned(generated: torch.Tensor, counts: torch.Tensor, width: int = 2048) -> torch.Tensor:
    """The last ``width`` generated tokens of each slot, right-aligned; unique negatives where none."""
    width = min(width, generated.shape[1])
    offsets = counts[:, None] - width + torch.arange(width, device=generated.device)[None, :]
    gathered = generated.gather(1, offsets.clamp(min=0))
    filler = -1 - torch.arange(width, device=generated.device)[None, :].expand_as(offsets)
    return torch.where(offsets >= 0, gathered, filler)


def page_prompts(
    engine: Any, images: list[Any], prompt: str, micro_batch: int, stats: dict[str, float]
) -> Iterator[PagePrompt]:
    """Encode pages lazily, ``micro_batch`` at a time through the vision towers, one prompt per page.

    The processor's CPU work (resize, crop, normalise) runs page by page on worker threads
    (PIL and NumPy release the GIL), up to two micro-batches ahead, so the GPU does not wait
    for it and host memory stays bounded. Each page keeps its own unpadded prompt: a
    micro-batch shares only the vision towers, its pixels concatenated on the device.
    """
    import os
    import time
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    model = engine._acquire().model
    image_token = model.config.image_token_id
    embed = model.get_input_embeddings()
    upcoming = iter(range(len(images)))
    workers = min(8, os.cpu_count() or 1)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ocr-preprocess")
    try:
        queued: deque[tuple[int, Future[Any]]] = deque()

        def fill() -> None:
            while len(queued) < 2 * micro_batch and (index := next(upcoming, None)) is not None:
                queued.append((index, pool.submit(engine.encode, [images[index]], prompt, pin=True)))

        fill()
        while queued:
            begun = time.perf_counter()
            batch = [
                (index, future.result())
                for index, future in (queued.popleft() for _ in range(min(micro_batch, len(queued))))
            ]
            fill()
            stats["preprocess_wait_s"] = stats.get("preprocess_wait_s", 0.0) + time.perf_counter() - begun
            begun = time.perf_counter()
            locals_ = [
                engine._to_device(inputs["pixel_values_local"]) for _, inputs in batch if "pixel_values_local" in inputs
            ]
            features = engine.image_features(
                model,
                torch.cat([engine._to_device(inputs["pixel_values"]) for _, inputs in batch]),
                torch.cat(locals_) if locals_ else None,
                [int(inputs["num_local_patches"][0]) for _, inputs in batch],
            )
            prompts = []
            for (index, inputs), feature in zip(batch, features, strict=True):
                ids = inputs["input_ids"][0].to(engine.device)
                mask = (ids == image_token).unsqueeze(-1)
                embeds = embed(ids).masked_scatter(mask, feature.to(engine.dtype))
                prompts.append(PagePrompt(index, ids, embeds, int(feature.shape[0])))
            if engine.device.type == "cuda":
                torch.cuda.synchronize()
            stats["vision_s"] = stats.get("vision_s", 0.0) + time.perf_counter() - begun
            yield from prompts
    finally:  # stopped early or failed: drop the pages not started, wait for the running ones
        pool.shutdown(wait=True, cancel_futures=True)


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
