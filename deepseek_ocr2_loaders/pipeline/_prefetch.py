"""Produce the next item of an iterator on a worker thread while the caller works on this one.

:func:`convert` renders a batch of pages (PyMuPDF, ~40 ms a page) and then hands it to the
engine; done in turn, the GPU waits for every render. With :func:`one_ahead` the next batch
is rendered while the engine reads the current one, and never more than one batch ahead,
so host memory stays bounded at two batches of page images.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator
from typing import TypeVar, cast

__all__ = ["one_ahead"]

T = TypeVar("T")
_END = object()


def one_ahead(
    items: Generator[T, None, None], *, name: str = "prefetch", cancel: Callable[[], None] | None = None
) -> Generator[T, None, None]:
    """Yield ``items`` in order, producing item n+1 on a thread while the caller holds item n.

    An exception raised by ``items`` is raised to the caller at the position it happened.
    When the caller stops early (or Ctrl-C reaches it here), ``cancel`` is called first, so
    an item in hand that may never finish (a hung render) is abandoned; then the thread
    closes ``items`` (on the thread that ran it) and is joined.
    """
    handoff: queue.SimpleQueue[object] = queue.SimpleQueue()
    turn = threading.Semaphore(1)  # released by the caller each time it takes an item
    stop = threading.Event()

    def produce() -> None:
        try:
            while True:
                turn.acquire()
                if stop.is_set():
                    return
                item = next(items, _END)
                handoff.put(item)
                if item is _END:
                    return
        except BaseException as exc:  # handed to the caller, raised there
            handoff.put(exc)
        finally:
            items.close()

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item = handoff.get()
            turn.release()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield cast(T, item)
    finally:
        stop.set()
        if cancel is not None and worker.is_alive():
            cancel()
        turn.release()  # wake the thread if it waits for its turn
        worker.join()
