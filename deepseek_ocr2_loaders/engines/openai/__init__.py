"""The remote engine: any OpenAI-compatible server (vLLM, SGLang, ``deepseek-ocr2 serve``) over HTTP."""

from __future__ import annotations

from ._engine import DEFAULT_SERVED_MODEL, OpenAIEngine

__all__ = ["DEFAULT_SERVED_MODEL", "OpenAIEngine"]
