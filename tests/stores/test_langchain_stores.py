"""LangChain Documents through real vector stores: Qdrant, Chroma, FAISS, LanceDB and the indexing API.

Embeddings are ``DeterministicFakeEmbedding``: a fake, because no embedding model can be
downloaded here; the stores only need vectors of a fixed size.
"""

from __future__ import annotations

import uuid

import chromadb
import lancedb
import pytest
from langchain_classic.indexes import SQLRecordManager, index
from langchain_community.vectorstores import FAISS
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import InMemoryVectorStore
from qdrant_client import QdrantClient
from qdrant_client.models import Distance, PointStruct, VectorParams
from rag_corpus import LETTER, NOTES, OPTIONS, corpus, edit, pixel_engine

from deepseek_ocr2_loaders.langchain import DeepSeekOCR2Loader

MODES = ["page", "chunks", "elements", "single"]
EMBED = DeterministicFakeEmbedding(size=8)


def load(paths, mode="chunks", **options):
    return DeepSeekOCR2Loader(paths, engine=pixel_engine(), mode=mode, **OPTIONS, **options).load()


@pytest.mark.parametrize("mode", MODES)
def test_qdrant_accepts_every_id(tmp_path, mode):
    docs = load(corpus(tmp_path / "docs"), mode)
    client = QdrantClient(":memory:")
    client.create_collection("docs", vectors_config=VectorParams(size=8, distance=Distance.COSINE))
    client.upsert(
        "docs",
        [PointStruct(id=d.id, vector=EMBED.embed_query(d.page_content), payload=d.metadata) for d in docs],
    )
    assert client.count("docs").count == len(docs)
    assert all(uuid.UUID(d.id).version == 5 for d in docs)


@pytest.mark.parametrize("mode", MODES)
def test_copies_of_one_pdf_do_not_collide_in_chroma_or_faiss(tmp_path, mode):
    docs = load(corpus(tmp_path / "docs"), mode)
    assert {d.metadata["sha256"] for d in docs if d.metadata["file_name"] == "notes.pdf"} == {
        d.metadata["sha256"] for d in docs if d.metadata["file_name"] == "notes-copy.pdf"
    }
    collection = chromadb.EphemeralClient().create_collection(f"docs-{mode}")
    collection.add(
        ids=[d.id for d in docs],
        documents=[d.page_content for d in docs],
        metadatas=[d.metadata for d in docs],
        embeddings=EMBED.embed_documents([d.page_content for d in docs]),
    )
    assert collection.count() == len(docs)
    faiss = FAISS.from_documents(docs, EMBED, ids=[d.id for d in docs])
    assert len(faiss.index_to_docstore_id) == len(docs)


def test_the_same_file_gives_the_same_ids_however_it_is_named(tmp_path, monkeypatch):
    folder = corpus(tmp_path / "docs")
    monkeypatch.chdir(folder)
    assert [d.id for d in load("notes.pdf")] == [d.id for d in load(folder / ".." / "docs" / "notes.pdf")]
    assert {d.metadata["source"] for d in load("notes.pdf")} == {str(folder / "notes.pdf")}


def test_re_adding_unchanged_files_duplicates_nothing_and_an_edit_overwrites(tmp_path):
    folder = corpus(tmp_path / "docs")
    store = InMemoryVectorStore(EMBED)
    store.add_documents(load(folder, "page"))
    store.add_documents(load(folder, "page"))
    first = dict(store.store)
    assert len(first) == len(load(folder, "page"))
    edit(folder / "notes.pdf")
    store.add_documents(load(folder / "notes.pdf", "page"))
    assert store.store.keys() == first.keys()
    changed = {key for key in first if store.store[key]["text"] != first[key]["text"]}
    assert changed == {d.id for d in load(folder / "notes.pdf", "page") if d.metadata["page"] == 0}


@pytest.mark.parametrize("mode", MODES)
def test_indexing_api_replaces_exactly_an_edited_files_records(tmp_path, mode):
    folder = corpus(tmp_path / "docs")
    manager = SQLRecordManager("docs", db_url=f"sqlite:///{tmp_path / 'records.db'}")
    manager.create_schema()
    store = InMemoryVectorStore(EMBED)

    def ingest(docs):
        return index(docs, manager, store, cleanup="incremental", source_id_key="source", key_encoder="sha256")

    everything = load(folder, mode)
    assert ingest(everything)["num_added"] == len(everything)
    assert ingest(load(folder, mode)) == {
        "num_added": 0,
        "num_updated": 0,
        "num_skipped": len(everything),
        "num_deleted": 0,
    }
    edit(folder / "notes.pdf", drop_last_page=True)
    edited = load(folder / "notes.pdf", mode)
    result = ingest(edited)
    assert result["num_deleted"] > 0
    stored = sorted((d["text"], d["metadata"]["source"]) for d in store.store.values())
    expected = sorted((d.page_content, d.metadata["source"]) for d in load(folder, mode))
    assert stored == expected


def test_chroma_deletes_one_file_by_source(tmp_path):
    folder = corpus(tmp_path / "docs")
    docs = load(folder)
    collection = chromadb.EphemeralClient().create_collection("delete")
    collection.add(
        ids=[d.id for d in docs],
        documents=[d.page_content for d in docs],
        metadatas=[d.metadata for d in docs],
        embeddings=EMBED.embed_documents([d.page_content for d in docs]),
    )
    collection.delete(where={"source": str(folder / "notes.pdf")})
    assert sorted(collection.get()["ids"]) == sorted(d.id for d in docs if d.metadata["file_name"] != "notes.pdf")


@pytest.mark.parametrize("mode", MODES)
def test_lancedb_takes_per_file_adds_into_one_table(tmp_path, mode):
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7 not really")
    everything = load([broken, NOTES, LETTER], mode, on_error="placeholder")
    assert len({frozenset(d.metadata) for d in everything}) == 1  # one schema, the placeholder's too
    db = lancedb.connect(tmp_path / "lance")
    table = None
    for path in (broken, NOTES, LETTER):
        docs = load(path, mode, on_error="placeholder")
        rows = [
            {"id": d.id, "text": d.page_content, "vector": EMBED.embed_query(d.page_content), **d.metadata}
            for d in docs
        ]
        table = db.create_table("docs", rows) if table is None else table
        if path is not broken:
            table.add(rows)
    assert table.count_rows() == 1 + len(load([NOTES, LETTER], mode))


def test_unnamed_blobs_are_named_by_their_content_and_do_not_delete_each_other(tmp_path):
    from langchain_core.documents.base import Blob

    from deepseek_ocr2_loaders.langchain import DeepSeekOCR2Parser

    parser = DeepSeekOCR2Parser(engine=pixel_engine(), mode="chunks", **OPTIONS)
    manager = SQLRecordManager("blobs", db_url=f"sqlite:///{tmp_path / 'records.db'}")
    manager.create_schema()
    store = InMemoryVectorStore(EMBED)
    uploads = [parser.parse(Blob.from_data(path.read_bytes())) for path in (NOTES, LETTER)]
    for docs in uploads:
        result = index(docs, manager, store, cleanup="incremental", source_id_key="source", key_encoder="sha256")
        assert result["num_deleted"] == 0
    assert len(store.store) == sum(map(len, uploads))
    sources = [{d.metadata["source"] for d in docs} for docs in uploads]
    assert [len(s) for s in sources] == [1, 1] and sources[0] != sources[1]
    assert next(iter(sources[0])) == f"sha256:{uploads[0][0].metadata['sha256']}"
    again = parser.parse(Blob.from_data(NOTES.read_bytes()))
    assert [d.id for d in again] == [d.id for d in uploads[0]]
