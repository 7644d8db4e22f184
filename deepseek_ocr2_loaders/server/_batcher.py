"""Turn concurrent one-page requests into engine batches.

HTTP clients send one page per request, but a GPU engine is fast only when it decodes
many pages together. The :class:`Batcher` queues requests; one worker thread takes the
first, gathers up to ``engine.batch_size`` requests with the same prompt and token limit
that arrive within ``wait_ms``, runs one ``engine.generate`` for them and resolves each
request's future. Only that thread ever calls the engine, so engines need not be
thread-safe.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..engines._base import EngineOutput, OCREngine
from ..errors import ConfigError, EngineError

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["Batcher", "BatcherClosed"]

logger = logging.getLogger(__name__)


class BatcherClosed(EngineError):
    """The batcher is closed (the server is shutting down): the page was not queued."""


@dataclass
class _Request:
    image: Image.Image
    prompt: str
    max_tokens: int | None
    future: Future[EngineOutput] = field(default_factory=Future)

    @property
    def key(self) -> tuple[str, int | None]:
        """Requests batch together only when the engine would treat them the same."""
        return self.prompt, self.max_tokens


class Batcher:
    """A queue and one worker thread feeding ``engine.generate`` with batches.

    Args:
        engine: The engine; it is not closed by the batcher.
        wait_ms: How long to wait for more requests after the first of a batch arrives.
        max_batch: Most requests per ``generate`` call; default ``engine.batch_size``.

    Examples:
        >>> batcher = Batcher(engine)  # doctest: +SKIP
        >>> batcher.submit(page_image, "<image>\\nFree OCR.").result().text  # doctest: +SKIP
    """

    def __init__(self, engine: OCREngine, *, wait_ms: float = 10.0, max_batch: int | None = None) -> None:
        if wait_ms < 0:
            raise ConfigError(f"wait_ms must be >= 0, got {wait_ms}")
        self.engine = engine
        self.wait = wait_ms / 1000
        self.max_batch = max(1, max_batch or engine.batch_size)
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._held: deque[_Request] = deque()  # requests of another key, waiting for their own batch
        self._lock = threading.Lock()
        self._closed = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="deepseek-ocr2-batcher", daemon=True)
        self._thread.start()

    def submit(self, image: Image.Image, prompt: str, max_tokens: int | None = None) -> Future[EngineOutput]:
        """Queue one page; the future resolves to its output or to the engine's error.

        ``max_tokens`` applies only if it is below the engine's ``max_new_tokens``.

        Raises:
            BatcherClosed: :meth:`close` was called.
        """
        limit = getattr(self.engine, "max_new_tokens", None)
        if max_tokens is not None and (not isinstance(limit, int) or max_tokens >= limit):
            max_tokens = None
        request = _Request(image, prompt, max_tokens)
        with self._lock:
            if self._closed:
                raise BatcherClosed("the server is shutting down")
            self._queue.put(request)
        return request.future

    def close(self, *, wait: bool = True) -> None:
        """Refuse new requests, finish the queued ones, stop the worker. Safe to call twice.

        Args:
            wait: Block until the worker has answered what was queued and exited.
        """
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(None)
        if wait and threading.current_thread() is not self._thread:
            self._thread.join()

    # -- worker ----------------------------------------------------------------------

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._execute(batch)

    def _next_batch(self) -> list[_Request] | None:
        """Block for a first request, then gather same-key requests until full or ``wait`` passes."""
        if self._held:
            first: _Request | None = self._held.popleft()
        else:
            first = None if self._stopping else self._queue.get()
        if first is None:
            return None
        batch = [first]
        for request in list(self._held):
            if len(batch) < self.max_batch and request.key == first.key:
                self._held.remove(request)
                batch.append(request)
        deadline = time.monotonic() + self.wait
        while not self._stopping and len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:  # after the deadline, still take what is already queued
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._stopping = True
                break
            (batch if item.key == first.key else self._held).append(item)
        return batch

    def _execute(self, batch: list[_Request]) -> None:
        try:
            with self._token_limit(batch[0].max_tokens):
                outputs = self.engine.generate([request.image for request in batch], batch[0].prompt)
            if len(outputs) != len(batch):
                raise EngineError(f"the engine returned {len(outputs)} outputs for {len(batch)} pages")
        except Exception as exc:  # every failure must reach the waiting clients, never kill the worker
            logger.error("the engine failed on a batch of %d pages: %s", len(batch), exc)
            for request in batch:
                request.future.set_exception(exc)
            return
        for request, output in zip(batch, outputs, strict=True):
            request.future.set_result(output)

    @contextmanager
    def _token_limit(self, max_tokens: int | None) -> Iterator[None]:
        """Lower the engine's ``max_new_tokens`` for one batch (only this thread calls the engine)."""
        if max_tokens is None:
            yield
            return
        engine = self.engine
        saved = engine.max_new_tokens  # type: ignore[attr-defined]
        engine.max_new_tokens = max_tokens  # type: ignore[attr-defined]
        try:
            yield
        finally:
            engine.max_new_tokens = saved  # type: ignore[attr-defined]
