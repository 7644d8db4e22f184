"""Page results -> framework-agnostic document records, per loader mode.

``page`` gives one record per page, ``single`` one per file, ``elements`` one per grounded
block, ``chunks`` Markdown-structure chunks. The adapters only turn a
:class:`DocumentRecord` into their framework's ``Document``, so both frameworks get the
same texts, metadata and ids. No page is dropped: a failed page still gives a record in
``page``, ``elements`` and ``chunks`` mode (empty text, ``ocr_status="failed"``), and
``single`` reports the worst page status. Every record of one mode carries the same keys
(empty values where absent), so schema-fixed stores such as LanceDB take any file's records.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..chunking import ChunkPage, MarkdownChunker
from ..errors import ConfigError
from ..types import OCRStatus, PageResult
from ._figures import place_figures
from ._layout import LAYOUT_KEY, page_layout
from ._metadata import (
    HEADER_KEYS,
    Metadata,
    chunk_metadata,
    document_id,
    document_identity,
    element_metadata,
    page_metadata,
    record_id,
    union_element_types,
    worst_status,
)

__all__ = ["MODES", "PAGE_SEPARATOR", "DocumentRecord", "Mode", "arecords", "check_mode", "chunk_records", "records"]

logger = logging.getLogger(__name__)

Mode = Literal["page", "single", "elements", "chunks"]
MODES: tuple[str, ...] = ("page", "single", "elements", "chunks")
PAGE_SEPARATOR = "\n\n"


def check_mode(mode: str) -> Mode:
    """Validate a loader ``mode``.

    Raises:
        ConfigError: ``mode`` is not one of :data:`MODES`.
    """
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {MODES}, got {mode!r}")
    return mode  # type: ignore[return-value]


@dataclass(frozen=True)
class DocumentRecord:
    """Text, flat metadata and a deterministic id: what becomes one framework Document.

    Attributes:
        id: The record's UUID.
        text: Its text.
        metadata: Its flat metadata.
        ref_id: For a part of a document (a chunk or an element), the id of the whole
            document, so a framework can delete or replace all of a file's parts at once.
    """

    id: str
    text: str
    metadata: Metadata
    ref_id: str | None = None


def records(
    pages: Iterable[PageResult],
    mode: Mode,
    chunker: MarkdownChunker | None = None,
    *,
    pages_delimiter: str = PAGE_SEPARATOR,
    figures_dir: Path | None = None,
) -> Iterator[DocumentRecord]:
    """Turn a stream of page results (one or more files, in order) into records, lazily.

    ``page`` and ``elements`` records are yielded as soon as their page arrives; chunks as
    soon as the chunker closes them; ``single`` (its pages joined by ``pages_delimiter``)
    when its file's last page arrives. Figures are written to ``figures_dir`` and linked
    there, or not linked at all (see :mod:`._figures`).
    """
    pages = (place_figures(page, figures_dir) for page in pages)
    for _, document_pages in itertools.groupby(pages, key=lambda page: (page.source, page.sha256)):
        if mode == "page":
            yield from map(page_record, document_pages)
        elif mode == "elements":
            for page in document_pages:
                yield from element_records(page)
        elif mode == "single":
            yield single_record(list(document_pages), pages_delimiter)
        else:
            pairs = ((page, page_metadata(page)) for page in document_pages)
            yield from chunk_records(pairs, chunker or MarkdownChunker())


async def arecords(
    pages: AsyncIterable[PageResult],
    mode: Mode,
    chunker: MarkdownChunker | None = None,
    *,
    pages_delimiter: str = PAGE_SEPARATOR,
    figures_dir: Path | None = None,
) -> AsyncIterator[DocumentRecord]:
    """Async :func:`records`.

    ``page`` and ``elements`` stream per page; ``single`` and ``chunks`` are built when
    each file's pages are all in (the chunker is synchronous).
    """
    document: list[PageResult] = []
    async for page in pages:
        if mode in ("page", "elements"):
            for record in records([page], mode, figures_dir=figures_dir):
                yield record
            continue
        if document and (page.source, page.sha256) != (document[0].source, document[0].sha256):
            for record in records(document, mode, chunker, pages_delimiter=pages_delimiter, figures_dir=figures_dir):
                yield record
            document = []
        document.append(page)
    for record in records(document, mode, chunker, pages_delimiter=pages_delimiter, figures_dir=figures_dir):
        yield record


def page_record(page: PageResult) -> DocumentRecord:
    """One page as a record; its ``layout`` lets the splitters rebuild the page (see :mod:`._layout`)."""
    metadata = page_metadata(page) | {LAYOUT_KEY: page_layout(page)}
    return DocumentRecord(record_id(document_identity(page), page.page), page.markdown, metadata)


def element_records(page: PageResult) -> Iterator[DocumentRecord]:
    """One record per grounded block; a page without blocks gives one record of the whole page."""
    identity = document_identity(page)
    if not page.blocks:
        metadata = page_metadata(page) | {"category": "", "element_index": 0, "bbox": ""}
        yield DocumentRecord(record_id(identity, page.page), page.markdown, metadata, document_id(identity))
        return
    figures = iter(page.figures)
    for index, block in enumerate(page.blocks):
        text = block.text
        if block.label == "image" and block.bbox is not None:
            figure = next(figures, None)
            link = f"![Figure]({figure.name})" if figure else ""
            text = f"{link}\n{text}".strip()
        yield DocumentRecord(
            record_id(identity, page.page, "e", index),
            text,
            element_metadata(page, block, index),
            document_id(identity),
        )


def single_record(pages: list[PageResult], pages_delimiter: str = PAGE_SEPARATOR) -> DocumentRecord:
    """A whole file as one record: page texts joined, tokens summed, the worst status."""
    first = pages[0]
    metadata = page_metadata(first)
    metadata.update(
        page=first.page,
        page_end=pages[-1].page,
        ocr_status=worst_status(page.status for page in pages).value,
        vision_tokens=sum(page.vision_tokens for page in pages),
        output_tokens=sum(page.output_tokens for page in pages),
        element_types=union_element_types(pages),
        bboxes="[]",
        errors="[]",
        pages_failed=sum(page.status is OCRStatus.FAILED for page in pages),
    )
    text = pages_delimiter.join(page.markdown for page in pages if page.markdown)
    return DocumentRecord(record_id(document_identity(first), first.page, "doc"), text, metadata)


def chunk_records(pages: Iterable[tuple[ChunkPage, Metadata]], chunker: MarkdownChunker) -> Iterator[DocumentRecord]:
    """Chunk records of one file from its pages and their page metadata, in page order.

    ``mode="chunks"`` passes each :class:`PageResult` with :func:`page_metadata`; the splitters
    pass pages rebuilt from page Documents with those Documents' metadata, so both give the
    same chunks. A failed page has no text to chunk, so it gives an empty placeholder.
    """
    seen: dict[int, Metadata] = {}
    failed: list[DocumentRecord] = []
    identity = ""

    def remember(stream: Iterable[tuple[ChunkPage, Metadata]]) -> Iterator[ChunkPage]:
        nonlocal identity
        for page, metadata in stream:
            identity = str(metadata["source"])
            seen[page.page] = metadata
            if metadata["ocr_status"] == OCRStatus.FAILED.value:
                failed.append(_failed_chunk_record(metadata))
            yield page

    for chunk in chunker.chunk_pages(remember(pages)):
        yield from _drain(failed)
        spanned = [OCRStatus(seen[i]["ocr_status"]) for i in range(chunk.page, chunk.page_end + 1) if i in seen]
        metadata = chunk_metadata(seen[chunk.page], chunk, worst_status(spanned))
        yield DocumentRecord(
            record_id(identity, chunk.page, "c", chunk.index), chunk.text, metadata, document_id(identity)
        )
    yield from _drain(failed)


def _failed_chunk_record(page: Metadata) -> DocumentRecord:
    """A failed page in chunks mode: empty, with every chunk key (``chunk_index`` -1: no chunk)."""
    identity, number = str(page["source"]), int(page["page"])
    metadata = page | {
        "page_end": number,
        "chunk_index": -1,
        "header_path": "",
        "token_count": 0,
        **dict.fromkeys(HEADER_KEYS, ""),
    }
    return DocumentRecord(record_id(identity, number), "", metadata, document_id(identity))


def _drain(pending: list[DocumentRecord]) -> Iterator[DocumentRecord]:
    while pending:
        yield pending.pop(0)
