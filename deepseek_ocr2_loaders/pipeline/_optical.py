"""The compact view of a page and what reading a page from it saves.

DeepSeek-OCR-2 adds 768x768 crops (144 tokens each) only when an image is larger than 768
px on a side; below that it reads the page from its 1024 global view alone, 257 tokens in
all. Downscaling a page so its longer side is at most 768 px is therefore the cheapest way to
have the model read it, at the cost of detail (small print may blur).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..chunking._tokens import count_tokens
from ..engines._base import EngineOutput, OCREngine
from ..model._vision_tokens import TILE_SIZE, count_vision_tokens

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "COMPACT_SIDE",
    "CompactViewEngine",
    "CompressionStats",
    "compact_size",
    "compact_view",
    "compression_stats",
    "fit_image",
    "fit_size",
]

COMPACT_SIDE = TILE_SIZE
"""Longest side of a compact view: the largest image the model reads without crops."""


def fit_size(width: int, height: int, side: int) -> tuple[int, int]:
    """``width`` x ``height`` scaled down (aspect kept) so the longer side is at most ``side``.

    Images already within ``side`` are left as they are: upscaling adds no detail.
    """
    longest = max(width, height)
    if longest <= side:
        return width, height
    scale = side / longest
    return max(1, min(side, round(width * scale))), max(1, min(side, round(height * scale)))


def fit_image(image: Image.Image, side: int) -> Image.Image:
    """``image`` downscaled with :func:`fit_size` (Lanczos), or itself when it already fits."""
    size = fit_size(*image.size, side)
    if size == image.size:
        return image
    from PIL import Image as PILImage

    return image.resize(size, PILImage.Resampling.LANCZOS)


def compact_size(width: int, height: int) -> tuple[int, int]:
    """Pixel size of the compact view of a ``width`` x ``height`` image (aspect kept)."""
    return fit_size(width, height, COMPACT_SIDE)


def compact_view(image: Image.Image) -> Image.Image:
    """Downscale ``image`` so the model reads it from its global view only (257 tokens).

    Examples:
        >>> from PIL import Image
        >>> compact_view(Image.new("RGB", (1224, 1584))).size
        (593, 768)
    """
    return fit_image(image, COMPACT_SIDE)


@dataclass(frozen=True)
class CompressionStats:
    """What one page costs as vision tokens (compact and full render) versus as text.

    Attributes:
        vision_tokens: Tokens of the compact view (257 for any page larger than 768 px).
        vision_tokens_full: Tokens of the full render (global view plus crops).
        text_tokens: Tokens (tiktoken ``cl100k_base``) of the page text: the PDF text layer
            when the page has one, else the OCR text.
        compression_ratio: ``text_tokens / vision_tokens``; 0.0 for a page without text.
    """

    vision_tokens: int
    vision_tokens_full: int
    text_tokens: int
    compression_ratio: float

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready form."""
        return {
            "vision_tokens": self.vision_tokens,
            "vision_tokens_full": self.vision_tokens_full,
            "text_tokens": self.text_tokens,
            "compression_ratio": round(self.compression_ratio, 3),
        }


def compression_stats(width: int, height: int, text: str) -> CompressionStats:
    """Stats of a page rendered at ``width`` x ``height`` px whose text is ``text``."""
    vision = count_vision_tokens(*compact_size(width, height))
    text_tokens = count_tokens(text)
    return CompressionStats(
        vision_tokens=vision,
        vision_tokens_full=count_vision_tokens(width, height),
        text_tokens=text_tokens,
        compression_ratio=text_tokens / vision if text_tokens else 0.0,
    )


class CompactViewEngine(OCREngine):
    """Wraps an engine so every page is read from its compact view (global view only).

    The wrapper does not own ``inner``: closing it leaves ``inner`` open.
    """

    def __init__(self, inner: OCREngine) -> None:
        self.inner = inner
        self.batch_size = inner.batch_size
        self.concurrent_calls = inner.concurrent_calls

    @property
    def name(self) -> str:
        """The inner engine's model name (the model is the same; only the view differs)."""
        return self.inner.name

    @property
    def fingerprint(self) -> dict[str, object]:
        """The inner fingerprint plus ``view=compact``, so cached summaries stay separate."""
        return {**self.inner.fingerprint, "view": "compact"}

    def stricter(self) -> OCREngine:
        """The inner engine's stricter variant, still on compact views."""
        stricter = self.inner.stricter()
        return self if stricter is self.inner else CompactViewEngine(stricter)

    def generate(self, images: list[Image.Image], prompt: str) -> list[EngineOutput]:
        """Read the compact view of each image with the inner engine."""
        return self.inner.generate([compact_view(image) for image in images], prompt)

    async def agenerate(self, images: list[Image.Image], prompt: str) -> list[EngineOutput]:
        """Async :meth:`generate` through the inner engine's ``agenerate``."""
        return await self.inner.agenerate([compact_view(image) for image in images], prompt)
