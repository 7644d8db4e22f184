"""Join a table cut by a page break: the end of page N and the start of page N+1.

OCR reads pages one at a time, so a long table comes back as two tables. The second part
continues the first when it has the same number of columns and does not start with a header
row of its own (a table that starts with a header is a new table). For pipe tables the
model always writes a header line and delimiter row, so there only the column count
decides, and a header line that repeats the first table's header is dropped.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace

from ._html_tables import HtmlTable, parse_html_table
from ._pipe_tables import parse_pipe_table, pipe_cells
from ._segments import Segment

__all__ = ["stitch_tables"]

logger = logging.getLogger(__name__)

_SPACE_RE = re.compile(r"\s+")


def stitch_tables(first: Segment, second: Segment) -> Segment | None:
    """The two tables joined into one segment, or None when ``second`` is not a continuation.

    Args:
        first: The table that ends a page.
        second: The first content segment of the next page.

    Returns:
        One table with the rows of both (header once) and the origins of both, or None.
    """
    if first.kind != second.kind:
        return None
    if first.kind == "html_table":
        joined = _join_html(first.text, second.text)
    elif first.kind == "pipe_table":
        joined = _join_pipe(first.text, second.text)
    else:
        return None
    if joined is None:
        return None
    text, first_rows, second_rows = joined
    groups = first.row_groups or ((first_rows, first.origins),)
    logger.debug("stitched a table across pages %d and %d", first.origins[0].page, second.origins[0].page)
    return replace(
        first,
        text=text,
        origins=first.origins + second.origins,
        row_groups=(*groups, (second_rows, second.origins)),
    )


def _join_html(first_text: str, second_text: str) -> tuple[str, int, int] | None:
    first, second = parse_html_table(first_text), parse_html_table(second_text)
    if first is None or second is None or first.columns != second.columns or first.columns == 0:
        return None
    lead = second.rows[0]
    if lead.header_cells or lead.in_thead or _same_cells(lead.cells, _header_cells(first)):
        return None
    rows = second.rows
    return first.render(first.body + rows), len(first.body), len(rows)


def _header_cells(table: HtmlTable) -> list[str]:
    return table.header[0].cells if table.header else []


def _join_pipe(first_text: str, second_text: str) -> tuple[str, int, int] | None:
    first, second = parse_pipe_table(first_text), parse_pipe_table(second_text)
    if first.columns != second.columns or first.columns == 0:
        return None
    rows = second.body
    if second.header and not (first.header and _same_cells(pipe_cells(second.header[0]), pipe_cells(first.header[0]))):
        rows = (second.header[0], *rows)  # the model's header line is a data row here
    return first.render(first.body + rows), len(first.body), len(rows)


def _same_cells(left: list[str], right: list[str]) -> bool:
    def norm(cells: list[str]) -> list[str]:
        return [_SPACE_RE.sub(" ", cell).strip().lower() for cell in cells]

    return bool(left) and norm(left) == norm(right)
