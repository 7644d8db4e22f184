"""The slot decoder's paged KV cache: memory for live tokens only, and a full pool never fails a page."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from text_pages import text_page

from deepseek_ocr2_loaders import TransformersEngine
from deepseek_ocr2_loaders.engines.transformers._paged_attention import PagedBatch, reference_attention
from deepseek_ocr2_loaders.engines.transformers._vision import vision_prompts
from deepseek_ocr2_loaders.model import PROMPTS

pytestmark = pytest.mark.compat

MARKDOWN = PROMPTS["markdown"]


IMAGES = [
    text_page(900, 1200, "page 1"),
    text_page(600, 500, "page 2"),
    text_page(1400, 700, "page 3"),
    text_page(800, 800, "page 4"),
    text_page(700, 900, "page 5"),
]


def test_gathered_paged_attention_equals_attention_over_each_sequence_alone():
    torch.manual_seed(0)
    block, heads, kv_heads, dim = 4, 4, 2, 8
    lengths = torch.tensor([1, 7, 12, 5])
    pool_k, pool_v = torch.randn(20, block, kv_heads, dim), torch.randn(20, block, kv_heads, dim)
    table = torch.randperm(19)[:12].add(1).view(4, 3).int()  # scattered, distinct blocks
    query = torch.randn(4, heads, 1, dim)
    got = reference_attention(query, pool_k, pool_v, PagedBatch([pool_k], [pool_v], table, lengths, 3), 0.3)
    for seq, length in enumerate(lengths.tolist()):
        k = pool_k[table[seq].long()].flatten(0, 1)[:length].transpose(0, 1)  # (kv_heads, length, dim)
        v = pool_v[table[seq].long()].flatten(0, 1)[:length].transpose(0, 1)
        k, v = k.repeat_interleave(2, 0), v.repeat_interleave(2, 0)
        weights = torch.softmax(query[seq] @ k.transpose(1, 2) * 0.3, dim=-1)
        torch.testing.assert_close(got[seq, 0], (weights @ v)[:, 0])


class AllReady:
    """A page source with every page encoded at once, so admission is the same on every run."""

    def __init__(self, pages):
        self.pages = list(pages)

    def poll(self, limit, *, busy):
        taken, self.pages = self.pages[:limit], self.pages[limit:]
        return taken

    def prefetch(self):
        pass

    def wait(self):
        return bool(self.pages)

    def stopped(self):
        return False


def prompt_tokens(engine: TransformersEngine) -> int:
    return max(engine.encode([image], MARKDOWN)["input_ids"].shape[1] for image in IMAGES)


def test_a_pool_too_small_for_every_page_preempts_and_recomputes_giving_the_same_tokens(tiny_checkpoint):
    options = {"max_new_tokens": 200, "max_batch_size": 4, "ignore_eos": True, "stop_loops": False}
    engine = TransformersEngine(str(tiny_checkpoint), **options)
    expected = engine.generate(IMAGES, MARKDOWN)
    assert "preempted" not in engine.last_stats
    full = engine._decoder.cache.table.shape[1]  # blocks of the longest page a slot can hold
    # one such page and two blocks more: a short page joins the longest, and both cannot grow to the end
    decoder = dataclasses.replace(engine._decoder, blocks=1 + full + 2, stats={})
    tokenizer = engine._acquire().processor.tokenizer
    with torch.inference_mode():
        pages = vision_prompts(engine, [(i, engine.encode([image], MARKDOWN)) for i, image in enumerate(IMAGES)])
        results = {result.index: result for result in decoder.run(AllReady(pages))}
    assert decoder.stats["preempted"] >= 1
    got = [engine._output(tokenizer, results[index]) for index in range(len(IMAGES))]
    assert [o.text for o in got] == [o.text for o in expected]
    assert [o.output_tokens for o in got] == [200] * len(IMAGES)
    engine.close()


def test_the_pool_holds_only_the_tokens_pages_really_write(tiny_checkpoint):
    """A budget of 2,000 tokens, pages that stop after 8: each slot holds blocks for about its prompt."""
    engine = TransformersEngine(str(tiny_checkpoint), max_new_tokens=2000, max_batch_size=8, ignore_eos=True)
    engine._page_lengths = lambda image: 8
    outputs = engine.generate(IMAGES, MARKDOWN)
    assert [(o.output_tokens, o.finish_reason) for o in outputs] == [(8, "length")] * len(IMAGES)
    decoder = engine._decoder
    per_page = math.ceil((prompt_tokens(engine) + 8 + decoder.sync_every) / decoder.block_size)
    budget_per_page = decoder.cache.table.shape[1]
    assert engine.last_stats["blocks_used_max"] <= len(IMAGES) * per_page < len(IMAGES) * budget_per_page
    engine.close()
