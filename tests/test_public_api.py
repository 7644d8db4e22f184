"""The public surface: pinned names, cheap import, one exception tree."""

from __future__ import annotations

import subprocess
import sys

import deepseek_ocr2_loaders as package
from deepseek_ocr2_loaders import errors

EXPECTED_ALL = sorted(
    [
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
        "aconvert",
        "NamedSource",
        "RetryPolicy",
        "RenderPolicy",
        "RenderCrashError",
        "RenderTimeout",
        "OpenAIEngine",
    ]
)


def test_all_is_pinned_and_every_name_resolves():
    assert sorted(package.__all__) == EXPECTED_ALL
    for name in package.__all__:
        assert getattr(package, name) is not None


def test_every_error_class_is_exported_and_rooted():
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, package.DeepSeekOCR2Error)
        assert name in package.__all__


def test_errors_carry_source_and_page_and_name_them():
    error = package.PDFOpenError("truncated", source="/data/x.pdf", page=2)
    assert (error.source, error.page) == ("/data/x.pdf", 2)
    assert str(error) == "/data/x.pdf (page 3): truncated"
    assert isinstance(package.InputError("x"), ValueError)
    assert isinstance(package.ModelLoadError("x"), RuntimeError)


def test_importing_the_package_does_not_load_torch_or_transformers():
    code = (
        "import sys, deepseek_ocr2_loaders, deepseek_ocr2_loaders.cli;"
        "print(sorted(m for m in ('torch', 'transformers', 'httpx') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_transformers_engine_resolves_lazily():
    from deepseek_ocr2_loaders.engines.transformers._engine import TransformersEngine

    assert package.TransformersEngine is TransformersEngine
