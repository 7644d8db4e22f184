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
    CorruptInputError,
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
    RenderCrashError,
    RenderTimeout,
    UnsupportedInputError,
)
from .pipeline import NamedSource, aconvert, convert
from .policies import RenderPolicy, RetryPolicy
from .prompts import PROMPTS
from .types import Block, ErrorRecord, Figure, FinishReason, OCRStatus, PageResult

if TYPE_CHECKING:
    from .engines.openai import OpenAIEngine
    from .engines.transformers import TransformersEngine

__version__ = "0.1.0"

__all__ = [
    "PROMPTS",
    "Block",
    "CacheError",
    "ConfigError",
    "CorruptInputError",
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
    "NamedSource",
    "ModelLoadError",
    "OCREngine",
    "OCRStatus",
    "OpenAIEngine",
    "PDFOpenError",
    "PageRangeError",
    "PageResult",
    "RenderCrashError",
    "RenderPolicy",
    "RenderTimeout",
    "RetryPolicy",
    "TransformersEngine",
    "UnsupportedInputError",
    "__version__",
    "aconvert",
    "convert",
]


def __getattr__(name: str) -> Any:
    if name == "TransformersEngine":
        from .engines.transformers import TransformersEngine

        return TransformersEngine
    if name == "OpenAIEngine":
        from .engines.openai import OpenAIEngine

        return OpenAIEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
