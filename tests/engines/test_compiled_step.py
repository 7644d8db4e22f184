"""``compile_decode``: the slot decode step through torch.compile writes the plain step's tokens.

On a GPU the engine compiles only in bf16, where the experts are grouped GEMMs (the per-expert
loop is data-dependent and breaks the graph). torch 2.13 runs grouped GEMMs on this CPU in bf16
too, so the first test turns the engine's GPU-only switch on here to compile the same step.
"""

from __future__ import annotations

import dataclasses
import logging

import pytest
import torch
from text_pages import text_page

from deepseek_ocr2_loaders import TransformersEngine
from deepseek_ocr2_loaders.engines.transformers._vision import vision_prompts
from deepseek_ocr2_loaders.model import PROMPTS

pytestmark = pytest.mark.slow

MARKDOWN = PROMPTS["markdown"]
IMAGES = [text_page(600 + 10 * i, 800, f"page {i}") for i in range(10)]


def stop_after(image) -> int:
    """Five pages stop after 8 tokens, five after 40: the batch thins out to a narrower width."""
    return 8 if (image.width - 600) // 10 < 5 else 40


def engine_for(checkpoint, **options) -> TransformersEngine:
    engine = TransformersEngine(
        str(checkpoint),
        max_new_tokens=64,
        max_batch_size=16,
        vision_batch_size=10,
        ignore_eos=True,
        stop_loops=False,
        **options,
    )
    engine._page_lengths = stop_after
    return engine


def test_the_compiled_step_writes_the_plain_steps_tokens_with_one_graph_for_every_width(tiny_checkpoint, monkeypatch):
    from torch._dynamo.utils import counters

    monkeypatch.setattr(TransformersEngine, "_graph_ready", property(lambda self: True))
    plain = engine_for(tiny_checkpoint, dtype="bfloat16")
    expected = plain.generate(IMAGES, MARKDOWN)
    torch._dynamo.reset()
    counters.clear()
    compiled = engine_for(tiny_checkpoint, dtype="bfloat16", compile_decode=True)
    got = compiled.generate(IMAGES, MARKDOWN)
    decoder = compiled._decoder
    assert decoder._compiled is not None, "the step fell back to the plain one"
    assert set(decoder._views) == {8, 16}  # both widths ran...
    assert counters["stats"]["unique_graphs"] == 1  # ...through one dynamic-shape graph
    assert [o.output_tokens for o in got] == [8] * 5 + [40] * 5
    assert [o.text for o in got] == [o.text for o in expected]
    plain.close()
    compiled.close()


def test_a_step_that_cannot_compile_falls_back_to_the_plain_step(tiny_checkpoint, caplog):
    """fp32: the per-expert loop breaks the graph, so compiling fails; the pages still read the same."""
    engine = engine_for(tiny_checkpoint)
    expected = engine.generate(IMAGES[:3], MARKDOWN)
    assert engine._decoder._compiled is None  # the engine asks for no compile off a bf16 GPU
    decoder = dataclasses.replace(engine._decoder, compile_step=True, stats={})
    from test_paged_cache import AllReady

    with torch.inference_mode(), caplog.at_level(logging.WARNING):
        pages = vision_prompts(engine, [(i, engine.encode([image], MARKDOWN)) for i, image in enumerate(IMAGES[:3])])
        pages = [dataclasses.replace(page, limit=stop_after(IMAGES[page.index])) for page in pages]
        results = {result.index: result for result in decoder.run(AllReady(pages))}
    assert decoder._compiled is None
    assert "torch.compile of the decode step failed" in caplog.text
    tokenizer = engine._acquire().processor.tokenizer
    got = [engine._output(tokenizer, results[index]) for index in range(3)]
    assert [o.text for o in got] == [o.text for o in expected]
    engine.close()
