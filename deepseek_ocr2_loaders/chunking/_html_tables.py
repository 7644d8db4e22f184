"""HTML tables as the model writes them: read rows with ``html.parser``, rebuild valid parts.

Only the structure needed for chunking is read: each row's source text (so rows are copied
verbatim, attributes and inline markup included), its cells' text, ``th`` use and spans.
Tables are rebuilt as ``<table ...>`` + header rows + some body rows + ``</table>``, which
keeps every part of a split table a complete table with its header.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser

__all__ = ["HtmlRow", "HtmlTable", "parse_html_table"]

_SECTION_TAG_RE = re.compile(r"</?(?:thead|tbody|tfoot)\b[^>]*>", re.IGNORECASE)
_SPACE_RE = re.compile(r"\s+")


@dataclass
class HtmlRow:
    """One ``<tr>``: its exact source text and what the chunker needs to know of its cells."""

    source: str
    cells: list[str] = field(default_factory=list)
    header_cells: int = 0
    spans: bool = False
    width: int = 0
    in_thead: bool = False


@dataclass(frozen=True)
class HtmlTable:
    """A parsed table; ``header`` is its ``<thead>`` rows, else its first row."""

    open_tag: str
    preamble: str
    header: tuple[HtmlRow, ...]
    body: tuple[HtmlRow, ...]
    header_in_thead: bool
    has_tbody: bool
    nested: bool

    @property
    def rows(self) -> tuple[HtmlRow, ...]:
        """Every row, header first."""
        return self.header + self.body

    @property
    def columns(self) -> int:
        """Width of the widest row, counting ``colspan``."""
        return max((row.width for row in self.rows), default=0)

    def render(self, body: Sequence[HtmlRow]) -> str:
        """A complete table holding the header rows and then ``body`` rows."""
        return self.render_rows([row.source for row in body])

    def render_rows(self, body: Sequence[str]) -> str:
        """A complete table holding the header rows and then the rows whose source is ``body``."""
        parts = [self.open_tag, self.preamble]
        if self.header:
            rows = "".join(row.source for row in self.header)
            parts.append(f"<thead>{rows}</thead>" if self.header_in_thead else rows)
        if body:
            rows = "".join(body)
            parts.append(f"<tbody>{rows}</tbody>" if self.has_tbody else rows)
        parts.append("</table>")
        return "".join(parts)

    def is_simple(self) -> bool:
        """No spans, no nested table and every row equally wide: a pipe table can hold it."""
        rows = self.rows
        width = len(rows[0].cells) if rows else 0
        return width > 0 and not self.nested and all(not r.spans and len(r.cells) == width for r in rows)

    def to_pipe(self) -> str:
        """GitHub pipe table of a simple table: first row as header, ``|`` escaped, spaces collapsed."""
        rows = [[_SPACE_RE.sub(" ", cell).strip().replace("|", "\\|") for cell in row.cells] for row in self.rows]
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join(" --- " for _ in rows[0]) + "|"]
        lines.extend("| " + " | ".join(row) + " |" for row in rows[1:])
        return "\n".join(lines)


def parse_html_table(source: str) -> HtmlTable | None:
    """Parse the one table that ``source`` holds, or None when no row can be found."""
    scanner = _Scanner(source)
    scanner.feed(source)
    scanner.close()
    scanner.end_row(len(source))
    rows = scanner.rows
    if not rows or scanner.open_tag is None:
        return None
    preamble = _SECTION_TAG_RE.sub("", source[scanner.open_end : scanner.first_row_start]).strip()
    thead = [row for row in rows if row.in_thead]
    count = len(thead) if thead and all(row.in_thead for row in rows[: len(thead)]) else 1
    return HtmlTable(
        open_tag=scanner.open_tag,
        preamble=preamble,
        header=tuple(rows[:count]),
        body=tuple(rows[count:]),
        header_in_thead=count == len(thead),
        has_tbody=scanner.has_tbody,
        nested=scanner.nested,
    )


class _Scanner(HTMLParser):
    """Collects the top-level rows of one table with their source offsets."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.line_starts = [0] + [i + 1 for i, char in enumerate(source) if char == "\n"]
        self.rows: list[HtmlRow] = []
        self.open_tag: str | None = None
        self.open_end = 0
        self.first_row_start = len(source)
        self.has_tbody = self.nested = self.in_thead = False
        self.depth = 0
        self.row_start: int | None = None
        self.row: HtmlRow | None = None
        self.cell: list[str] | None = None

    def position(self) -> int:
        line, column = self.getpos()
        return self.line_starts[line - 1] + column

    def end_row(self, end: int) -> None:
        self.close_cell()
        if self.row is not None and self.row_start is not None:
            self.row.source = self.source[self.row_start : end].strip()
            self.rows.append(self.row)
        self.row, self.row_start = None, None

    def close_cell(self) -> None:
        if self.cell is not None and self.row is not None:
            self.row.cells.append("".join(self.cell))
        self.cell = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.depth += 1
            if self.depth == 1 and self.open_tag is None:
                self.open_tag = self.get_starttag_text() or "<table>"
                self.open_end = self.position() + len(self.open_tag)
            self.nested = self.nested or self.depth > 1
        elif self.depth == 1 and tag == "tr":
            self.end_row(self.position())
            self.row_start = self.position()
            self.first_row_start = min(self.first_row_start, self.row_start)
            self.row = HtmlRow("", in_thead=self.in_thead)
        elif self.depth == 1 and tag in ("td", "th"):
            self.start_cell(tag, dict(attrs))
        elif self.depth == 1 and tag in ("thead", "tbody", "tfoot"):
            self.end_row(self.position())
            self.in_thead = tag == "thead"
            self.has_tbody = self.has_tbody or tag == "tbody"
        elif tag == "br" and self.cell is not None:
            self.cell.append(" ")

    def start_cell(self, tag: str, attrs: dict[str, str | None]) -> None:
        self.close_cell()
        if self.row is None:  # a cell outside any <tr>: open the row implicitly
            self.row_start = self.position()
            self.first_row_start = min(self.first_row_start, self.row_start)
            self.row = HtmlRow("", in_thead=self.in_thead)
        spans = [_span(attrs.get(name)) for name in ("colspan", "rowspan")]
        self.row.spans = self.row.spans or any(span > 1 for span in spans)
        self.row.width += spans[0]
        self.row.header_cells += tag == "th"
        self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            if self.depth == 1:
                self.end_row(self.position())
            self.depth -= 1
        elif self.depth == 1 and tag == "tr":
            start = self.position()
            self.end_row(self.source.find(">", start) + 1 or len(self.source))
        elif self.depth == 1 and tag in ("td", "th"):
            self.close_cell()
        elif self.depth == 1 and tag in ("thead", "tbody", "tfoot"):
            self.end_row(self.position())
            self.in_thead = False

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def _span(value: str | None) -> int:
    try:
        return max(int(value or "1"), 1)
    except ValueError:
        return 1
