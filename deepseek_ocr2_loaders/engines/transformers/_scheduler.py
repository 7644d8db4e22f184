"""One page queue per engine, drained by a decode loop on each device: every caller shares the GPU batch.

``generate`` from any thread (a loader, ``convert``'s pipelined batches, the server, an event
loop's worker threads) puts its pages on the engine's :class:`PageQueue` and waits for its own
results. Each device has a :class:`Replica`, one worker thread that runs
:class:`~._slots.SlotDecoder` and keeps the next pages coming: it takes them from the queue
ahead of need, preprocesses them on a thread pool (CPU), and on a GPU runs their vision
towers on a second stream while the decoder's steps run, so new pages join the running batch
across calls and the decode batch stays full.

A replica takes pages only when it has free slots, so with several devices the least loaded
one takes the next pages. A page whose image fails to encode fails its call alone. A
decoder out of memory retries its pages with half the slots; a replica that fails otherwise
hands its pages back to the queue for the others, or, the last one standing, fails their calls.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch

from ...errors import DeepSeekOCR2Error, EngineError, GPUOutOfMemoryError
from .._base import EngineOutput
from ._page_order import longest_first
from ._vision import PagePrompt, vision_prompts

__all__ = ["PageQueue", "Replica"]

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Call:
    """One ``generate`` call: its pages, its outputs as they finish, and the future that hands them over.

    ``dropped``: the call failed or its caller cancelled it (an ``await`` that was cancelled);
    its pages still queued are then skipped.
    """

    images: list[Any]
    prompt: str
    limit: int
    outputs: list[EngineOutput | None]
    remaining: int
    future: Future[list[EngineOutput]] = field(default_factory=Future)
    error: BaseException | None = None

    @property
    def dropped(self) -> bool:
        return self.error is not None or self.future.cancelled()


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
    """Every call's pages, calls in arrival order, each call's most text first; replicas take a few at a time."""

    def __init__(self) -> None:
        self._jobs: deque[_Job] = deque()
        self._taken: dict[int, _Job] = {}  # handed to a replica, not yet delivered
        self._changed = threading.Condition()
        self._ids = itertools.count()
        self._closed = False

    def submit(self, images: list[Any], prompt: str, limit: int) -> Future[list[EngineOutput]]:
        """Queue these images; the future gives their outputs, in order, decoded beside every other caller's.

        An async caller awaits it (``asyncio.wrap_future``) and holds no thread meanwhile;
        cancelling it drops the call's pages not yet decoding. The call's pages queue the most
        text first (:mod:`._page_order`), behind every page queued before them.
        """
        call = _Call(list(images), prompt, limit, [None] * len(images), len(images))
        if not images:
            call.future.set_result([])
            return call.future
        order = longest_first(call.images)  # before the lock: the other callers' pages go on meanwhile
        with self._changed:
            if self._closed:
                raise EngineError("the engine is closed")
            self._jobs.extend(_Job(call, index, next(self._ids)) for index in order)
            self._changed.notify_all()
        return call.future

    def generate(self, images: list[Any], prompt: str, limit: int) -> list[EngineOutput]:
        """The outputs of these images, in order (:meth:`submit`, waited for)."""
        return self.submit(images, prompt, limit).result()

    def take(self, limit: int, *, block: bool) -> list[_Job]:
        """Up to ``limit`` pages of one prompt; ``block``: wait for the first. [] once the queue closes."""
        with self._changed:
            while not self._closed:
                while self._jobs and self._jobs[0].call.dropped:  # its call failed or was cancelled meanwhile
                    self._jobs.popleft()
                if self._jobs or not block:
                    break
                self._changed.wait()
            taken: list[_Job] = []
            prompt = self._jobs[0].call.prompt if self._jobs else None
            while self._jobs and len(taken) < limit and self._jobs[0].call.prompt == prompt:
                job = self._jobs.popleft()
                if not job.call.dropped:
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
        """The page handed out under this id, while its call still wants it (else it is forgotten here)."""
        with self._changed:
            job = self._taken.get(job_id)
            if job is not None and job.call.dropped:
                del self._taken[job_id]
                return None
            return job

    def deliver(self, job_id: int, output: EngineOutput) -> None:
        with self._changed:
            job = self._taken.pop(job_id, None)
            if job is None or job.call.dropped:
                return
            call = job.call
            call.outputs[job.index] = output
            call.remaining -= 1
            finished = call.remaining == 0
        if finished and call.future.set_running_or_notify_cancel():
            call.future.set_result([output for output in call.outputs if output is not None])

    def fail(self, jobs: list[_Job], exc: BaseException) -> None:
        """The calls of these pages raise ``exc`` (as an :class:`EngineError` if it is not ours)."""
        if not isinstance(exc, DeepSeekOCR2Error):
            wrapped = EngineError(f"generation failed: {type(exc).__name__}: {exc}")
            wrapped.__cause__, exc = exc, wrapped
        calls = {id(job.call): job.call for job in jobs}
        with self._changed:
            failing = [call for call in calls.values() if not call.dropped and not call.future.done()]
            for call in failing:
                call.error = exc
            for job_id in [key for key, job in self._taken.items() if job.call.dropped]:
                del self._taken[job_id]
        for call in failing:
            if call.future.set_running_or_notify_cancel():
                call.future.set_exception(exc)

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

    All of the device's work is launched from this one thread, so nothing else touches the
    device while a decode step is captured as a CUDA graph. Pages move through three stages:
    taken from the queue and preprocessed on worker threads (two vision batches ahead), then
    encoded by the vision towers (on a GPU, on a side stream while a decode stretch runs:
    :meth:`prefetch`), then handed to the decoder's free slots (:meth:`poll`).

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
        self._ahead: deque[tuple[_Job, Future[Any]]] = deque()  # taken from the queue, preprocessing
        self._beside: tuple[list[PagePrompt], Any] | None = None  # encoding on the side stream, its event
        self._encoded: deque[PagePrompt] = deque()  # encoded, not yet in a slot
        self._pool: ThreadPoolExecutor | None = None
        self._side: Any = None  # the side stream (CUDA only)
        self._thread: threading.Thread | None = None
        self._closed = False
        self._rebuild = False
        self._budget = 0  # the token budget the next decoder needs at least
        self.alive = True
        self.stats: dict[str, float] = {}

    def start(self) -> None:
        self.engine._acquire()  # load here: a ModelLoadError reaches the caller
        workers = min(8, os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ocr-preprocess")
        self._thread = threading.Thread(target=self._run, name=f"ocr-{self.engine.device}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop after the current decode stretch (the queue is closed first, so no page waits)."""
        self._closed = True
        self.queue.wake()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # -- the worker ---------------------------------------------------------------------

    def _run(self) -> None:
        engine = self.engine
        try:
            if engine.device.type == "cuda":
                torch.cuda.set_device(engine.device.index or 0)  # a thread starts on device 0
                self._side = torch.cuda.Stream(engine.device)  # type: ignore[no-untyped-call]
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
        while self.alive and not self._closed and (self._has_pages() or self.queue.wait(self._stopping)):
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
                    self._encoded.extendleft(reversed(pages))  # (those encoding beside stay there)
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

    # -- the page stages ------------------------------------------------------------------

    def _take_ahead(self) -> None:
        """Keep two vision batches of pages preprocessing on the CPU ahead of the GPU."""
        room = 2 * self.engine.vision_batch_size - len(self._ahead)
        if room <= 0 or self._closed or self._pool is None:
            return
        lengths = self.owner._page_lengths
        for job in self.queue.take(room, block=False):
            self._ahead.append((job, self._pool.submit(_preprocess, self.engine, job, self._mapped, lengths)))

    def _next_batch(self, *, block: bool) -> list[tuple[_Job, Any, int | None]]:
        """The next vision batch (pages of one prompt) whose preprocessing is done; ``block``: wait for it.

        A page whose preprocessing failed fails its call alone.
        """
        batch: list[tuple[_Job, Any, int | None]] = []
        begun = time.perf_counter()
        while self._ahead and len(batch) < self.engine.vision_batch_size:
            job, future = self._ahead[0]
            if (batch and job.call.prompt != batch[0][0].call.prompt) or (not block and not future.done()):
                break
            self._ahead.popleft()
            try:
                inputs, limit = future.result()
            except Exception as exc:  # noqa: BLE001 - this page's image; the others go on
                self.queue.fail([job], exc)
                continue
            if not job.call.dropped:
                batch.append((job, inputs, limit))
        self._add("preprocess_wait_s", time.perf_counter() - begun)
        return batch

    def _encode(self, batch: list[tuple[_Job, Any, int | None]]) -> list[PagePrompt]:
        """Run the vision towers on a batch; if it fails, page by page, so a bad page fails its call alone."""
        try:
            return self._prompts(batch)
        except Exception:  # noqa: BLE001 - find the page that fails
            pages = []
            for item in batch:
                try:
                    pages += self._prompts([item])
                except Exception as exc:  # noqa: BLE001
                    self.queue.fail([item[0]], exc)
            return pages

    def _prompts(self, batch: list[tuple[_Job, Any, int | None]]) -> list[PagePrompt]:
        with self._mapped():
            encoded = vision_prompts(self.engine, [(job.id, inputs) for job, inputs, _ in batch])
        for page, (job, _, limit) in zip(encoded, batch, strict=True):
            page.limit = min(limit or job.call.limit, job.call.limit)
        return encoded

    def _settle(self, *, block: bool) -> None:
        """Pages encoded beside the decoder join the encoded ones once their stream is done."""
        if self._beside is None:
            return
        pages, done = self._beside
        if not block and not done.query():
            return
        done.synchronize()
        self._beside = None
        self._encoded.extend(pages)

    def _encode_now(self) -> None:
        """Encode the next batch on the decoder's stream and wait for it (nothing else is decoding)."""
        self._settle(block=True)
        if self._encoded:
            return
        begun = time.perf_counter()
        batch = self._next_batch(block=True)
        if not batch:
            return
        self._encoded.extend(self._encode(batch))
        if self._side is not None:
            torch.cuda.current_stream(self.engine.device).synchronize()
        self._add("vision_s", time.perf_counter() - begun)

    def _has_pages(self) -> bool:
        return bool(self._encoded or self._beside or self._ahead)

    def _add(self, key: str, value: float) -> None:
        self.stats[key] = self.stats.get(key, 0.0) + value

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
            self.queue.fail(jobs + (self._drain_ahead() if dying else []), exc)
            if dying:
                self.queue.close(exc)
            return
        device = self.engine.device
        logger.error("device %s failed (%s): its %d page(s) go to the other devices", device, exc, len(jobs))
        jobs += [job for page in self._encoded if (job := self.queue.job(page.index)) is not None]
        self._encoded.clear()
        self.queue.give_back(jobs + self._drain_ahead())

    def _drain_ahead(self) -> list[_Job]:
        """The pages still preprocessing or encoding beside, taken out of those stages."""
        for _, future in self._ahead:
            future.cancel()
        jobs = [job for job, _ in self._ahead]
        self._ahead.clear()
        if self._beside is not None:
            jobs += [job for page in self._beside[0] if (job := self.queue.job(page.index)) is not None]
            self._beside = None
        return jobs

    def _held(self, decoder: Any) -> list[PagePrompt]:
        """The pages a failed decoder held and those encoded for it."""
        pages = list(decoder.in_flight()) if decoder is not None else []
        pages += self._encoded
        self._encoded.clear()
        return pages

    # -- the decoder's page source -----------------------------------------------------------

    def poll(self, limit: int, *, busy: bool) -> list[PagePrompt]:
        """Up to ``limit`` encoded pages for free slots.

        ``busy``: some slots are decoding. Then, on a GPU, only pages already encoded are handed
        out (the rest are encoded beside the next stretch: :meth:`prefetch`); otherwise a vision
        batch is encoded now if none is ready. A page with a larger token budget than the
        running decoder's stops the intake: the decoder finishes what it holds, and a new one
        is built for it. Pages of calls that failed meanwhile are skipped.
        """
        self._take_ahead()
        self._settle(block=False)
        if not self._encoded and (self._side is None or not busy):
            self._encode_now()
            self._take_ahead()
        decoder = self.engine._decoder
        budget = decoder.max_new_tokens if decoder is not None else None
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

    def prefetch(self) -> None:
        """A decode stretch is running on the GPU: encode the next batch beside it, on the side stream.

        One batch at a time, and only what preprocessing has finished (the host never waits
        here); the pages join :meth:`poll`'s once their stream is done. CPU: nothing to overlap.
        """
        if self._side is None or self._beside is not None or len(self._encoded) >= self.engine.vision_batch_size:
            return
        self._take_ahead()
        batch = self._next_batch(block=False)
        if not batch:
            return
        main = torch.cuda.current_stream(self.engine.device)
        self._side.wait_stream(main)  # the pixels' buffers may be memory the decoder's stream just freed
        with torch.cuda.stream(self._side):
            pages = self._encode(batch)
            done = torch.cuda.Event()
            done.record(self._side)
        for page in pages:  # used on the decoder's stream from now on: not reused before it is done
            page.input_ids.record_stream(main)
            page.embeds.record_stream(main)
        self._beside = (pages, done)
        self._add("vision_batches_beside", 1)

    def stopped(self) -> bool:
        return self._closed

    def _stopping(self) -> bool:
        return self._closed or not self.alive

    def wait(self) -> bool:
        """The decoder is idle: block for pages; False once closed, or when a new decoder is needed."""
        if self._rebuild or self._closed:
            return False
        return self._has_pages() or self.queue.wait(self._stopping)


def _preprocess(
    engine: Any, job: _Job, mapped: Callable[[], Any], lengths: Callable[[Any], int] | None
) -> tuple[Any, int | None]:
    """A page's processor inputs (CPU only: runs on the preprocessing threads) and its length (benchmarks)."""
    with mapped():
        return engine.encode([job.image], job.call.prompt), None if lengths is None else lengths(job.image)


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
