"""The in-process engine: transformers' native DeepSeek-OCR-2 on a GPU (or the CPU), batched."""

from __future__ import annotations

from ._engine import DEFAULT_MODEL, TransformersEngine

__all__ = ["DEFAULT_MODEL", "TransformersEngine"]
