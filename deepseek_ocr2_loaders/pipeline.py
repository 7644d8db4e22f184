"""``convert()``: documents in, one :class:`PageResult` per selected page out, in order.

The driver is a loop over pure steps: open each source, render its pages lazily,
group pages (across documents) into engine batches, parse each output, crop figures.
At most one batch of rendered pages is held in memory. A page is never dropped: a page
that fails to render or to be read is yielded with ``status=failed`` and its errors.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, Union, cast

from .engines.base import EngineOutput, OCREngine
from .errors import ConfigError, EngineError, InputError
from .figures import crop_figures
from .parsing import parse_grounding
from .prompts import resolve_prompt
from .sources import DocumentSource, SourcePage, open_source, parse_page_spec
from .types import Block, ErrorRecord, Figure, FinishReason, OCRStatus, PageResult

__all__ = ["Source", "convert"]

logger = logging.getLogger(__name__)

Source = Union[str, "os.PathLike[str]", bytes, IO[bytes]]
"""A path, the bytes of a file, or a binary file object."""

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
    unknown = set(options) - _ENGINE_OPTIONS
    if unknown:
        raise ConfigError(f"unknown option(s) {sorted(unknown)}; known: {sorted(_ENGINE_OPTIONS)}")
    if dpi < 36 or dpi > 600:
        raise ConfigError(f"dpi must be between 36 and 600, got {dpi}")
    owns_engine = engine is None
    if engine is None:
        from .engines.transformers import TransformersEngine

        engine = TransformersEngine(**options)
    elif options:
        raise ConfigError(f"options {sorted(options)} configure the default engine; set them on your engine instead")
    prompt_text = resolve_prompt(prompt)
    sources = cast("list[Source]", list(source) if isinstance(source, (list, tuple)) else [source])
    try:
        batch: list[_PendingPage] = []
        for pending in _pending_pages(sources, pages=pages, dpi=dpi, password=password):
            batch.append(pending)
            if len(batch) >= max(engine.batch_size, 1):
                yield from _run_batch(engine, batch, prompt_text)
                batch = []
        if batch:
            yield from _run_batch(engine, batch, prompt_text)
    finally:
        if owns_engine:
            engine.close()


def _pending_pages(
    sources: list[Source], *, pages: str | Iterable[int] | None, dpi: int, password: str | None
) -> Iterator[_PendingPage]:
    """Open each document in turn and render its selected pages one at a time."""
    for item in sources:
        with open_source(item, password=password, dpi=dpi) as document:
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


def _run_batch(engine: OCREngine, batch: list[_PendingPage], prompt: str) -> Iterator[PageResult]:
    ready = [item for item in batch if item.page is not None]
    outputs: dict[int, EngineOutput | EngineError] = {}
    if ready:
        try:
            answers = engine.generate([item.page.image for item in ready if item.page], prompt)
            if len(answers) != len(ready):
                raise EngineError(f"engine returned {len(answers)} outputs for {len(ready)} pages")
            outputs = {id(item): answer for item, answer in zip(ready, answers, strict=True)}
        except EngineError as exc:
            logger.error("engine failed on a batch of %d pages: %s", len(ready), exc)
            outputs = {id(item): exc for item in ready}
    for item in batch:
        yield _page_result(item, outputs.get(id(item)), engine.name, prompt)


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
    )
