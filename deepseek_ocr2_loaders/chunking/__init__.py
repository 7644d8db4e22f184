"""Framework-free chunking of DeepSeek-OCR-2 pages into token-bounded, heading-aware chunks.

:class:`MarkdownChunker` turns the :class:`~deepseek_ocr2_loaders.types.PageResult` stream
of :func:`~deepseek_ocr2_loaders.convert` (or plain Markdown) into :class:`Chunk` objects
that know their pages, heading path and layout boxes. Tables, math and code are never cut
inside; tables cut by a page break are joined again. The LangChain and LlamaIndex adapters
build on this package, which imports neither.
"""

from __future__ import annotations

from ._chunker import MarkdownChunker
from ._model import BoxRef, Chunk, ChunkPage
from ._options import ChunkOptions
from ._tokens import count_tokens

__all__ = ["BoxRef", "Chunk", "ChunkOptions", "ChunkPage", "MarkdownChunker", "count_tokens"]
