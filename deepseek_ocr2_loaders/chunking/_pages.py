"""Turn OCR pages (or plain Markdown) into segments with their page, block label and box.

Grounded pages are read block by block, in the model's reading order: a block's text can
hold several paragraphs, a caption and a table, so it is split like any Markdown, and each
part keeps its block's label and box. Blocks labelled as page furniture (``header``,
``footer``, ``page_number``) are dropped: they repeat on every page and would split sections
in two. DeepSeek-OCR-2 seldom writes these labels (none in ~36k real blocks); running heads
it reads as ``text`` are kept, as nothing here guesses furniture from the text. ``image``
blocks carry no text of their own; their ``![Figure n](name)`` link is taken from the page
Markdown, where the parser wrote it (a page whose figures are not linked gets none).
"""

from __future__ import annotations

import logging
import re

from ._headings import parse_atx, repair_level
from ._markdown import split_markdown
from ._model import BoxRef, ChunkPage
from ._segments import HEADING, KIND_LABELS, Origin, Segment

__all__ = ["FURNITURE_LABELS", "block_segments", "markdown_segments", "page_segments"]

logger = logging.getLogger(__name__)

FURNITURE_LABELS = frozenset(
    {"header", "footer", "page_number", "page-number", "page_header", "page_footer", "page-header", "page-footer"}
)
"""Block labels that are page furniture, not content."""

_HEADING_LABELS = {"title": 1, "sub_title": 2}
_FIGURE_LINK_RE = re.compile(r"!\[Figure \d+\]\([^)\n]*\)")


def page_segments(page: ChunkPage, *, repair: bool) -> list[Segment]:
    """Content segments of one page in reading order; ``[]`` for a failed or empty page."""
    if not page.blocks:
        return markdown_segments(page.markdown, page=page.page, repair=repair)
    links = _FIGURE_LINK_RE.findall(page.markdown)
    figures = 0
    segments: list[Segment] = []
    for number, block in enumerate(page.blocks):
        text = block.text
        if block.label == "image" and block.bbox is not None:
            link = links[figures] if figures < len(links) else ""
            figures += 1
            text = "\n".join(part for part in (link, text) if part)
        if block.label in FURNITURE_LABELS or not text.strip():
            continue
        box = None if block.bbox is None else BoxRef(page.page, block.label, block.bbox)
        segments.extend(block_segments(text, block.label, Origin(page.page, number, box), repair=repair))
    return segments


def markdown_segments(markdown: str, *, page: int, repair: bool) -> list[Segment]:
    """Segments of plain Markdown (no layout blocks), all on ``page``."""
    return block_segments(markdown, "text", Origin(page), repair=repair)


def block_segments(text: str, label: str, origin: Origin, *, repair: bool) -> list[Segment]:
    """Split one block's text into segments that keep ``label`` (``text`` blocks label by kind).

    A ``title``/``sub_title`` block written without ``#`` is one heading of level 1/2 (or
    its section number's depth); ATX headings are headings wherever they appear.
    """
    if label in _HEADING_LABELS and not text.lstrip().startswith("#"):
        title = " ".join(text.split())
        level = repair_level(_HEADING_LABELS[label], title, repair=repair)
        return [Segment(HEADING, title, label, (origin,), level=level)]
    segments = []
    for kind, body in split_markdown(text):
        kind_label = label if label != "text" else KIND_LABELS[kind]
        heading = parse_atx(body) if kind == HEADING else None
        if heading is not None:
            level = repair_level(heading[0], heading[1], repair=repair)
            segments.append(Segment(HEADING, heading[1], kind_label, (origin,), level=level))
        else:
            segments.append(Segment(kind, body, kind_label, (origin,)))
    return segments
