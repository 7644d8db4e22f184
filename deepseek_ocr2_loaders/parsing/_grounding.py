"""Turn DeepSeek-OCR-2 grounding output into clean Markdown and layout blocks.

With ``<|grounding|>`` in the prompt the model writes, per layout block,
``<|ref|>LABEL<|/ref|><|det|>[[x0, y0, x1, y1], ...]<|/det|>`` and then the block's Markdown,
with coordinates on a 0-999 grid of the page image. Generation can stop at any token and the
model writes malformed heads (a label never closed, a ``<|det|>`` missing, a stray word or
label before the box), so every step degrades instead of raising: at worst a block loses its
box, never its text, no coordinate list reaches the text, and one bad page never fails a
document. Boxes are read by :mod:`.boxes`; model text is never evaluated.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..types import BBox, Block
from ._boxes import enclose, read_boxes
from ._captions import attach_caption_tables

__all__ = ["KNOWN_LABELS", "ParsedPage", "is_figure", "join_blocks", "parse_grounding"]

_REF_OPEN, _REF_CLOSE, _DET_OPEN, _DET_CLOSE = "<|ref|>", "<|/ref|>", "<|det|>", "<|/det|>"
_SPECIAL = r"<[|｜](?:begin|end)▁of▁sentence[|｜]>|<\|grounding\|>"
_SPECIAL_RE = re.compile(_SPECIAL)
_TAGS_ALT = r"<\|/?(?:ref|det)\|>|" + _SPECIAL
# A tag between two spaces takes one of them along, so "a <|det|> b" reads "a b".
_TAG_RE = re.compile(rf"(?: (?=(?:{_TAGS_ALT}) ))?(?:{_TAGS_ALT})")
# Tags that a cut-off generation can leave half-written at the very end of the text.
_TAGS = (_REF_OPEN, _REF_CLOSE, _DET_OPEN, _DET_CLOSE, "<|grounding|>", "<|end▁of▁sentence|>", "<｜end▁of▁sentence｜>")
_LABEL_RE = re.compile(r"[a-z][a-z0-9_\-]{0,31}")
KNOWN_LABELS = frozenset(
    "title sub_title text table table_caption table_footnote image image_caption image_footnote equation"
    " header footer page-number page_number footnote list code reference".split()
)
"""Labels the model is known to write. An unclosed ``<|ref|>`` holding only (a prefix of) one
of these is a label cut off or abandoned by the model; one alone on its line labels the block."""
# What a coordinate list can be made of, for a ``<|det|>`` that was never closed.
_DET_PREFIX_RE = re.compile(r"[\[\]\d.,+\- \t]*")
_HAS_BOX_RE = re.compile(r"\[\s*-?[\d.]+\s*,\s*-?[\d.]+\s*,\s*-?[\d.]+\s*,\s*-?[\d.]+\s*\]")


@dataclass(frozen=True)
class ParsedPage:
    """One page of model output, split into Markdown and grounded blocks.

    Attributes:
        markdown: Clean page Markdown; no grounding tags or special tokens remain.
        blocks: Layout blocks in the model's reading order.
        figure_blocks: Indices into ``blocks`` of the ``image`` blocks that got a
            figure link, in order; the k-th entry is ``![Figure k+1]`` in ``markdown``.
        has_grounding: False when the text had no ``<|ref|>`` at all (Free OCR).
        problems: What was repaired or dropped, one sentence each (garbled boxes, stray
            labels), so a page that lost a box says why.
    """

    markdown: str
    blocks: tuple[Block, ...]
    figure_blocks: tuple[int, ...]
    has_grounding: bool
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Head:
    """What stood between a block's label and its body."""

    boxes: tuple[BBox, ...] = ()
    problems: tuple[str, ...] = ()
    stray: str = ""  # text before the box that is not a label word: page text
    body: str = ""


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
        The page's Markdown, blocks, figure block indices and repairs made.
    """
    text = _drop_partial_tag(_strip_tags(text, _SPECIAL_RE))
    head, *segments = text.split(_REF_OPEN)
    head = _strip_tags(head).strip()
    blocks: list[Block] = [Block("text", head)] if head else []
    problems: list[str] = []
    for segment in segments:
        parsed = _parse_block(segment, width, height)
        if parsed is not None:
            block, found = parsed
            problems.extend(f"block {len(blocks)} ({block.label}): {problem}" for problem in found)
            blocks.append(block)
    blocks = attach_caption_tables(blocks)
    markdown = join_blocks(blocks, lambda k: f"![Figure {k + 1}]({figure_name(k)})")
    figures = tuple(i for i, block in enumerate(blocks) if is_figure(block))
    return ParsedPage(markdown, tuple(blocks), figures, bool(segments), tuple(problems))


def is_figure(block: Block) -> bool:
    """An ``image`` block with a box: a figure that can be cropped, so the Markdown links it."""
    return block.label == "image" and block.bbox is not None


def join_blocks(blocks: Sequence[Block], figure_link: Callable[[int], str]) -> str:
    """The page Markdown of ``blocks``: their texts in order, each figure preceded by its link.

    Args:
        blocks: The page's blocks in reading order.
        figure_link: The Markdown link of the k-th figure (0-based), or ``""`` to link none.
    """
    parts: list[str] = []
    figures = 0
    for block in blocks:
        part = block.text
        if is_figure(block):
            link, figures = figure_link(figures), figures + 1
            part = "\n".join(piece for piece in (link, part) if piece)
        if part:
            parts.append(part)
    return "\n\n".join(parts)


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


def _parse_block(segment: str, width: float, height: float) -> tuple[Block, tuple[str, ...]] | None:
    """Parse the text after one ``<|ref|>``: label, optional boxes, then the body.

    Returns None for a bare label that was never closed (cut off at the end, or an
    outer ``<|ref|>`` the model abandoned for a nested one): it holds no page text.
    """
    ends = [i for i in (segment.find(_REF_CLOSE), segment.find(_DET_OPEN)) if i >= 0]
    if not ends:
        stub = segment.strip().lower()
        if not stub or any(known.startswith(stub) for known in KNOWN_LABELS):
            return None
        first, newline, rest = segment.partition("\n")
        if newline and first.strip().lower() in KNOWN_LABELS:  # "<|ref|>equation\n\[ ... \]"
            return Block(first.strip().lower(), _strip_tags(rest).strip()), ()
        return Block("text", _strip_tags(segment).strip()), ()  # no label: it was page text
    end = min(ends)
    raw_label, rest = segment[:end], segment[end:].removeprefix(_REF_CLOSE)
    label, lost = raw_label.strip().lower(), ""
    if not _LABEL_RE.fullmatch(label):
        label, lost = "text", raw_label  # no usable label: whatever stood there is page text
    head = _read_head(rest, width, height)
    parts = (_strip_tags(part).strip() for part in (lost, head.stray, head.body))
    body = "\n".join(part for part in parts if part)
    return Block(label, body, enclose(head.boxes), head.boxes), head.problems


def _read_head(rest: str, width: float, height: float) -> _Head:
    """Find the coordinate list at the start of a block, wherever the model put it.

    On the head's line the list is the text after the last ``<|det|>`` before the first
    ``<|/det|>`` (``equation<|/ref|>math<|/ref|><|det|>[[...]]<|/det|>``), or a line-initial
    list closed by ``<|/det|>`` with no ``<|det|>`` at all. A ``<|det|>`` that was never closed
    takes only a prefix of coordinate characters, so no prose is swallowed. A single word
    before the list is a stray label and is dropped; anything else there is page text.
    """
    line, newline, after = rest.partition("\n")
    close = line.find(_DET_CLOSE)
    opened = line.rfind(_DET_OPEN, 0, close if close >= 0 else len(line))
    if opened >= 0:
        before, payload = line[:opened], line[opened + len(_DET_OPEN) : close if close >= 0 else len(line)]
        if not payload.lstrip(" \t").startswith("["):
            return _Head(body=rest)  # "<|det|>hello world": the model wrote prose there
        if close < 0:  # never closed: coordinates run up to the first other character
            tail = rest[opened + len(_DET_OPEN) :]
            match = _DET_PREFIX_RE.match(tail)
            payload, remainder = tail[: match.end() if match else 0], tail[match.end() if match else 0 :]
        else:
            remainder = line[close + len(_DET_CLOSE) :] + newline + after
    else:
        bare = line[:close] if close >= 0 else line
        if not (bare.lstrip(" \t").startswith("[") and _DET_PREFIX_RE.fullmatch(bare) and _HAS_BOX_RE.search(bare)):
            return _Head(body=rest)
        before, payload = "", bare  # "<|det|>" missing: "[150, 533, 789, 620]]<|/det|>"
        remainder = (line[close + len(_DET_CLOSE) :] if close >= 0 else "") + newline + after
    boxes, problems = read_boxes(payload, width, height)
    stray = _strip_tags(before).strip()
    if _LABEL_RE.fullmatch(stray.lower()):
        problems += (f"stray label {stray!r} before the box dropped",)
        stray = ""
    return _Head(boxes, problems, stray, remainder)
