"""Image files as documents: one page per image, or per frame of a multi-page TIFF.

Images are passed at their own pixel size (no DPI applies), turned upright from their EXIF
orientation, and converted to RGB the way a reader would see them (:mod:`.rgb`). Every
Pillow exception is translated in one place, :func:`_pil_errors`, with the original kept as
``__cause__``. A frame Pillow cannot decode gets a second chance (:mod:`.image_fallback`):
Pillow's truncated mode, then MuPDF; the page then says so in ``SourcePage.recovered``.
"""

# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import CorruptInputError, DeepSeekOCR2Error, InputError, UnsupportedInputError
from ._base import DocumentSource, SourcePage
from ._image_fallback import MUPDF_IMAGE_FORMATS, decode_truncated, mupdf_frame, mupdf_frame_count
from ._rgb import to_rgb

__all__ = ["SUPPORTED_IMAGE_FORMATS", "ImageSource", "image_format_of", "to_rgb"]

logger = logging.getLogger(__name__)

SUPPORTED_IMAGE_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")
"""PIL format names we open. Others (EPS runs Ghostscript, PSD, ICO...) are refused on purpose."""

# Only TIFF frames are pages; GIF, WebP and APNG frames are animation, so we take the first.
_PAGED_FORMATS = frozenset({"TIFF"})
_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"II+\x00": "TIFF",
    b"MM\x00+": "TIFF",
    b"BM": "BMP",
}


def image_format_of(head: bytes) -> str | None:
    """The supported format whose signature starts ``head``, or ``None``: the corrupt/unsupported rule.

    A file with a supported format's signature that fails to decode is corrupt
    (:class:`CorruptInputError`); without one it is unsupported.
    """
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return next((fmt for magic, fmt in _SIGNATURES.items() if head.startswith(magic)), None)


@contextmanager
def _pil_errors(source: str, page: int | None = None) -> Iterator[None]:
    """Translate any exception a Pillow decoder raises into the package's errors, chaining it.

    Pillow's decoders raise nearly every built-in type on damaged data (its own fuzz tests
    accept OSError, SyntaxError, ValueError, TypeError, MemoryError, NotImplementedError,
    OverflowError...), so every ``Exception`` is mapped; ``BaseException`` (Ctrl-C) is not.

    Args:
        source: The document name for the error.
        page: The 0-based frame being decoded, or ``None`` while opening the file.
    """
    try:
        yield
    except DeepSeekOCR2Error:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, MemoryError) as exc:
        raise InputError(f"the image is too large to decode safely ({exc})", source=source, page=page) from exc
    except UnidentifiedImageError as exc:
        formats = ", ".join(SUPPORTED_IMAGE_FORMATS)
        raise UnsupportedInputError(f"not a PDF or a supported image ({formats})", source=source) from exc
    except NotImplementedError as exc:
        raise UnsupportedInputError(f"an image variant Pillow cannot decode ({exc})", source=source, page=page) from exc
    except Exception as exc:
        why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise CorruptInputError(f"corrupt or truncated image ({why})", source=source, page=page) from exc


class ImageSource(DocumentSource):
    """An image file opened with Pillow (or MuPDF, when Pillow refuses a supported format).

    Frames are decoded on demand and never kept.

    Args:
        name: The document name for errors and metadata.
        path: The file to read (PIL keeps it open until :meth:`close`), or ``None``.
        data: The image bytes, or ``None`` when ``path`` is given.

    Raises:
        UnsupportedInputError: The bytes are not a supported image.
        CorruptInputError: The file has a supported image's signature, but neither Pillow nor
            MuPDF can read its frame table.
        InputError: The image is a decompression bomb.
    """

    def __init__(self, *, name: str, path: Path | None = None, data: bytes | None = None, head: bytes = b"") -> None:
        super().__init__(name=name, path=path, data=data)
        self._image: Image.Image | None = None
        self.format = image_format_of(head)
        try:
            with _pil_errors(name):
                image = Image.open(
                    path if path is not None else io.BytesIO(data or b""), formats=SUPPORTED_IMAGE_FORMATS
                )
        except UnsupportedInputError as exc:
            if self.format is None:
                raise
            self.total_pages = self._mupdf_total(exc)
            return
        self.format = image.format
        try:
            with _pil_errors(name):
                paged = image.format in _PAGED_FORMATS
                self.total_pages = int(getattr(image, "n_frames", 1)) if paged else 1
        except CorruptInputError as exc:  # a damaged frame table ("Missing dimensions"): MuPDF may count it
            try:
                self.total_pages = self._mupdf_total(exc)
            except BaseException:
                image.close()
                raise
        except BaseException:
            image.close()
            raise
        self._image = image

    def _mupdf_total(self, refused: InputError) -> int:
        """Frame count when only MuPDF can read the file; a :class:`CorruptInputError` otherwise."""
        filetype = MUPDF_IMAGE_FORMATS.get(self.format or "")
        try:
            if filetype is None:
                raise refused
            with _pil_errors(self.name):
                return mupdf_frame_count(self._path, self._data, filetype)
        except InputError as exc:
            raise CorruptInputError(
                f"a damaged {self.format} image: neither Pillow nor MuPDF can read it ({refused.message})",
                source=self.name,
            ) from exc

    def load_page(self, index: int) -> SourcePage:
        """Decode one frame, upright and in RGB, recovering what can be recovered.

        A damaged image is only found here, when its pixels are decoded; the error has
        ``page`` set, like a PDF page that fails to render. Before failing, the frame is
        decoded with Pillow's truncated mode (for JPEG, whose cut-off scans it fills in),
        then with MuPDF; a page that comes back so has ``recovered`` set.

        Args:
            index: 0-based frame index (always 0 except for multi-page TIFFs).

        Returns:
            The page, with its size in pixels after EXIF rotation.

        Raises:
            CorruptInputError: The frame cannot be decoded (``page`` is set).
            PageRangeError: ``index`` is not a page of the document.
        """
        self._check_page(index)
        recovered = None
        try:
            rgb = self._decode(index, truncated=False)
        except CorruptInputError as exc:
            rgb, recovered = self._recover(index, exc)
        return SourcePage(
            index=index,
            label=str(index + 1),
            image=rgb,
            width=float(rgb.width),
            height=float(rgb.height),
            unit="px",
            recovered=recovered,
        )

    def _decode(self, index: int, *, truncated: bool) -> Image.Image:
        if self._image is None:
            raise CorruptInputError("Pillow cannot read this image", source=self.name, page=index)
        with _pil_errors(self.name, page=index):
            if index or self.total_pages > 1:
                self._image.seek(index)
            if truncated:
                decode_truncated(self._image)
            self._image.load()
            return to_rgb(ImageOps.exif_transpose(self._image))

    def _recover(self, index: int, error: CorruptInputError) -> tuple[Image.Image, str]:
        """Pillow's truncated mode (JPEG), then MuPDF; re-raise ``error`` if neither reads the frame."""
        if self.format == "JPEG" and self._image is not None:
            try:
                rgb = self._decode(index, truncated=True)
            except CorruptInputError:
                pass
            else:
                logger.warning("%s: decoded a truncated JPEG; its missing part is grey", self.name)
                return rgb, f"truncated image: decoded what is there, the rest is grey ({error.message})"
        filetype = MUPDF_IMAGE_FORMATS.get(self.format or "")
        if filetype is None:
            raise error
        try:
            with _pil_errors(self.name, page=index):  # MuPDF's errors: any type, like Pillow's
                rgb = mupdf_frame(self._path, self._data, filetype, index)
        except InputError:  # MuPDF's failure stays the __context__; the cause is Pillow's original error
            why = f"{error.message}; MuPDF cannot decode it either"
            raise CorruptInputError(why, source=self.name, page=index) from error.__cause__
        logger.warning("%s (page %d): Pillow cannot decode it; MuPDF did", self.name, index + 1)
        return rgb, f"decoded by MuPDF after Pillow failed ({error.message})"

    def _close(self) -> None:
        if self._image is not None:
            self._image.close()
