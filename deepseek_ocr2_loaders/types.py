"""Typed records that cross layer boundaries: blocks, figures, page results.

All are frozen dataclasses; statuses and finish reasons are ``str`` enums so they drop
into flat metadata as plain strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "BBox",
    "Block",
    "ErrorRecord",
    "Figure",
    "FinishReason",
    "OCRStatus",
    "PageResult",
]

BBox = tuple[float, float, float, float]
"""``(x0, y0, x1, y1)``, origin top-left, in PDF points for PDFs and pixels for images."""


class OCRStatus(str, Enum):
    """How a page's text was obtained (the ``ocr_status`` metadata value)."""

    OK = "ok"
    RETRIED = "retried"
    FALLBACK_TEXT = "fallback_text"
    TRUNCATED = "truncated"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


class FinishReason(str, Enum):
    """Why the model stopped writing a page."""

    STOP = "stop"
    LENGTH = "length"
    REPETITION = "repetition"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Block:
    """One grounded layout block of a page, in the model's reading order.

    ``bbox`` encloses every box of the block; ``boxes`` keeps each one (a block can span
    columns). Both are in the page's unit (points or pixels). Blocks the model wrote
    without a usable box have ``bbox=None``.
    """

    label: str
    text: str
    bbox: BBox | None = None
    boxes: tuple[BBox, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "label": self.label,
            "text": self.text,
            "bbox": None if self.bbox is None else [round(v, 2) for v in self.bbox],
            "boxes": [[round(v, 2) for v in box] for box in self.boxes],
        }

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Block:
        """The inverse of :meth:`to_dict`."""
        bbox = record.get("bbox")
        return cls(
            label=record["label"],
            text=record["text"],
            bbox=None if bbox is None else _bbox(bbox),
            boxes=tuple(_bbox(box) for box in record.get("boxes", ())),
        )


@dataclass(frozen=True)
class Figure:
    """A figure cropped from the page image where the model found an ``image`` block.

    ``name`` is the file name the page Markdown links to (``![Figure n](name)``).
    """

    name: str
    bbox: BBox
    image: Image.Image = field(repr=False, compare=False)


@dataclass(frozen=True)
class ErrorRecord:
    """A problem met on one page: kept as data, never raised past the page."""

    stage: str
    message: str
    category: str
    page: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"stage": self.stage, "message": self.message, "category": self.category, "page": self.page}


@dataclass(frozen=True)
class PageResult:
    """Everything known about one page after OCR; yielded by :func:`convert` in page order."""

    source: str
    file_name: str
    page: int
    total_pages: int
    page_label: str
    width: float
    height: float
    unit: str
    markdown: str
    blocks: tuple[Block, ...]
    status: OCRStatus
    finish_reason: FinishReason | None
    vision_tokens: int
    output_tokens: int
    raw: str
    model: str
    prompt: str
    figures: tuple[Figure, ...] = ()
    errors: tuple[ErrorRecord, ...] = ()
    sha256: str = ""
    """Hex sha256 of the whole input file: the content hash behind deterministic ids."""
    compression: dict[str, float] | None = None
    """Optical compression mode only: ``vision_tokens_full``, ``text_tokens``, ``compression_ratio``."""

    @property
    def page_number(self) -> int:
        """1-based page number."""
        return self.page + 1

    @property
    def element_types(self) -> tuple[str, ...]:
        """Distinct block labels in reading order."""
        return tuple(dict.fromkeys(block.label for block in self.blocks))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (no images): one line of the CLI's JSONL output."""
        return {
            "source": self.source,
            "file_name": self.file_name,
            "sha256": self.sha256,
            "compression": self.compression,
            "page": self.page,
            "page_number": self.page_number,
            "page_label": self.page_label,
            "total_pages": self.total_pages,
            "width": self.width,
            "height": self.height,
            "unit": self.unit,
            "status": self.status.value,
            "finish_reason": "" if self.finish_reason is None else self.finish_reason.value,  # as the loaders
            "vision_tokens": self.vision_tokens,
            "output_tokens": self.output_tokens,
            "model": self.model,
            "prompt": self.prompt,
            "markdown": self.markdown,
            "blocks": [block.to_dict() for block in self.blocks],
            "figures": [{"name": f.name, "bbox": [round(v, 2) for v in f.bbox]} for f in self.figures],
            "errors": [error.to_dict() for error in self.errors],
            "raw": self.raw,
        }

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> PageResult:
        """The inverse of :meth:`to_dict` (a JSONL line, a Ray result row); figure images are not kept."""
        finish = record.get("finish_reason")
        return cls(
            source=record["source"],
            file_name=record["file_name"],
            page=int(record["page"]),
            total_pages=int(record["total_pages"]),
            page_label=str(record["page_label"]),
            width=float(record["width"]),
            height=float(record["height"]),
            unit=record["unit"],
            markdown=record["markdown"],
            blocks=tuple(Block.from_dict(block) for block in record["blocks"]),
            status=OCRStatus(record["status"]),
            finish_reason=FinishReason(finish) if finish else None,
            vision_tokens=int(record["vision_tokens"]),
            output_tokens=int(record["output_tokens"]),
            raw=record["raw"],
            model=record["model"],
            prompt=record.get("prompt") or "",
            errors=tuple(ErrorRecord(**error) for error in record["errors"]),
            sha256=record.get("sha256", ""),
            compression=record.get("compression"),
        )


def _bbox(values: Any) -> BBox:
    x0, y0, x1, y1 = (float(v) for v in values)
    return (x0, y0, x1, y1)
