"""``ChunkOptions``: the validated knobs of :class:`MarkdownChunker`."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..errors import ConfigError
from ._tokens import DEFAULT_ENCODING, get_encoding

__all__ = ["MIN_CHUNK_SIZE", "ChunkOptions"]

logger = logging.getLogger(__name__)

MIN_CHUNK_SIZE = 16
"""Below this a chunk cannot hold a heading line and a sentence, so splitting degenerates."""


@dataclass(frozen=True)
class ChunkOptions:
    """How Markdown pages are cut into chunks; invalid values raise :class:`ConfigError`.

    Attributes:
        chunk_size: Most tokens a chunk may hold (tiktoken ``encoding``). The only chunks
            allowed above it are a single math block and a single table row (with its
            header), which cannot be cut without breaking them.
        chunk_overlap: Tokens of trailing prose of a chunk repeated at the start of the next
            chunk of the same section; ``0 <= chunk_overlap < chunk_size / 2`` so that every
            chunk still adds more new text than it repeats.
        encoding: tiktoken encoding name used for every count.
        tables_as_pipe: Rewrite simple HTML tables (no ``rowspan``/``colspan``, equal row
            widths) as GitHub pipe tables, which are shorter and read better in prompts.
        stitch_tables: Join a table that ends one page with the headerless table that starts
            the next one, as page-by-page OCR cuts tables at page breaks.
        repair_heading_levels: Derive heading levels from section numbers (``3.2`` -> 2),
            because OCR often writes every heading as ``##``.
    """

    chunk_size: int = 512
    chunk_overlap: int = 0
    encoding: str = DEFAULT_ENCODING
    tables_as_pipe: bool = False
    stitch_tables: bool = True
    repair_heading_levels: bool = True

    def __post_init__(self) -> None:
        for name in ("chunk_size", "chunk_overlap"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"{name} must be an int, got {value!r}")
        if self.chunk_size < MIN_CHUNK_SIZE:
            raise ConfigError(f"chunk_size must be at least {MIN_CHUNK_SIZE} tokens, got {self.chunk_size}")
        if self.chunk_overlap < 0 or 2 * self.chunk_overlap >= self.chunk_size:
            raise ConfigError(
                f"chunk_overlap must be >= 0 and less than half of chunk_size ({self.chunk_size}),"
                f" got {self.chunk_overlap}"
            )
        for name in ("tables_as_pipe", "stitch_tables", "repair_heading_levels"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if not isinstance(self.encoding, str) or not self.encoding:
            raise ConfigError(f"encoding must be a tiktoken encoding name, got {self.encoding!r}")
        get_encoding(self.encoding)  # fail here, naming the field, rather than at the first page
