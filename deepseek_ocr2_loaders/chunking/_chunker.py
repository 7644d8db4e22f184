"""``MarkdownChunker``: one document's OCR pages (or plain Markdown) in, chunks out, streaming.

Pages are read lazily and each chunk is yielded as soon as it is closed, so a long PDF can
be chunked while later pages are still being read. The one look-ahead: a table that ends a
page is held back until the next page shows whether it continues there (table stitching),
since the chunk holding it cannot close before that is known.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from ._model import Chunk, ChunkPage
from ._options import ChunkOptions
from ._packer import Packer
from ._pages import markdown_segments, page_segments
from ._segments import TABLE_KINDS, Segment
from ._stitching import stitch_tables

__all__ = ["MarkdownChunker"]

logger = logging.getLogger(__name__)


class MarkdownChunker:
    """Split OCR Markdown into token-bounded, heading-aware chunks.

    Rules, in short: a heading (ATX, or a ``title``/``sub_title`` block) closes the chunk and
    opens a section whose first chunk starts with the heading line (written at its repaired
    level); within a section consecutive segments share a chunk while it stays within
    ``chunk_size`` tokens; tables, display math and code are never cut inside. A segment too
    large for any chunk is split: prose at sentences, then words, then characters; tables
    between rows with the header repeated; code between lines, re-fenced. A display-math
    block or a single table row that alone exceeds ``chunk_size`` stays whole, the only
    chunks allowed above the limit. Blocks labelled ``header``, ``footer`` or ``page_number``
    are dropped (the model seldom writes these labels); failed pages add nothing but do not
    reset the heading path.

    Examples:
        >>> chunker = MarkdownChunker(ChunkOptions(chunk_size=256))
        >>> [c.header_path for c in chunker.chunk_text("# 1 Intro\\n\\nHello.")]
        ['1 Intro']
    """

    def __init__(self, options: ChunkOptions | None = None) -> None:
        self.options = options if options is not None else ChunkOptions()

    def chunk_pages(self, pages: Iterable[ChunkPage]) -> Iterator[Chunk]:
        """Chunk one document's pages, given in page order; chunk indices start at 0.

        Args:
            pages: The document's :class:`~deepseek_ocr2_loaders.types.PageResult` objects,
                for example ``convert(...)`` (any :class:`ChunkPage`); consumed one page at a time.

        Yields:
            Chunks in reading order, each as soon as it is complete.
        """
        packer = Packer(self.options)
        held: Segment | None = None  # a table that ended the previous page
        held_page = -1
        last_page: int | None = None
        for page in pages:
            if last_page is not None and page.page <= last_page:
                logger.warning(
                    "page %d after page %d: chunk_pages expects one document in page order", page.page, last_page
                )
            last_page = page.page
            segments = page_segments(page, repair=self.options.repair_heading_levels)
            if held is not None:
                joined = stitch_tables(held, segments[0]) if segments and page.page == held_page + 1 else None
                if joined is not None:
                    segments[0] = joined
                else:
                    yield from packer.feed(held)
                held = None
            if self.options.stitch_tables and segments and segments[-1].kind in TABLE_KINDS:
                held, held_page = segments.pop(), page.page
            for segment in segments:
                yield from packer.feed(segment)
        if held is not None:
            yield from packer.feed(held)
        yield from packer.finish()

    def chunk_text(self, markdown: str, *, page: int = 0) -> list[Chunk]:
        """Chunk plain Markdown (no layout boxes) by the same rules; every chunk is on ``page``.

        Args:
            markdown: A Markdown document.
            page: The 0-based page to report for every chunk.

        Returns:
            The chunks, indexed from 0; ``bboxes`` is empty.
        """
        packer = Packer(self.options)
        chunks: list[Chunk] = []
        for segment in markdown_segments(markdown, page=page, repair=self.options.repair_heading_levels):
            chunks.extend(packer.feed(segment))
        chunks.extend(packer.finish())
        return chunks
