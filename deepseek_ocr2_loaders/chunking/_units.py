"""Cut a segment into the smallest pieces it may be split at, and rebuild any run of them.

Each kind has its own cut points: prose at sentence ends and line breaks, then (for a
sentence too long alone) at words, then (for a word too long alone, like a URL or a base64
blob) at characters; code between lines, each part re-fenced with the same info string;
tables between rows, each part a complete table that repeats the header; display math
nowhere. ``render(i, j)`` gives the Markdown of pieces ``i..j-1``, so the packer can take
as many as fit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

from ._html_tables import parse_html_table
from ._pipe_tables import parse_pipe_table
from ._segments import Origin, Segment

__all__ = ["Units", "sentence_spans", "to_pipe_segment", "units_of", "word_spans"]

Span = tuple[int, int]
_WHITESPACE_RE = re.compile(r"\s+")
_SENTENCE_END = ".!?…。"
_CLOSERS = "\"')]»”’*_"
_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


class Units(Protocol):
    """A segment as a sequence of pieces; any run of consecutive pieces renders to valid Markdown."""

    @property
    def count(self) -> int:
        """Number of pieces."""
        ...

    def render(self, start: int, stop: int) -> str:
        """Markdown of pieces ``start..stop-1``."""
        ...

    def origins(self, start: int, stop: int) -> tuple[Origin, ...]:
        """The blocks that pieces ``start..stop-1`` came from."""
        ...


def units_of(segment: Segment, too_big: Callable[[str], bool]) -> Units:
    """The pieces ``segment`` may be split into; ``too_big`` says a piece cannot stand alone."""
    if segment.kind in ("text", "heading"):
        prefix = "#" * segment.level + " " if segment.kind == "heading" else ""
        return _SpanUnits(segment.text, sentence_spans(segment.text), segment.origins, too_big, prefix=prefix)
    if segment.kind == "code":
        return _code_units(segment, too_big)
    if segment.kind in ("html_table", "pipe_table"):
        return _table_units(segment)
    return _SpanUnits(segment.text, [(0, len(segment.text))], segment.origins, lambda _: False)


def to_pipe_segment(segment: Segment) -> Segment:
    """``segment`` as a pipe table when it is a simple HTML table, else unchanged."""
    table = parse_html_table(segment.text) if segment.kind == "html_table" else None
    if table is None or not table.is_simple():
        return segment
    groups = segment.row_groups
    if groups:  # header rows after the first become pipe body rows, from the first part
        groups = ((groups[0][0] + len(table.header) - 1, groups[0][1]), *groups[1:])
    return replace(segment, kind="pipe_table", text=table.to_pipe(), row_groups=groups)


def word_spans(text: str, start: int = 0, stop: int | None = None) -> list[Span]:
    """Spans of the whitespace-separated words of ``text[start:stop]``."""
    stop = len(text) if stop is None else stop
    spans, pos = [], start
    for gap in _WHITESPACE_RE.finditer(text, start, stop):
        if gap.start() > pos:
            spans.append((pos, gap.start()))
        pos = gap.end()
    if stop > pos:
        spans.append((pos, stop))
    return spans


def sentence_spans(text: str) -> list[Span]:
    """Spans of sentences (and lines: list items end at line breaks) of ``text``."""
    spans, pos = [], 0
    for gap in _WHITESPACE_RE.finditer(text):
        end = gap.start() - 1
        while end >= 0 and text[end] in _CLOSERS:
            end -= 1
        if "\n" in gap.group(0) or (end >= 0 and text[end] in _SENTENCE_END):
            if gap.start() > pos:
                spans.append((pos, gap.start()))
            pos = gap.end()
    if len(text) > pos:
        spans.append((pos, len(text)))
    return spans


class _SpanUnits:
    """Pieces that are slices of one text; a run renders as the slice from its first to its last."""

    def __init__(
        self,
        text: str,
        spans: Sequence[Span],
        origins: tuple[Origin, ...],
        too_big: Callable[[str], bool],
        *,
        prefix: str = "",
        wrap: Callable[[str], str] = str.strip,
    ) -> None:
        self.text, self.prefix, self.wrap, self._origins = text, prefix, wrap, origins
        self.spans = _refine(text, list(spans), lambda s: too_big(self._render_slice(s, first=True)))

    @property
    def count(self) -> int:
        return len(self.spans)

    def _render_slice(self, piece: str, *, first: bool) -> str:
        return self.wrap((self.prefix if first else "") + piece)

    def render(self, start: int, stop: int) -> str:
        piece = self.text[self.spans[start][0] : self.spans[stop - 1][1]]
        return self._render_slice(piece, first=start == 0)

    def origins(self, start: int, stop: int) -> tuple[Origin, ...]:
        return self._origins


def _refine(text: str, spans: list[Span], too_big: Callable[[str], bool]) -> list[Span]:
    """Replace each span too big to stand alone by its words, and each such word by its characters."""
    out: list[Span] = []
    for start, stop in spans:
        if not too_big(text[start:stop]):
            out.append((start, stop))
            continue
        for word_start, word_stop in word_spans(text, start, stop):
            if too_big(text[word_start:word_stop]):
                out.extend((i, i + 1) for i in range(word_start, word_stop))
            else:
                out.append((word_start, word_stop))
    return out


def _code_units(segment: Segment, too_big: Callable[[str], bool]) -> Units:
    lines = segment.text.split("\n")
    fence = _FENCE_RE.match(lines[0])
    marker = fence.group(1) if fence else "```"
    if len(lines) > 1 and lines[-1].strip() and lines[-1].strip().strip(marker[0]) == "":
        lines = lines[:-1]  # the closing fence, rebuilt for every part
    opening, body = lines[0], "\n".join(lines[1:])

    def wrap(piece: str) -> str:
        return f"{opening}\n{piece}\n{marker}" if piece else f"{opening}\n{marker}"

    spans, pos = [], 0
    for line in body.split("\n") if body else []:
        spans.append((pos, pos + len(line)))
        pos += len(line) + 1
    return _SpanUnits(body, spans or [(0, 0)], segment.origins, too_big, wrap=wrap)


class _RowUnits:
    """Table body rows; a run renders as a complete table with the header rows first."""

    def __init__(self, text: str, rows: Sequence[str], render: Callable[[list[str]], str], segment: Segment) -> None:
        self.text, self.rows, self._render = text, list(rows), render
        self.first = segment.row_groups[0][1] if segment.row_groups else segment.origins
        self.row_origins: list[tuple[Origin, ...]] = []
        for size, origins in segment.row_groups:
            self.row_origins.extend([origins] * size)
        last = segment.row_groups[-1][1] if segment.row_groups else segment.origins
        self.row_origins.extend([last] * (len(self.rows) - len(self.row_origins)))

    @property
    def count(self) -> int:
        return len(self.rows)

    def render(self, start: int, stop: int) -> str:
        if start == 0 and stop == len(self.rows):
            return self.text
        return self._render(self.rows[start:stop])

    def origins(self, start: int, stop: int) -> tuple[Origin, ...]:
        found = list(self.first) if start == 0 else []
        for origins in self.row_origins[start:stop]:
            found.extend(origin for origin in origins if origin not in found)
        return tuple(found)


def _table_units(segment: Segment) -> Units:
    if segment.kind == "pipe_table":
        pipe = parse_pipe_table(segment.text)
        if pipe.body:
            return _RowUnits(segment.text, pipe.body, pipe.render, segment)
    else:
        html = parse_html_table(segment.text)
        if html is not None and html.body:
            return _RowUnits(segment.text, [row.source for row in html.body], html.render_rows, segment)
    return _SpanUnits(segment.text, [(0, len(segment.text))], segment.origins, lambda _: False)
