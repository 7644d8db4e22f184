"""LangChain: the loader under the shared contract, plus GenericLoader and the splitter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from contract import LoaderContract
from scripted_paper import paper_engine, write_paper

from deepseek_ocr2_loaders.langchain import DeepSeekOCR2Loader, DeepSeekOCR2Parser, MarkdownStructureSplitter


class TestLangChainLoader(LoaderContract):
    def load(self, paths: list[Path], **options: Any):
        return [(d.page_content, d.metadata, d.id) for d in DeepSeekOCR2Loader(paths, **options).load()]

    async def aload(self, paths: list[Path], **options: Any):
        return [(d.page_content, d.metadata, d.id) async for d in DeepSeekOCR2Loader(paths, **options).alazy_load()]


def test_lazy_load_yields_before_the_last_page_is_read(tmp_path):
    engine = paper_engine(batch_size=1)
    documents = DeepSeekOCR2Loader(write_paper(tmp_path / "paper.pdf"), engine=engine).lazy_load()
    first = next(documents)
    assert first.metadata["page"] == 0 and engine.calls == [1]
    assert len(list(documents)) == 3 and engine.calls == [1, 1, 1, 1]


def test_generic_loader_over_a_folder_of_blobs(tmp_path):
    from langchain_community.document_loaders.blob_loaders import FileSystemBlobLoader
    from langchain_community.document_loaders.generic import GenericLoader

    write_paper(tmp_path / "a.pdf")
    write_paper(tmp_path / "b.pdf")
    loader = GenericLoader(FileSystemBlobLoader(tmp_path, glob="*.pdf"), DeepSeekOCR2Parser(engine=paper_engine()))
    docs = loader.load()
    assert [(d.metadata["file_name"], d.metadata["page"]) for d in docs] == [
        ("a.pdf", 0),
        ("a.pdf", 1),
        ("a.pdf", 2),
        ("a.pdf", 3),
        ("b.pdf", 0),
        ("b.pdf", 1),
        ("b.pdf", 2),
        ("b.pdf", 3),
    ]
    assert docs[0].metadata["source"] == str(tmp_path / "a.pdf")


def test_parser_reads_an_in_memory_blob(tmp_path):
    from langchain_core.documents.base import Blob

    data = write_paper(tmp_path / "mem.pdf").read_bytes()
    docs = list(DeepSeekOCR2Parser(engine=paper_engine()).lazy_parse(Blob.from_data(data, path="s3://bucket/mem.pdf")))
    assert len(docs) == 4 and docs[0].metadata["source"] == "s3://bucket/mem.pdf"


def test_splitter_keeps_and_extends_page_metadata(tmp_path):
    pages = DeepSeekOCR2Loader(write_paper(tmp_path / "paper.pdf"), engine=paper_engine()).load()
    chunks = MarkdownStructureSplitter(chunk_size=64).split_documents(pages)
    assert len(chunks) > len(pages)
    for chunk in chunks:
        assert chunk.metadata["file_name"] == "paper.pdf" and chunk.metadata["token_count"] <= 64
        assert "header_path" in chunk.metadata and chunk.id
    methods = [c for c in chunks if c.metadata["page"] == 1]
    assert methods[0].metadata["header_path"].startswith("3 Methods")


def test_splitter_on_foreign_documents_invents_no_pages():
    from langchain_core.documents import Document

    (chunk,) = MarkdownStructureSplitter().split_documents([Document("# A\n\ntext", metadata={"origin": "web"})])
    assert chunk.metadata["origin"] == "web" and chunk.metadata["header_path"] == "A" and "page" not in chunk.metadata


def test_pypdfloader_habits(tmp_path, monkeypatch):
    import pymupdf
    import pytest

    from deepseek_ocr2_loaders.errors import ConfigError, InputError

    paper = write_paper(tmp_path / "paper.pdf")
    locked = tmp_path / "locked.pdf"
    with pymupdf.open(paper) as doc:
        doc.save(locked, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="s3cret", owner_pw="owner")
    assert len(DeepSeekOCR2Loader(locked, "s3cret", engine=paper_engine(), cache=False).load()) == 4
    monkeypatch.setenv("HOME", str(tmp_path))
    docs = DeepSeekOCR2Loader("~/paper.pdf", engine=paper_engine(), cache=False).load()
    assert docs[0].metadata["source"] == str(paper)
    with pytest.raises(InputError, match="is a URL"):
        DeepSeekOCR2Loader("https://arxiv.org/pdf/2510.18234", engine=paper_engine())
    with pytest.raises(ConfigError, match=r"unknown engine option\(s\) \['extract_images'\]"):
        DeepSeekOCR2Loader(paper, engine=paper_engine(), extract_images=True)
    single = DeepSeekOCR2Loader(paper, engine=paper_engine(), mode="single", pages_delimiter="\n\f", cache=False).load()
    assert single[0].page_content.count("\n\f") == 3
