"""deepseek-ocr2-loaders: PDFs and images to Markdown pages with DeepSeek-OCR-2.

``import deepseek_ocr2_loaders`` is cheap: torch and transformers load only when a
:class:`TransformersEngine` is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .engines.base import EngineOutput, OCREngine
from .errors import (
    CacheError,
    ConfigError,
    DeepSeekOCR2Error,
    EmptyInputError,
    EncryptedPDFError,
    EngineConnectionError,
    EngineError,
    EngineResponseError,
    EngineTimeout,
    GPUOutOfMemoryError,
    InputError,
    ModelLoadError,
    PageRangeError,
    PDFOpenError,
    UnsupportedInputError,
)
from .pipeline import convert
from .prompts import PROMPTS
from .types import Block, ErrorRecord, Figure, FinishReason, OCRStatus, PageResult

if TYPE_CHECKING:
    from .engines.transformers import TransformersEngine

__version__ = "0.1.0"

__all__ = [
    "PROMPTS",
    "Block",
    "CacheError",
    "ConfigError",
    "DeepSeekOCR2Error",
    "EmptyInputError",
    "EncryptedPDFError",
    "EngineConnectionError",
    "EngineError",
    "EngineOutput",
    "EngineResponseError",
    "EngineTimeout",
    "ErrorRecord",
    "Figure",
    "FinishReason",
    "GPUOutOfMemoryError",
    "InputError",
    "ModelLoadError",
    "OCREngine",
    "OCRStatus",
    "PDFOpenError",
    "PageRangeError",
    "PageResult",
    "TransformersEngine",
    "UnsupportedInputError",
    "__version__",
    "convert",
]


def __getattr__(name: str) -> Any:
    if name == "TransformersEngine":
        from .engines.transformers import TransformersEngine

        return TransformersEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
