"""OCR engines: the :class:`OCREngine` contract and its backends.

``TransformersEngine`` and ``OpenAIEngine`` are resolved lazily, so importing this package
never loads torch or httpx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import EngineOutput, OCREngine

if TYPE_CHECKING:
    from .openai._engine import OpenAIEngine
    from .transformers._engine import TransformersEngine

__all__ = ["EngineOutput", "OCREngine", "OpenAIEngine", "TransformersEngine"]


def __getattr__(name: str) -> Any:
    if name == "TransformersEngine":
        from .transformers._engine import TransformersEngine

        return TransformersEngine
    if name == "OpenAIEngine":
        from .openai._engine import OpenAIEngine

        return OpenAIEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
