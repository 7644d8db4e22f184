"""``MarkdownStructureSplitter`` honours LangChain's ``add_start_index``."""

from __future__ import annotations

from langchain_core.documents import Document
from scripted_paper import paper_engine, write_paper

from deepseek_ocr2_loaders.langchain import DeepSeekOCR2Loader, MarkdownStructureSplitter


def test_start_index_is_where_each_chunk_starts_in_the_page_document_it_starts_in(tmp_path):
    pages = DeepSeekOCR2Loader(write_paper(tmp_path / "paper.pdf"), engine=paper_engine()).load()
    chunks = MarkdownStructureSplitter(chunk_size=64, add_start_index=True).split_documents(pages)
    texts = {page.metadata["page"]: page.page_content for page in pages}
    located = [chunk for chunk in chunks if chunk.metadata["start_index"] >= 0]
    for chunk in located:
        at = texts[chunk.metadata["page"]][chunk.metadata["start_index"] :]
        first, _, rest = chunk.page_content.partition("\n")
        assert at.split("\n", 1)[0].lstrip("# ") == first.lstrip("# ") and rest in at  # headings may be re-levelled
    missing = [chunk.page_content for chunk in chunks if chunk not in located]
    assert len(located) >= 6 and all(text.startswith("<table>") for text in missing)  # tables cut between rows
    assert "start_index" not in MarkdownStructureSplitter(chunk_size=64).split_documents(pages)[0].metadata


def test_start_index_of_repeated_text_follows_the_order_of_the_chunks():
    text = "# Same\n\nThe very same words.\n\n# Same\n\nThe very same words."
    chunks = MarkdownStructureSplitter(chunk_size=32, add_start_index=True).split_documents([Document(text)])
    assert [chunk.metadata["start_index"] for chunk in chunks] == [0, text.rindex("# Same")]
