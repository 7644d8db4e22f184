"""``Segment``: one atomic unit of page content on its way to a chunk, with its provenance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ._model import BoxRef

__all__ = ["HEADING", "KIND_LABELS", "PROSE", "TABLE_KINDS", "Kind", "Origin", "Segment"]

Kind = Literal["heading", "text", "html_table", "pipe_table", "math", "code"]
"""How a segment may be cut: prose at sentences/words, tables at rows, code at lines, math never."""

HEADING: Kind = "heading"
PROSE: Kind = "text"
TABLE_KINDS: frozenset[str] = frozenset({"html_table", "pipe_table"})

KIND_LABELS: dict[str, str] = {
    "heading": "heading",
    "text": "text",
    "html_table": "table",
    "pipe_table": "table",
    "math": "equation",
    "code": "code",
}
"""``element_types`` label of a segment read from plain Markdown (no layout block)."""


@dataclass(frozen=True)
class Origin:
    """The page block a segment's text was read from.

    Attributes:
        page: 0-based page.
        block: Index of the block within its page, the identity used to list each box once;
            None for plain Markdown.
        box: The block's box, or None when it has none.
    """

    page: int
    block: int | None = None
    box: BoxRef | None = None


@dataclass(frozen=True)
class Segment:
    """A unit that is never split unless it alone exceeds the chunk size.

    Attributes:
        kind: Decides how it may be split.
        text: Its Markdown (a heading's ``text`` is its title, without ``#``).
        label: Its ``element_types`` label.
        origins: Blocks it came from, in order (several after table stitching).
        level: Heading level (headings only).
        row_groups: For stitched tables: ``(body_rows, origins)`` per joined part, in order,
            so that each part of a split table names only the pages its rows came from.
    """

    kind: Kind
    text: str
    label: str
    origins: tuple[Origin, ...]
    level: int = 0
    row_groups: tuple[tuple[int, tuple[Origin, ...]], ...] = ()
