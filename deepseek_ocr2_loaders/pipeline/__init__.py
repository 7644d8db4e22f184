"""``convert()``: sources -> engine (batched) -> parse -> cache -> a stream of :class:`PageResult`.

One batch driver (:mod:`._batch`) serves the sync and the async entry points (:mod:`._convert`);
the page cache, result building, figure crops, the compact view and prefetching are its parts.
"""

from __future__ import annotations

from ._cache import PageCache, default_cache, open_cache, page_key
from ._convert import NamedSource, Source, aconvert, convert
from ._optical import CompactViewEngine, CompressionStats, compact_view, compression_stats, fit_image, fit_size

__all__ = [
    "CompactViewEngine",
    "CompressionStats",
    "NamedSource",
    "PageCache",
    "Source",
    "aconvert",
    "compact_view",
    "compression_stats",
    "convert",
    "default_cache",
    "fit_image",
    "fit_size",
    "open_cache",
    "page_key",
]
