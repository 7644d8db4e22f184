"""A blob loader handed to ``DeepSeekOCR2Loader`` shares engine batches; ``GenericLoader`` cannot.

``GenericLoader`` calls the parser once per blob and drains it before the next, so one-page
blobs reach the engine one at a time. The loader lists the blobs first and reads them in one
``convert``, so the same blobs go to the (real, tiny) engine in multi-page batches.
"""

from __future__ import annotations

import asyncio

from langchain_community.document_loaders.blob_loaders import FileSystemBlobLoader
from langchain_community.document_loaders.generic import GenericLoader
from PIL import Image

from deepseek_ocr2_loaders.langchain import DeepSeekOCR2Loader, DeepSeekOCR2Parser


def scans(folder, count):
    folder.mkdir()
    for index in range(count):
        Image.new("RGB", (300 + 10 * index, 200), (255, 255 - 20 * index, 255)).save(folder / f"scan-{index}.png")
    return folder


def test_a_blob_loader_reads_many_one_page_blobs_in_shared_engine_batches(tmp_path, tiny_engine, engine_batches):
    blobs = FileSystemBlobLoader(scans(tmp_path / "scans", 6), glob="*.png")
    batches = engine_batches
    generic = GenericLoader(blobs, DeepSeekOCR2Parser(engine=tiny_engine, cache=False)).load()
    per_blob = list(batches)
    batches.clear()
    loaded = DeepSeekOCR2Loader(blobs, engine=tiny_engine, cache=False).load()
    assert per_blob == [1] * 6
    assert sum(batches) == 6 and len(batches) < 6 and max(batches) == tiny_engine.batch_size
    assert [(d.id, d.page_content, d.metadata) for d in loaded] == [(d.id, d.page_content, d.metadata) for d in generic]


def test_a_blob_loader_is_listed_afresh_on_every_load_sync_and_async(tmp_path, tiny_engine):
    folder = scans(tmp_path / "scans", 2)
    loader = DeepSeekOCR2Loader(FileSystemBlobLoader(folder, glob="*.png"), engine=tiny_engine)
    assert [d.metadata["file_name"] for d in loader.load()] == ["scan-0.png", "scan-1.png"]
    Image.new("RGB", (640, 480), "white").save(folder / "scan-2.png")

    async def names():
        return [d.metadata["file_name"] async for d in loader.alazy_load()]

    assert asyncio.run(names()) == ["scan-0.png", "scan-1.png", "scan-2.png"]
