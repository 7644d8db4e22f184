"""Render pages in worker processes: a deadline per page, a crash costs one page, in parallel.

MuPDF can loop for ever on a hostile page while holding the GIL (freezing the caller's
thread and an asyncio loop with it), and a native decoder can segfault. In a worker process
either is contained: a page past :attr:`RenderPolicy.page_timeout` gets :class:`RenderTimeout`,
a worker that dies gets :class:`RenderCrashError`; the worker is replaced and the run goes
on. The workers also render in parallel, which threads cannot (PyMuPDF holds the GIL).

Workers are started on demand, reused for the whole run and sent the file path and page
index (the bytes once per worker for in-memory documents); pages come back in input order.
Workers are shared by the process's pools: a pool hands a worker back as soon as it has no
page queued for it, and keeps none idle; the next pool (or another pool running at the same
time) takes it, and at most :data:`MAX_LIVE` run at once (more only for a policy asking more).
Callers that convert file by file (``SimpleDirectoryReader``, a server, ``asyncio.gather``
over files) would otherwise start a process, about 0.35 s of CPU, per file. A worker nobody
takes for :data:`IDLE_SECONDS` is stopped.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

from ..errors import ConfigError, DeepSeekOCR2Error, InputError, RenderCrashError, RenderTimeout
from ..options import RenderPolicy
from ..settings import render_faults
from ._base import DocumentSource, SourcePage
from ._render_wire import decode_error, receive, send

__all__ = ["DocumentRef", "RenderPool", "RenderTask", "Rendered"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
START_TIMEOUT = 60.0
"""Seconds a new worker may take to import its libraries and say it is ready."""

_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding this package: the worker imports the same code
# pymupdf imports its optional helpers (pymupdf4llm, the ONNX layout model) whenever they are
# installed; rendering never uses them and they would triple a worker's start-up, so it blocks them.
_COMMAND = (
    f"import sys; sys.path.insert(0, {_ROOT!r}); "
    "sys.modules.update({'pymupdf.layout': None, 'pymupdf4llm': None}); "
    "from deepseek_ocr2_loaders.sources._render_worker import main; main()"
)
_keys = itertools.count()
IDLE_SECONDS = 30.0
"""How long a worker no pool is using waits for the next pool before it is stopped."""
MAX_LIVE = min(8, os.cpu_count() or 1)
"""Render workers alive at once in this process, every pool's together (a policy with more workers may start more)."""


@dataclass(frozen=True)
class DocumentRef:
    """What a worker needs to open a document itself: its path (or bytes), password and DPI."""

    key: int
    name: str
    path: str | None
    data: bytes | None
    password: str | None
    dpi: float

    @classmethod
    def of(cls, document: DocumentSource, *, password: str | None, dpi: float) -> DocumentRef:
        """A reference to an open document (its path, else its bytes), with a fresh key."""
        path = None if document._path is None else str(document._path)
        return cls(next(_keys), document.name, path, None if path else document._data, password, dpi)


@dataclass(frozen=True)
class RenderTask:
    """One page to render; ``tag`` is carried through untouched for the caller."""

    document: DocumentRef
    index: int
    tag: Any = None


@dataclass(frozen=True)
class Rendered:
    """A rendered page, or the typed error that replaced it."""

    task: RenderTask
    page: SourcePage | None
    error: InputError | None = None


class _Slot:
    """An item of the ordered window: done once its result is known."""

    def __init__(self, item: object) -> None:
        self.item, self.result, self.done = item, None, False

    def finish(self, result: object) -> None:
        self.result, self.done = result, True


class _Worker:
    """One worker process, with a thread that turns its replies into events."""

    def __init__(self, events: queue.SimpleQueue[Any]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _COMMAND], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.ready, self.key, self.slot = False, -1, None
        self.deadline = time.monotonic() + START_TIMEOUT
        self.faults = render_faults()  # what it was started with: a pool under other faults (tests) does not reuse it
        self.events: queue.SimpleQueue[Any] | None = events  # the pool that owns it hears its replies; None while idle
        self._reader = threading.Thread(target=self._read, name="ocr-render-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None  # noqa: S101 - Popen(stdout=PIPE) sets it
        try:
            while (message := receive(self.proc.stdout)) is not None:
                self._tell((self, message))
        except (OSError, ValueError):  # the pipe broke or was closed under us: the worker is gone
            pass
        self._tell((self, None))

    def _tell(self, event: tuple[_Worker, Any]) -> None:
        events = self.events
        if events is not None:
            events.put(event)

    def submit(self, slot: _Slot, timeout: float) -> None:
        task: RenderTask = slot.item  # type: ignore[assignment]
        doc = task.document
        header = {"key": doc.key, "name": doc.name, "path": doc.path, "password": doc.password, "dpi": doc.dpi}
        payload = doc.data if doc.path is None and doc.key != self.key else b""
        assert self.proc.stdin is not None  # noqa: S101 - Popen(stdin=PIPE) sets it
        send(self.proc.stdin, dict(header, index=task.index), payload or b"")
        self.key, self.slot, self.deadline = doc.key, slot, time.monotonic() + timeout

    def kill(self) -> int:
        """Stop the process now; its exit status."""
        self.proc.kill()
        status = self.proc.wait()
        _idle.stopped(self)
        if self._reader is not threading.current_thread():
            self._reader.join(timeout=5)  # the pipe is at EOF now: the reader ends at once
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()  # type: ignore[union-attr]
            except OSError:
                pass
        return status


class _IdleWorkers:
    """The process's render workers no pool is using: handed to the next pool, stopped after :data:`IDLE_SECONDS`."""

    def __init__(self) -> None:
        self._workers: list[tuple[float, _Worker]] = []  # (when it is stopped, the worker), oldest first
        self._live: set[_Worker] = set()  # every worker started and not yet stopped, in a pool or here
        self._changed = threading.Condition()
        self._reaper: threading.Thread | None = None

    def put(self, worker: _Worker) -> None:
        worker.events = None
        with self._changed:
            self._workers.append((time.monotonic() + IDLE_SECONDS, worker))
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._reap, name="ocr-render-reaper", daemon=True)
                self._reaper.start()

    def acquire(self, events: queue.SimpleQueue[Any], limit: int) -> _Worker | None:
        """A worker reporting to ``events``: an idle one started under the current faults, else a new one.

        None while ``limit`` workers are alive and none is idle (another pool will hand one back).
        An idle worker started under other faults (tests) is stopped to make room.
        """
        faults, stop = render_faults(), []
        with self._changed:
            for index in range(len(self._workers) - 1, -1, -1):
                worker = self._workers[index][1]
                if worker.proc.poll() is not None:
                    stop.append(self._workers.pop(index)[1])
                elif worker.faults == faults:
                    del self._workers[index]
                    worker.events = events
                    break
            else:
                worker = None
                if len(self._live) - len(stop) >= limit and self._workers:
                    stop.append(self._workers.pop(0)[1])
        for gone in stop:
            gone.kill()
        if worker is not None:
            return worker
        with self._changed:
            if len(self._live) >= limit:
                return None
            worker = _Worker(events)
            self._live.add(worker)
        return worker

    def stopped(self, worker: _Worker) -> None:
        with self._changed:
            self._live.discard(worker)

    def stop_all(self) -> None:
        with self._changed:
            workers, self._workers = [w for _, w in self._workers], []
            self._changed.notify_all()
        for worker in workers:
            worker.kill()

    def _reap(self) -> None:
        while True:
            with self._changed:
                now = time.monotonic()
                expired = [w for until, w in self._workers if until <= now]
                self._workers = [(until, w) for until, w in self._workers if until > now]
                if not expired:
                    if not self._workers:
                        self._reaper = None
                        return
                    self._changed.wait(self._workers[0][0] - now)
            for worker in expired:
                worker.kill()


_idle = _IdleWorkers()
atexit.register(_idle.stop_all)


class RenderPool:
    """Worker processes that render :class:`RenderTask` pages under a per-page deadline.

    Close it (or use ``with``) to stop the workers; :meth:`close` may be called from another
    thread to stop a :meth:`render` blocked on a hung page at once.
    """

    def __init__(self, policy: RenderPolicy | None = None) -> None:
        self.policy = policy or RenderPolicy()
        self._events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self._rendering = 0  # render() calls under way: a close then stops every worker (one may be busy)

    def render(self, items: Iterable[T]) -> Iterator[T | Rendered]:
        """Yield ``items`` in order, each :class:`RenderTask` replaced by its :class:`Rendered`.

        Up to twice as many items as workers are taken ahead. If ``items`` raises, the pages
        taken before it are still rendered and yielded first, then the error is raised.
        """
        source = iter(items)
        window: deque[_Slot] = deque()
        queued: deque[_Slot] = deque()
        failure: Exception | None = None
        with self._lock:
            self._rendering += 1
        try:
            while True:
                while failure is None and source is not None and len(window) < 2 * self.policy.workers:
                    try:
                        item = next(source)
                    except StopIteration:
                        source = None
                        break
                    except Exception as exc:  # delivered after the pages already taken
                        failure = exc
                        break
                    slot = _Slot(item)
                    window.append(slot)
                    queued.append(slot) if isinstance(item, RenderTask) else slot.finish(item)
                self._dispatch(queued)
                if not queued:
                    self._hand_back_idle()
                while window and window[0].done:
                    yield window.popleft().result  # type: ignore[misc]
                if not window and (failure is not None or source is None):
                    break
                if any(not slot.done for slot in window):
                    self._wait(poll=bool(queued))
            if failure is not None:
                raise failure
        finally:
            for worker in [w for w in self._workers if w.slot is not None]:  # results nobody will read
                self._retire(worker)
            with self._lock:
                self._rendering -= 1
            close = getattr(source, "close", None)
            if close is not None:
                close()

    def _dispatch(self, queued: deque[_Slot]) -> None:
        """Hand queued pages to idle workers, starting workers (up to the policy's count) as needed."""
        while queued:
            idle = [w for w in self._workers if w.ready and w.slot is None]
            if idle:
                slot = queued.popleft()
                key = slot.item.document.key  # type: ignore[attr-defined]
                worker = next((w for w in idle if w.key == key), idle[0])
                try:
                    worker.submit(slot, self.policy.page_timeout)
                except OSError:  # it died while idle: the page is not to blame
                    queued.appendleft(slot)
                    self._retire(worker)
                continue
            starting = sum(not w.ready for w in self._workers)
            if starting >= len(queued) or len(self._workers) >= self.policy.workers:
                return
            with self._lock:
                if self._closed:
                    raise DeepSeekOCR2Error("the render pool is closed")
                worker = _idle.acquire(self._events, max(MAX_LIVE, self.policy.workers))
                if worker is None:
                    return  # every worker is busy in other pools: _wait polls until one comes back
                self._workers.append(worker)

    def _hand_back_idle(self) -> None:
        """Nothing queued here: idle workers go back for other pools (this one takes them again as it needs)."""
        with self._lock:
            if self._closed:
                return
            idle = [w for w in self._workers if w.ready and w.slot is None]
            self._workers = [w for w in self._workers if w not in idle]
        for worker in idle:
            _idle.put(worker)

    def _wait(self, *, poll: bool = False) -> None:
        """Handle one reply, death or expired deadline; ``poll``: pages wait for a worker, look again soon."""
        now = time.monotonic()
        deadline = min((w.deadline for w in self._workers if w.slot is not None or not w.ready), default=now + 1)
        if poll:
            deadline = min(deadline, now + 0.05)
        try:
            worker, message = self._events.get(timeout=max(0.0, deadline - now))
        except queue.Empty:
            worker = message = None
        if self._closed:
            raise DeepSeekOCR2Error("the render pool was closed while rendering")
        if worker in self._workers:
            if message is None:
                self._died(worker)
            elif "ready" in message[0]:
                worker.ready = True
            elif worker.slot is not None:
                slot, worker.slot = worker.slot, None
                slot.finish(_result(slot.item, *message))  # type: ignore[arg-type]
        self._expire()

    def _expire(self) -> None:
        now = time.monotonic()
        for worker in [w for w in self._workers if w.deadline <= now and (w.slot is not None or not w.ready)]:
            if not worker.ready:
                self._retire(worker)
                raise ConfigError(f"a render worker did not start within {START_TIMEOUT:.0f} s")
            self._fail(worker, RenderTimeout, f"the page did not render within {self.policy.page_timeout:g} s")

    def _died(self, worker: _Worker) -> None:
        status = worker.kill()
        how = f"signal {signal.Signals(-status).name}" if status < 0 else f"exit status {status}"
        if not worker.ready:
            self._retire(worker)
            raise ConfigError(f"a render worker failed to start ({how}); check `{sys.executable} -c 'import pymupdf'`")
        if worker.slot is None:
            self._retire(worker)
        else:
            self._fail(worker, RenderCrashError, f"the render worker crashed on this page ({how})")

    def _fail(self, worker: _Worker, error: type[InputError], message: str) -> None:
        """Retire ``worker`` and fail the page it held; a replacement starts when a page needs one."""
        slot = worker.slot
        task: RenderTask = slot.item  # type: ignore[union-attr,assignment]
        self._retire(worker)
        logger.warning("%s (page %d): %s; the render worker is replaced", task.document.name, task.index + 1, message)
        slot.finish(Rendered(task, None, error(message, source=task.document.name, page=task.index)))  # type: ignore[union-attr]

    def _retire(self, worker: _Worker) -> int:
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)
        return worker.kill()

    def close(self) -> None:
        """Done: idle workers go to the next pool (safe from another thread, and more than once).

        While a render is under way (a caller stopping it from another thread), every worker is
        stopped now: one may be busy, or about to be.
        """
        with self._lock:
            self._closed = True
            workers, self._workers = self._workers, []
            rendering = self._rendering > 0
        for worker in workers:
            if rendering or not worker.ready or worker.slot is not None or worker.proc.poll() is not None:
                worker.kill()
            else:
                _idle.put(worker)
        self._events.put((None, None))  # wakes a render() waiting for a reply

    def __enter__(self) -> RenderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _result(task: RenderTask, header: dict[str, Any], payload: bytes) -> Rendered:
    if "error" in header:
        return Rendered(task, None, decode_error(header, source=task.document.name, page=task.index))
    image = Image.frombytes("RGB", tuple(header["size"]), payload)
    page = SourcePage(
        index=task.index,
        label=header["label"],
        image=image,
        width=header["width"],
        height=header["height"],
        unit=header["unit"],
        text=header["text"],
        recovered=header["recovered"],
    )
    return Rendered(task, page)
