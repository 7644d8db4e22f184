"""``MarkdownStructureSplitter``: LangChain's TextSplitter over the core Markdown chunker."""

from __future__ import annotations

from typing import Any

from langchain_core.documents import Document
from langchain_text_splitters import TextSplitter

from ..chunking import ChunkOptions, MarkdownChunker, count_tokens
from ..records._splitting import split_documents
from ._documents import to_document

__all__ = ["MarkdownStructureSplitter"]


class MarkdownStructureSplitter(TextSplitter):
    """Split Markdown by its heading structure into token-bounded chunks.

    Tables, math blocks and code fences are never cut; oversized tables are split between
    rows with the header repeated. ``split_documents`` keeps each Document's metadata and
    adds ``header_path``, ``Header 1``..``Header 6``, ``token_count``, ``chunk_index`` (and
    ``page``/``page_end`` for Documents from :class:`DeepSeekOCR2Loader`). Handed a file's
    page Documents (consecutive, in page order) it gives exactly the chunks of
    ``mode="chunks"``: same texts, boxes, heading paths and tables across pages, and ids.

    Example:
        .. code-block:: python

            splitter = MarkdownStructureSplitter(chunk_size=512)
            chunks = splitter.split_documents(DeepSeekOCR2Loader("paper.pdf").load())
    """

    def __init__(
        self, chunk_size: int = 512, chunk_overlap: int = 0, *, tables_as_pipe: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(chunk_size=chunk_size, chunk_overlap=chunk_overlap, length_function=count_tokens, **kwargs)
        self.chunker = MarkdownChunker(
            ChunkOptions(chunk_size=chunk_size, chunk_overlap=chunk_overlap, tables_as_pipe=tables_as_pipe)
        )

    def split_text(self, text: str) -> list[str]:
        """Chunk texts of one Markdown string."""
        return [chunk.text for chunk in self.chunker.chunk_text(text)]

    def create_documents(self, texts: list[str], metadatas: list[dict[Any, Any]] | None = None) -> list[Document]:
        """Chunk the texts into Documents that keep and extend their metadata (page runs as one file)."""
        metadatas = metadatas or [{}] * len(texts)
        pairs = list(zip(texts, metadatas, strict=True))
        return [to_document(record) for _, record in split_documents(pairs, self.chunker)]
