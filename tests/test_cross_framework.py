"""For the same input, LangChain and LlamaIndex give the same texts, metadata and ids."""

from __future__ import annotations

import pytest
from scripted_paper import paper_engine, write_paper

from deepseek_ocr2_loaders.langchain import DeepSeekOCR2Loader, MarkdownStructureSplitter
from deepseek_ocr2_loaders.llama_index import DeepSeekOCR2Reader, MarkdownStructureNodeParser


@pytest.mark.parametrize("mode", ["page", "single", "elements", "chunks"])
def test_same_texts_metadata_and_ids(tmp_path, mode):
    paper = write_paper(tmp_path / "paper.pdf")
    lc = DeepSeekOCR2Loader(paper, engine=paper_engine(), mode=mode, chunk_size=128).load()
    li = DeepSeekOCR2Reader(engine=paper_engine(), mode=mode, chunk_size=128).load_data(paper)
    assert [d.page_content for d in lc] == [d.text for d in li]
    assert [d.metadata for d in lc] == [d.metadata for d in li]
    assert [d.id for d in lc] == [d.id_ for d in li]


def test_splitter_and_node_parser_agree(tmp_path):
    paper = write_paper(tmp_path / "paper.pdf")
    lc = MarkdownStructureSplitter(chunk_size=64).split_documents(
        DeepSeekOCR2Loader(paper, engine=paper_engine()).load()
    )
    documents = DeepSeekOCR2Reader(engine=paper_engine()).load_data(paper)
    li = MarkdownStructureNodeParser(chunk_size=64).get_nodes_from_documents(documents)
    assert [d.page_content for d in lc] == [n.text for n in li]
    assert [d.metadata for d in lc] == [n.metadata for n in li]
    assert [d.id for d in lc] == [n.id_ for n in li]


def test_pages_delimiter_joins_single_documents_alike(tmp_path):
    paper = write_paper(tmp_path / "paper.pdf")
    lc = DeepSeekOCR2Loader(paper, engine=paper_engine(), mode="single", pages_delimiter="\n\f").load()
    li = DeepSeekOCR2Reader(engine=paper_engine(), mode="single", pages_delimiter="\n\f").load_data(paper)
    assert lc[0].page_content == li[0].text and li[0].text.count("\n\f") == 3
