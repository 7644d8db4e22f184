"""Split Markdown into atomic blocks: headings, paragraphs, tables, math and code.

The rules follow what DeepSeek-OCR-2 writes: HTML tables (often on one line, sometimes
after a caption on the same line), GitHub pipe tables, ``\\[ ... \\]`` and ``$$ ... $$``
display math, fenced code and ATX headings. Anything else is a paragraph; list items stay
inside their paragraph. Malformed input degrades to paragraphs, never raises: an unclosed
math block (none before a blank line) is prose, and an unclosed ``<table>`` ends at the
next blank line, as OCR cut off mid-table leaves it.
"""

from __future__ import annotations

import re

from ._headings import parse_atx
from ._segments import Kind

__all__ = ["is_pipe_separator", "split_markdown"]

_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})([^`]*)$")
_TABLE_OPEN_RE = re.compile(r"<table\b", re.IGNORECASE)
_TABLE_TAG_RE = re.compile(r"<(/?)table\b[^>]*>", re.IGNORECASE)
_BLANK_LINE_RE = re.compile(r"\n[ \t]*\n")
_SEPARATOR_RE = re.compile(r"^\s*\|?(?:\s*:?-+:?\s*\|)*\s*:?-+:?\s*\|?\s*$")
_MATH = (("$$", "$$"), ("\\[", "\\]"))

Block = tuple[Kind, str]


def is_pipe_separator(line: str) -> bool:
    """True for a pipe table's delimiter row (``| --- | :-: |``)."""
    return "|" in line and _SEPARATOR_RE.match(line) is not None


def split_markdown(text: str) -> list[Block]:
    """Cut ``text`` into ``(kind, text)`` blocks in order; headings keep their ``#`` line.

    Args:
        text: Markdown of one page or document.

    Returns:
        Non-empty blocks; joined with blank lines they hold every character of ``text``
        except blank-line and end-of-line whitespace.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks: list[Block] = []
    paragraph: list[str] = []

    def flush() -> None:
        body = "\n".join(paragraph).strip()
        if body:
            blocks.append(("text", body))
        paragraph.clear()

    pos = 0
    while pos < len(text):
        end = _line_end(text, pos)
        line = text[pos:end]
        if not line.strip():
            flush()
            pos = end + 1
            continue
        table = _TABLE_OPEN_RE.search(line)
        if table is not None:
            paragraph.append(line[: table.start()])
            flush()
            stop = _html_table_end(text, pos + table.start())
            blocks.append(("html_table", text[pos + table.start() : stop].strip()))
            pos = stop
            continue
        stop, kind = _special_block_end(text, pos, end, line)
        if kind is not None:
            flush()
            blocks.append((kind, text[pos:stop].strip("\n")))
            pos = stop + 1
            continue
        paragraph.append(line)
        pos = end + 1
    flush()
    return blocks


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end < 0 else end


def _special_block_end(text: str, pos: int, end: int, line: str) -> tuple[int, Kind | None]:
    """End offset and kind of a fence, math, heading or pipe table starting at ``pos``."""
    fence = _FENCE_RE.match(line)
    if fence is not None:
        return _fence_end(text, end, fence.group(1)), "code"
    stripped = line.strip()
    for opening, closing in _MATH:
        if stripped.startswith(opening):
            stop = _math_end(text, pos + line.index(opening) + len(opening), closing)
            if stop is not None:
                return stop, "math"
    if parse_atx(line) is not None:
        return end, "heading"
    next_line = text[end + 1 : _line_end(text, end + 1)] if end < len(text) else ""
    if stripped.startswith("|") or ("|" in line and is_pipe_separator(next_line)):
        while end < len(text):
            following = text[end + 1 : _line_end(text, end + 1)]
            if not following.strip() or "|" not in following:
                break
            end = _line_end(text, end + 1)
        return end, "pipe_table"
    return end, None


def _fence_end(text: str, end: int, fence: str) -> int:
    """End of the line closing a code fence, or of the text when it is never closed."""
    closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
    while end < len(text):
        start = end + 1
        end = _line_end(text, start)
        if closing.match(text[start:end]):
            return end
    return len(text)


def _math_end(text: str, after_open: int, closing: str) -> int | None:
    """End of the line closing a display-math block, or None if a blank line comes first."""
    close = text.find(closing, after_open)
    if close < 0:
        return None
    blank = _BLANK_LINE_RE.search(text, after_open, close)
    if blank is not None:
        return None
    return _line_end(text, close + len(closing))


def _html_table_end(text: str, start: int) -> int:
    """Offset just past the ``</table>`` matching the ``<table`` at ``start``.

    Nested tables are counted. An unclosed table ends at the next blank line or the end.
    """
    depth = 0
    for match in _TABLE_TAG_RE.finditer(text, start):
        depth += -1 if match.group(1) else 1
        if depth == 0:
            return match.end()
    blank = _BLANK_LINE_RE.search(text, start)
    return len(text) if blank is None else blank.start()
