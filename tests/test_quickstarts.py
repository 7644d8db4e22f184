"""The README quick starts, end to end: loader -> splitter -> vector store -> search.

The embedding models are fakes (LangChain's DeterministicFakeEmbedding, LlamaIndex's
MockEmbedding): real embedding weights cannot be downloaded here. Everything else is real.
"""

from __future__ import annotations

from scripted_paper import paper_engine, write_paper


def test_langchain_quick_start(tmp_path):
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_core.vectorstores import InMemoryVectorStore

    from deepseek_ocr2_loaders.langchain import DeepSeekOCR2Loader, MarkdownStructureSplitter

    write_paper(tmp_path / "paper.pdf")
    pages = DeepSeekOCR2Loader(tmp_path, engine=paper_engine()).load()
    chunks = MarkdownStructureSplitter(chunk_size=128).split_documents(pages)
    store = InMemoryVectorStore.from_documents(chunks, embedding=DeterministicFakeEmbedding(size=32))
    query = next(c.page_content for c in chunks if "tenfold" in c.page_content)
    (hit,) = store.similarity_search(query, k=1)  # identical text embeds identically
    assert hit.metadata["header_path"] == "4 Results" and hit.metadata["page_number"] == 4
    assert len(store.store) == len(chunks)  # deterministic ids: no duplicates
    store.add_documents(chunks)
    assert len(store.store) == len(chunks)  # re-ingestion upserts


def test_llama_index_quick_start(tmp_path):
    from llama_index.core import SimpleDirectoryReader, VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.ingestion import IngestionPipeline

    from deepseek_ocr2_loaders.llama_index import DeepSeekOCR2Reader, MarkdownStructureNodeParser

    write_paper(tmp_path / "paper.pdf")
    reader = DeepSeekOCR2Reader(engine=paper_engine())
    documents = SimpleDirectoryReader(str(tmp_path), file_extractor={".pdf": reader}).load_data()
    nodes = IngestionPipeline(transformations=[MarkdownStructureNodeParser(chunk_size=128)]).run(documents=documents)
    index = VectorStoreIndex(nodes, embed_model=MockEmbedding(embed_dim=8))
    assert len(index.docstore.docs) == len(nodes)
    assert {n.metadata["page"] for n in nodes} == {0, 1, 2, 3}
