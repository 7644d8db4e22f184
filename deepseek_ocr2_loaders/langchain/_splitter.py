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
        """Chunk the texts into Documents that keep and extend their metadata (page runs as one file).

        With ``add_start_index=True`` each chunk gets ``start_index``: where it starts in the
        text of the Document it starts in (a page Document for a chunk spanning pages); a
        section's first chunk is found by its heading's line, whose level the chunker may have
        repaired, any other by its text, as LangChain's splitters do. It is -1 where the text
        is not there verbatim (a table stitched across pages or cut between rows).
        """
        metadatas = metadatas or [{}] * len(texts)
        documents = []
        offsets = [0] * len(texts)
        for index, record in split_documents(list(zip(texts, metadatas, strict=True)), self.chunker):
            document = to_document(record)
            if self._add_start_index:
                start = _start_index(texts[index], record.text, offsets[index])
                document.metadata["start_index"] = start
                offsets[index] = max(offsets[index], start + 1)
            documents.append(document)
        return documents


def _start_index(text: str, chunk: str, offset: int) -> int:
    """Offset of ``chunk`` in ``text`` from ``offset`` on; a chunk opening a section by its heading's line."""
    first = chunk.split("\n", 1)[0]
    title = first.lstrip("#").strip()
    if not (first.startswith("#") and title):
        return text.find(chunk, offset)
    found = text.find(title, offset)  # the chunker may have re-levelled the heading: "## 3.2" -> "### 3.2"
    while found >= 0:
        line = text.rfind("\n", 0, found) + 1
        if line >= offset and not text[line:found].strip("# "):
            return line
        found = text.find(title, found + 1)
    return -1
