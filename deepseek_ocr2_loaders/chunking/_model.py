"""What a chunker reads (:class:`ChunkPage`) and hands out (:class:`Chunk`, with the :class:`BoxRef` of its sources)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..types import Block

__all__ = ["BoxRef", "Chunk", "ChunkPage"]


class ChunkPage(Protocol):
    """The part of a page the chunker reads: a :class:`~deepseek_ocr2_loaders.types.PageResult`.

    Only these three, so a page rebuilt from a page Document's text and layout metadata is
    chunked exactly like the :class:`PageResult` it came from.
    """

    @property
    def page(self) -> int:
        """0-based page index."""
        ...

    @property
    def markdown(self) -> str:
        """The page Markdown (figure links are read from it)."""
        ...

    @property
    def blocks(self) -> Sequence[Block]:
        """Layout blocks in reading order; empty for plain Markdown."""
        ...


@dataclass(frozen=True)
class BoxRef:
    """Where on which page a chunk's text was read: one grounded layout block.

    Attributes:
        page: 0-based page index.
        label: The block's layout label (``text``, ``table``, ``title``, ...).
        bbox: ``(x0, y0, x1, y1)`` in the page's unit (points for PDFs, pixels for images).
    """

    page: int
    label: str
    bbox: tuple[float, float, float, float]


@dataclass(frozen=True)
class Chunk:
    """A piece of one document's Markdown that fits an embedding or prompt budget.

    Attributes:
        text: Markdown; a section's first chunk starts with the section's heading line.
        index: 0-based position of the chunk within its document.
        page: First 0-based page its text comes from.
        page_end: Last 0-based page its text comes from (inclusive).
        headers: The heading stack above the chunk, outermost first, as ``(level, title)``.
        token_count: ``count_tokens(text)`` under the chunker's encoding.
        element_types: Distinct labels of the blocks (or Markdown elements) it came from, in order.
        bboxes: One box per page block that contributed text, in reading order.
    """

    text: str
    index: int
    page: int
    page_end: int
    headers: tuple[tuple[int, str], ...]
    token_count: int
    element_types: tuple[str, ...]
    bboxes: tuple[BoxRef, ...]

    @property
    def header_path(self) -> str:
        """Heading titles joined by ``" > "`` (``"3 Methods > 3.2 Data"``); ``""`` outside any section."""
        return " > ".join(title for _, title in self.headers)

    def header_fields(self) -> dict[str, str]:
        """Headings as LangChain's ``MarkdownHeaderTextSplitter`` names them: ``{"Header 2": "3.2 Data"}``.

        Only levels present in :attr:`headers` appear, so the dict merges into flat metadata.
        """
        return {f"Header {level}": title for level, title in self.headers}
