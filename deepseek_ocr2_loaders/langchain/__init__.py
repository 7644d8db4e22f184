"""LangChain integration: a loader, a blob parser and a Markdown-structure splitter."""

from __future__ import annotations

try:
    import langchain_core  # noqa: F401
    import langchain_text_splitters  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "deepseek_ocr2_loaders.langchain needs langchain-core and langchain-text-splitters: "
        "pip install 'deepseek-ocr2-loaders' (they are core dependencies) or pip install langchain-core "
        "langchain-text-splitters"
    ) from exc

from ._loader import DeepSeekOCR2Loader
from ._parser import DeepSeekOCR2Parser
from ._qa import LongContextQA
from ._ray_results import load_ray_results
from ._splitter import MarkdownStructureSplitter

__all__ = [
    "DeepSeekOCR2Loader",
    "DeepSeekOCR2Parser",
    "LongContextQA",
    "MarkdownStructureSplitter",
    "load_ray_results",
]
