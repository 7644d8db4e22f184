"""The Batcher alone, with scripted engines: concurrent pages become few engine calls."""

from __future__ import annotations

import threading

import pytest
from PIL import Image

from deepseek_ocr2_loaders.engines._base import EngineOutput
from deepseek_ocr2_loaders.errors import EngineError
from deepseek_ocr2_loaders.server import Batcher, BatcherClosed
from deepseek_ocr2_loaders.testing import ScriptedEngine


def width_engine(batch_size: int = 8) -> ScriptedEngine:
    return ScriptedEngine(lambda image, prompt: f"{prompt}|{image.width}", batch_size=batch_size)


def images(n: int) -> list[Image.Image]:
    return [Image.new("RGB", (10 + i, 10), "white") for i in range(n)]


def submit_concurrently(batcher: Batcher, pages: list[Image.Image], prompts: list[str]) -> list[str]:
    barrier = threading.Barrier(len(pages))
    futures: list = [None] * len(pages)

    def client(i: int) -> None:
        barrier.wait()
        futures[i] = batcher.submit(pages[i], prompts[i])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(pages))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [future.result(timeout=10).text for future in futures]


def test_eight_concurrent_pages_become_fewer_than_eight_generate_calls():
    engine = width_engine()
    batcher = Batcher(engine, wait_ms=50)
    try:
        texts = submit_concurrently(batcher, images(8), ["<image>\nFree OCR."] * 8)
    finally:
        batcher.close()
    assert texts == [f"<image>\nFree OCR.|{10 + i}" for i in range(8)]  # each client gets its own page
    assert sum(engine.calls) == 8 and len(engine.calls) < 8
    assert max(engine.calls) <= engine.batch_size


def test_batches_never_exceed_the_engine_batch_size():
    engine = width_engine(batch_size=3)
    batcher = Batcher(engine, wait_ms=50)
    try:
        submit_concurrently(batcher, images(7), ["p"] * 7)
    finally:
        batcher.close()
    assert sum(engine.calls) == 7 and max(engine.calls) <= 3


def test_different_prompts_are_never_mixed_in_one_batch():
    seen: list[set[str]] = []

    class Recording(ScriptedEngine):
        def generate(self, images, prompt):
            seen.append({prompt})
            return super().generate(images, prompt)

    engine = Recording(lambda image, prompt: f"{prompt}|{image.width}", batch_size=8)
    batcher = Batcher(engine, wait_ms=50)
    prompts = ["<image>\nFree OCR.", "<image>\nParse the figure."] * 4
    try:
        texts = submit_concurrently(batcher, images(8), prompts)
    finally:
        batcher.close()
    assert texts == [f"{prompts[i]}|{10 + i}" for i in range(8)]
    assert len(engine.calls) >= 2 and sum(engine.calls) == 8


def test_an_engine_failure_reaches_every_waiting_request_and_the_worker_survives():
    calls = []

    def handler(image, prompt):
        calls.append(prompt)
        if prompt == "boom":
            raise EngineError("the GPU caught fire")
        return "ok"

    batcher = Batcher(ScriptedEngine(handler, batch_size=4), wait_ms=20)
    try:
        failing = [batcher.submit(image, "boom") for image in images(2)]
        for future in failing:
            with pytest.raises(EngineError, match="caught fire"):
                future.result(timeout=10)
        assert batcher.submit(images(1)[0], "fine").result(timeout=10).text == "ok"
    finally:
        batcher.close()


def test_a_wrong_output_count_is_an_engine_error():
    class Short(ScriptedEngine):
        def generate(self, images, prompt):
            return []

    batcher = Batcher(Short(lambda i, p: "x"), wait_ms=0)
    try:
        with pytest.raises(EngineError, match="0 outputs for 1 pages"):
            batcher.submit(images(1)[0], "p").result(timeout=10)
    finally:
        batcher.close()


def test_close_answers_what_was_queued_then_refuses_new_pages():
    release = threading.Event()

    def slow(image, prompt):
        release.wait(10)
        return "done"

    batcher = Batcher(ScriptedEngine(slow, batch_size=1), wait_ms=0)
    queued = [batcher.submit(image, "p") for image in images(3)]
    batcher.close(wait=False)
    with pytest.raises(BatcherClosed, match="shutting down"):
        batcher.submit(images(1)[0], "p")
    release.set()
    batcher.close()
    assert [future.result(timeout=10).text for future in queued] == ["done"] * 3
    batcher.close()  # twice is fine


def test_max_tokens_lowers_the_engine_limit_for_one_batch_only():
    class Limited(ScriptedEngine):
        max_new_tokens = 100

        def generate(self, images, prompt):
            self.seen.append(self.max_new_tokens)
            return [EngineOutput(text="x") for _ in images]

    engine = Limited(lambda i, p: "x", batch_size=1)
    engine.seen = []
    batcher = Batcher(engine, wait_ms=0)
    try:
        for limit in (5, None, 500, 100):
            batcher.submit(images(1)[0], "p", max_tokens=limit).result(timeout=10)
    finally:
        batcher.close()
    assert engine.seen == [5, 100, 100, 100]  # clamped to the engine's own limit
    assert engine.max_new_tokens == 100
