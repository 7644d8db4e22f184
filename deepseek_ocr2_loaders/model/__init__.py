"""DeepSeek-OCR-2 facts the rest of the package relies on, without torch: defaults, prompts, vision tokens."""

from __future__ import annotations

from ._defaults import (
    DEFAULT_DPI,
    DEFAULT_MODEL,
    DEFAULT_NGRAM_SIZE,
    DEFAULT_NGRAM_WINDOW,
    DEFAULT_PROMPT,
    MAX_NEW_TOKENS,
)
from ._prompts import IMAGE_PLACEHOLDER, PROMPTS, resolve_prompt
from ._vision_tokens import GLOBAL_VIEW_TOKENS, TILE_SIZE, TILE_TOKENS, count_crops, count_vision_tokens

__all__ = [
    "DEFAULT_DPI",
    "DEFAULT_MODEL",
    "DEFAULT_NGRAM_SIZE",
    "DEFAULT_NGRAM_WINDOW",
    "DEFAULT_PROMPT",
    "MAX_NEW_TOKENS",
    "GLOBAL_VIEW_TOKENS",
    "IMAGE_PLACEHOLDER",
    "PROMPTS",
    "TILE_SIZE",
    "TILE_TOKENS",
    "count_crops",
    "count_vision_tokens",
    "resolve_prompt",
]
