"""LlamaIndex integration: a reader and a Markdown-structure node parser."""

from __future__ import annotations

try:
    import llama_index.core  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("deepseek_ocr2_loaders.llama_index needs llama-index-core: pip install llama-index-core") from exc

from ._node_parser import MarkdownStructureNodeParser
from ._qa import LongContextQueryEngine
from ._ray_results import load_ray_results
from ._reader import DeepSeekOCR2Reader

__all__ = ["DeepSeekOCR2Reader", "LongContextQueryEngine", "MarkdownStructureNodeParser", "load_ray_results"]
