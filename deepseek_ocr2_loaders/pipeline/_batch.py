"""One batch of pages through cache, engine, retries and result building, without I/O.

:func:`process_batch` is a generator that *yields* the engine calls it needs and receives
their answers, so the synchronous and the asynchronous drivers in :mod:`.pipeline` share
every decision (cache hits, which pages to retry, what to store) and differ only in how
they call the engine: ``generate`` or ``await agenerate``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Union

from ..engines._base import EngineOutput, OCREngine
from ..errors import DeepSeekOCR2Error, EngineError, InputError
from ..options import RetryPolicy
from ..parsing._loops import find_loop
from ..sources import SourcePage
from ..types import PageResult
from ._results import DocumentInfo, PageOutcome, build_page_result

if TYPE_CHECKING:
    from PIL import Image

    from ._cache import PageCache

__all__ = ["Answer", "EngineCall", "PendingPage", "Steps", "process_batch", "run_batch", "run_batches"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingPage:
    """A rendered page waiting for the engine, or one that failed to render."""

    document: DocumentInfo
    index: int
    page: SourcePage | None
    error: InputError | None = None
    stage: str = "render"  # where a page without an image failed: "render", or "open" for a whole file


@dataclass(frozen=True)
class EngineCall:
    """A request from :func:`process_batch` to its driver: run ``engine`` on these images."""

    engine: OCREngine
    images: list[Image.Image]
    prompt: str


Answer = Union[list[EngineOutput], EngineError]
"""What the driver sends back: the outputs, or the engine's error."""


def process_batch(
    batch: list[PendingPage],
    *,
    engine: OCREngine,
    prompt: str,
    retry: RetryPolicy,
    cache: PageCache | None = None,
    cache_key: Callable[[PendingPage], str] | None = None,
    compression: bool = False,
) -> Generator[EngineCall, Answer, list[PageResult]]:
    """Decide every page of a batch; yields engine calls, returns the page results in order."""
    ready = [item for item in batch if item.page is not None]
    outcomes: dict[int, PageOutcome | DeepSeekOCR2Error] = {}
    keys = {id(item): cache_key(item) for item in ready} if cache is not None and cache_key else {}
    hits = cache.get_many(list(keys.values())) if cache is not None and keys else {}
    for item in ready:
        cached = hits.get(keys.get(id(item), ""))
        if cached is not None:
            outcomes[id(item)] = _outcome_from_json(cached)
    todo = [item for item in ready if id(item) not in outcomes]
    fresh = list(todo)
    attempt, current = 1, engine
    while todo:
        answer = yield EngineCall(current, [item.page.image for item in todo if item.page], prompt)
        if not isinstance(answer, EngineError) and len(answer) != len(todo):
            answer = EngineError(f"the engine returned {len(answer)} outputs for {len(todo)} pages")
        if isinstance(answer, EngineError):
            logger.error("the engine failed on %d page(s): %s", len(todo), answer)
            for item in todo:  # a failed retry keeps the looped first answer
                outcomes.setdefault(id(item), answer)
            break
        answer = [_with_text_loops(output) for output in answer]
        for item, output in zip(todo, answer, strict=True):
            outcomes[id(item)] = PageOutcome(output, attempt)
        looping = [item for item, output in zip(todo, answer, strict=True) if output.finish_reason == "repetition"]
        todo = looping if attempt <= retry.retries else []
        attempt, current = attempt + 1, engine.stricter()
    if cache is not None:
        for item in fresh:
            outcome = outcomes[id(item)]
            if isinstance(outcome, PageOutcome):
                cache.put(keys[id(item)], _outcome_to_json(outcome))
    return [
        build_page_result(
            item.document,
            item.index,
            item.page,
            outcomes.get(id(item), item.error or EngineError("page was not processed")),
            model=engine.name,
            prompt=prompt,
            use_text_layer=retry.fallback_to_text_layer,
            failure_stage=item.stage,
            compression=compression,
        )
        for item in batch
    ]


def _with_text_loops(output: EngineOutput) -> EngineOutput:
    """An output that ran out of tokens in a loop is a looping page, whichever engine wrote it."""
    cut = find_loop(output.text) if output.finish_reason == "length" else None
    return output if cut is None else replace(output, text=output.text[:cut].rstrip(), finish_reason="repetition")


def _outcome_to_json(outcome: PageOutcome) -> dict[str, Any]:
    return {"output": asdict(outcome.output), "attempts": outcome.attempts}


def _outcome_from_json(value: dict[str, Any]) -> PageOutcome:
    return PageOutcome(EngineOutput(**value["output"]), int(value["attempts"]))


def run_batch(steps: Generator[EngineCall, Answer, list[PageResult]]) -> list[PageResult]:
    """Drive :func:`process_batch` with ``engine.generate``: the synchronous driver ``convert`` and Ray share.

    An :class:`EngineError` becomes the answer (the batch's pages fail as data, the run goes on).
    """
    try:
        call = next(steps)
        while True:
            try:
                answer: Answer = call.engine.generate(call.images, call.prompt)
            except EngineError as exc:
                answer = exc
            call = steps.send(answer)
    except StopIteration as done:
        return done.value


Steps = Generator[EngineCall, Answer, list[PageResult]]


def run_batches(
    batches: Iterable[list[PendingPage]], steps: Callable[[list[PendingPage]], Steps], depth: int
) -> Iterator[PageResult]:
    """Every batch through :func:`run_batch`, ``depth`` at once, results in order.

    An engine that batches across calls (``concurrent_calls`` 2) then starts the next batch's
    pages while the current one's last pages decode, so its GPU batch never drains between
    batches. If ``batches`` raises, the batches already started are finished and yielded first.
    A caller that stops early waits for the batch running (its results are dropped).
    """
    if depth <= 1:
        for batch in batches:
            yield from run_batch(steps(batch))
        return
    pool = ThreadPoolExecutor(max_workers=depth, thread_name_prefix="ocr-batch")
    started: deque[Future[list[PageResult]]] = deque()
    pending = iter(batches)
    try:
        while True:
            try:
                batch = next(pending)
            except StopIteration:
                break
            except Exception:  # the batches already started come first, then the error
                while started:
                    yield from started.popleft().result()
                raise
            started.append(pool.submit(run_batch, steps(batch)))
            if len(started) >= depth:
                yield from started.popleft().result()
        while started:
            yield from started.popleft().result()
    finally:  # a caller that stops early waits for the batch in hand (no engine call outlives it)
        pool.shutdown(wait=True, cancel_futures=True)
