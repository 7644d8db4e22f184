"""page_key: same inputs give the same key; every input, and the package version, changes it."""

from __future__ import annotations

import hashlib

import pytest

from deepseek_ocr2_loaders.errors import CacheError
from deepseek_ocr2_loaders.pipeline import _cache
from deepseek_ocr2_loaders.pipeline._cache import page_key

BASE: dict[str, object] = {
    "file_sha256": hashlib.sha256(b"a pdf").hexdigest(),
    "page": 0,
    "model": "deepseek-ai/DeepSeek-OCR-2",
    "revision": None,
    "prompt": "<image>\n<|grounding|>Convert the document to markdown.",
    "dpi": 144,
    "options": {"max_new_tokens": 4096, "ngram_size": 30},
}

VARIANTS = {
    "file_sha256": hashlib.sha256(b"another pdf").hexdigest(),
    "page": 1,
    "model": "/models/DeepSeek-OCR-2",
    "revision": "abc123",
    "prompt": "<image>\nFree OCR.",
    "dpi": 200,
    "options": {"max_new_tokens": 2048, "ngram_size": 30},
}


def key(**changes: object) -> str:
    return page_key(**{**BASE, **changes})  # type: ignore[arg-type]


def test_key_is_a_stable_sha256_hex():
    first = key()
    assert first == key()
    assert len(first) == 64 and int(first, 16) >= 0


@pytest.mark.parametrize("field", sorted(VARIANTS))
def test_each_input_changes_the_key(field):
    assert key(**{field: VARIANTS[field]}) != key()


def test_option_order_and_digest_case_do_not_matter_but_values_do():
    assert key(options={"ngram_size": 30, "max_new_tokens": 4096}) == key()
    assert key(file_sha256=str(BASE["file_sha256"]).upper()) == key()
    assert key(options=None) == key(options={})
    assert key(options={"max_new_tokens": 4096, "ngram_size": 30, "window": 90}) != key()
    assert key(revision="") != key(revision=None)


def test_package_version_is_part_of_the_key(monkeypatch):
    before = key()
    monkeypatch.setattr(_cache, "__version__", "999.0.0")
    assert key() != before


def test_options_that_are_not_json_values_raise_cache_error():
    with pytest.raises(CacheError, match="JSON"):
        key(options={"stop": object()})
    with pytest.raises(CacheError):
        key(options={"temperature": float("nan")})
