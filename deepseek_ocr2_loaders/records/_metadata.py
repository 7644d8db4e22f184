"""Flat, vector-store-safe metadata and deterministic ids, built in one place.

Both adapters call these functions, so LangChain and LlamaIndex carry identical metadata.
Values are ``str``, ``int``, ``float`` or ``bool``; lists and boxes are JSON strings, listed
in :data:`HEAVY_KEYS` so LlamaIndex can keep them out of embeddings and LLM prompts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Union

from ..types import Block, OCRStatus, PageResult

if TYPE_CHECKING:
    from ..chunking import Chunk

__all__ = [
    "HEAVY_KEYS",
    "Metadata",
    "chunk_metadata",
    "element_metadata",
    "page_metadata",
    "record_id",
    "text_hash",
    "union_element_types",
    "worst_status",
]

Scalar = Union[str, int, float, bool]
Metadata = dict[str, Scalar]

HEAVY_KEYS = ("bboxes", "bbox", "element_types", "errors", "sha256")
"""JSON-string or bookkeeping values that help filtering and citing but not embedding."""

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
        "source": page.source,
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
    for level in range(1, 7):
        metadata.pop(f"Header {level}", None)
    metadata.update(chunk.header_fields())
    return metadata


def record_id(content_hash: str, page: int, *parts: object) -> str:
    """Deterministic id: a content hash + page (+ element or chunk index).

    The hash is the file's sha256 for loaded documents (re-ingesting the same file gives
    the same ids, so vector stores upsert instead of duplicating) and the text's for
    Documents split by the splitters.
    """
    return "-".join([content_hash[:32], str(page), *map(str, parts)])


def text_hash(text: str) -> str:
    """sha256 of a text, for ids of content that has no file behind it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def union_element_types(pages: Iterable[PageResult]) -> str:
    """Distinct element types over pages, as the JSON list string metadata uses."""
    return _json(list(dict.fromkeys(label for page in pages for label in page.element_types)))
