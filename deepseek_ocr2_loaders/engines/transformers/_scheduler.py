"""One decode scheduler per loaded model and decoding settings: every caller's pages share the slots.

Callers hand the engine pages one file at a time (LlamaIndex's ``SimpleDirectoryReader``,
LangChain's ``GenericLoader``, several loaders on one engine, the server, threads,
coroutines), and ``convert()`` keeps its next batch in flight; decoded call by call, each
would get a batch of its own. Here they all submit to one queue and get a future per page.
A worker thread owns the :class:`~._slots.SlotDecoder` and refills its free slots from the
queue as pages finish, so pages that arrive mid-run join the running batch.

The decode step, and the CUDA graph captured for it, run on that one thread only: a graph
is replayed on the stream and thread that captured it.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch

from ...errors import DeepSeekOCR2Error, EngineError, GPUOutOfMemoryError
from .._base import EngineOutput
from ._slots import SlotDecoder
from ._vision import PagePrompt, vision_prompts

__all__ = ["PROMPT_ROOM", "Scheduler", "acquire", "generation_error", "release"]

PROMPT_ROOM = 256 + 144 * 6 + 1 + 8
"""Prompt positions a slot reserves before the instruction: the largest image (6 crops) and BOS."""


def generation_error(exc: Exception) -> DeepSeekOCR2Error:
    """The package's error for a failure during generation (an OOM is a :class:`GPUOutOfMemoryError`)."""
    if isinstance(exc, DeepSeekOCR2Error):
        return exc
    if isinstance(exc, torch.OutOfMemoryError):
        return GPUOutOfMemoryError("the GPU ran out of memory; lower max_batch_size or vision_batch_size")
    return EngineError(f"generation failed: {exc}")


@dataclass(eq=False)
class _Request:
    """One page waiting for (or in) the decoder, with the future its caller waits on."""

    image: Any
    prompt: str
    room: int
    future: Future[EngineOutput]
    inputs: Future[Any] | None = None  # processor inputs, encoded ahead on the preprocess pool


class Scheduler:
    """The queue, worker thread and slot decoder shared by every engine of one key.

    Args:
        engine: A private ``TransformersEngine`` of the key's options, owned (closed with
            the scheduler): the worker encodes pages and builds its decoder through it.
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.tokenizer = engine._acquire().processor.tokenizer  # loads here: a load error reaches the caller
        self.stats: dict[str, float] = {}
        self.slots = 0
        self._waiting: deque[_Request] = deque()
        self._wake = threading.Condition()
        self._closed = False
        self._decoder: SlotDecoder | None = None
        self._wanted = 0
        self._outgrown = False  # pages queued behind a decoder too small for them
        self._rooms: dict[str, int] = {}
        self._pool = ThreadPoolExecutor(min(8, os.cpu_count() or 1), thread_name_prefix="ocr-preprocess")
        self._thread = threading.Thread(target=self._work, name="ocr-scheduler", daemon=True)
        self._thread.start()

    def submit(self, images: list[Any], prompt: str) -> list[Future[EngineOutput]]:
        """Queue pages; one future per page, completed (or failed) as that page finishes."""
        room = self._rooms.get(prompt)
        if room is None:
            instruction = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
            room = self._rooms[prompt] = PROMPT_ROOM + len(instruction)
        requests = [_Request(image, prompt, room, Future()) for image in images]
        with self._wake:
            if self._closed:
                raise EngineError("the engine is closed")
            self._waiting.extend(requests)
            self._encode_ahead()
            self._wake.notify()
        return [request.future for request in requests]

    def close(self) -> None:
        """Stop the worker (it finishes the pages in its slots), fail pages still queued, free the decoder."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._decoder = None
        self.engine.close()

    def _encode_ahead(self) -> None:
        """Start the processor's CPU work for the next two vision batches (called holding the lock)."""
        for request in list(self._waiting)[: 2 * self.engine.vision_batch_size]:
            if request.inputs is None:
                request.inputs = self._pool.submit(self.engine.encode, [request.image], request.prompt, pin=True)

    # -- the worker thread ---------------------------------------------------------------

    def _work(self) -> None:
        try:
            if self.engine.device.type == "cuda":  # streams and graphs of this thread on the engine's GPU
                index = self.engine.device.index  # "cuda" names no index: the current device
                torch.cuda.set_device(torch.cuda.current_device() if index is None else index)
            while True:
                with self._wake:
                    while not self._waiting and not self._closed:
                        self._wake.wait()
                    if self._closed:
                        break
                self._run()
        except Exception as exc:  # the worker must never die with callers waiting on it
            with self._wake:
                self._closed = True
            self._fail_waiting(generation_error(exc))
            return
        self._fail_waiting(EngineError("the engine was closed before this page was read"))

    def _fail_waiting(self, error: DeepSeekOCR2Error) -> None:
        with self._wake:
            failed, self._waiting = list(self._waiting), deque()
        for request in failed:
            if request.future.set_running_or_notify_cancel():
                request.future.set_exception(error)

    def _run(self) -> None:
        """One decode run: from the queued pages until every slot is free and none is queued."""
        in_flight: dict[int, _Request] = {}
        try:
            decoder = self._decoder_for()
        except Exception as exc:  # no decoder for the queue as it is: fail it rather than spin
            self._fail_waiting(generation_error(exc))
            return
        try:
            with torch.inference_mode():
                intake = _Intake(self, decoder, in_flight)
                self.stats["runs"] = self.stats.get("runs", 0) + 1
                for result in decoder.serve(intake.take):
                    in_flight.pop(result.index).future.set_result(
                        EngineOutput(
                            text=self.tokenizer.decode(result.tokens, skip_special_tokens=False),
                            finish_reason=result.finish_reason,
                            vision_tokens=result.vision_tokens,
                            output_tokens=result.output_tokens,
                        )
                    )
        except Exception as exc:  # every page in the slots is hit; later pages get a fresh decoder
            error = generation_error(exc)
            for request in in_flight.values():
                request.future.set_exception(error)
            self._decoder = None  # half-written state (and, after an OOM, memory to give back)
            if self.engine.device.type == "cuda":
                torch.cuda.empty_cache()

    def _decoder_for(self) -> SlotDecoder:
        """The decoder for the queue: slots for the pages waiting (powers of two up to max_batch_size).

        It only grows, and is rebuilt when a waiting prompt needs more room than it reserved.
        Once pages have queued behind a running decoder it was too small for (concurrent
        callers), it grows to ``max_batch_size`` at once, so callers arriving one by one
        cost one drain, not one per doubling.
        """
        from ._kv_cache import fit_slots

        engine = self.engine
        with self._wake:
            backlog = len(self._waiting)
            room = max(request.room for request in self._waiting)
        wanted = min(engine.batch_size, 1 << max(backlog - 1, 0).bit_length())
        if self._outgrown:
            wanted = engine.batch_size
        current = self._decoder
        if current is not None and wanted <= self._wanted and room <= current.prompt_room:
            return current
        room = max(room, current.prompt_room if current is not None else 0)
        wanted = max(wanted, self._wanted)
        self._decoder = current = None  # free the old cache before the new one is allocated
        model = engine._acquire().model
        max_new_tokens = engine.options.max_new_tokens
        slots = fit_slots(model, wanted, room + max_new_tokens + 1, engine.vision_batch_size)
        loops = engine._loop_check(model, self.tokenizer)
        self._decoder = SlotDecoder(
            model=model,
            slots=slots,
            max_new_tokens=max_new_tokens,
            prompt_room=room,
            eos_id=self.tokenizer.eos_token_id,
            pad_id=self.tokenizer.pad_token_id,
            guard=engine._guard(self.tokenizer, loops),
            ignore_eos=engine.options.ignore_eos,
            loops=loops if engine.options.stop_loops else None,
            use_cuda_graph=engine.options.cuda_graphs and engine._graph_ready,
            stats=self.stats,
        )
        self._wanted, self.slots = wanted, slots
        return self._decoder


@dataclass
class _Intake:
    """What one run takes from the queue: never blocking, so busy slots keep decoding."""

    scheduler: Scheduler
    decoder: SlotDecoder
    in_flight: dict[int, _Request]
    draining: bool = False
    next_index: int = 0

    def take(self, free: int) -> list[PagePrompt]:
        """Up to ``free`` queued pages as decoder prompts; none once the run drains.

        The run drains (takes nothing more, so it ends and a new decoder is built) when a
        page needs more prompt room than the decoder has, when more pages wait than a
        decoder smaller than ``max_batch_size`` holds, or when the scheduler closes.
        """
        scheduler = self.scheduler
        taken: list[_Request] = []
        with scheduler._wake:
            waiting = scheduler._waiting
            while not self.draining and waiting and len(taken) < free:
                if scheduler._closed or waiting[0].room > self.decoder.prompt_room:
                    self.draining = True
                    break
                request = waiting.popleft()
                if request.future.set_running_or_notify_cancel():  # a cancelled page is dropped here
                    taken.append(request)
            if waiting and scheduler._wanted < scheduler.engine.batch_size:
                self.draining = scheduler._outgrown = True
            scheduler._encode_ahead()
        prompts: list[PagePrompt] = []
        batch = scheduler.engine.vision_batch_size
        for start in range(0, len(taken), batch):
            prompts.extend(self._encode(taken[start : start + batch]))
        return prompts

    def _encode(self, requests: list[_Request]) -> list[PagePrompt]:
        """Vision for a few pages; a page (or a vision batch) that fails fails alone."""
        scheduler = self.scheduler
        begun = time.perf_counter()
        encoded: list[tuple[int, Any]] = []
        for request in requests:
            try:
                if request.inputs is None:  # not encoded ahead (the pool is busy or shut)
                    request.inputs = scheduler._pool.submit(scheduler.engine.encode, [request.image], request.prompt)
                inputs = request.inputs.result()
            except Exception as exc:
                request.future.set_exception(generation_error(exc))
                continue
            self.in_flight[self.next_index] = request
            encoded.append((self.next_index, inputs))
            self.next_index += 1
        waited = time.perf_counter() - begun
        scheduler.stats["preprocess_wait_s"] = scheduler.stats.get("preprocess_wait_s", 0.0) + waited
        if not encoded:
            return []
        try:
            return vision_prompts(scheduler.engine, encoded, scheduler.stats)
        except Exception as exc:
            error = generation_error(exc)
            for index, _ in encoded:
                self.in_flight.pop(index).future.set_exception(error)
            return []
        finally:  # the prompt embeddings are all the decoder needs: drop pixels and image
            for request in requests:
                request.image = request.inputs = None


_SCHEDULERS: dict[Hashable, tuple[Scheduler, int]] = {}
_LOCK = threading.Lock()


def acquire(key: Hashable, make: Callable[[], Scheduler]) -> Scheduler:
    """The scheduler of ``key``, made on first use; one more engine holds it."""
    with _LOCK:
        scheduler, users = _SCHEDULERS.get(key) or (make(), 0)
        _SCHEDULERS[key] = (scheduler, users + 1)
    return scheduler


def release(key: Hashable, scheduler: Scheduler) -> None:
    """One engine fewer; the last one stops the worker thread and frees the decoder."""
    with _LOCK:
        held, users = _SCHEDULERS[key]
        if users > 1:
            _SCHEDULERS[key] = (held, users - 1)
            return
        del _SCHEDULERS[key]
    scheduler.close()
