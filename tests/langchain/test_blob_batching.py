"""One-page blobs reach the (real, tiny) engine in shared batches, through the loader and through ``GenericLoader``.

The loader lists the blobs first and reads them in one ``convert``. ``GenericLoader`` calls the
parser once per blob and drains it before the next; the parser reads a folder's next files
ahead once two neighbouring file blobs were asked for, in the order ``FileSystemBlobLoader``
globs them (the directory's order, not the names').
"""

from __future__ import annotations

import asyncio
import pickle

from langchain_community.document_loaders.blob_loaders import FileSystemBlobLoader
from langchain_community.document_loaders.generic import GenericLoader
from PIL import Image

from deepseek_ocr2_loaders.langchain import DeepSeekOCR2Loader, DeepSeekOCR2Parser
from deepseek_ocr2_loaders.testing import ScriptedEngine


def scans(folder, count):
    folder.mkdir()
    for index in range(count):
        Image.new("RGB", (300 + 10 * index, 200), (255, 255 - 20 * index, 255)).save(folder / f"scan-{index}.png")
    return folder


def test_a_blob_loader_reads_many_one_page_blobs_in_shared_engine_batches(tmp_path, tiny_engine, engine_batches):
    blobs = FileSystemBlobLoader(scans(tmp_path / "scans", 6), glob="*.png")
    batches = engine_batches
    loaded = DeepSeekOCR2Loader(blobs, engine=tiny_engine, cache=False).load()
    assert sum(batches) == 6 and len(batches) < 6 and max(batches) == tiny_engine.batch_size
    _, (replica,) = tiny_engine._page_queue()
    replica.stats["pages_at_once_max"] = 0
    generic = GenericLoader(blobs, DeepSeekOCR2Parser(engine=tiny_engine, cache=False)).load()
    assert replica.stats["pages_at_once_max"] > 1  # the blobs after the second decoded together
    order = [path.name for path in (tmp_path / "scans").glob("*.png")]
    assert [d.metadata["file_name"] for d in generic] == order
    by_file = {d.metadata["file_name"]: (d.id, d.page_content, d.metadata) for d in loaded}
    assert [(d.id, d.page_content, d.metadata) for d in generic] == [by_file[name] for name in order]


def test_the_parser_reads_ahead_the_files_the_blob_loader_yields_next_in_its_own_order(tmp_path):
    """``FileSystemBlobLoader`` walks a folder in the directory's order (by name where the file system lists so)."""
    folder = scans(tmp_path / "scans", 8)
    walked = [path.name for path in folder.glob("*.png")]
    loads: list[list[str]] = []
    parser = DeepSeekOCR2Parser(engine=ScriptedEngine(lambda image, prompt: "a scan", batch_size=8), cache=False)
    read_files = parser._read_files
    parser._ahead._load = lambda paths: (loads.append([p.name for p in paths]), read_files(paths))[1]
    names = [d.metadata["file_name"] for d in GenericLoader(FileSystemBlobLoader(folder, glob="*.png"), parser).load()]
    assert names == walked
    # the first two asked for one by one; the rest read ahead in quarter-batch chunks, in the walk's order
    assert sorted(loads) == sorted([[walked[0]], [walked[1]], walked[2:4], walked[4:6], walked[6:8]])


def test_a_parser_that_read_ahead_pickles_to_one_that_reads_the_same(tmp_path, tiny_engine):
    folder = scans(tmp_path / "scans", 3)
    parser = DeepSeekOCR2Parser(engine=tiny_engine, cache=False)
    first = GenericLoader(FileSystemBlobLoader(folder, glob="*.png"), parser).load()
    copy = pickle.loads(pickle.dumps(parser))
    assert copy._ahead._order == "directory"  # it still reads ahead in the blob loader's order
    again = GenericLoader(FileSystemBlobLoader(folder, glob="*.png"), copy).load()
    assert [(d.id, d.page_content) for d in again] == [(d.id, d.page_content) for d in first]


def test_a_blob_loader_is_listed_afresh_on_every_load_sync_and_async(tmp_path, tiny_engine):
    folder = scans(tmp_path / "scans", 2)
    loader = DeepSeekOCR2Loader(FileSystemBlobLoader(folder, glob="*.png"), engine=tiny_engine)
    assert [d.metadata["file_name"] for d in loader.load()] == ["scan-0.png", "scan-1.png"]
    Image.new("RGB", (640, 480), "white").save(folder / "scan-2.png")

    async def names():
        return [d.metadata["file_name"] async for d in loader.alazy_load()]

    assert asyncio.run(names()) == ["scan-0.png", "scan-1.png", "scan-2.png"]
