"""Flat, vector-store-safe metadata and deterministic ids, built in one place.

Both adapters call these functions, so LangChain and LlamaIndex carry identical metadata.
Values are ``str``, ``int``, ``float`` or ``bool``; lists and boxes are JSON strings. Only
:data:`CITATION_KEYS` help an embedding or an LLM prompt; LlamaIndex excludes the rest.

A document is known by its identity (its resolved path, a blob's name, or the content hash
of an unnamed input); its content hash (``sha256``) is only its version. Ids are UUIDv5 of
identity + page (+ part), so every vector store accepts them, two files never share one,
and re-ingesting an edited file overwrites exactly its own records.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Union

from ..sources import UNNAMED_SOURCES
from ..types import Block, OCRStatus, PageResult

if TYPE_CHECKING:
    from ..chunking import Chunk

__all__ = [
    "CITATION_KEYS",
    "HEADER_KEYS",
    "Metadata",
    "chunk_metadata",
    "document_id",
    "document_identity",
    "element_metadata",
    "page_metadata",
    "record_id",
    "text_hash",
    "union_element_types",
    "worst_status",
]

Scalar = Union[str, int, float, bool]
Metadata = dict[str, Scalar]

CITATION_KEYS = ("file_name", "page_label", "header_path")
"""The keys that help retrieval and citation; every other key is bookkeeping (filters, stats)."""

HEADER_KEYS = tuple(f"Header {level}" for level in range(1, 7))
"""Headings per level, as LangChain's ``MarkdownHeaderTextSplitter`` names them."""

_NAMESPACE = uuid.UUID("6f1d1d2e-3c0b-5b7e-9a51-0d5eeb0c2a16")
"""Fixed UUIDv5 namespace of every id: changing it would change every id ever stored."""

# worst first: a chunk or a single document reports the worst status among its pages
_STATUS_ORDER = (OCRStatus.FAILED, OCRStatus.TRUNCATED, OCRStatus.FALLBACK_TEXT, OCRStatus.RETRIED, OCRStatus.OK)


def worst_status(statuses: Iterable[OCRStatus]) -> OCRStatus:
    """The least trustworthy status among pages (``ok`` when there are none)."""
    found = set(statuses)
    return next((status for status in _STATUS_ORDER if status in found), OCRStatus.OK)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _box(bbox: tuple[float, ...]) -> list[float]:
    return [round(v, 2) for v in bbox]


def page_metadata(page: PageResult) -> Metadata:
    """Metadata of a page Document (mode ``page``), also the base of the other modes.

    In optical compression mode it adds ``vision_tokens_full``, ``text_tokens`` and
    ``compression_ratio`` (``vision_tokens`` is then the compact view's).
    """
    compression: Metadata = dict(page.compression or {})
    return compression | {
        "source": document_identity(page),
        "file_name": page.file_name,
        "total_pages": page.total_pages,
        "page": page.page,
        "page_number": page.page_number,
        "page_label": page.page_label,
        "ocr_status": page.status.value,
        "finish_reason": page.finish_reason.value if page.finish_reason else "",
        "element_types": _json(list(page.element_types)),
        "vision_tokens": page.vision_tokens,
        "output_tokens": page.output_tokens,
        "model": page.model,
        "unit": page.unit,
        "bboxes": _json(_block_boxes(page.page, page.blocks)),
        "errors": _json([error.to_dict() for error in page.errors]),
        "sha256": page.sha256,
    }


def _block_boxes(page: int, blocks: Iterable[Block]) -> list[dict[str, object]]:
    return [{"page": page, "label": b.label, "bbox": _box(b.bbox)} for b in blocks if b.bbox is not None]


def element_metadata(page: PageResult, block: Block, index: int) -> Metadata:
    """Metadata of one grounded block (mode ``elements``)."""
    metadata = page_metadata(page)
    metadata.update(
        category=block.label,
        element_index=index,
        element_types=_json([block.label]),
        bbox=_json(_box(block.bbox)) if block.bbox else "",
        bboxes=_json(_block_boxes(page.page, [block])),
    )
    return metadata


def chunk_metadata(first: Metadata, chunk: Chunk, status: OCRStatus | None) -> Metadata:
    """Metadata of a chunk: its first page's metadata, extended with the chunk's own keys.

    ``vision_tokens`` and ``output_tokens`` stay those of the first page; ``ocr_status`` is
    the worst over the pages the chunk spans (kept as given when ``status`` is None). Page
    keys are set only where the base has pages: a foreign Document split by the splitter
    gains no invented page number.
    """
    metadata = dict(first)
    if "page" in first:
        metadata.update(page=chunk.page, page_end=chunk.page_end, page_number=chunk.page + 1)
    if status is not None:
        metadata["ocr_status"] = status.value
    metadata.update(
        chunk_index=chunk.index,
        header_path=chunk.header_path,
        token_count=chunk.token_count,
        element_types=_json(list(chunk.element_types)),
        bboxes=_json([{"page": ref.page, "label": ref.label, "bbox": _box(ref.bbox)} for ref in chunk.bboxes]),
    )
    metadata.update(dict.fromkeys(HEADER_KEYS, ""), **chunk.header_fields())
    return metadata


def document_identity(page: PageResult) -> str:
    """What a document is known by: its source, or ``sha256:<hash>`` for an unnamed input.

    Unnamed bytes and streams would otherwise all share one name, and so delete or overwrite
    each other's records; their content hash is a unique, stable name instead.
    """
    if page.source in UNNAMED_SOURCES and page.sha256:
        return f"sha256:{page.sha256}"
    return page.source


def document_id(identity: str) -> str:
    """The id of a whole document: the reference that its chunk and element records point to."""
    return str(uuid.uuid5(_NAMESPACE, identity))


def record_id(identity: str, page: int, *parts: object) -> str:
    """Deterministic UUID of a record: its document's identity + page (+ element or chunk index).

    The identity is the document's (see :func:`document_identity`), not its content, so an
    edited file keeps its ids and re-ingesting it overwrites its records; its new content
    hash shows in metadata ``sha256``.
    """
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join([identity, str(page), *map(str, parts)])))


def text_hash(text: str) -> str:
    """sha256 of a text, for ids of content that has no file behind it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def union_element_types(pages: Iterable[PageResult]) -> str:
    """Distinct element types over pages, as the JSON list string metadata uses."""
    return _json(list(dict.fromkeys(label for page in pages for label in page.element_types)))
