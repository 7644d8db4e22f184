"""Defaults taken from the official DeepSeek-OCR-2 scripts, defined once for every entry point.

``convert``, both loaders, the blob parser, the CLI, Ray and the server read these names, so a
default changes here or nowhere.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_DPI",
    "DEFAULT_MODEL",
    "DEFAULT_NGRAM_SIZE",
    "DEFAULT_NGRAM_WINDOW",
    "DEFAULT_PROMPT",
    "MAX_NEW_TOKENS",
]

DEFAULT_MODEL = "deepseek-community/DeepSeek-OCR-2"
"""The checkpoint the in-process engine loads when none is named (transformers' native format)."""

DEFAULT_DPI = 144
"""PDF render resolution of the official PDF script."""

DEFAULT_PROMPT = "markdown"
"""The prompt preset: grounded Markdown (``<|grounding|>Convert the document to markdown.``)."""

MAX_NEW_TOKENS = 8192
"""Token budget per page of the model card."""

DEFAULT_NGRAM_SIZE = 20
"""Length of the n-grams the official scripts ban from repeating..."""

DEFAULT_NGRAM_WINDOW = 50
"""...inside this many recent generated tokens (the official PDF script's window, used for every page)."""
