"""Optical context compression: read pages from a compact view, answer long-document questions.

A page image read from DeepSeek-OCR-2's 1024 global view costs 257 vision tokens, while the
same page as text often costs several times that. This package measures that ratio
(:mod:`.compact`), writes a short per-page summary from the compact view (:mod:`.summaries`)
and packs a question-answering prompt under a token budget: a map of every page plus the
full text (or, for a vision-capable model, the page images: :mod:`.page_images`) of the
pages most relevant to the question (:mod:`.context`). It never imports a
framework; the LangChain and LlamaIndex adapters are thin wrappers over it.
"""

from __future__ import annotations

from ..pipeline._optical import (
    COMPACT_SIDE,
    CompactViewEngine,
    CompressionStats,
    compact_size,
    compact_view,
    compression_stats,
    fit_image,
    fit_size,
)
from ._context import INSTRUCTION, QAContext, Ranker, build_context, embedding_ranker, rank_pages
from ._page_images import (
    DEFAULT_IMAGE_SIDE,
    ImageTokens,
    PageImage,
    PageImages,
    anthropic_image_tokens,
    deepseek_ocr2_image_tokens,
    max_image_tokens,
    openai_patch_tokens,
    openai_tile_tokens,
)
from ._qa import answer_pages
from ._summaries import PageSummary, summarize_pages

__all__ = [
    "COMPACT_SIDE",
    "CompactViewEngine",
    "CompressionStats",
    "DEFAULT_IMAGE_SIDE",
    "INSTRUCTION",
    "ImageTokens",
    "PageImage",
    "PageImages",
    "PageSummary",
    "QAContext",
    "Ranker",
    "answer_pages",
    "anthropic_image_tokens",
    "build_context",
    "compact_size",
    "compact_view",
    "compression_stats",
    "deepseek_ocr2_image_tokens",
    "embedding_ranker",
    "fit_image",
    "fit_size",
    "max_image_tokens",
    "openai_patch_tokens",
    "openai_tile_tokens",
    "rank_pages",
    "summarize_pages",
]
