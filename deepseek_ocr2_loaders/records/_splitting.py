"""Documents -> chunk records: the one core behind both splitters.

Page Documents of a loader, handed over as consecutive pages of one file in page order, are
rebuilt into their pages (text plus ``layout`` metadata) and chunked by
:func:`~._modes.chunk_records`, the function of ``mode="chunks"``: the splitters then give
exactly its chunks (boxes, headings and tables across pages, ``chunk_index`` over the file,
ids). Any other Document is chunked alone, as Markdown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from ..chunking import MarkdownChunker
from ..types import OCRStatus
from ._layout import LAYOUT_KEY, LaidOutPage, read_layout
from ._metadata import Metadata, chunk_metadata, record_id, text_hash
from ._modes import DocumentRecord, chunk_records

__all__ = ["split_documents", "split_records"]

_STATUSES = frozenset(status.value for status in OCRStatus)

Run = list[tuple[int, LaidOutPage, Metadata]]


def split_documents(
    documents: Sequence[tuple[str, Mapping[str, Any]]], chunker: MarkdownChunker
) -> list[tuple[int, DocumentRecord]]:
    """Chunk records of ``(text, metadata)`` Documents, each with the index of the Document it starts in.

    A run of page Documents of one file (same ``source`` and ``sha256``, pages rising) is
    chunked as one document; its records' metadata is their pages' metadata less ``layout``.
    """
    out: list[tuple[int, DocumentRecord]] = []
    run: Run = []
    for index, (text, metadata) in enumerate(documents):
        page = _page(text, metadata)
        if page is None:
            out.extend(_run_records(run, chunker))
            run = []
            out.extend((index, record) for record in split_records(text, dict(metadata), chunker))
            continue
        base = {key: value for key, value in metadata.items() if key != LAYOUT_KEY}
        if run and not _continues(run[-1], page, base):
            out.extend(_run_records(run, chunker))
            run = []
        run.append((index, page, base))
    out.extend(_run_records(run, chunker))
    return out


def split_records(text: str, metadata: Metadata, chunker: MarkdownChunker) -> list[DocumentRecord]:
    """Split one Document's text into chunk records that keep and extend its metadata.

    The page comes from ``metadata["page"]`` when present. A loader's Document (it carries
    ``sha256``) is known by its ``source``, like ``mode="chunks"``; a foreign one by its
    text's hash, since foreign loaders may give many Documents one source.
    """
    page = metadata.get("page", 0)
    page = page if isinstance(page, int) and not isinstance(page, bool) else 0
    status = metadata.get("ocr_status")
    known = OCRStatus(status) if isinstance(status, str) and status in _STATUSES else None
    identity = str(metadata["source"]) if "sha256" in metadata and "source" in metadata else text_hash(text)
    return [
        DocumentRecord(
            record_id(identity, chunk.page, "c", chunk.index), chunk.text, chunk_metadata(metadata, chunk, known)
        )
        for chunk in chunker.chunk_text(text, page=page)
    ]


def _page(text: str, metadata: Mapping[str, Any]) -> LaidOutPage | None:
    """The rebuilt page of a loader's page Document, or None for any other Document."""
    if not isinstance(metadata.get("source"), str) or "sha256" not in metadata:
        return None
    if metadata.get("ocr_status") not in _STATUSES:
        return None
    return read_layout(text, metadata)


def _continues(last: tuple[int, LaidOutPage, Metadata], page: LaidOutPage, metadata: Metadata) -> bool:
    _, last_page, last_metadata = last
    same_file = (last_metadata["source"], last_metadata["sha256"]) == (metadata["source"], metadata["sha256"])
    return same_file and page.page > last_page.page


def _run_records(run: Run, chunker: MarkdownChunker) -> list[tuple[int, DocumentRecord]]:
    """One file's chunk records, each with the index of the page Document it starts on."""
    if not run:
        return []
    starts = {page.page: index for index, page, _ in run}
    records = chunk_records(((page, metadata) for _, page, metadata in run), chunker)
    return [(starts[cast(int, record.metadata["page"])], record) for record in records]
