"""convert() keeps a streaming engine fed: the next batch's pages join the running decode batch."""

from __future__ import annotations

import asyncio

import pytest
from PIL import Image, ImageDraw

from deepseek_ocr2_loaders import TransformersEngine, aconvert, convert


@pytest.fixture
def scans(tmp_path):
    paths = []
    for seed in range(1, 8):
        image = Image.new("RGB", (640, 720), "white")
        ImageDraw.Draw(image).rectangle((10 + seed, 20, 220, 50 + 8 * seed), fill=(25 * seed, 60, 90))
        image.save(path := tmp_path / f"scan-{seed}.png")
        paths.append(path)
    return paths


def _pages(results):
    return [(r.file_name, r.page_number, r.raw, r.status) for r in results]


def test_consecutive_batches_overlap_and_pages_keep_their_order(tiny_checkpoint, scans):
    with TransformersEngine(str(tiny_checkpoint), max_new_tokens=18, decode="generate") as reference:
        expected = _pages(convert(scans, engine=reference, cache=False, retry=None))
    with TransformersEngine(str(tiny_checkpoint), max_new_tokens=18, max_batch_size=2) as engine:
        assert engine.streams
        runs = engine._shared().stats.get("runs", 0)
        assert _pages(convert(scans, engine=engine, cache=False)) == expected
        batches = -(-len(scans) // engine.batch_size)
        assert engine._shared().stats["runs"] - runs < batches  # batches did not drain the slots between them

        async def read() -> list[object]:
            return [result async for result in aconvert(scans, engine=engine, cache=False)]

        assert _pages(asyncio.run(read())) == expected


def test_stopping_early_drops_the_batch_in_flight_and_the_engine_goes_on(tiny_checkpoint, scans):
    with TransformersEngine(str(tiny_checkpoint), max_new_tokens=18, max_batch_size=2) as engine:
        results = convert(scans, engine=engine, cache=False)
        first = next(results)
        results.close()
        again = next(iter(convert(scans[:1], engine=engine, cache=False)))
    assert (first.raw, first.status) == (again.raw, again.status)
