"""Pages as images for a vision-capable downstream model, and what each image costs it.

A model that reads images can take a selected page as a picture instead of its text: a scan
with no text layer, a table or a chart keeps its layout, and the page costs a fixed number
of vision tokens however much text it holds. Each provider counts image tokens its own way;
the documented formulas are here, and the default (:func:`max_image_tokens`) takes the
largest of them so a budget holds whichever of those models reads the prompt.
"""

from __future__ import annotations

import base64
import io
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from ..errors import PageRangeError
from ..model import DEFAULT_DPI
from ..model._vision_tokens import count_vision_tokens
from ..pipeline._convert import Source
from ..pipeline._optical import fit_image
from ..sources import open_source
from ._summaries import readable_twice

__all__ = [
    "DEFAULT_IMAGE_SIDE",
    "ImageTokens",
    "PageImage",
    "PageImages",
    "anthropic_image_tokens",
    "deepseek_ocr2_image_tokens",
    "max_image_tokens",
    "openai_patch_tokens",
    "openai_tile_tokens",
]

DEFAULT_IMAGE_SIDE = 1024
"""Longest side, in pixels, of a page image sent downstream (about 93 DPI for a letter page)."""

ImageTokens = Callable[[int, int], int]
"""``(width, height) -> tokens`` that a downstream model spends on an image of that size."""


def openai_tile_tokens(width: int, height: int) -> int:
    """GPT-4o / GPT-4.1 ``detail: high``: 85 + 170 per 512 px tile after fitting 2048 px, short side 768.

    Examples:
        >>> openai_tile_tokens(1024, 1024), openai_tile_tokens(2048, 4096)
        (765, 1105)
    """
    scale = min(1.0, 2048 / max(width, height))
    scale *= min(1.0, 768 / (min(width, height) * scale))
    tiles = math.ceil(width * scale / 512) * math.ceil(height * scale / 512)
    return 85 + 170 * tiles


def openai_patch_tokens(width: int, height: int, multiplier: float = 1.0) -> int:
    """gpt-4.1-mini/nano, o4-mini, gpt-5-mini/nano: one token per 32 px patch, at most 1536 patches.

    Those models count the patches times a per-model ``multiplier`` (1.62, 2.46, 1.72...):
    pass it with ``functools.partial(openai_patch_tokens, multiplier=1.62)``.

    Examples:
        >>> openai_patch_tokens(1024, 1024), openai_patch_tokens(1800, 2400)
        (1024, 1452)
        >>> openai_patch_tokens(1024, 1024, multiplier=1.62)
        1659
    """
    return math.ceil(_patches(width, height) * multiplier)


def _patches(width: int, height: int) -> int:
    """32 px patches covering the image after shrinking it to at most 1536 of them."""
    patches = math.ceil(width / 32) * math.ceil(height / 32)
    if patches <= 1536:
        return patches
    shrink = math.sqrt(1536 * 32 * 32 / (width * height))
    wide, high = width * shrink / 32, height * shrink / 32
    shrink *= min(math.floor(wide) / wide, math.floor(high) / high)  # whole patches on the tighter side
    return _whole(width * shrink / 32) * _whole(height * shrink / 32)


def _whole(patches: float) -> int:
    """Patches covering a side, forgiving float error just above a whole number."""
    return math.ceil(patches - 1e-9)


def anthropic_image_tokens(width: int, height: int) -> int:
    """Claude: ``width * height / 750`` after fitting 1568 px on the long side, at most 1600.

    Examples:
        >>> anthropic_image_tokens(1000, 1000), anthropic_image_tokens(3000, 2000)
        (1334, 1600)
    """
    scale = min(1.0, 1568 / max(width, height))
    return min(1600, math.ceil(width * scale * height * scale / 750))


def deepseek_ocr2_image_tokens(width: int, height: int) -> int:
    """DeepSeek-OCR-2 itself: a 256-token global view, 144 per crop, one separator."""
    return count_vision_tokens(width, height)


def max_image_tokens(width: int, height: int) -> int:
    """The largest of the OpenAI tile, OpenAI patch (no multiplier) and Anthropic estimates.

    A budget counted with it holds for a model counted by any of those three formulas.

    Examples:
        >>> max_image_tokens(791, 1024)  # a letter page scaled to 1024 px
        1080
    """
    return max(f(width, height) for f in (openai_tile_tokens, openai_patch_tokens, anthropic_image_tokens))


@dataclass(frozen=True)
class PageImage:
    """One page as a PNG for the downstream model, with its token estimate.

    Attributes:
        page_number: 1-based page number.
        png: The PNG bytes.
        width: Width in pixels.
        height: Height in pixels.
        tokens: What the downstream model spends on it (the :data:`ImageTokens` estimate).
    """

    page_number: int
    png: bytes = field(repr=False)
    width: int
    height: int
    tokens: int

    @property
    def base64(self) -> str:
        """The PNG as base64 text (what chat APIs take inline)."""
        return base64.b64encode(self.png).decode("ascii")

    @property
    def data_url(self) -> str:
        """``data:image/png;base64,...`` (OpenAI's ``image_url`` form)."""
        return f"data:image/png;base64,{self.base64}"


class PageImages:
    """Renders pages of one document on request, as :class:`PageImage` s for the downstream model.

    Pass an instance as ``page_images=`` to :func:`build_context`, ``LongContextQA`` or
    ``LongContextQueryEngine``. A page is rendered only when it is chosen for the prompt, and
    the document is opened for each page, so the object holds no file handle between questions;
    the last ``cache_size`` images are kept, since questions about one document pick the
    same pages again.

    Example:
        >>> images = PageImages("report.pdf", image_tokens=anthropic_image_tokens)  # doctest: +SKIP
        >>> images(41).tokens  # doctest: +SKIP
        1080
    """

    def __init__(
        self,
        source: Source,
        *,
        max_side: int = DEFAULT_IMAGE_SIDE,
        dpi: int = DEFAULT_DPI,
        password: str | None = None,
        image_tokens: ImageTokens = max_image_tokens,
        cache_size: int = 32,
    ) -> None:
        """Keep what is needed to render pages later; a stream is read into memory now.

        Args:
            source: The document (path, bytes, binary stream or ``NamedSource``).
            max_side: Longest side of each image in pixels; larger renders are scaled down.
            dpi: Render resolution before scaling.
            password: Password of an encrypted PDF.
            image_tokens: The downstream model's image cost (default :func:`max_image_tokens`).
            cache_size: Rendered pages kept in memory.
        """
        _, self._data, self._name = readable_twice(source)
        self.max_side = max_side
        self.dpi = dpi
        self.password = password
        self.image_tokens = image_tokens
        self._cached = lru_cache(maxsize=cache_size)(self._render)

    def __call__(self, page_number: int) -> PageImage:
        """Render 1-based ``page_number`` as a PNG no larger than ``max_side``.

        Raises:
            InputError: The document or the page cannot be rendered (``PageRangeError`` for
                a page the document does not have).
        """
        return self._cached(page_number)

    def _render(self, page_number: int) -> PageImage:
        with open_source(self._data, password=self.password, dpi=self.dpi, name=self._name) as document:
            if isinstance(page_number, bool) or not 1 <= page_number <= document.total_pages:
                raise PageRangeError(
                    f"page {page_number!r} is out of range; the document has {document.total_pages} pages",
                    source=document.name,
                )
            image = fit_image(document.load_page(page_number - 1).image, self.max_side)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=True)
        return PageImage(
            page_number=page_number,
            png=buffer.getvalue(),
            width=image.width,
            height=image.height,
            tokens=self.image_tokens(image.width, image.height),
        )

    def __repr__(self) -> str:
        name = self._name or (os.fspath(self._data) if isinstance(self._data, (str, os.PathLike)) else "<bytes>")
        return f"PageImages({name!r}, max_side={self.max_side})"
