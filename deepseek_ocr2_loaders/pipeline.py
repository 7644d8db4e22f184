"""``convert()``: documents in, one :class:`PageResult` per selected page out, in order.

The driver is a loop over pure steps: open each source, render its pages lazily,
group pages (across documents) into engine batches, parse each output, crop figures.
At most one batch of rendered pages is held in memory. A page is never dropped: a page
that fails to render or to be read is yielded with ``status=failed`` and its errors.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, NamedTuple, Union, cast

from .engines.base import EngineOutput, OCREngine
from .errors import ConfigError, EngineError, InputError
from .figures import crop_figures
from .parsing import parse_grounding
from .prompts import resolve_prompt
from .sources import DocumentSource, SourcePage, open_source, parse_page_spec
from .types import Block, ErrorRecord, Figure, FinishReason, OCRStatus, PageResult

__all__ = ["NamedSource", "Source", "aconvert", "convert"]

logger = logging.getLogger(__name__)


class NamedSource(NamedTuple):
    """Bytes or a stream with the name to report for it (a URL, a blob's source)."""

    data: bytes | IO[bytes]
    name: str


Source = Union[str, "os.PathLike[str]", bytes, IO[bytes], NamedSource]
"""A path, the bytes of a file, a binary file object, or a :class:`NamedSource`."""

_ENGINE_OPTIONS = frozenset(
    {
        "model",
        "device",
        "dtype",
        "attn_implementation",
        "max_batch_size",
        "vision_batch_size",
        "max_new_tokens",
        "revision",
        "local_files_only",
    }
)


@dataclass(frozen=True)
class _PendingPage:
    """A rendered page waiting for the engine, or one that failed to render."""

    document: DocumentSource
    index: int
    page: SourcePage | None
    error: InputError | None = None


def convert(
    source: Source | Sequence[Source],
    *,
    engine: OCREngine | None = None,
    prompt: str = "markdown",
    pages: str | Iterable[int] | None = None,
    dpi: int = 144,
    password: str | None = None,
    **options: Any,
) -> Iterator[PageResult]:
    """Read documents with DeepSeek-OCR-2, yielding each page as soon as its batch is done.

    Args:
        source: A path, bytes, a binary file object, or a list of them. Pages of several
            documents share engine batches.
        engine: Any :class:`OCREngine`. Default: a :class:`TransformersEngine` built from
            ``options`` (and closed when the generator finishes).
        prompt: A preset (``markdown``, ``free``, ``figure``, ``describe``) or a custom instruction.
        pages: Page selection for every document: a string of 1-based pages and ranges
            (``"1-3,7"``) or an iterable of 0-based indices. Default: all pages.
        dpi: Render resolution of PDF pages (the official scripts use 144).
        password: Password of encrypted PDFs.
        **options: ``TransformersEngine`` options (``model``, ``device``, ``dtype``,
            ``max_new_tokens``, ``max_batch_size``, ...) when no ``engine`` is given.

    Yields:
        One :class:`PageResult` per selected page, in document and page order.

    Raises:
        InputError: A document cannot be opened (missing, corrupt, encrypted, unsupported)
            or ``pages`` does not fit it.
        ConfigError: An unknown option, or options given together with ``engine``.
        ModelLoadError: The default engine could not load the model.

    Examples:
        >>> for page in convert("paper.pdf", model="./DeepSeek-OCR-2"):  # doctest: +SKIP
        ...     print(page.page_number, page.status, page.markdown[:60])
    """
    engine, owns_engine = _engine_for(engine, options, dpi)
    prompt_text = resolve_prompt(prompt)
    try:
        for batch in _batches(_as_sources(source), engine.batch_size, pages=pages, dpi=dpi, password=password):
            outputs = _generate(engine, batch, prompt_text)
            yield from (_page_result(item, outputs.get(id(item)), engine.name, prompt_text) for item in batch)
    finally:
        if owns_engine:
            engine.close()


async def aconvert(
    source: Source | Sequence[Source],
    *,
    engine: OCREngine | None = None,
    prompt: str = "markdown",
    pages: str | Iterable[int] | None = None,
    dpi: int = 144,
    password: str | None = None,
    **options: Any,
) -> AsyncIterator[PageResult]:
    """Async :func:`convert`: pages are read with ``engine.agenerate`` and rendered in a worker thread.

    Works inside a running event loop (it never starts one). Arguments, results and errors
    are those of :func:`convert`.

    Examples:
        >>> async for page in aconvert("paper.pdf", engine=engine):  # doctest: +SKIP
        ...     print(page.page_number, page.markdown[:60])
    """
    engine, owns_engine = _engine_for(engine, options, dpi)
    prompt_text = resolve_prompt(prompt)
    batches = _batches(_as_sources(source), engine.batch_size, pages=pages, dpi=dpi, password=password)
    try:
        while (batch := await asyncio.to_thread(next, batches, None)) is not None:
            outputs = await _agenerate(engine, batch, prompt_text)
            for item in batch:
                yield _page_result(item, outputs.get(id(item)), engine.name, prompt_text)
    finally:
        batches.close()
        if owns_engine:
            engine.close()


def _engine_for(engine: OCREngine | None, options: dict[str, Any], dpi: int) -> tuple[OCREngine, bool]:
    """Check the options; return the engine to use and whether this call owns (closes) it."""
    unknown = set(options) - _ENGINE_OPTIONS
    if unknown:
        raise ConfigError(f"unknown option(s) {sorted(unknown)}; known: {sorted(_ENGINE_OPTIONS)}")
    if dpi < 36 or dpi > 600:
        raise ConfigError(f"dpi must be between 36 and 600, got {dpi}")
    if engine is not None:
        if options:
            raise ConfigError(f"options {sorted(options)} configure the default engine; set them on your engine")
        return engine, False
    from .engines.transformers import TransformersEngine

    return TransformersEngine(**options), True


def _as_sources(source: Source | Sequence[Source]) -> list[Source]:
    """One source or a list of them (a ``str`` or ``bytes`` is one source, not a sequence)."""
    if isinstance(source, (list, tuple)) and not isinstance(source, NamedSource):
        return list(source)
    return [cast(Source, source)]


def _batches(
    sources: list[Source], size: int, *, pages: str | Iterable[int] | None, dpi: int, password: str | None
) -> Generator[list[_PendingPage], None, None]:
    """Rendered pages grouped into engine batches, across document boundaries."""
    batch: list[_PendingPage] = []
    for pending in _pending_pages(sources, pages=pages, dpi=dpi, password=password):
        batch.append(pending)
        if len(batch) >= max(size, 1):
            yield batch
            batch = []
    if batch:
        yield batch


def _pending_pages(
    sources: list[Source], *, pages: str | Iterable[int] | None, dpi: int, password: str | None
) -> Iterator[_PendingPage]:
    """Open each document in turn and render its selected pages one at a time."""
    for item in sources:
        data, name = (item.data, item.name) if isinstance(item, NamedSource) else (item, None)
        with open_source(data, password=password, dpi=dpi, name=name) as document:
            _ = document.sha256  # hash while the input is open; results carry it for ids
            selected = parse_page_spec(pages, document.total_pages, source=document.name)
            indices = list(range(document.total_pages)) if selected is None else selected
            for index in indices:
                try:
                    page = document.load_page(index)
                except InputError as exc:  # one unreadable page never costs the others
                    logger.warning("%s", exc)
                    yield _PendingPage(document, index, None, exc)
                else:
                    yield _PendingPage(document, index, page)


Outputs = dict[int, Union[EngineOutput, EngineError]]


def _generate(engine: OCREngine, batch: list[_PendingPage], prompt: str) -> Outputs:
    ready = [item for item in batch if item.page is not None]
    try:
        answers = engine.generate([item.page.image for item in ready if item.page], prompt) if ready else []
    except EngineError as exc:
        return _failed(ready, exc)
    return _paired(ready, answers)


async def _agenerate(engine: OCREngine, batch: list[_PendingPage], prompt: str) -> Outputs:
    ready = [item for item in batch if item.page is not None]
    try:
        answers = await engine.agenerate([item.page.image for item in ready if item.page], prompt) if ready else []
    except EngineError as exc:
        return _failed(ready, exc)
    return _paired(ready, answers)


def _paired(ready: list[_PendingPage], answers: list[EngineOutput]) -> Outputs:
    if len(answers) != len(ready):
        return _failed(ready, EngineError(f"the engine returned {len(answers)} outputs for {len(ready)} pages"))
    return {id(item): answer for item, answer in zip(ready, answers, strict=True)}


def _failed(ready: list[_PendingPage], error: EngineError) -> Outputs:
    logger.error("the engine failed on a batch of %d pages: %s", len(ready), error)
    return {id(item): error for item in ready}


def _page_result(item: _PendingPage, output: EngineOutput | EngineError | None, model: str, prompt: str) -> PageResult:
    """Parse one engine output into a page result; a render or engine failure becomes a failed page."""
    document, page = item.document, item.page
    markdown, raw = "", ""
    blocks: tuple[Block, ...] = ()
    figures: tuple[Figure, ...] = ()
    status, finish, vision_tokens, output_tokens = OCRStatus.FAILED, None, 0, 0
    errors: tuple[ErrorRecord, ...] = ()
    if page is None or not isinstance(output, EngineOutput):
        failure = item.error or output
        stage = "render" if item.error else "ocr"
        errors = (ErrorRecord(stage, str(failure), type(failure).__name__, item.index),)
    else:

        def figure_name(number: int) -> str:
            return f"page-{item.index + 1:04d}-figure-{number + 1}.png"

        parsed = parse_grounding(output.text, width=page.width, height=page.height, figure_name=figure_name)
        markdown, raw, blocks = parsed.markdown, output.text, parsed.blocks
        figures = crop_figures(
            page.image,
            parsed.blocks,
            parsed.figure_blocks,
            page_width=page.width,
            page_height=page.height,
            figure_name=figure_name,
        )
        finish = FinishReason(output.finish_reason)
        vision_tokens, output_tokens = output.vision_tokens, output.output_tokens
        status = OCRStatus.OK
        if finish is not FinishReason.STOP:
            status = OCRStatus.TRUNCATED
            why = "the model looped and was stopped" if finish is FinishReason.REPETITION else "hit max_new_tokens"
            errors = (ErrorRecord("ocr", why, finish.value, item.index),)
    return PageResult(
        source=document.name,
        file_name=document.file_name,
        page=item.index,
        total_pages=document.total_pages,
        page_label=page.label if page else str(item.index + 1),
        width=page.width if page else 0.0,
        height=page.height if page else 0.0,
        unit=page.unit if page else "",
        markdown=markdown,
        blocks=blocks,
        status=status,
        finish_reason=finish,
        vision_tokens=vision_tokens,
        output_tokens=output_tokens,
        raw=raw,
        model=model,
        prompt=prompt,
        figures=figures,
        errors=errors,
        sha256=document.sha256,
    )
