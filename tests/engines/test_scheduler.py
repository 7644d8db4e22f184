"""One decode loop per engine: concurrent callers share the batch, and each gets its own results."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image
from text_pages import text_page

from deepseek_ocr2_loaders import EngineError, TransformersEngine
from deepseek_ocr2_loaders.model import PROMPTS

pytestmark = pytest.mark.compat

MARKDOWN = PROMPTS["markdown"]


IMAGES = [text_page(640 + 40 * seed, 480, f"caller {seed}", rows=4) for seed in range(6)]


@pytest.fixture(scope="module")
def engine(tiny_checkpoint):
    engine = TransformersEngine(str(tiny_checkpoint), max_new_tokens=160, max_batch_size=8, ignore_eos=True)
    yield engine
    engine.close()


def test_one_page_callers_in_threads_share_the_decode_batch_and_get_their_own_pages(engine):
    expected = [o.text for o in engine.generate(IMAGES, MARKDOWN)]
    assert engine.last_stats["pages_at_once_max"] >= 2
    (replica,) = engine._replicas
    replica.stats["pages_at_once_max"] = 0
    with ThreadPoolExecutor(len(IMAGES)) as pool:
        got = list(pool.map(lambda image: engine.generate([image], MARKDOWN)[0].text, IMAGES))
    assert got == expected
    assert replica.stats["pages_at_once_max"] >= 2  # several callers' pages decoded together


def test_async_callers_share_the_engine_like_threads(engine):
    expected = [o.text for o in engine.generate(IMAGES[:3], MARKDOWN)]

    async def each() -> list[str]:
        outputs = await asyncio.gather(*(engine.agenerate([image], MARKDOWN) for image in IMAGES[:3]))
        return [batch[0].text for batch in outputs]

    assert asyncio.run(each()) == expected


def test_async_callers_hold_no_thread_while_their_pages_decode(engine):
    """``asyncio.gather`` over more one-page calls than the loop's executor has threads: all decode together."""
    (replica,) = engine._replicas
    replica.stats["pages_at_once_max"] = 0
    images = IMAGES * 2  # 12 callers, 2 executor threads

    async def each() -> list[str]:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(2))
        outputs = await asyncio.gather(*(engine.agenerate([image], MARKDOWN) for image in images))
        return [batch[0].text for batch in outputs]

    got = asyncio.run(each())
    assert got == [o.text for o in engine.generate(images, MARKDOWN)]
    assert replica.stats["pages_at_once_max"] > 2  # a thread per waiting call would have allowed 2


def test_a_cancelled_async_call_leaves_its_queued_pages_undecoded(engine):
    (replica,) = engine._replicas

    async def cancel_one() -> list[str]:
        kept = asyncio.ensure_future(engine.agenerate(IMAGES[:1], MARKDOWN))
        dropped = asyncio.ensure_future(engine.agenerate(IMAGES * 4, MARKDOWN))  # more pages than slots
        await asyncio.sleep(0.2)  # both queued
        dropped.cancel()
        with pytest.raises(asyncio.CancelledError):
            await dropped
        return [o.text for o in await kept]

    before = replica.stats.get("pages", 0)
    assert len(asyncio.run(cancel_one())) == 1
    decoded = replica.stats["pages"] - before
    assert decoded < 1 + len(IMAGES) * 4  # the pages not yet in a slot were skipped
    assert len(engine.generate(IMAGES[:2], MARKDOWN)) == 2  # and the engine goes on


def test_a_caller_whose_image_cannot_be_read_fails_alone(engine):
    broken = Image.new("RGB", (0, 0))  # the processor cannot resize an empty image
    with ThreadPoolExecutor(3) as pool:
        good = pool.submit(engine.generate, IMAGES[:2], MARKDOWN)
        bad = pool.submit(engine.generate, [IMAGES[2], broken], MARKDOWN)
        other = pool.submit(engine.generate, IMAGES[3:4], MARKDOWN)
        with pytest.raises(EngineError):
            bad.result()
        assert len(good.result()) == 2 and len(other.result()) == 1
    assert len(engine.generate(IMAGES[:1], MARKDOWN)) == 1  # and the engine goes on


def test_a_call_with_a_larger_budget_than_the_running_decoder_gets_it(tiny_checkpoint):
    engine = TransformersEngine(str(tiny_checkpoint), max_new_tokens=12, ignore_eos=True, stop_loops=False)
    assert [o.output_tokens for o in engine.generate(IMAGES[:2], MARKDOWN)] == [12, 12]
    engine.max_new_tokens = 5  # the server lowers it for one request
    assert [o.output_tokens for o in engine.generate(IMAGES[:2], MARKDOWN)] == [5, 5]
    engine.max_new_tokens = 40
    assert [o.output_tokens for o in engine.generate(IMAGES[:2], MARKDOWN)] == [40, 40]
    engine.close()


def test_a_closed_engine_starts_afresh_on_its_next_call(tiny_checkpoint):
    engine = TransformersEngine(str(tiny_checkpoint), max_new_tokens=8)
    engine.generate(IMAGES[:1], MARKDOWN)
    engine.close()
    assert engine._queue is None  # a later call starts a new queue on a freshly acquired model
    assert len(engine.generate(IMAGES[:1], MARKDOWN)) == 1
    engine.close()


def test_out_of_memory_in_the_vision_towers_halves_the_batch_and_loses_no_page(tiny_checkpoint, monkeypatch):
    """A CPU cannot run out of GPU memory: the towers raise torch's own OutOfMemoryError for batches > 1."""
    import torch

    engine = TransformersEngine(str(tiny_checkpoint), max_new_tokens=8, vision_batch_size=4, ignore_eos=True)
    expected = [o.text for o in engine.generate(IMAGES[:4], MARKDOWN)]
    model = engine._acquire().model
    features = model.get_image_features
    sizes: list[int] = []

    def tight(*args, **kwargs):
        sizes.append(len(kwargs["num_local_patches"]))
        if sizes[-1] > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return features(*args, **kwargs)

    monkeypatch.setattr(model, "get_image_features", tight)
    assert [o.text for o in engine.generate(IMAGES[:4], MARKDOWN)] == expected
    assert sizes[0] == 4 and sizes[-1] == 1
    assert engine.vision_batch_size == 1  # kept: the next batches do not run out again first
    sizes.clear()
    assert [o.text for o in engine.generate(IMAGES[:4], MARKDOWN)] == expected
    assert sizes == [1, 1, 1, 1]
    engine.close()


def test_out_of_memory_while_decoding_retries_the_pages_with_half_the_slots(tiny_checkpoint):
    """The running decoder's next stretch raises torch's OutOfMemoryError (simulated: this is a CPU)."""
    import torch

    engine = TransformersEngine(str(tiny_checkpoint), max_new_tokens=16, max_batch_size=8, ignore_eos=True)
    expected = [o.text for o in engine.generate(IMAGES, MARKDOWN)]
    live = engine._decoder
    stretch, failed = live._stretch, []

    def out_of_memory(slots, source):
        failed.append(live.slots)
        live._stretch = stretch
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    live._stretch = out_of_memory
    assert [o.text for o in engine.generate(IMAGES, MARKDOWN)] == expected
    assert failed == [8] and engine._decoder is not live and engine._decoder.slots == 4
    engine.close()


def test_a_decode_thread_that_dies_fails_the_calls_instead_of_leaving_them_waiting(tiny_checkpoint, monkeypatch):
    """A bug escaping the decode loop (raised here on purpose) must reach the caller, not hang it."""
    from deepseek_ocr2_loaders.engines.transformers._scheduler import Replica

    def broken(self):
        raise RuntimeError("a bug in the decoder")

    monkeypatch.setattr(Replica, "_decode_loop", broken)
    engine = TransformersEngine(str(tiny_checkpoint), max_new_tokens=4)
    with pytest.raises(EngineError):
        engine.generate(IMAGES[:2], MARKDOWN)
    engine.close()
