"""Batches whose engine calls are in flight: how ``convert()`` keeps a streaming engine fed.

Each batch's decisions are a :func:`~._batch.process_batch` generator of engine calls. A
call of a streaming engine (:attr:`OCREngine.streams`) returns a future at once, so the
drivers start the next batch's call before waiting for this one's: its pages join the
running decode batch as this batch's pages finish, instead of the engine draining between
batches. Results are still yielded batch by batch, in order. Any other engine is called
one batch at a time, as before (the default ``submit`` reads the pages before returning).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, cast

from ..engines._base import OCREngine
from ..errors import EngineError
from ..types import PageResult
from ._batch import Answer, EngineCall

__all__ = ["InFlight", "aschedule", "asubmit", "window_depth"]

ASubmit = Callable[[EngineCall], Awaitable[Any]]
"""How the async driver starts a call: :func:`asubmit` or :func:`aschedule`."""


def window_depth(engine: OCREngine) -> int:
    """Batches whose engine calls may be in flight at once: two where calls share a running batch.

    Two keep the slots full (the next batch's pages wait in the engine's queue) while
    bounding the rendered pages held to about three batches (one more is being rendered).
    """
    return 2 if engine.streams else 1


@dataclass
class InFlight:
    """One batch's steps, the engine call they wait on, and their results once decided."""

    steps: Generator[EngineCall, Answer, list[PageResult]]
    pending: Any = None  # the future (or task) of the call in flight
    results: list[PageResult] | None = None

    def _send(self, answer: Answer | None) -> EngineCall | None:
        """Advance the steps with ``answer`` (None: start them); the next call, or None once decided."""
        try:
            return next(self.steps) if answer is None else self.steps.send(answer)
        except StopIteration as done:
            self.results = done.value
            return None

    def cancel(self) -> None:
        """Drop the call in flight (its pages not started yet are never read)."""
        if self.pending is not None:
            self.pending.cancel()

    def feed(self, answer: Answer | None) -> None:
        """Send ``answer`` and start the next call (a retry), if the batch needs one."""
        call = self._send(answer)
        self.pending = None if call is None else call.engine.submit(call.images, call.prompt)

    def ready(self) -> bool:
        """Advance without waiting while answers are in; whether the batch is decided."""
        while self.results is None and self.pending.done():
            self.feed(_answer(self.pending))
        return self.results is not None

    def finish(self) -> list[PageResult]:
        """Wait for every call the batch needs; its results, in order."""
        while self.results is None:
            self.feed(_answer(self.pending))
        return self.results

    async def afeed(self, answer: Answer | None, submit: ASubmit) -> None:
        """Async :meth:`feed`."""
        call = self._send(answer)
        self.pending = None if call is None else await submit(call)

    async def aready(self, submit: ASubmit) -> bool:
        """Async :meth:`ready`."""
        while self.results is None and self.pending.done():
            await self.afeed(await _aanswer(self.pending), submit)
        return self.results is not None

    async def afinish(self, submit: ASubmit) -> list[PageResult]:
        """Async :meth:`finish`."""
        while self.results is None:
            await self.afeed(await _aanswer(self.pending), submit)
        return self.results


async def asubmit(call: EngineCall) -> asyncio.Future[Any]:
    """A streaming engine's call, queued off the event loop (the first one loads the model)."""
    return asyncio.wrap_future(await asyncio.to_thread(call.engine.submit, call.images, call.prompt))


async def aschedule(call: EngineCall) -> asyncio.Future[Any]:
    """Any other engine's call: its own ``agenerate``, as a task."""
    return asyncio.ensure_future(call.engine.agenerate(call.images, call.prompt))


def _answer(pending: Future[Any]) -> Answer:
    try:
        return cast(Answer, pending.result())
    except EngineError as exc:
        return exc


async def _aanswer(pending: asyncio.Future[Any]) -> Answer:
    try:
        return cast(Answer, await pending)
    except EngineError as exc:
        return exc
