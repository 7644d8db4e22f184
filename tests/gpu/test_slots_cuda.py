"""On a CUDA GPU: the graph-captured slot decoder reads pages exactly as model.generate does.

Skipped without CUDA (CI has none); run on the device machine with ``pytest -m gpu``.
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image, ImageDraw

from deepseek_ocr2_loaders import TransformersEngine
from deepseek_ocr2_loaders.model._prompts import PROMPTS

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def page(width: int, height: int, seed: int) -> Image.Image:
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for i in range(6):
        draw.rectangle((10 + 50 * i + seed, 20, 40 + 50 * i, 60 + 7 * seed), fill=(30 * i, 20 * seed, 90))
    return image


IMAGES = [(1224, 1584, 1), (1224, 1584, 2), (1224, 1584, 3), (600, 500, 4), (2000, 900, 5)]


def test_the_graph_captured_step_replays_exactly_what_eager_steps_compute(tiny_checkpoint):
    """bf16 (grouped GEMM experts, so the step can be captured): graph replay == eager, call after call."""
    images = [page(*spec) for spec in IMAGES]
    options = {"device": "cuda", "dtype": "bfloat16", "max_new_tokens": 48, "max_batch_size": 2}
    eager = TransformersEngine(str(tiny_checkpoint), cuda_graphs=False, **options)
    graphs = TransformersEngine(str(tiny_checkpoint), **options)
    expected = [o.text for o in eager.generate(images, PROMPTS["markdown"])]
    assert [o.text for o in graphs.generate(images, PROMPTS["markdown"])] == expected
    assert [o.text for o in graphs.generate(images, PROMPTS["markdown"])] == expected  # the same graph, replayed
    assert graphs._decoder._graphs and not eager._decoder._graphs


def test_the_compiled_step_replays_the_tokens_of_eager_plain_steps(tiny_checkpoint):
    """compile_decode in bf16: compiled, graph-captured steps == plain eager steps, one graph for both widths."""
    from torch._dynamo.utils import counters

    images = [page(*spec) for spec in IMAGES * 2]
    options = {"device": "cuda", "dtype": "bfloat16", "max_new_tokens": 48, "max_batch_size": 16}
    eager = TransformersEngine(str(tiny_checkpoint), cuda_graphs=False, **options)
    torch._dynamo.reset()
    counters.clear()
    compiled = TransformersEngine(str(tiny_checkpoint), compile_decode=True, vision_batch_size=10, **options)
    for engine in (eager, compiled):
        engine._page_lengths = lambda image: 8 if image.width == 1224 else 48  # the batch thins out: 16 -> 8
    expected = [o.text for o in eager.generate(images, PROMPTS["markdown"])]
    assert [o.text for o in compiled.generate(images, PROMPTS["markdown"])] == expected
    decoder = compiled._decoder
    assert decoder._compiled is not None and set(decoder._graphs) == {8, 16}
    assert counters["stats"]["unique_graphs"] == 1


def test_slots_equal_model_generate_on_cuda_in_fp32(tiny_checkpoint):
    images = [page(*spec) for spec in IMAGES]
    options = {"device": "cuda", "dtype": "float32", "max_new_tokens": 40}
    reference = TransformersEngine(str(tiny_checkpoint), decode="generate", max_batch_size=8, **options)
    slots = TransformersEngine(str(tiny_checkpoint), max_batch_size=2, **options)
    expected = [o.text for o in reference.generate(images, PROMPTS["markdown"])]
    assert [o.text for o in slots.generate(images, PROMPTS["markdown"])] == expected


def test_pages_encoded_beside_the_decode_steps_read_as_model_generate_reads_them(tiny_checkpoint):
    """One page per vision batch, two slots: later pages are encoded on the side stream while slots decode."""
    images = [page(*spec) for spec in IMAGES]
    options = {"device": "cuda", "dtype": "float32", "max_new_tokens": 40}
    reference = TransformersEngine(str(tiny_checkpoint), decode="generate", max_batch_size=8, **options)
    slots = TransformersEngine(str(tiny_checkpoint), max_batch_size=2, vision_batch_size=1, **options)
    expected = [o.text for o in reference.generate(images, PROMPTS["markdown"])]
    assert [o.text for o in slots.generate(images, PROMPTS["markdown"])] == expected
    assert slots.last_stats.get("vision_batches_beside", 0) >= 1


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize(("heads", "kv_heads", "dim"), [(10, 10, 128), (2, 1, 16)])
def test_the_triton_paged_kernel_equals_gathered_sdpa_and_replays_in_a_graph(dtype, heads, kv_heads, dim):
    from deepseek_ocr2_loaders.engines.transformers._paged_attention import (
        PagedBatch,
        _triton_kernels,
        paged_attention,
        reference_attention,
    )

    assert _triton_kernels() is not None, "the GPU image has Triton: the kernel must be the path taken"
    torch.manual_seed(0)
    block, slots, width = 64, 6, 150  # up to 9,600 keys: many split-K parts for the long ones
    pool_k = torch.randn(1000, block, kv_heads, dim, device="cuda", dtype=dtype)
    pool_v = torch.randn(1000, block, kv_heads, dim, device="cuda", dtype=dtype)
    table = torch.randperm(999, device="cuda")[: slots * width].add(1).view(slots, width).int()
    lengths = torch.tensor([1, 63, 513, 1024, 9000, 9600], device="cuda", dtype=torch.int32)
    query = torch.randn(slots, heads, 1, dim, device="cuda", dtype=dtype)
    batch = PagedBatch([pool_k], [pool_v], table, lengths, width)
    expected = reference_attention(query, pool_k, pool_v, batch, dim**-0.5)
    tolerance = {"atol": 2e-2, "rtol": 2e-2} if dtype == torch.bfloat16 else {"atol": 1e-4, "rtol": 1e-4}
    torch.testing.assert_close(paged_attention(query, pool_k, pool_v, batch, dim**-0.5), expected, **tolerance)
    graph, out = torch.cuda.CUDAGraph(), None
    paged_attention(query, pool_k, pool_v, batch, dim**-0.5)  # compile outside the capture
    with torch.cuda.graph(graph):
        out = paged_attention(query, pool_k, pool_v, batch, dim**-0.5)
    lengths.copy_(torch.tensor([9599, 2, 128, 1, 33, 1279], device="cuda"))  # lengths live in memory
    graph.replay()
    torch.testing.assert_close(out, reference_attention(query, pool_k, pool_v, batch, dim**-0.5), **tolerance)
