"""GitHub pipe tables: header line, delimiter row, body rows, one row per line."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ._markdown import is_pipe_separator

__all__ = ["PipeTable", "parse_pipe_table", "pipe_cells"]

_CELL_SPLIT_RE = re.compile(r"(?<!\\)\|")


def pipe_cells(line: str) -> list[str]:
    """Cell texts of one row; escaped ``\\|`` stays inside its cell."""
    inner = line.strip()
    if inner.startswith("|"):
        inner = inner[1:]
    if inner.endswith("|") and not inner.endswith("\\|"):
        inner = inner[:-1]
    return [cell.strip() for cell in _CELL_SPLIT_RE.split(inner)]


@dataclass(frozen=True)
class PipeTable:
    """A pipe table; ``header`` is the header line and the delimiter row, or empty without one."""

    header: tuple[str, ...]
    body: tuple[str, ...]

    @property
    def columns(self) -> int:
        """Cell count of the header line (of the first line without a header)."""
        first = self.header[0] if self.header else (self.body[0] if self.body else "")
        return len(pipe_cells(first)) if first else 0

    def render(self, body: Sequence[str]) -> str:
        """A complete table: the header (when there is one), then ``body`` lines."""
        return "\n".join([*self.header, *body])


def parse_pipe_table(text: str) -> PipeTable:
    """Split a pipe table into header (line + delimiter row) and body lines."""
    lines = [line.strip() for line in text.strip().split("\n") if line.strip()]
    if len(lines) >= 2 and is_pipe_separator(lines[1]):
        return PipeTable(tuple(lines[:2]), tuple(lines[2:]))
    return PipeTable((), tuple(lines))
