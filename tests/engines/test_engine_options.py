"""Every engine option is honoured or refused, and is defined once (drift bugs of issue 12)."""

from __future__ import annotations

import dataclasses

import pytest
from text_pages import text_page

from deepseek_ocr2_loaders import ConfigError, OpenAIEngine, TransformersEngine, convert
from deepseek_ocr2_loaders.model import DEFAULT_MODEL, PROMPTS
from deepseek_ocr2_loaders.options import TransformersOptions

pytestmark = pytest.mark.compat  # also run on the oldest transformers we allow

MARKDOWN = PROMPTS["markdown"]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_each_attention_gives_the_tokens_of_model_generate_through_the_slot_decoder(tiny_checkpoint, attn):
    images = [text_page(900, 1200, "page 1"), text_page(600, 500, "page 2"), text_page(1400, 700, "page 3")]
    reference = TransformersEngine(
        str(tiny_checkpoint), max_new_tokens=20, decode="generate", attn_implementation=attn, max_batch_size=4
    )
    slots = TransformersEngine(str(tiny_checkpoint), max_new_tokens=20, attn_implementation=attn, max_batch_size=2)
    expected, got = reference.generate(images, MARKDOWN), slots.generate(images, MARKDOWN)
    assert [o.text for o in got] == [o.text for o in expected]
    assert [o.output_tokens for o in got] == [o.output_tokens for o in expected]
    reference.close()
    slots.close()


def test_flash_attention_with_the_slot_decoder_is_refused_naming_what_works():
    with pytest.raises(ConfigError, match=r"decode='generate'.*'sdpa'.*'eager'"):
        TransformersEngine("x", attn_implementation="flash_attention_2")


def test_the_image_processor_is_the_pil_backend_and_the_fingerprint_says_so(tiny_checkpoint):
    engine = TransformersEngine(str(tiny_checkpoint), max_new_tokens=4)
    assert type(engine._acquire().processor.image_processor).__name__.endswith("Pil")
    assert engine.fingerprint["image_backend"] == "pil"
    engine.close()


def test_stricter_keeps_every_option_but_the_guard():
    engine = TransformersEngine(
        "x", device="cpu", decode="generate", ignore_eos=True, stop_loops=False, cuda_graphs=False, max_new_tokens=77
    )
    stricter = engine.stricter()
    assert stricter.options == dataclasses.replace(engine.options, ngram_window=2 * engine.options.ngram_window)
    assert stricter._key == engine._key  # the same loaded model, no second copy
    engine.close()


OUTPUT_CHANGES = {
    "model": "other/model",
    "dtype": "float16",
    "attn_implementation": "eager",
    "max_new_tokens": 100,
    "ngram_size": 10,
    "ngram_window": 200,
    "revision": "abc123",
    "ignore_eos": True,
    "stop_loops": False,
}


def test_every_option_that_changes_the_text_changes_the_fingerprint():
    output_fields = {f.name for f in dataclasses.fields(TransformersOptions) if f.metadata["output"]}
    assert output_fields == set(OUTPUT_CHANGES)
    base = TransformersEngine("x", device="cpu").fingerprint
    for name, value in OUTPUT_CHANGES.items():
        changed = TransformersEngine(**{"model": "x", "device": "cpu", name: value}).fingerprint
        assert changed != base, name
    # speed-only options leave it alone
    assert TransformersEngine("x", device="cpu", max_batch_size=3, cuda_graphs=False).fingerprint == base


def test_every_option_has_a_description_and_unknown_names_are_refused():
    for item in dataclasses.fields(TransformersOptions):
        assert item.metadata["description"], item.name
    with pytest.raises(ConfigError, match="unknown engine option.*'ngram_sise'"):
        TransformersOptions.from_kwargs({"ngram_sise": 3})
    assert TransformersOptions().model == DEFAULT_MODEL


@pytest.mark.parametrize(
    "change", [{"model": "m2"}, {"max_tokens": 100}, {"extra_body": {"vllm_xargs": {"ngram_size": 5}}}]
)
def test_openai_engine_fingerprint_covers_model_budget_and_request_fields(change):
    base = OpenAIEngine("http://127.0.0.1:9/v1", "m1")
    other = OpenAIEngine("http://127.0.0.1:9/v1", **{"model": "m1", **change})
    assert base.fingerprint != other.fingerprint
    assert OpenAIEngine("http://127.0.0.1:9/v1", "m1").fingerprint == base.fingerprint


def test_openai_stricter_asks_the_server_for_a_stronger_guard():
    engine = OpenAIEngine("http://127.0.0.1:9/v1", "m1", max_tokens=123)
    stricter = engine.stricter()
    assert stricter is not engine and stricter is engine.stricter()
    loose, strict = engine.fingerprint["vllm_xargs"], stricter.fingerprint["vllm_xargs"]
    assert strict["ngram_size"] == loose["ngram_size"] and strict["window_size"] == 2 * loose["window_size"]
    assert stricter.max_tokens == 123 and stricter.model == "m1"
    engine.close()
    sglang = OpenAIEngine("http://127.0.0.1:9/v1", "m1", server="sglang")
    assert (
        sglang.stricter().fingerprint["custom_params"]["window_size"]
        == 2 * sglang.fingerprint["custom_params"]["window_size"]
    )
    assert sglang.fingerprint != OpenAIEngine("http://127.0.0.1:9/v1", "m1").fingerprint


def test_convert_accepts_every_engine_option_the_loaders_accept(tiny_checkpoint, tmp_path):
    image = tmp_path / "scan.png"
    text_page(640, 480, "page 7").save(image)
    results = list(
        convert(image, model=str(tiny_checkpoint), max_new_tokens=6, ngram_size=4, ngram_window=40, cache=False)
    )
    assert len(results) == 1 and results[0].output_tokens <= 6
    with pytest.raises(ConfigError, match="unknown engine option"):
        list(convert(image, model=str(tiny_checkpoint), ngram_sise=4, cache=False))
