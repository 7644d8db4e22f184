"""Image files as documents: one page per image, or per frame of a multi-page TIFF.

Images are passed at their own pixel size (no DPI applies), turned upright from their EXIF
orientation, and converted to RGB the way a reader would see them: transparency on white
paper, 16-bit scans scaled to 8 bits rather than clipped. Every PIL exception is translated in
one place, :func:`_pil_errors`, with the original kept as ``__cause__``.
"""

from __future__ import annotations

import io
import logging
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DeepSeekOCR2Error, InputError, UnsupportedInputError
from ._base import DocumentSource, SourcePage

__all__ = ["SUPPORTED_IMAGE_FORMATS", "ImageSource", "to_rgb"]

logger = logging.getLogger(__name__)

SUPPORTED_IMAGE_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")
"""PIL format names we open. Others (EPS runs Ghostscript, PSD, ICO...) are refused on purpose."""

# Only TIFF frames are pages; GIF, WebP and APNG frames are animation, so we take the first.
_PAGED_FORMATS = frozenset({"TIFF"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_DEEP_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
# What PIL's decoders raise on damaged data (its own fuzz tests accept the same set).
_PIL_ERRORS: tuple[type[BaseException], ...] = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError)


@contextmanager
def _pil_errors(source: str, page: int | None = None) -> Iterator[None]:
    """Translate PIL exceptions into the package's errors, chaining the cause.

    Args:
        source: The document name for the error.
        page: The 0-based frame being decoded, or ``None`` while opening the file.
    """
    try:
        yield
    except DeepSeekOCR2Error:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(f"the image is too large to decode safely ({exc})", source=source, page=page) from exc
    except UnidentifiedImageError as exc:
        formats = ", ".join(SUPPORTED_IMAGE_FORMATS)
        raise UnsupportedInputError(f"not a PDF or a supported image ({formats})", source=source) from exc
    except _PIL_ERRORS as exc:
        raise InputError(f"corrupt or truncated image ({exc})", source=source, page=page) from exc


class ImageSource(DocumentSource):
    """An image file opened with PIL; frames are decoded on demand and never kept.

    Args:
        name: The document name for errors and metadata.
        path: The file to read (PIL keeps it open until :meth:`close`), or ``None``.
        data: The image bytes, or ``None`` when ``path`` is given.

    Raises:
        UnsupportedInputError: PIL does not recognise the bytes as a supported image.
        InputError: The image is a decompression bomb, or its frame table is corrupt.
    """

    def __init__(self, *, name: str, path: Path | None = None, data: bytes | None = None) -> None:
        super().__init__(name=name, path=path, data=data)
        with _pil_errors(name):
            image = Image.open(path if path is not None else io.BytesIO(data or b""), formats=SUPPORTED_IMAGE_FORMATS)
        try:
            with _pil_errors(name):
                paged = image.format in _PAGED_FORMATS
                self.total_pages = int(getattr(image, "n_frames", 1)) if paged else 1
        except BaseException:
            image.close()
            raise
        self.format = image.format
        self._image = image

    def load_page(self, index: int) -> SourcePage:
        """Decode one frame, upright and in RGB.

        A damaged image is only found here, when its pixels are decoded; the error has
        ``page`` set, like a PDF page that fails to render.

        Args:
            index: 0-based frame index (always 0 except for multi-page TIFFs).

        Returns:
            The page, with its size in pixels after EXIF rotation.

        Raises:
            InputError: The frame is corrupt or truncated (``page`` is set).
            PageRangeError: ``index`` is not a page of the document.
        """
        self._check_page(index)
        with _pil_errors(self.name, page=index):
            if index or self.total_pages > 1:
                self._image.seek(index)
            self._image.load()
            upright = ImageOps.exif_transpose(self._image)
            rgb = to_rgb(upright)
        return SourcePage(
            index=index, label=str(index + 1), image=rgb, width=float(rgb.width), height=float(rgb.height), unit="px"
        )

    def _close(self) -> None:
        self._image.close()


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to a new RGB image as it would look printed on white paper.

    Alpha is composited onto white (PIL's ``convert("RGB")`` would drop it and show black or
    garbage under transparent pixels); high-bit-depth grey is scaled, not clipped to 255.

    Args:
        image: An image in any mode.

    Returns:
        A new ``RGB`` image of the same size.
    """
    if image.mode in _DEEP_MODES:
        return _deep_to_l(image).convert("RGB")
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(paper, rgba).convert("RGB")
    return image.convert("RGB")


def _deep_to_l(image: Image.Image) -> Image.Image:
    """Scale 16-bit, 32-bit integer or float grey to 8 bits.

    16-bit modes map 0..65535 onto 0..255 (divide by 257). For ``I`` and ``F`` the range is
    read from the data: 8-bit values stay, 16-bit values are divided by 257, floats in 0..1
    are multiplied by 255, and anything else is stretched from its minimum to its maximum.
    """
    grey = image if image.mode in ("I", "F") else image.convert("I")
    low, high = cast("tuple[float, float]", grey.getextrema())  # one band: (min, max)
    if image.mode == "F" and low >= 0 and high <= 1:
        scale = 255.0
    elif image.mode not in ("I", "F") or (low >= 0 and 255 < high <= 65535):
        scale = 1 / 257
    elif low >= 0 and high <= 255:
        scale = 1.0
    else:
        scale = 255.0 / (high - low) if high > low else 0.0
        return grey.point(lambda v: v * scale - low * scale).convert("L")
    return grey.point(lambda v: v * scale).convert("L")
