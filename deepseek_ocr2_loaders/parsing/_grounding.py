"""Turn DeepSeek-OCR-2 grounding output into clean Markdown and layout blocks.

With ``<|grounding|>`` in the prompt the model writes, per layout block,
``<|ref|>LABEL<|/ref|><|det|>[[x0, y0, x1, y1], ...]<|/det|>`` and then the block's Markdown,
with coordinates on a 0-999 grid of the page image. Generation can stop at any token and the
model sometimes writes malformed tags, so every step degrades instead of raising: at worst a
block loses its box, never its text, and one bad page never fails a document. Boxes are read
with a regex over numbers; model text is never evaluated.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..types import BBox, Block

__all__ = ["GRID_MAX", "ParsedPage", "grid_to_bbox", "parse_grounding"]

GRID_MAX = 999
"""The model's coordinate grid runs from 0 to this value on both axes."""

_REF_OPEN, _REF_CLOSE, _DET_OPEN, _DET_CLOSE = "<|ref|>", "<|/ref|>", "<|det|>", "<|/det|>"
_SPECIAL = r"<[|｜](?:begin|end)▁of▁sentence[|｜]>|<\|grounding\|>"
_SPECIAL_RE = re.compile(_SPECIAL)
_TAGS_ALT = r"<\|/?(?:ref|det)\|>|" + _SPECIAL
# A tag between two spaces takes one of them along, so "a <|det|> b" reads "a b".
_TAG_RE = re.compile(rf"(?: (?=(?:{_TAGS_ALT}) ))?(?:{_TAGS_ALT})")
# Tags that a cut-off generation can leave half-written at the very end of the text.
_TAGS = (_REF_OPEN, _REF_CLOSE, _DET_OPEN, _DET_CLOSE, "<|grounding|>", "<|end▁of▁sentence|>", "<｜end▁of▁sentence｜>")
_NUMBER_RE = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")
_GROUP_RE = re.compile(r"\[([^\[\]]*)\]")
_LABEL_RE = re.compile(r"[a-z][a-z0-9_\-]{0,31}")
# Labels the model is known to write; an unclosed ``<|ref|>`` holding only (a prefix of)
# one of these is a label cut off or abandoned by the model, not page text.
_KNOWN_LABELS = frozenset(
    "title sub_title text table table_caption table_footnote image image_caption equation header footer"
    " page-number page_number footnote list code reference".split()
)
# What a coordinate list can be made of, for a ``<|det|>`` that was never closed.
_DET_PREFIX_RE = re.compile(r"[\[\]\d.,+\- \t]*")


@dataclass(frozen=True)
class ParsedPage:
    """One page of model output, split into Markdown and grounded blocks.

    Attributes:
        markdown: Clean page Markdown; no grounding tags or special tokens remain.
        blocks: Layout blocks in the model's reading order.
        figure_blocks: Indices into ``blocks`` of the ``image`` blocks that got a
            figure link, in order; the k-th entry is ``![Figure k+1]`` in ``markdown``.
        has_grounding: False when the text had no ``<|ref|>`` at all (Free OCR).
    """

    markdown: str
    blocks: tuple[Block, ...]
    figure_blocks: tuple[int, ...]
    has_grounding: bool


def grid_to_bbox(box: Sequence[float], width: float, height: float) -> BBox:
    """Convert one ``[x0, y0, x1, y1]`` box from the 0-999 grid to page units.

    Values are clamped to the grid, so a box written past the edge still lands on the page;
    corners are sorted because the model sometimes swaps them.

    Args:
        box: Four grid values (x right, y down).
        width: Page width in the output unit (points or pixels).
        height: Page height in the same unit.

    Returns:
        ``(x0, y0, x1, y1)`` within ``[0, width] x [0, height]``, ``x0 <= x1``, ``y0 <= y1``.

    Raises:
        ValueError: ``box`` does not hold exactly four values.
    """
    if len(box) != 4:
        raise ValueError(f"a box needs 4 values, got {len(box)}")
    w, h = max(float(width), 0.0), max(float(height), 0.0)
    x0, y0, x1, y1 = (_clamp(float(v)) for v in box)
    (x0, x1), (y0, y1) = sorted((x0, x1)), sorted((y0, y1))
    return (x0 / GRID_MAX * w, y0 / GRID_MAX * h, x1 / GRID_MAX * w, y1 / GRID_MAX * h)


def parse_grounding(
    text: str,
    *,
    width: float,
    height: float,
    figure_name: Callable[[int], str] = lambda i: f"figure-{i + 1}.png",
) -> ParsedPage:
    """Parse raw model output for one page; never raises on any string.

    Each ``<|ref|>`` starts a block, so a missing or stray closing tag only affects its
    own block. ``image`` blocks with a box become ``![Figure k](figure_name(k - 1))``,
    because their body is a picture the caller crops from the page image.

    Args:
        text: Raw decoded model output, special tokens included or not.
        width: Page width in the output unit; block boxes are scaled to it.
        height: Page height in the output unit.
        figure_name: Maps a 0-based figure number to the file name the Markdown links.

    Returns:
        The page's Markdown, blocks and figure block indices.
    """
    text = _drop_partial_tag(_strip_tags(text, _SPECIAL_RE))
    head, *segments = text.split(_REF_OPEN)
    head = _strip_tags(head).strip()
    blocks: list[Block] = [Block("text", head)] if head else []
    for segment in segments:
        block = _parse_block(segment, width, height)
        if block is not None:
            blocks.append(block)
    parts: list[str] = []
    figures: list[int] = []
    for index, block in enumerate(blocks):
        part = block.text
        if block.label == "image" and block.bbox is not None:
            figures.append(index)
            link = f"![Figure {len(figures)}]({figure_name(len(figures) - 1)})"
            part = f"{link}\n{part}" if part else link
        if part:
            parts.append(part)
    return ParsedPage("\n\n".join(parts), tuple(blocks), tuple(figures), bool(segments))


def _clamp(value: float) -> float:
    """Clamp one grid value to ``[0, GRID_MAX]``; NaN counts as 0."""
    return 0.0 if math.isnan(value) else min(max(value, 0.0), float(GRID_MAX))


def _strip_tags(text: str, pattern: re.Pattern[str] = _TAG_RE) -> str:
    """Remove tags until none is left, as removing one can join the halves of another."""
    while True:
        stripped = pattern.sub("", text)
        if stripped == text:
            return text
        text = stripped


def _drop_partial_tag(text: str) -> str:
    """Drop a half-written tag that a cut-off generation left at the end of the text."""
    text = text.rstrip()
    cut = max(text.rfind("<|"), text.rfind("<｜"))
    if cut >= 0 and any(tag.startswith(text[cut:]) and tag != text[cut:] for tag in _TAGS):
        return text[:cut]
    return text


def _parse_block(segment: str, width: float, height: float) -> Block | None:
    """Parse the text after one ``<|ref|>``: label, optional boxes, then the body.

    Returns None for a bare label that was never closed (cut off at the end, or an
    outer ``<|ref|>`` the model abandoned for a nested one): it holds no page text.
    """
    ends = [i for i in (segment.find(_REF_CLOSE), segment.find(_DET_OPEN)) if i >= 0]
    stub = segment.strip().lower()
    if not ends and (not stub or any(known.startswith(stub) for known in _KNOWN_LABELS)):
        return None
    end = min(ends, default=len(segment))
    raw_label, rest = segment[:end], segment[end:]
    rest = rest.removeprefix(_REF_CLOSE)
    label, lost = raw_label.strip().lower(), ""
    if not ends or not _LABEL_RE.fullmatch(label):
        # No usable label: whatever stood there is text the model meant to show.
        label, lost = "text", raw_label
    boxes: tuple[BBox, ...] = ()
    if rest.lstrip().startswith(_DET_OPEN):
        payload, rest = _split_det(rest.lstrip()[len(_DET_OPEN) :])
        boxes = _parse_boxes(payload, width, height)
    body = "\n".join(part for part in (_strip_tags(lost).strip(), _strip_tags(rest).strip()) if part)
    return Block(label, body, _enclose(boxes), boxes)


def _split_det(after: str) -> tuple[str, str]:
    """Split the text after ``<|det|>`` into the coordinate payload and the body.

    A closed payload is taken whole when it is one line starting with a bracket, which
    covers garbled lists like ``[[a,b]]``; otherwise (never closed, or the close belongs
    to later prose) only a prefix made of coordinate characters is taken, so no prose is
    swallowed. A payload that does not start with a bracket is prose, left in the body.
    """
    close = after.find(_DET_CLOSE)
    if close >= 0:
        payload = after[:close]
        if "\n" not in payload and payload.strip(" \t")[:1] in ("", "["):
            return payload, after[close + len(_DET_CLOSE) :]
    if not after.lstrip(" \t").startswith("["):
        return "", after
    match = _DET_PREFIX_RE.match(after)
    end = match.end() if match else 0
    return after[:end], after[end:]


def _parse_boxes(payload: str, width: float, height: float) -> tuple[BBox, ...]:
    """Read every innermost ``[...]`` holding exactly four numbers and nothing else."""
    boxes: list[BBox] = []
    for group in _GROUP_RE.findall(payload):
        numbers = _NUMBER_RE.findall(group)
        if len(numbers) == 4 and not _NUMBER_RE.sub("", group).strip(" \t,"):
            boxes.append(grid_to_bbox([float(n) for n in numbers], width, height))
    return tuple(boxes)


def _enclose(boxes: Sequence[BBox]) -> BBox | None:
    """The smallest box holding all ``boxes``, or None when there are none."""
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
