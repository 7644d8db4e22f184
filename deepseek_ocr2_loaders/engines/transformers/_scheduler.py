"""One page queue per engine, drained by a decode loop on each device: every caller shares the GPU batch.

``generate`` from any thread (a loader, ``convert``'s pipelined batches, the server, an event
loop's worker threads) puts its pages on the engine's :class:`PageQueue` and waits for its own
results. Each device has a :class:`Replica`, one worker thread that runs
:class:`~._slots.SlotDecoder` and, whenever slots free up, takes the next pages from the queue
and encodes them (a vision batch at a time, preprocessing on a thread pool), so new pages join
the running batch across calls.

A replica takes pages only when it has free slots, so with several devices the least loaded
one takes the next pages. A page whose image fails to encode fails its call alone. A
decoder out of memory retries its pages with half the slots; a replica that fails otherwise
hands its pages back to the queue for the others, or, the last one standing, fails their calls.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ...errors import DeepSeekOCR2Error, EngineError, GPUOutOfMemoryError
from .._base import EngineOutput
from ._vision import PagePrompt, page_prompts

__all__ = ["PageQueue", "Replica"]

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Call:
    """One ``generate`` call: its pages, and its outputs as they finish."""

    images: list[Any]
    prompt: str
    limit: int
    outputs: list[EngineOutput | None]
    remaining: int
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


@dataclass(eq=False)
class _Job:
    """One page of a call, as the replicas see it."""

    call: _Call
    index: int
    id: int

    @property
    def image(self) -> Any:
        return self.call.images[self.index]


class PageQueue:
    """The pages of every call in arrival order; replicas take a few at a time and report back."""

    def __init__(self) -> None:
        self._jobs: deque[_Job] = deque()
        self._taken: dict[int, _Job] = {}  # handed to a replica, not yet delivered
        self._changed = threading.Condition()
        self._ids = itertools.count()
        self._closed = False

    def generate(self, images: list[Any], prompt: str, limit: int) -> list[EngineOutput]:
        """The outputs of these images, in order, decoded beside every other caller's pages."""
        if not images:
            return []
        call = _Call(list(images), prompt, limit, [None] * len(images), len(images))
        with self._changed:
            if self._closed:
                raise EngineError("the engine is closed")
            self._jobs.extend(_Job(call, index, next(self._ids)) for index in range(len(images)))
            self._changed.notify_all()
        call.done.wait()
        if call.error is not None:
            raise call.error
        return [output for output in call.outputs if output is not None]

    def take(self, limit: int, *, block: bool) -> list[_Job]:
        """Up to ``limit`` pages of one prompt; ``block``: wait for the first. [] once the queue closes."""
        with self._changed:
            while not self._closed:
                while self._jobs and self._jobs[0].call.error is not None:  # its call failed meanwhile
                    self._jobs.popleft()
                if self._jobs or not block:
                    break
                self._changed.wait()
            taken: list[_Job] = []
            prompt = self._jobs[0].call.prompt if self._jobs else None
            while self._jobs and len(taken) < limit and self._jobs[0].call.prompt == prompt:
                job = self._jobs.popleft()
                if job.call.error is None:
                    self._taken[job.id] = job
                    taken.append(job)
            return [] if self._closed else taken

    def wait(self, stop: Callable[[], bool] = lambda: False) -> bool:
        """Block until a page is queued; False once the queue closes (or ``stop()`` says so)."""
        with self._changed:
            while not self._jobs and not self._closed and not stop():
                self._changed.wait()
            return not self._closed and not stop()

    def wake(self) -> None:
        """Wake every thread waiting here (one of them has been told to stop)."""
        with self._changed:
            self._changed.notify_all()

    def give_back(self, jobs: list[_Job]) -> None:
        """Pages a failed replica held: first in line for the others."""
        with self._changed:
            for job in reversed(jobs):
                if self._taken.pop(job.id, None) is not None:
                    self._jobs.appendleft(job)
            self._changed.notify_all()

    def job(self, job_id: int) -> _Job | None:
        with self._changed:
            return self._taken.get(job_id)

    def deliver(self, job_id: int, output: EngineOutput) -> None:
        with self._changed:
            job = self._taken.pop(job_id, None)
            if job is None or job.call.error is not None:
                return
            call = job.call
            call.outputs[job.index] = output
            call.remaining -= 1
            finished = call.remaining == 0
        if finished:
            call.done.set()

    def fail(self, jobs: list[_Job], exc: BaseException) -> None:
        """The calls of these pages raise ``exc`` (as an :class:`EngineError` if it is not ours)."""
        if not isinstance(exc, DeepSeekOCR2Error):
            wrapped = EngineError(f"generation failed: {type(exc).__name__}: {exc}")
            wrapped.__cause__, exc = exc, wrapped
        calls = {id(job.call): job.call for job in jobs}
        with self._changed:
            for call in calls.values():
                if call.error is None and not call.done.is_set():
                    call.error = exc
            for job_id in [key for key, job in self._taken.items() if job.call.error is not None]:
                del self._taken[job_id]
        for call in calls.values():
            call.done.set()

    def close(self, exc: BaseException | None = None) -> None:
        """No more pages; every call still waiting fails (with ``exc``, or :class:`EngineError`)."""
        with self._changed:
            self._closed = True
            waiting = list(self._jobs) + list(self._taken.values())
            self._jobs.clear()
            self._changed.notify_all()
        self.fail(waiting, exc or EngineError("the engine was closed while its pages were decoding"))


class Replica:
    """One device's worker thread: take pages from the queue, encode them, decode them, deliver.

    All of the device's work runs on this one thread, on one stream, in the order the
    decoder asks for it (vision between decode stretches), so nothing else touches the
    device while a decode step is captured as a CUDA graph.

    Args:
        engine: The ``TransformersEngine`` of this device (its model, options and decoder).
        queue: The page queue it shares with the other replicas.
        mapped: Turns a worker's exception into this package's error (as ``generate`` raises it).
        alone: Whether no other replica could take its pages if it failed.
        owner: The engine callers hold (where benchmarks set page lengths).
    """

    def __init__(
        self,
        engine: Any,
        queue: PageQueue,
        mapped: Callable[[], Any],
        alone: Callable[[], bool],
        owner: Any,
    ) -> None:
        self.engine = engine
        self.owner = owner
        self.queue = queue
        self._mapped = mapped
        self._alone = alone
        self._encoded: deque[PagePrompt] = deque()  # encoded (a whole vision batch), not yet in a slot
        self._thread: threading.Thread | None = None
        self._closed = False
        self._rebuild = False
        self._budget = 0  # the token budget the next decoder needs at least
        self.alive = True
        self.stats: dict[str, float] = {}

    def start(self) -> None:
        self.engine._acquire()  # load here: a ModelLoadError reaches the caller
        self._thread = threading.Thread(target=self._run, name=f"ocr-{self.engine.device}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop after the current decode stretch (the queue is closed first, so no page waits)."""
        self._closed = True
        self.queue.wake()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self._thread = None

    # -- the worker ---------------------------------------------------------------------

    def _run(self) -> None:
        engine = self.engine
        try:
            if engine.device.type == "cuda":
                torch.cuda.set_device(engine.device.index or 0)  # a thread starts on device 0
            with torch.inference_mode():
                self._decode_loop()
        except BaseException as exc:  # noqa: BLE001 - never leave a caller waiting on a dead thread
            logger.exception("the decode thread of %s stopped", engine.device)
            self._failed(self._held(engine._decoder), exc, dying=True)

    def _decode_loop(self) -> None:
        engine = self.engine
        loaded = engine._acquire()
        tokenizer = loaded.processor.tokenizer
        lock = device_lock(engine.device)
        while self.alive and not self._closed and (self._encoded or self.queue.wait(self._stopping)):
            self._rebuild = False
            decoder = None
            try:
                with self._mapped():
                    with lock or contextlib.nullcontext():  # its pool allocation too
                        decoder = engine._scheduled_decoder(loaded.model, tokenizer, self.stats, self._budget)
                    decoder.device_lock = lock
                    for result in decoder.run(self):
                        self.queue.deliver(result.index, engine._output(tokenizer, result))
                        self.stats["pages"] = self.stats.get("pages", 0) + 1
            except GPUOutOfMemoryError as exc:
                pages, decoder = self._held(decoder), None
                if engine._shrink_slots():
                    logger.warning("GPU out of memory while decoding: %d page(s) again with fewer slots", len(pages))
                    self._encoded.extendleft(reversed(pages))
                else:
                    engine._decoder = None
                    _drop_frames(exc)
                    self._failed(pages, exc)
                _empty_cache(engine.device, lock)
            except Exception as exc:  # noqa: BLE001 - hand its pages on, or fail them; serve on
                engine._decoder = None
                pages, decoder = self._held(decoder), None
                _drop_frames(exc)  # the caller keeps the error: it must not keep the decoder's memory
                self._failed(pages, exc)
                _empty_cache(engine.device, lock)

    def _encode(self, jobs: list[_Job]) -> None:
        """Encode pages taken from the queue; a page that fails to encode fails its call alone."""
        try:
            self._encoded.extend(self._prompts(jobs))
        except Exception:  # noqa: BLE001 - find the page that fails
            for job in jobs:
                try:
                    self._encoded.extend(self._prompts([job]))
                except Exception as exc:  # noqa: BLE001
                    self.queue.fail([job], exc)

    def _prompts(self, jobs: list[_Job]) -> list[PagePrompt]:
        with self._mapped():
            ids, images, prompt = [job.id for job in jobs], [job.image for job in jobs], jobs[0].call.prompt
            lengths = self.owner._page_lengths
            encoded = list(page_prompts(self.engine, images, prompt, len(jobs), self.stats, ids, lengths))
        for page, job in zip(encoded, jobs, strict=True):
            page.limit = min(page.limit or job.call.limit, job.call.limit)
        return encoded

    def _failed(self, pages: list[PagePrompt], exc: BaseException, *, dying: bool = False) -> None:
        """A decoder failure: the others take its pages (and this replica stops), or their calls fail.

        ``dying``: the worker thread itself is ending; the last replica then fails every call.
        """
        jobs = [job for page in pages if (job := self.queue.job(page.index)) is not None]
        with self.queue._changed:  # one decision at a time: a replica always stays, or the queue closes
            alone = self._alone()
            if not alone or dying:
                self.alive = False
        if alone:
            self.queue.fail(jobs, exc)
            if dying:
                self.queue.close(exc)
            return
        device = self.engine.device
        logger.error("device %s failed (%s): its %d page(s) go to the other devices", device, exc, len(jobs))
        jobs += [job for page in self._encoded if (job := self.queue.job(page.index)) is not None]
        self._encoded.clear()
        self.queue.give_back(jobs)

    def _held(self, decoder: Any) -> list[PagePrompt]:
        """The pages a failed decoder held and those encoded for it."""
        pages = list(decoder.in_flight()) if decoder is not None else []
        pages += self._encoded
        self._encoded.clear()
        return pages

    # -- the decoder's page source -----------------------------------------------------------

    def poll(self, limit: int) -> list[PagePrompt]:
        """Up to ``limit`` pages for free slots: encoded ones first, then a vision batch from the queue.

        A page with a larger token budget than the running decoder's stops the intake: the
        decoder finishes what it holds, and a new one is built for it. Pages of calls that
        failed meanwhile are skipped.
        """
        decoder = self.engine._decoder
        budget = decoder.max_new_tokens if decoder is not None else None
        while len(self._encoded) < limit and not self._closed:
            jobs = self.queue.take(self.engine.vision_batch_size, block=False)
            if not jobs:
                break
            self._encode(jobs)
        taken: list[PagePrompt] = []
        while self._encoded and len(taken) < limit:
            page = self._encoded[0]
            if budget is not None and (page.limit or 0) > budget:
                self._rebuild, self._budget = True, page.limit or 0
                break
            self._encoded.popleft()
            if self.queue.job(page.index) is not None:
                taken.append(page)
        return taken

    def stopped(self) -> bool:
        return self._closed

    def _stopping(self) -> bool:
        return self._closed or not self.alive

    def wait(self) -> bool:
        """The decoder is idle: block for pages; False once closed, or when a new decoder is needed."""
        if self._rebuild or self._closed:
            return False
        return bool(self._encoded) or self.queue.wait(self._stopping)


_DEVICE_LOCKS: dict[str, threading.RLock] = {}
_DEVICE_LOCKS_LOCK = threading.Lock()


def device_lock(device: torch.device) -> threading.RLock | None:
    """The lock every decoder on this GPU takes for its work (None on a CPU: no graphs there).

    Several engines may share a GPU (the stricter retry engine, loaders with other options, the
    server): while one captures a CUDA graph, no other may touch the device.
    """
    if device.type != "cuda":
        return None
    with _DEVICE_LOCKS_LOCK:
        return _DEVICE_LOCKS.setdefault(f"cuda:{device.index or 0}", threading.RLock())


def _empty_cache(device: torch.device, lock: threading.RLock | None) -> None:
    """Give a failed decoder's memory back to the device, while no other decoder uses it."""
    if device.type == "cuda":
        with lock or contextlib.nullcontext():
            torch.cuda.empty_cache()


def _drop_frames(exc: BaseException | None) -> None:
    """Clear the locals of every frame in an error's traceback chain (a failed decoder's GPU pool)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if exc.__traceback__ is not None:
            traceback.clear_frames(exc.__traceback__)
        exc = exc.__cause__ or exc.__context__
