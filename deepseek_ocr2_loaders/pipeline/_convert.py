"""``convert()``: documents in, one :class:`PageResult` per selected page out, in order.

The driver is a loop over pure steps: open each source, render its pages lazily in worker
processes (:class:`~deepseek_ocr2_loaders.sources._render_pool.RenderPool`), group pages
(across documents) into engine batches, and hand each batch to
:func:`~deepseek_ocr2_loaders.pipeline._batch.process_batch` (cache, engine, retries, results).
At most one batch of rendered pages is held in memory. A page is never dropped: a page
that fails to render or to be read is yielded with ``status=failed`` and its errors, and
pages already rendered are delivered before a later file's error is raised.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import AsyncIterator, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import IO, Any, NamedTuple, Union, cast

from ..engines._base import OCREngine
from ..engines._default import resolve_engine
from ..errors import ConfigError, EngineError, InputError
from ..model import DEFAULT_DPI, DEFAULT_PROMPT
from ..model._prompts import resolve_prompt
from ..options import OnError, RenderPolicy, RetryPolicy, check_on_error
from ..sources import open_source, parse_page_spec
from ..sources._render_pool import DocumentRef, Rendered, RenderPool, RenderTask
from ..types import PageResult
from ._batch import Answer, EngineCall, PendingPage, Steps, process_batch, run_batches
from ._cache import PageCache, open_cache, page_key
from ._optical import CompactViewEngine
from ._prefetch import one_ahead
from ._results import DocumentInfo, unopened_document

__all__ = ["NamedSource", "Source", "aconvert", "convert"]

logger = logging.getLogger(__name__)


class NamedSource(NamedTuple):
    """Bytes or a stream with the name to report for it (a URL, a blob's source)."""

    data: bytes | IO[bytes]
    name: str


Source = Union[str, "os.PathLike[str]", bytes, IO[bytes], NamedSource]
"""A path, the bytes of a file, a binary file object, or a :class:`NamedSource`."""


def convert(
    source: Source | Sequence[Source],
    *,
    engine: OCREngine | None = None,
    prompt: str = DEFAULT_PROMPT,
    pages: str | Iterable[int] | None = None,
    dpi: int = DEFAULT_DPI,
    password: str | None = None,
    cache: bool | str | os.PathLike[str] | PageCache | None = True,
    on_error: str = "raise",
    retry: RetryPolicy | None = None,
    render: RenderPolicy | None = None,
    optical_compression: bool = False,
    **options: Any,
) -> Iterator[PageResult]:
    """Read documents with DeepSeek-OCR-2, yielding each page as soon as its batch is done.

    Args:
        source: A path, bytes, a binary file object, a :class:`NamedSource`, or a list of
            them. Pages of several documents share engine batches.
        engine: Any :class:`OCREngine`. Default: a :class:`TransformersEngine` built from
            ``options`` (and closed when the generator finishes).
        prompt: A preset (``markdown``, ``free``, ``figure``, ``describe``) or a custom instruction.
        pages: Page selection for every document: a string of 1-based pages and ranges
            (``"1-3,7"``) or an iterable of 0-based indices. Default: all pages.
        dpi: Render resolution of PDF pages (the official scripts use 144).
        password: Password of encrypted PDFs.
        cache: The page cache: ``True`` (default, in the user cache folder; see
            ``DEEPSEEK_OCR2_CACHE_DIR``), a path to a SQLite file, a :class:`PageCache`, or
            ``False``. A page is stored when its batch is done, so a run killed at any
            moment and started again recomputes only the unfinished pages.
        on_error: A document that cannot be opened: ``raise`` it, ``skip`` it (logged), or
            yield one failed ``placeholder`` page for it. Pages are never dropped either way.
        retry: What to do with looping pages (default: one retry with a stronger guard,
            then the PDF's text layer).
        render: Render worker processes and the per-page deadline (default: up to 4
            workers, 60 s); a page past it or one that crashes its worker is a failed page.
        optical_compression: Read each page from its compact view (1024 global view only:
            257 vision tokens) and record ``compression`` (full vision tokens, text tokens,
            ratio) on every result. Cached apart from full reads.
        **options: ``TransformersEngine`` options (``model``, ``device``, ``dtype``,
            ``max_new_tokens``, ``max_batch_size``, ...) when no ``engine`` is given.

    Yields:
        One :class:`PageResult` per selected page, in document and page order.

    Raises:
        InputError: With ``on_error="raise"``, a document cannot be opened (missing,
            corrupt, encrypted, unsupported) or ``pages`` does not fit it.
        ConfigError: An unknown option, or options given together with ``engine``.
        ModelLoadError: The default engine could not load the model.
        CacheError: The cache file cannot be used.

    Examples:
        >>> for page in convert("paper.pdf", model="./DeepSeek-OCR-2"):  # doctest: +SKIP
        ...     print(page.page_number, page.status, page.markdown[:60])
    """
    run = _Run.start(engine, options, prompt, dpi, cache, on_error, retry, render, optical_compression)
    batches = one_ahead(
        run.batches(_as_sources(source), pages=pages, password=password), name="ocr-render", cancel=run.pool.close
    )
    try:
        yield from run_batches(batches, run.steps, max(run.engine.concurrent_calls, 1))
    finally:
        run.pool.close()  # first: it wakes a render blocked on a hung page, so the join is prompt
        batches.close()
        run.close()


async def aconvert(
    source: Source | Sequence[Source],
    *,
    engine: OCREngine | None = None,
    prompt: str = DEFAULT_PROMPT,
    pages: str | Iterable[int] | None = None,
    dpi: int = DEFAULT_DPI,
    password: str | None = None,
    cache: bool | str | os.PathLike[str] | PageCache | None = True,
    on_error: str = "raise",
    retry: RetryPolicy | None = None,
    render: RenderPolicy | None = None,
    optical_compression: bool = False,
    **options: Any,
) -> AsyncIterator[PageResult]:
    """Async :func:`convert`: pages are read with ``engine.agenerate`` and rendered on a worker thread.

    Works inside a running event loop (it never starts one). Arguments, results and errors
    are those of :func:`convert`; both drive the same batch steps.

    Examples:
        >>> async for page in aconvert("paper.pdf", engine=engine):  # doctest: +SKIP
        ...     print(page.page_number, page.markdown[:60])
    """
    run = _Run.start(engine, options, prompt, dpi, cache, on_error, retry, render, optical_compression)
    batches = one_ahead(
        run.batches(_as_sources(source), pages=pages, password=password), name="ocr-render", cancel=run.pool.close
    )
    fetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ocr-fetch")
    fetch: Future[list[PendingPage] | None] | None = None
    started: deque[asyncio.Task[list[PageResult]]] = deque()  # up to engine.concurrent_calls batches at once
    depth = max(run.engine.concurrent_calls, 1)
    try:
        while True:
            fetch = fetcher.submit(next, batches, None)
            try:
                batch = await asyncio.wrap_future(fetch)
            except Exception:
                while started:  # the batches already started come first, then the error
                    for result in await started.popleft():
                        yield result
                raise
            if batch is None:
                break
            started.append(asyncio.ensure_future(_adrive(run.steps(batch))))
            if len(started) >= depth:
                for result in await started.popleft():
                    yield result
        while started:
            for result in await started.popleft():
                yield result
    finally:
        for task in started:
            task.cancel()
        run.pool.close()  # first: it wakes a render blocked on a hung page
        try:  # off the event loop: it waits for the render in hand
            await asyncio.to_thread(_close_after, fetch, batches, fetcher)
        finally:
            fetcher.shutdown(wait=False)  # (already joined, unless the close itself was cancelled)
            run.close()


async def _adrive(steps: Steps) -> list[PageResult]:
    """Drive :func:`process_batch` with ``await engine.agenerate``: the async twin of ``run_batch``."""
    try:
        call = next(steps)
        while True:
            call = steps.send(await _acall(call))
    except StopIteration as done:
        return done.value


def _close_after(fetch: Future[Any] | None, batches: Generator[Any, None, None], fetcher: ThreadPoolExecutor) -> None:
    """Close ``batches`` once the fetch in flight has returned (a running generator cannot be closed).

    A cancelled :func:`aconvert` leaves its last ``next`` running on the fetch thread; once it
    has returned, the fetch thread is joined too, so no thread of the call outlives it.
    """
    if fetch is not None:
        wait([fetch])
    batches.close()
    fetcher.shutdown(wait=True)


async def _acall(call: EngineCall) -> Answer:
    try:
        return await call.engine.agenerate(call.images, call.prompt)
    except EngineError as exc:
        return exc


@dataclass
class _Run:
    """The settings of one convert() call, shared by its sync and async drivers."""

    engine: OCREngine
    owned_engine: OCREngine | None  # the engine this call built, closed at the end
    prompt: str
    dpi: int
    cache: PageCache | None
    owns_cache: bool
    on_error: OnError
    retry: RetryPolicy
    compression: bool
    pool: RenderPool

    @classmethod
    def start(
        cls,
        engine: OCREngine | None,
        options: dict[str, Any],
        prompt: str,
        dpi: int,
        cache: bool | str | os.PathLike[str] | PageCache | None,
        on_error: str,
        retry: RetryPolicy | None,
        render: RenderPolicy | None,
        compression: bool,
    ) -> _Run:
        checked = check_on_error(on_error)
        engine, owns_engine = _engine_for(engine, options, dpi)
        owned = engine if owns_engine else None
        if compression:
            engine = CompactViewEngine(engine)
        page_cache = open_cache(cache)
        return cls(
            engine,
            owned,
            resolve_prompt(prompt),
            dpi,
            page_cache,
            page_cache is not None and not isinstance(cache, PageCache),
            checked,
            retry or RetryPolicy(),
            compression,
            RenderPool(render),
        )

    def batches(
        self, sources: list[Source], *, pages: str | Iterable[int] | None, password: str | None
    ) -> Generator[list[PendingPage], None, None]:
        """Rendered pages grouped into engine batches, across document boundaries.

        If a later document raises (``on_error="raise"``, or an unexpected error), the pages
        already rendered are yielded first, so no earlier document loses its last pages.
        """
        batch: list[PendingPage] = []
        try:
            for pending in self._pending_pages(sources, pages=pages, password=password):
                batch.append(pending)
                if len(batch) >= max(self.engine.batch_size, 1):
                    yield batch
                    batch = []
        except Exception:
            if batch:
                yield batch
            raise
        if batch:
            yield batch

    def _pending_pages(
        self, sources: list[Source], *, pages: str | Iterable[int] | None, password: str | None
    ) -> Iterator[PendingPage]:
        """The selected pages of every document, rendered by the worker pool, in order."""
        for item in self.pool.render(self._render_tasks(sources, pages=pages, password=password)):
            if not isinstance(item, Rendered):
                yield item  # the placeholder of a document that did not open
            elif item.error is not None:  # one unreadable page never costs the others
                logger.warning("%s", item.error)
                yield PendingPage(item.task.tag, item.task.index, None, item.error)
            else:
                yield PendingPage(item.task.tag, item.task.index, item.page)

    def _render_tasks(
        self, sources: list[Source], *, pages: str | Iterable[int] | None, password: str | None
    ) -> Iterator[RenderTask | PendingPage]:
        """Open each document in turn: a render task per selected page, or its placeholder."""
        for item in sources:
            data, name = (item.data, item.name) if isinstance(item, NamedSource) else (item, None)
            try:
                document = open_source(data, password=password, dpi=self.dpi, name=name)
                selected = parse_page_spec(pages, document.total_pages, source=document.name)
            except InputError as exc:
                if self.on_error == "raise":
                    raise
                logger.error("%s (on_error=%s)", exc, self.on_error)
                if self.on_error == "placeholder":
                    yield PendingPage(unopened_document(exc), 0, None, exc, stage="open")
                continue
            with document:
                info = DocumentInfo(document.name, document.file_name, document.total_pages, document.sha256)
                ref = DocumentRef.of(document, password=password, dpi=self.dpi)
            for index in range(info.total_pages) if selected is None else selected:
                yield RenderTask(ref, index, tag=info)

    def steps(self, batch: list[PendingPage]) -> Generator[EngineCall, Answer, list[PageResult]]:
        """The decisions of one batch, as a generator of engine calls (see :mod:`.batching`)."""
        return process_batch(
            batch,
            engine=self.engine,
            prompt=self.prompt,
            retry=self.retry,
            cache=self.cache,
            cache_key=self._key,
            compression=self.compression,
        )

    def _key(self, item: PendingPage) -> str:
        fingerprint = self.engine.fingerprint
        revision = fingerprint.get("revision")
        return page_key(
            file_sha256=item.document.sha256,
            page=item.index,
            model=self.engine.name,
            revision=None if revision is None else str(revision),
            prompt=self.prompt,
            dpi=self.dpi,
            options=fingerprint,
        )

    def close(self) -> None:
        self.pool.close()
        if self.owned_engine is not None:
            self.owned_engine.close()
        if self.owns_cache and self.cache is not None:
            self.cache.close()


def _engine_for(engine: OCREngine | None, options: dict[str, Any], dpi: int) -> tuple[OCREngine, bool]:
    """Check the options; return the engine to use and whether this call owns (closes) it."""
    if dpi < 36 or dpi > 600:
        raise ConfigError(f"dpi must be between 36 and 600, got {dpi}")
    return resolve_engine(engine, options)


def _as_sources(source: Source | Sequence[Source]) -> list[Source]:
    """One source or a list of them (a ``str`` or ``bytes`` is one source, not a sequence)."""
    if isinstance(source, (list, tuple)) and not isinstance(source, NamedSource):
        return list(source)
    return [cast(Source, source)]
