"""SimpleDirectoryReader calls the reader once per file: per-file calls share the engine's decode batch."""

from __future__ import annotations

import asyncio

import pytest
from PIL import Image, ImageDraw

from deepseek_ocr2_loaders import TransformersEngine
from deepseek_ocr2_loaders.llama_index import DeepSeekOCR2Reader


@pytest.fixture
def scans(tmp_path):
    for seed in range(1, 6):
        image = Image.new("RGB", (600, 700), "white")
        ImageDraw.Draw(image).rectangle((20 + seed, 30, 200, 60 + 9 * seed), fill=(30 * seed, 40, 90))
        image.save(tmp_path / f"scan-{seed}.png")
    return tmp_path


def _read(documents, fields):
    return sorted((d.metadata["file_name"], d.text, {key: d.metadata[key] for key in fields}) for d in documents)


def test_simple_directory_reader_per_file_gives_the_documents_of_one_call(tiny_checkpoint, scans):
    from llama_index.core import SimpleDirectoryReader

    with TransformersEngine(str(tiny_checkpoint), max_new_tokens=15, max_batch_size=8) as engine:
        reader = DeepSeekOCR2Reader(engine=engine, cache=False)
        whole = reader.load_data(scans)
        fields = sorted(whole[0].metadata)
        directory = SimpleDirectoryReader(str(scans), file_extractor={".png": reader})
        runs = engine._shared().stats["runs"]
        per_file_async = asyncio.run(directory.aload_data())
        assert engine._shared().stats["runs"] - runs < len(whole)  # the coroutines shared the batch
        per_file = directory.load_data()
    assert len(whole) == 5
    assert _read(per_file_async, fields) == _read(whole, fields)
    assert _read(per_file, fields) == _read(whole, fields)
