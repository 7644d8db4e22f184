"""The slot scheduler: every caller's pages share one running decode batch (tiny checkpoint, CPU)."""

from __future__ import annotations

import asyncio
import threading

import pytest
import torch
from PIL import Image, ImageDraw

from deepseek_ocr2_loaders import EngineError, GPUOutOfMemoryError, TransformersEngine
from deepseek_ocr2_loaders.engines.transformers._slots import SlotDecoder
from deepseek_ocr2_loaders.model._prompts import PROMPTS

MARKDOWN = PROMPTS["markdown"]


def page(seed: int, width: int = 640, height: int = 800) -> Image.Image:
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for i in range(4):
        draw.rectangle((10 + 40 * i + seed, 20, 30 + 40 * i, 40 + 9 * seed), fill=(20 * i, 10 * seed, 90))
    return image


def scheduler_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "ocr-scheduler"]


@pytest.fixture
def engine(tiny_checkpoint):
    # a budget no other test uses: a scheduler of its own, its counters from zero
    with TransformersEngine(str(tiny_checkpoint), max_new_tokens=21, max_batch_size=8) as engine:
        yield engine


def test_threads_calling_one_page_each_share_the_decode_batch(engine):
    images = [page(seed) for seed in range(1, 7)]
    expected = [o.text for o in engine.generate(images, MARKDOWN)]
    scheduler = engine._shared()
    runs, prefills = scheduler.stats["runs"], scheduler.stats["prefills"]
    texts: dict[int, str] = {}
    start = threading.Barrier(len(images))

    def call(index: int) -> None:
        start.wait()
        texts[index] = engine.generate([images[index]], MARKDOWN)[0].text

    threads = [threading.Thread(target=call, args=(index,)) for index in range(len(images))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [texts[index] for index in range(len(images))] == expected
    assert scheduler.stats["runs"] - runs < len(images)
    assert scheduler.stats["prefills"] - prefills < len(images)


def test_concurrent_coroutines_share_the_decode_batch(engine):
    images = [page(seed) for seed in range(1, 7)]
    expected = [o.text for o in engine.generate(images, MARKDOWN)]
    scheduler = engine._shared()
    runs = scheduler.stats["runs"]

    async def all_at_once() -> list[str]:
        outputs = await asyncio.gather(*(engine.agenerate([image], MARKDOWN) for image in images))
        return [output.text for (output,) in outputs]

    assert asyncio.run(all_at_once()) == expected
    assert scheduler.stats["runs"] - runs < len(images)


def test_a_page_that_fails_to_encode_fails_alone(engine, monkeypatch):
    images = [page(seed) for seed in range(1, 4)]
    expected = [o.text for o in engine.generate(images, MARKDOWN)]
    worker = engine._shared().engine
    encode = worker.encode

    def fussy(batch, prompt, **kwargs):
        if batch[0] is images[1]:
            raise ValueError("unreadable pixels")
        return encode(batch, prompt, **kwargs)

    monkeypatch.setattr(worker, "encode", fussy)
    futures = engine._shared().submit(images, MARKDOWN)
    assert futures[0].result().text == expected[0] and futures[2].result().text == expected[2]
    with pytest.raises(EngineError, match="unreadable pixels"):
        futures[1].result()


@pytest.mark.parametrize(
    ("failure", "error"),
    [(RuntimeError("kernel failed"), EngineError), (torch.OutOfMemoryError(), GPUOutOfMemoryError)],
)
def test_a_failed_decode_fails_its_pages_and_the_next_call_works(engine, monkeypatch, failure, error):
    images = [page(seed) for seed in range(1, 4)]
    expected = [o.text for o in engine.generate(images, MARKDOWN)]
    step = SlotDecoder._run_step
    calls = [0]

    def failing_once(self):
        calls[0] += 1
        if calls[0] == 3:
            raise failure
        step(self)

    monkeypatch.setattr(SlotDecoder, "_run_step", failing_once)
    with pytest.raises(error):
        engine.generate(images, MARKDOWN)
    assert [o.text for o in engine.generate(images, MARKDOWN)] == expected
    assert scheduler_threads()


def test_engines_share_a_scheduler_only_with_the_same_decoding_options(tiny_checkpoint):
    options = {"max_new_tokens": 19, "max_batch_size": 4}
    first, second = (
        TransformersEngine(str(tiny_checkpoint), **options),
        TransformersEngine(str(tiny_checkpoint), **options),
    )
    other = TransformersEngine(str(tiny_checkpoint), ngram_size=12, **options)
    try:
        assert first._shared() is second._shared()
        assert other._shared() is not first._shared()
        assert other._shared().engine.options.ngram_size == 12
    finally:
        for engine in (first, second, other):
            engine.close()


def test_the_last_close_stops_the_worker_thread_and_frees_the_decoder(tiny_checkpoint):
    before = set(scheduler_threads())
    first = TransformersEngine(str(tiny_checkpoint), max_new_tokens=17, max_batch_size=2)
    second = TransformersEngine(str(tiny_checkpoint), max_new_tokens=17, max_batch_size=2)
    first.generate([page(1)], MARKDOWN)
    scheduler = first._shared()
    assert second._shared() is scheduler and scheduler._decoder is not None
    (thread,) = set(scheduler_threads()) - before
    first.close()
    assert thread.is_alive()
    assert second.generate([page(2)], MARKDOWN)[0].output_tokens > 0
    second.close()
    assert not thread.is_alive() and scheduler._decoder is None
    assert set(scheduler_threads()) == before
    with pytest.raises(EngineError, match="closed"):
        scheduler.submit([page(3)], MARKDOWN)


def test_a_worker_that_dies_fails_the_waiting_pages_instead_of_hanging(tiny_checkpoint, monkeypatch):
    """Seen on an H200: the worker raised before its loop (set_device("cuda")) and generate waited for ever."""
    from deepseek_ocr2_loaders.engines.transformers import _scheduler

    def broken(self):
        raise RuntimeError("the worker could not start")

    monkeypatch.setattr(_scheduler.Scheduler, "_run", broken)
    engine = TransformersEngine(str(tiny_checkpoint), max_new_tokens=4, max_batch_size=2, ngram_window=77)
    result: list[object] = []
    caller = threading.Thread(target=lambda: result.append(_outcome(engine)), daemon=True)
    caller.start()
    caller.join(timeout=60)
    assert not caller.is_alive(), "generate hung on a dead worker"
    assert isinstance(result[0], EngineError) and "could not start" in str(result[0])
    engine.close()


def _outcome(engine):
    try:
        return engine.generate([page(1)], PROMPTS["markdown"])
    except EngineError as exc:
        return exc
