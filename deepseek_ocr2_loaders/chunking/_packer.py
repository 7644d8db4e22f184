"""The streaming packer: segments in, chunks out as soon as each one is closed.

Within a section, consecutive segments share a chunk while the joined text (``"\\n\\n"``
between segments) stays within ``chunk_size`` tokens, measured on the final text. A heading
closes the chunk and opens a section whose first chunk starts with the heading line. A
segment too big for a chunk of its own is split into the largest runs of pieces that fit,
starting in the open chunk (see :mod:`.units`); when even one piece does not fit an empty chunk (a display-math block,
or one table row with its header) it becomes a chunk of its own above the limit, the only
excess allowed, because cutting it would break it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from ._headings import HeadingStack
from ._model import BoxRef, Chunk
from ._options import ChunkOptions
from ._overlap import overlap_tail
from ._segments import HEADING, PROSE, Kind, Origin, Segment
from ._tokens import count_tokens
from ._units import Units, to_pipe_segment, units_of

__all__ = ["Packer"]

logger = logging.getLogger(__name__)

_JOIN = "\n\n"


@dataclass(frozen=True)
class _Item:
    """A run of pieces of one segment placed in the open chunk."""

    text: str
    kind: Kind
    label: str
    origins: tuple[Origin, ...]


class Packer:
    """Packs one document's segments into chunks; feed segments in reading order, then ``finish``."""

    def __init__(self, options: ChunkOptions) -> None:
        self.options = options
        self.headings = HeadingStack()
        self.items: list[_Item] = []
        self.overlap: _Item | None = None
        self.carry: _Item | None = None  # the prose the last closed chunk ended with
        self.index = 0

    def count(self, text: str) -> int:
        """Tokens of ``text`` under the configured encoding."""
        return count_tokens(text, self.options.encoding)

    def feed(self, segment: Segment) -> Iterator[Chunk]:
        """Place one segment; yields the chunks it closes."""
        if segment.kind == HEADING:
            yield from self._flush()
            self.carry = None  # overlap never crosses a section boundary
            self.headings.push(segment.level, segment.text)
        if self.options.tables_as_pipe:
            segment = to_pipe_segment(segment)
        units = units_of(segment, lambda text: self.count(text) > self.options.chunk_size)
        yield from self._place(segment, units)

    def finish(self) -> Iterator[Chunk]:
        """Close the last chunk."""
        yield from self._flush()

    def _place(self, segment: Segment, units: Units) -> Iterator[Chunk]:
        total = units.count
        whole = units.render(0, total)
        alone = self.count(whole) <= self.options.chunk_size
        if self.items and not self._fits(whole) and alone:
            # A segment that fits a chunk of its own is never split; an oversized one must be,
            # so its first pieces fill this chunk (a caption stays with its table's first rows).
            yield from self._flush()
        if alone and not self.items:  # nor split to make room for the overlap: the overlap gives way
            self._open()
            while self.overlap is not None and not self._fits(whole):
                self._shrink_overlap()
        start = 0
        while start < total:
            self._open()
            stop = self._largest_fit(units, start)
            if stop == start:
                if self.items:
                    yield from self._flush()
                    continue
                if self.overlap is not None:
                    self._shrink_overlap()
                    continue
                stop = start + 1
                logger.debug("an unsplittable %s piece is larger than chunk_size", segment.kind)
            self.items.append(_Item(units.render(start, stop), segment.kind, segment.label, units.origins(start, stop)))
            self.carry = None
            start = stop
            if start < total:
                yield from self._flush()

    def _text(self, extra: str | None = None) -> str:
        parts = [self.overlap.text] if self.overlap is not None else []
        parts.extend(item.text for item in self.items)
        if extra is not None:
            parts.append(extra)
        return _JOIN.join(parts)

    def _fits(self, candidate: str) -> bool:
        return self.count(self._text(candidate)) <= self.options.chunk_size

    def _largest_fit(self, units: Units, start: int) -> int:
        """Largest ``stop`` such that pieces ``start..stop-1`` fit the open chunk, ``start`` if none does."""
        total = units.count
        if start == 0 and self._fits(units.render(0, total)):  # the common case: it all fits
            return total
        low, high, step = start, total + 1, 1  # pieces up to low fit; up to high do not
        while start + step <= total:  # gallop, so that a long segment is never rendered whole again
            if not self._fits(units.render(start, start + step)):
                high = start + step
                break
            low = start + step
            step *= 2
        while high - low > 1:
            middle = (low + high) // 2
            if self._fits(units.render(start, middle)):
                low = middle
            else:
                high = middle
        return low

    def _open(self) -> None:
        """Start a fresh chunk with the overlap taken from the prose that closed the last one."""
        if self.items or self.overlap is not None or self.carry is None:
            return
        tail = overlap_tail(self.carry.text, self.options.chunk_overlap, self.count)
        if tail:
            self.overlap = _Item(tail, PROSE, self.carry.label, self.carry.origins)
        else:
            self.carry = None

    def _shrink_overlap(self) -> None:
        """Halve the overlap (keeping whole words) so that the next piece fits after it."""
        if self.overlap is None or self.carry is None:
            self.overlap = self.carry = None
            return
        tail = overlap_tail(self.carry.text, self.count(self.overlap.text) // 2, self.count)
        if tail:
            self.overlap = _Item(tail, PROSE, self.carry.label, self.carry.origins)
        else:
            self.overlap = self.carry = None

    def _flush(self) -> Iterator[Chunk]:
        if not self.items:
            self.overlap = None
            return
        parts = ([self.overlap] if self.overlap is not None else []) + self.items
        text = self._text()
        origins = [origin for part in parts for origin in part.origins]
        pages = [origin.page for origin in origins] or [0]
        chunk = Chunk(
            text=text,
            index=self.index,
            page=min(pages),
            page_end=max(pages),
            headers=self.headings.path,
            token_count=self.count(text),
            element_types=tuple(dict.fromkeys(part.label for part in parts)),
            bboxes=_boxes(origins),
        )
        self.index += 1
        self.carry = self.items[-1] if self.items[-1].kind == PROSE else None
        self.items, self.overlap = [], None
        yield chunk


def _boxes(origins: list[Origin]) -> tuple[BoxRef, ...]:
    """One box per (page, block), first appearance first; blocks without a box are skipped."""
    seen: set[tuple[int, int | None]] = set()
    boxes = []
    for origin in origins:
        if origin.box is not None and (origin.page, origin.block) not in seen:
            seen.add((origin.page, origin.block))
            boxes.append(origin.box)
    return tuple(boxes)
