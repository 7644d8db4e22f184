"""LlamaIndex: the reader under the shared contract, plus SimpleDirectoryReader and IngestionPipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from contract import LoaderContract
from scripted_paper import paper_engine, write_paper

from deepseek_ocr2_loaders import EngineOutput, OCREngine
from deepseek_ocr2_loaders.llama_index import DeepSeekOCR2Reader, MarkdownStructureNodeParser


class TestLlamaIndexReader(LoaderContract):
    def load(self, paths: list[Path], **options: Any):
        return [(d.text, d.metadata, d.id_) for d in DeepSeekOCR2Reader(**options).load_data(paths)]

    async def aload(self, paths: list[Path], **options: Any):
        return [(d.text, d.metadata, d.id_) for d in await DeepSeekOCR2Reader(**options).aload_data(paths)]


def test_simple_directory_reader_with_file_extractor(tmp_path):
    from llama_index.core import SimpleDirectoryReader
    from PIL import Image

    write_paper(tmp_path / "paper.pdf")
    Image.new("RGB", (1200, 900), "white").save(tmp_path / "scan.png")
    reader = DeepSeekOCR2Reader(engine=paper_engine(), mode="page")
    extractor = {".pdf": reader, ".png": DeepSeekOCR2Reader(engine=_Plain())}
    docs = SimpleDirectoryReader(str(tmp_path), file_extractor=extractor).load_data()
    assert sorted((d.metadata["file_name"], d.metadata["page"]) for d in docs) == [
        ("paper.pdf", 0),
        ("paper.pdf", 1),
        ("paper.pdf", 2),
        ("paper.pdf", 3),
        ("scan.png", 0),
    ]
    paper = next(d for d in docs if d.metadata["file_name"] == "paper.pdf")
    assert "file_path" in paper.metadata  # SimpleDirectoryReader's extra_info is merged
    assert "bboxes" in paper.excluded_embed_metadata_keys and "bboxes" in paper.excluded_llm_metadata_keys
    assert "bboxes" not in paper.get_metadata_str(mode="embed")


def test_ingestion_pipeline_with_the_node_parser_keeps_relationships(tmp_path):
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.schema import NodeRelationship

    documents = DeepSeekOCR2Reader(engine=paper_engine()).load_data(write_paper(tmp_path / "paper.pdf"))
    nodes = IngestionPipeline(transformations=[MarkdownStructureNodeParser(chunk_size=64)]).run(documents=documents)
    assert len(nodes) > len(documents)
    by_id = {d.id_: d for d in documents}
    for node in nodes:
        parent = node.relationships[NodeRelationship.SOURCE].node_id
        assert parent in by_id and node.metadata["page"] == by_id[parent].metadata["page"]
        assert node.metadata["token_count"] <= 64 and "bboxes" in node.excluded_embed_metadata_keys
    again = IngestionPipeline(transformations=[MarkdownStructureNodeParser(chunk_size=64)]).run(documents=documents)
    assert [n.id_ for n in nodes] == [n.id_ for n in again]


def test_reader_reads_through_an_fsspec_filesystem(tmp_path):
    import fsspec

    path = write_paper(tmp_path / "paper.pdf")
    docs = DeepSeekOCR2Reader(engine=paper_engine()).load_data(str(path), fs=fsspec.filesystem("file"))
    assert len(docs) == 4 and docs[0].metadata["source"] == str(path)


class _Plain(OCREngine):
    batch_size = 2

    def generate(self, images, prompt):
        return [EngineOutput(text="A scanned page.") for _ in images]


def test_simple_directory_reader_with_two_workers_reads_like_one(tmp_path):
    from llama_index.core import SimpleDirectoryReader

    write_paper(tmp_path / "a.pdf")
    write_paper(tmp_path / "b.pdf")
    reader = DeepSeekOCR2Reader(engine=paper_engine(), mode="chunks", chunk_size=64, cache=False)

    def load(workers):
        documents = SimpleDirectoryReader(tmp_path, file_extractor={".pdf": reader}).load_data(num_workers=workers)
        return [(d.id_, d.text, d.metadata) for d in documents]

    one = load(1)
    assert one and load(2) == one


def test_a_pickled_reader_keeps_its_default_engine_options():
    import pickle

    reader = DeepSeekOCR2Reader(mode="chunks", chunk_size=99, model="some/checkpoint", device="cpu", max_new_tokens=77)
    again = pickle.loads(pickle.dumps(reader))
    assert again.model_dump() == reader.model_dump()
    assert again._engine.options == reader._engine.options and again._engine.options.max_new_tokens == 77


def test_alazy_load_data_streams_with_async_for_and_lists_when_awaited(tmp_path):
    import asyncio

    paper = write_paper(tmp_path / "paper.pdf")
    engine = paper_engine(batch_size=1)
    reader = DeepSeekOCR2Reader(engine=engine, cache=False)

    async def first_then_rest():
        stream = reader.alazy_load_data(paper).__aiter__()
        first = await anext(stream)
        calls_at_first = len(engine.calls)
        return first, calls_at_first, [d async for d in stream]

    first, calls_at_first, rest = asyncio.run(first_then_rest())
    assert first.metadata["page"] == 0 and calls_at_first < 4  # the first page came before the last was read
    awaited = asyncio.run(_awaited(reader, paper))
    assert [d.id_ for d in awaited] == [first.id_, *(d.id_ for d in rest)] and len(awaited) == 4


async def _awaited(reader, paper):
    return await reader.alazy_load_data(paper)  # LlamaIndex's BaseReader signature: awaited for the list
