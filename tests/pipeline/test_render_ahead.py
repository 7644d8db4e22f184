"""The next batch is rendered while the engine reads this one, never more than one batch ahead.

Pages render in the worker pool; what is counted here is what the pool hands to the batcher
(the pool itself takes at most twice its worker count ahead, see tests/sources/test_render_pool.py).
"""

from __future__ import annotations

import asyncio
import threading
import time

import pymupdf
import pytest

from deepseek_ocr2_loaders import InputError, aconvert, convert
from deepseek_ocr2_loaders.pipeline._prefetch import one_ahead
from deepseek_ocr2_loaders.sources._render_pool import Rendered, RenderPool
from deepseek_ocr2_loaders.testing import ScriptedEngine


def wait_for(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_items_keep_their_order_and_the_producer_stays_one_ahead():
    produced: list[int] = []

    def numbers():
        for n in range(6):
            produced.append(n)
            yield n

    seen = []
    for n in one_ahead(numbers()):
        assert wait_for(lambda n=n: len(produced) >= min(n + 2, 6))  # n + 1 is made while n is held
        time.sleep(0.05)
        assert len(produced) <= n + 2  # ... and nothing beyond it
        seen.append(n)
    assert seen == list(range(6))


def test_an_error_reaches_the_caller_after_the_items_before_it():
    def failing():
        yield 1
        yield 2
        raise InputError("broken page", source="b.pdf")

    got = []
    with pytest.raises(InputError, match="b.pdf"):
        for item in one_ahead(failing()):
            got.append(item)
    assert got == [1, 2]


def test_stopping_early_closes_the_source_on_its_thread_and_joins_it():
    closed_on: list[str] = []

    def endless():
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed_on.append(threading.current_thread().name)

    items = one_ahead(endless(), name="test-producer")
    assert next(items) == 0
    items.close()
    assert closed_on == ["test-producer"]
    assert not any(t.name == "test-producer" for t in threading.enumerate())


@pytest.fixture
def six_pages(tmp_path):
    doc = pymupdf.open()
    for n in range(6):
        doc.new_page().insert_text((72, 72), f"Page {n + 1}")
    doc.save(tmp_path / "six.pdf")
    return tmp_path / "six.pdf"


def wrap_render(monkeypatch, on_page):
    """Call ``on_page(index)`` for each page the real pool delivers, on the render thread."""
    original = RenderPool.render

    def watched(self, items):
        for item in original(self, items):
            if isinstance(item, Rendered):
                on_page(item.task.index)
            yield item

    monkeypatch.setattr(RenderPool, "render", watched)


@pytest.fixture
def rendered(monkeypatch):
    """Counts the rendered pages the real render pool hands to the batcher."""
    calls: list[int] = []
    wrap_render(monkeypatch, calls.append)
    return calls


class WatchingEngine(ScriptedEngine):
    """Batches of 2; before reading batch k, waits until batch k+1 is rendered, then notes the count."""

    def __init__(self, rendered: list[int]) -> None:
        super().__init__(lambda image, prompt: "text", batch_size=2)
        self.rendered = rendered
        self.seen: list[int] = []

    def generate(self, images, prompt):
        ahead = min(2 * len(self.calls) + 4, 6)
        wait_for(lambda: len(self.rendered) >= ahead, timeout=2.0)
        time.sleep(0.05)  # room for a render that should not happen
        self.seen.append(len(self.rendered))
        return super().generate(images, prompt)


def test_convert_renders_the_next_batch_while_the_engine_reads(six_pages, rendered):
    engine = WatchingEngine(rendered)
    pages = list(convert(six_pages, engine=engine, cache=False))
    assert [p.page for p in pages] == list(range(6))
    assert engine.seen == [4, 6, 6]  # reading pages 0-1, pages 2-3 are rendered too, 4-5 not yet


def test_aconvert_renders_ahead_the_same_way(six_pages, rendered):
    engine = WatchingEngine(rendered)

    async def read():
        return [p.page async for p in aconvert(six_pages, engine=engine, cache=False)]

    assert asyncio.run(read()) == list(range(6))
    assert engine.seen == [4, 6, 6]


def test_cancelling_aconvert_mid_render_cancels_cleanly(six_pages, monkeypatch):
    wrap_render(monkeypatch, lambda index: time.sleep(0.3))
    engine = ScriptedEngine(lambda image, prompt: "text", batch_size=2)
    got = []

    async def read():
        async for page in aconvert(six_pages, engine=engine, cache=False):
            got.append(page.page)

    async def cancel_after_the_first_page():
        task = asyncio.create_task(read())
        assert await asyncio.to_thread(wait_for, lambda: len(got) >= 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_after_the_first_page())
    assert 1 <= len(got) < 6
    assert not any(t.name.startswith(("ocr-render", "ocr-fetch")) for t in threading.enumerate())
