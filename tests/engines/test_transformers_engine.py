"""TransformersEngine through the tiny checkpoint: the same from_pretrained path as the real model."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from deepseek_ocr2_loaders import ConfigError, ModelLoadError, TransformersEngine
from deepseek_ocr2_loaders.model._prompts import PROMPTS
from deepseek_ocr2_loaders.model._vision_tokens import count_vision_tokens
from deepseek_ocr2_loaders.options import TransformersOptions
from deepseek_ocr2_loaders.testing import BOS

pytestmark = pytest.mark.compat  # also run on the oldest transformers we allow

MARKDOWN = PROMPTS["markdown"]


def page(width: int, height: int, seed: int = 0) -> Image.Image:
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for i in range(5):
        draw.rectangle((10 + 40 * i + seed, 20, 30 + 40 * i, 40 + 9 * seed), fill=(20 * i, 10 * seed, 90))
    return image


def test_prompt_layout_is_bos_image_tokens_then_instruction(tiny_engine):
    inputs = tiny_engine.encode([page(1224, 1584)], MARKDOWN)
    ids = inputs["input_ids"][0].tolist()
    tokenizer = tiny_engine._acquire().processor.tokenizer
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    assert ids[0] == tokenizer.convert_tokens_to_ids(BOS)
    assert ids.count(tokenizer.bos_token_id) == 1
    n_image = ids.count(image_id)
    assert n_image == 1121
    assert ids[1 : 1 + n_image] == [image_id] * n_image
    assert (
        tokenizer.decode(ids[1 + n_image :], skip_special_tokens=False)
        == "\n<|grounding|>Convert the document to markdown."
    )


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (500, 700),
        (768, 768),
        (769, 500),
        (1224, 1584),
        (1584, 1224),
        (2000, 600),
        (600, 3000),
        (1700, 1700),
        (360, 600),
        (2736, 1824),
        (3000, 400),
        (900, 1000),
    ],
)
def test_vision_tokens_match_the_processor_and_the_rule(tiny_engine, width, height):
    inputs = tiny_engine.encode([page(width, height)], "<image>\nFree OCR.")
    crops = int(inputs["num_local_patches"][0])
    counted = int((inputs["input_ids"][0] == tiny_engine._acquire().model.config.image_token_id).sum())
    assert counted == 256 + 144 * crops + 1
    assert crops == 0 or 2 <= crops <= 6
    assert counted == count_vision_tokens(width, height)


def test_batched_generation_equals_one_page_at_a_time(tiny_engine):
    images = [page(1224, 1584, 1), page(600, 500, 2), page(2000, 900, 3)]
    batched = tiny_engine.generate(images, MARKDOWN)
    single = [tiny_engine.generate([image], MARKDOWN)[0] for image in images]
    assert [o.text for o in batched] == [o.text for o in single]
    assert [o.vision_tokens for o in batched] == [1121, 257, count_vision_tokens(2000, 900)]


def test_max_new_tokens_cuts_off_with_length(tiny_checkpoint):
    with TransformersEngine(str(tiny_checkpoint), max_new_tokens=5) as engine:
        (out,) = engine.generate([page(400, 400)], MARKDOWN)
    assert out.finish_reason in ("length", "stop")
    assert out.output_tokens <= 5
    if out.finish_reason == "length":
        assert out.output_tokens == 5


def test_engines_of_one_model_share_it_and_the_last_close_frees_it(tiny_checkpoint):
    from deepseek_ocr2_loaders.engines.transformers import _registry

    # eager attention: a key no other test holds
    first = TransformersEngine(str(tiny_checkpoint), max_new_tokens=4, attn_implementation="eager")
    second = TransformersEngine(str(tiny_checkpoint), max_new_tokens=8, attn_implementation="eager")
    assert first._acquire().model is second._acquire().model
    key = first._key
    first.close()
    assert _registry.is_loaded(key)
    second.close()
    assert not _registry.is_loaded(key)
    second.close()  # twice is fine


def test_missing_local_folder_says_it_is_not_found(tmp_path):
    engine = TransformersEngine(str(tmp_path / "nowhere"))
    with pytest.raises(ModelLoadError) as info:
        engine.generate([page(100, 100)], MARKDOWN)
    message = str(info.value)
    assert "nowhere" in message and "not found" in message
    assert "hf download" not in message  # a mistyped path is not a network problem


def test_hub_id_without_network_fails_fast_with_the_local_path_advice():
    started = time.monotonic()
    engine = TransformersEngine("deepseek-community/DeepSeek-OCR-2-does-not-exist")
    with pytest.raises(ModelLoadError) as info:
        engine.generate([page(100, 100)], MARKDOWN)
    assert "TransformersEngine(model='./DeepSeek-OCR-2')" in str(info.value)
    assert info.value.__cause__ is not None
    assert time.monotonic() - started < 5  # one reachability check, not every retry of every file


def test_hf_hub_offline_reads_the_cache_only_and_never_asks_the_hub(monkeypatch):
    from huggingface_hub import constants

    from deepseek_ocr2_loaders.engines.transformers import _registry

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(_registry, "hub_unreachable", lambda: pytest.fail("HF_HUB_OFFLINE=1 must not ask the hub"))
    with pytest.raises(ModelLoadError, match="hf download"):
        TransformersEngine("deepseek-community/DeepSeek-OCR-2-does-not-exist").generate([page(100, 100)], MARKDOWN)


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ModelLoadError, match="not DeepSeek-OCR-2"):
        TransformersEngine(str(tmp_path)).generate([page(100, 100)], MARKDOWN)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_batch_size": 0},
        {"vision_batch_size": 0},
        {"max_new_tokens": 0},
        {"ngram_size": 30, "ngram_window": 20},
        {"dtype": "float17"},
        {"attn_implementation": "magic"},
    ],
)
def test_bad_options_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        TransformersEngine("x", **kwargs)


@pytest.mark.parametrize(
    ("gpu", "decode", "slots", "vision"),
    [(True, "slots", 128, 16), (True, "generate", 16, 16), (False, "slots", 16, 2)],
)
def test_batch_defaults_follow_the_device(gpu, decode, slots, vision):
    assert TransformersOptions(decode=decode).batch_sizes(gpu=gpu) == (slots, vision)
    assert TransformersOptions(max_batch_size=3).batch_sizes(gpu=gpu)[0] == 3
    engine = TransformersEngine("x", device="cpu", decode=decode)  # nothing loads until the first page
    assert (engine.batch_size, engine.vision_batch_size) == TransformersOptions(decode=decode).batch_sizes(gpu=False)


@pytest.mark.parametrize("device", ["nope", "cuda:99", "tpu"])
def test_a_device_that_is_not_here_is_a_config_error(device):
    with pytest.raises(ConfigError, match="device"):
        TransformersEngine("x", device=device)


def test_flash_attention_without_flash_attn_names_the_extra():
    pytest.importorskip("torch")
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match=r"deepseek-ocr2-loaders\[flash\]"):
            TransformersEngine("x", attn_implementation="flash_attention_2", decode="generate")
    else:  # pragma: no cover - only where flash-attn is installed
        TransformersEngine("x", attn_implementation="flash_attention_2", decode="generate")


def test_tiny_checkpoint_has_the_real_special_tokens(tiny_checkpoint: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_checkpoint))
    for token in ("<image>", "<|grounding|>", "<|ref|>", "<|/ref|>", "<|det|>", "<|/det|>", "<td>", "</td>"):
        ids = tokenizer.encode(token, add_special_tokens=False)
        assert len(ids) == 1, token
    assert tokenizer.bos_token == BOS and tokenizer.eos_token == "<｜end▁of▁sentence｜>"
    assert {p.name for p in tiny_checkpoint.iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json"}


def test_slot_decoding_equals_model_generate_with_slots_refilled(tiny_checkpoint):
    images = [page(1224, 1584, 1), page(600, 500, 2), page(2000, 900, 3), page(700, 900, 4), page(1000, 1000, 5)]
    reference = TransformersEngine(str(tiny_checkpoint), max_new_tokens=24, decode="generate", max_batch_size=8)
    slots = TransformersEngine(str(tiny_checkpoint), max_new_tokens=24, max_batch_size=2)  # 5 pages through 2 slots
    expected, got = reference.generate(images, MARKDOWN), slots.generate(images, MARKDOWN)
    assert [o.text for o in got] == [o.text for o in expected]
    assert [(o.finish_reason, o.output_tokens, o.vision_tokens) for o in got] == [
        (o.finish_reason, o.output_tokens, o.vision_tokens) for o in expected
    ]
    assert slots.last_stats["slots"] == 2 and slots.last_stats["vision_s"] > 0


def test_a_page_reads_the_same_alone_and_in_a_full_batch(tiny_checkpoint):
    engine = TransformersEngine(str(tiny_checkpoint), max_new_tokens=16, max_batch_size=4)
    images = [page(900, 1200, seed) for seed in range(1, 5)]
    together = engine.generate(images, MARKDOWN)
    alone = [engine.generate([image], MARKDOWN)[0] for image in images]
    assert [o.text for o in together] == [o.text for o in alone]


def test_ignore_eos_gives_every_page_the_full_budget(tiny_checkpoint):
    engine = TransformersEngine(str(tiny_checkpoint), max_new_tokens=9, ignore_eos=True, stop_loops=False)
    outputs = engine.generate([page(500, 500, 1), page(800, 600, 2), page(640, 480, 3)], MARKDOWN)
    assert [o.output_tokens for o in outputs] == [9, 9, 9]
    assert {o.finish_reason for o in outputs} == {"length"}
