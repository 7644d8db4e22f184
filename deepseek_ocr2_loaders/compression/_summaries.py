"""Per-page summaries read from the compact view, through :func:`convert` and its cache.

Summaries are the "map" level of a long-document prompt: one cheap reading of every page
(257 vision tokens each) that lets a downstream model know what is where. They go through
:func:`~deepseek_ocr2_loaders.pipeline._convert.convert`, so they are batched, retried and cached like
any page; the wrapped engine's fingerprint marks them as compact-view readings so they
never mix with full-resolution pages in the cache.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..engines._base import OCREngine
from ..model import DEFAULT_DPI
from ..pipeline._cache import PageCache
from ..pipeline._convert import NamedSource, Source, convert
from ..pipeline._optical import CompactViewEngine, CompressionStats, compression_stats
from ..sources import open_source

if TYPE_CHECKING:
    pass

__all__ = ["PageSummary", "summarize_pages"]


@dataclass(frozen=True)
class PageSummary:
    """One page's compact reading, its full text when the PDF has one, and what it costs.

    Attributes:
        page: 0-based page index.
        page_number: 1-based page number (what citations ``[p. N]`` use).
        summary: The model's reading of the compact view.
        full_text: The PDF text layer of the page; ``None`` for scans and images.
        stats: Vision versus text tokens of the page.
    """

    page: int
    page_number: int
    summary: str
    full_text: str | None
    stats: CompressionStats


def summarize_pages(
    source: Source,
    *,
    engine: OCREngine,
    pages: str | Iterable[int] | None = None,
    dpi: int = DEFAULT_DPI,
    prompt: str = "free",
    cache: bool | str | os.PathLike[str] | PageCache | None = True,
    password: str | None = None,
) -> Iterator[PageSummary]:
    """Read each page of one document from its compact view, yielding a :class:`PageSummary`.

    Args:
        source: One document (path, bytes, binary stream or :class:`NamedSource`).
        engine: Any OCR engine; it is wrapped in :class:`CompactViewEngine`.
        pages: Page selection, as in :func:`convert`.
        dpi: Render resolution; the full render sets ``vision_tokens_full``.
        prompt: The reading prompt (default ``free``: plain text, no grounding).
        cache: The page cache, as in :func:`convert`.
        password: Password of an encrypted PDF.

    Yields:
        One summary per selected page, in page order.
    """
    named, data, name = readable_twice(source)
    with open_source(data, password=password, dpi=dpi, name=name) as document:
        results = convert(
            named, engine=CompactViewEngine(engine), prompt=prompt, pages=pages, dpi=dpi, cache=cache, password=password
        )
        for result in results:
            rendered = document.load_page(result.page)
            full_text = rendered.text if rendered.text and rendered.text.strip() else None
            width, height = rendered.image.size
            yield PageSummary(
                page=result.page,
                page_number=result.page_number,
                summary=result.markdown.strip(),
                full_text=full_text,
                stats=compression_stats(width, height, full_text or result.markdown),
            )


def readable_twice(source: Source) -> tuple[Source, str | os.PathLike[str] | bytes, str | None]:
    """The source for :func:`convert`, the same data for :func:`open_source`, and its name.

    A stream can be read only once, so it is read into bytes here and both passes use those.
    """
    if isinstance(source, NamedSource):
        data = source.data if isinstance(source.data, bytes) else source.data.read()
        return NamedSource(data, source.name), data, source.name
    if isinstance(source, (str, os.PathLike, bytes)):
        return source, source, None
    data = source.read()
    return data, data, None
