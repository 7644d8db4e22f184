"""A page's layout blocks as page-Document metadata, and the page rebuilt from it.

The chunker reads a page's blocks (label, box, text), not just its Markdown: boxes, labels
and the heading and table rules depend on them. A page Document carries them in one
``layout`` JSON string: per block its label, box and the span of its text in the page text
(the text is not repeated). A splitter handed page Documents rebuilds the pages from it and
chunks them as ``mode="chunks"`` does. The key is bookkeeping: LlamaIndex keeps it out of
embed and LLM text, like every key but the citation keys.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..types import Block, PageResult

__all__ = ["LAYOUT_KEY", "LaidOutPage", "page_layout", "read_layout"]

logger = logging.getLogger(__name__)

LAYOUT_KEY = "layout"
"""Page Documents only: ``[{"label": "text", "bbox": [x0, y0, x1, y1] or null, "span": [start, end]}]``."""


@dataclass(frozen=True)
class LaidOutPage:
    """A page as the chunker reads it (a :class:`~deepseek_ocr2_loaders.chunking.ChunkPage`)."""

    page: int
    markdown: str
    blocks: tuple[Block, ...]


def page_layout(page: PageResult) -> str:
    """The ``layout`` value of a page: every block, in order, with where its text is in ``markdown``.

    The page Markdown is the blocks' texts joined in order (figure links between them), so each
    block's text is found after the previous one. A page without blocks (fallback text) gets
    ``[]``, and a splitter then chunks its text as plain Markdown, as ``mode="chunks"`` does.
    """
    entries: list[dict[str, object]] = []
    position = 0
    for block in page.blocks:
        start = page.markdown.find(block.text, position)
        if start < 0:
            logger.warning("page %d of %s: block text not in the page Markdown; no layout kept", page.page, page.source)
            return "[]"
        position = start + len(block.text)
        bbox = None if block.bbox is None else [round(v, 2) for v in block.bbox]
        entries.append({"label": block.label, "bbox": bbox, "span": [start, position]})
    return json.dumps(entries, ensure_ascii=False, separators=(",", ":"))


def read_layout(text: str, metadata: Mapping[str, object]) -> LaidOutPage | None:
    """The page a page Document was made from, or None when the Document carries no usable layout."""
    layout, number = metadata.get(LAYOUT_KEY), metadata.get("page")
    if not isinstance(layout, str) or not isinstance(number, int) or isinstance(number, bool):
        return None
    try:
        blocks = tuple(_block(text, entry) for entry in json.loads(layout))
    except (ValueError, TypeError, KeyError):
        return None
    return LaidOutPage(number, text, blocks)


def _block(text: str, entry: Any) -> Block:
    """One block from its JSON entry; raises on anything malformed, so the whole layout is refused."""
    start, end = entry["span"]
    if not 0 <= start <= end <= len(text):
        raise ValueError(f"span {start}..{end} outside a text of {len(text)} characters")
    bbox = entry["bbox"]
    if bbox is None:
        return Block(str(entry["label"]), text[start:end])
    x0, y0, x1, y1 = (float(v) for v in bbox)
    return Block(str(entry["label"]), text[start:end], (x0, y0, x1, y1))
