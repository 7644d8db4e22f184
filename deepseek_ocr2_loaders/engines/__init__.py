"""OCR engines: the :class:`OCREngine` contract and its backends.

``TransformersEngine`` is resolved lazily so importing this package never loads torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import EngineOutput, OCREngine

if TYPE_CHECKING:
    from .transformers import TransformersEngine

__all__ = ["EngineOutput", "OCREngine", "TransformersEngine"]


def __getattr__(name: str) -> Any:
    if name == "TransformersEngine":
        from .transformers import TransformersEngine

        return TransformersEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
