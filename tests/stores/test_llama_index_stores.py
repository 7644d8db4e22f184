"""LlamaIndex Documents through IngestionPipeline, a docstore, a vector index and Qdrant.

Embeddings are ``MockEmbedding``: a fake, because no embedding model can be downloaded here.
"""

from __future__ import annotations

import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.schema import MetadataMode
from llama_index.core.storage.docstore import SimpleDocumentStore
from llama_index.core.vector_stores import SimpleVectorStore
from qdrant_client import QdrantClient
from qdrant_client.models import Distance, PointStruct, VectorParams
from rag_corpus import OPTIONS, corpus, edit, pixel_engine

from deepseek_ocr2_loaders.llama_index import DeepSeekOCR2Reader, MarkdownStructureNodeParser

EMBED = MockEmbedding(embed_dim=8)


def load(paths, mode="page", **options):
    return DeepSeekOCR2Reader(engine=pixel_engine(), mode=mode, **OPTIONS, **options).load_data(paths)


@pytest.mark.parametrize("mode", ["page", "chunks", "elements", "single"])
def test_qdrant_accepts_every_id(tmp_path, mode):
    docs = load(corpus(tmp_path / "docs"), mode)
    client = QdrantClient(":memory:")
    client.create_collection("docs", vectors_config=VectorParams(size=8, distance=Distance.COSINE))
    client.upsert(
        "docs", [PointStruct(id=d.id_, vector=EMBED.get_text_embedding(d.text), payload=d.metadata) for d in docs]
    )
    assert client.count("docs").count == len(docs)


def test_pipeline_with_default_upserts_replaces_an_edited_files_nodes(tmp_path):
    folder = corpus(tmp_path / "docs")
    docstore, store = SimpleDocumentStore(), SimpleVectorStore()
    pipeline = IngestionPipeline(
        transformations=[MarkdownStructureNodeParser(chunk_size=24), EMBED], docstore=docstore, vector_store=store
    )
    splitter = MarkdownStructureNodeParser(chunk_size=24)
    first = pipeline.run(documents=load(folder))
    assert pipeline.run(documents=load(folder)) == []  # unchanged: nothing re-embedded
    edit(folder / "notes.pdf")
    rerun = pipeline.run(documents=load(folder))
    fresh = splitter.get_nodes_from_documents(load(folder))
    assert len(fresh) != len(first)  # the edit changed the chunk count: stale nodes would show
    assert set(store.data.embedding_dict) == {n.id_ for n in fresh}
    edited = splitter.get_nodes_from_documents(load(folder / "notes.pdf"))
    assert [n.id_ for n in rerun] == [n.id_ for n in edited]  # only the edited file is re-embedded


def test_chunks_delete_with_their_file(tmp_path):
    folder = corpus(tmp_path / "docs")
    docs = load(folder, "chunks")
    notes = [d for d in docs if d.metadata["file_name"] == "notes.pdf"]
    assert notes[0].ref_doc_id is not None and {d.ref_doc_id for d in notes} == {notes[0].ref_doc_id}
    assert notes[0].ref_doc_id not in {d.id_ for d in docs}
    vector_index = VectorStoreIndex(docs, embed_model=EMBED)
    vector_index.delete_ref_doc(notes[0].ref_doc_id, delete_from_docstore=True)
    left = set(vector_index.vector_store.data.embedding_dict)
    assert left == {d.id_ for d in docs if d.metadata["file_name"] != "notes.pdf"}


def test_embed_and_llm_text_keep_only_citation_metadata(tmp_path):
    folder = corpus(tmp_path / "docs")
    for mode in ("page", "chunks", "elements", "single"):
        for doc in load(folder / "notes.pdf", mode):
            for metadata_mode in (MetadataMode.EMBED, MetadataMode.LLM):
                keys = {line.split(":")[0] for line in doc.get_metadata_str(metadata_mode).splitlines()}
                assert keys == {"file_name", "page_label", "header_path"} & doc.metadata.keys(), mode
    nodes = MarkdownStructureNodeParser(chunk_size=24).get_nodes_from_documents(load(folder / "notes.pdf"))
    header = nodes[0].get_metadata_str(MetadataMode.EMBED)
    assert header.splitlines()[0].startswith("file_name: notes.pdf") and "sha256" not in header
