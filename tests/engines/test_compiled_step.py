"""The decode step as ``compile_decode`` builds it computes what the plain step computes.

On a GPU the engine captures ``torch.compile(step, dynamic=True)`` in its CUDA graphs; here
torch.compile's CPU backend traces and runs the same step through the installed transformers'
own decoder layers (the KV write and paged attention left outside the compiled graph), so a
transformers release that breaks the tracing fails here, not only on a GPU.
"""

from __future__ import annotations

import pytest
import torch
from text_pages import text_page

from deepseek_ocr2_loaders import TransformersEngine
from deepseek_ocr2_loaders.engines.transformers._kv_cache import BlockAllocator
from deepseek_ocr2_loaders.engines.transformers._slots import compiled
from deepseek_ocr2_loaders.model import PROMPTS

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning:torch.*")]  # torch.compile's own


def occupy(decoder, width: int, length: int, seed: int) -> None:
    """The first ``width`` slots hold pages of ``length`` tokens (random keys, values and last tokens)."""
    generator = torch.Generator().manual_seed(seed)
    decoder.allocator = BlockAllocator(decoder.blocks, decoder.block_size)  # the same blocks each time
    decoder.table.zero_()
    for index in range(width):
        assert decoder._lend(index, length + 8)
    for pool in decoder.cache.keys + decoder.cache.values:
        pool.copy_(torch.randn(pool.shape, generator=generator))
    busy = torch.arange(decoder.slots) < width
    decoder.cache.positions.copy_(torch.where(busy, length, 0))
    vocab = decoder.model.model.language_model.embed_tokens.num_embeddings
    decoder.tokens.copy_(torch.randint(0, vocab, (decoder.slots,), generator=generator))
    decoder.finished.copy_(~busy)
    decoder.counts.fill_(1)
    decoder.generated.fill_(-1)
    decoder.recent.copy_(-torch.arange(decoder.recent.shape[1], 0, -1).expand_as(decoder.recent))  # none generated
    decoder.cache.table.copy_(decoder.table)


def run(decoder, step, width: int, steps: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    rows = decoder._rows(width)
    for _ in range(steps):
        step(rows)
    return decoder.generated[:width].clone(), [pool.clone() for pool in decoder.cache.keys]


def test_the_compiled_step_writes_the_plain_steps_tokens_and_keys_at_two_widths(tiny_checkpoint):
    engine = TransformersEngine(str(tiny_checkpoint), max_new_tokens=16, max_batch_size=16, ignore_eos=True)
    engine.generate([text_page(600, 500, "page")], PROMPTS["markdown"])  # builds the engine's decoder
    decoder = engine._decoder
    step = compiled(decoder._step)
    with torch.inference_mode():
        for width, length, seed in ((8, 40, 1), (16, 70, 2)):  # the second width reuses the dynamic graph
            occupy(decoder, width, length, seed)
            tokens, keys = run(decoder, decoder._step, width, 3)
            occupy(decoder, width, length, seed)
            got_tokens, got_keys = run(decoder, step, width, 3)
            assert torch.equal(got_tokens, tokens) and (tokens[:, 1:4] >= 0).all()  # 3 steps written
            for got, expected in zip(got_keys, keys, strict=True):
                torch.testing.assert_close(got, expected)
    engine.close()
