"""Heading lines: parse ATX headings, repair their levels from section numbers, keep the stack.

Page-by-page OCR writes most headings as ``##`` whatever their depth, but papers and reports
number their sections, and ``3.2.1`` says plainly that a heading is at depth 3. A section
number is one or two digits (so a year such as ``2024 Annual Report`` is not taken for one)
or an appendix letter followed by a number (``A.1``), then more ``.number`` parts.
"""

from __future__ import annotations

import re

__all__ = ["HeadingStack", "parse_atx", "repair_level", "section_depth"]

_ATX_RE = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_NUMBER_RE = re.compile(r"^(?:\d{1,2}|[A-Z](?=\.\d))(?:\.\d{1,3})*(?=\.?\s)")
MAX_LEVEL = 6


def parse_atx(line: str) -> tuple[int, str] | None:
    """``(level, title)`` of an ATX heading line (``## 3.2 Data``), or None for any other line."""
    match = _ATX_RE.match(line)
    if match is None or not match.group(2).strip():
        return None
    return len(match.group(1)), match.group(2).strip()


def section_depth(title: str) -> int | None:
    """Number of parts of the section number that starts ``title`` (``3.2.1 Setup`` -> 3), or None."""
    match = _NUMBER_RE.match(title)
    if match is None:
        return None
    return min(match.group(0).count(".") + 1, MAX_LEVEL)


def repair_level(level: int, title: str, *, repair: bool) -> int:
    """The level to use for a heading: from its section number when ``repair`` and it has one."""
    depth = section_depth(title) if repair else None
    return depth if depth is not None else min(max(level, 1), MAX_LEVEL)


class HeadingStack:
    """The headings above the current position; a level-k heading closes levels >= k.

    It lives for a whole document, so a chunk on page 5 still knows it is under the
    ``3 Methods > 3.2 Data`` that page 4 opened.
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []

    def push(self, level: int, title: str) -> None:
        """Enter a heading: pop every open heading at ``level`` or deeper, then add it."""
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, title))

    @property
    def path(self) -> tuple[tuple[int, str], ...]:
        """The open headings, outermost first."""
        return tuple(self._stack)
