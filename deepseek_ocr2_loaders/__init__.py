"""deepseek-ocr2-loaders: PDFs and images to Markdown pages with DeepSeek-OCR-2.

``import deepseek_ocr2_loaders`` is cheap: torch and transformers load only when a
:class:`TransformersEngine` is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .engines._base import EngineOutput, OCREngine
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
from .model._prompts import PROMPTS
from .options import RenderPolicy, RetryPolicy
from .pipeline._convert import NamedSource, aconvert, convert
from .types import Block, ErrorRecord, Figure, FinishReason, OCRStatus, PageResult

if TYPE_CHECKING:
    from .engines.openai._engine import OpenAIEngine
    from .engines.transformers._engine import TransformersEngine


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
        from .engines.transformers._engine import TransformersEngine

        return TransformersEngine
    if name == "OpenAIEngine":
        from .engines.openai._engine import OpenAIEngine

        return OpenAIEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
