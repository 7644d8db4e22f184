"""Sources: PDFs and images opened as documents that yield rendered pages one at a time.

Typical use::

    from deepseek_ocr2_loaders.sources import open_source, parse_page_spec

    with open_source("paper.pdf") as doc:
        for page in doc.iter_pages(parse_page_spec("1-3", doc.total_pages)):
            page.image  # RGB PIL image at 144 DPI; page.width/height in points

The file type comes from the bytes, never the extension: ``%PDF`` in the first 1024 bytes
means PDF, a supported image's signature means that image, and anything else is handed to
MuPDF, which repairs PDFs that lost their header. One rule tells the errors apart: a format
we read that fails is :class:`CorruptInputError`, anything else :class:`UnsupportedInputError`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import ConfigError, CorruptInputError, EmptyInputError, InputError, UnsupportedInputError
from ..model import DEFAULT_DPI
from ._base import DocumentSource, SourceInput, SourcePage, os_errors
from ._image import SUPPORTED_IMAGE_FORMATS, ImageSource, image_format_of
from ._inputs import SUFFIXES, expand_inputs
from ._pages import parse_page_spec
from ._pdf import MAX_RENDER_PIXELS, PdfSource

UNNAMED_BYTES = "<bytes>"
UNNAMED_STREAM = "<stream>"
UNNAMED_SOURCES = frozenset({UNNAMED_BYTES, UNNAMED_STREAM})
"""The names of inputs given without one; records name such a document by its content hash."""

__all__ = [
    "UNNAMED_SOURCES",
    "SUFFIXES",
    "expand_inputs",
    "MAX_RENDER_PIXELS",
    "SUPPORTED_IMAGE_FORMATS",
    "DocumentSource",
    "ImageSource",
    "PdfSource",
    "SourceInput",
    "SourcePage",
    "open_source",
    "parse_page_spec",
]

logger = logging.getLogger(__name__)

MAX_DPI = 1200
"""Highest ``dpi`` accepted; the render pixel cap applies on top of it."""


def open_source(
    source: SourceInput, *, password: str | None = None, dpi: int = DEFAULT_DPI, name: str | None = None
) -> DocumentSource:
    """Open a PDF or an image for page-by-page rendering.

    Nothing is rendered here: a PDF's pages are counted and an image's header is read.

    Args:
        source: A path (``str`` or ``os.PathLike``), bytes-like object, or binary file-like
            object. A stream is read fully once and left open for the caller.
        password: The password of an encrypted PDF; ignored otherwise.
        dpi: PDF render resolution, 144 like the official DeepSeek-OCR scripts. Images are
            always used at their own pixel size.
        name: The name errors and metadata show; defaults to the path, ``"<bytes>"`` or
            ``"<stream>"``.

    Returns:
        A :class:`PdfSource` or :class:`ImageSource`; close it (or use ``with``).

    Raises:
        ConfigError: ``dpi`` is not a number in ``(0, 1200]``.
        InputError: The path is missing or unreadable, or the image is corrupt or too large.
        EmptyInputError: The input has zero bytes, or the PDF has no pages.
        CorruptInputError: A PDF or supported image that is corrupt or truncated.
        EncryptedPDFError: The PDF needs a password, or the password is wrong.
        UnsupportedInputError: The bytes are neither a PDF nor a supported image.

    Examples:
        >>> with open_source("scan.png") as doc:  # doctest: +SKIP
        ...     page = next(doc.iter_pages())
        ...     page.unit, page.label, page.image.mode
        ('px', '1', 'RGB')
    """
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not 0 < dpi <= MAX_DPI:
        raise ConfigError(f"dpi must be a number in (0, {MAX_DPI}], got {dpi!r}", source=name)
    shown, path, data, head = _read_input(source, name=name)
    if not head:
        raise EmptyInputError("the input is empty (0 bytes)", source=shown)
    if b"%PDF" in head:
        return PdfSource(name=shown, path=path, data=data, password=password, dpi=dpi)
    if image_format_of(head) is not None:
        return ImageSource(name=shown, path=path, data=data, head=head)
    try:  # MuPDF repairs PDFs whose header is missing or damaged
        return PdfSource(name=shown, path=path, data=data, password=password, dpi=dpi)
    except (CorruptInputError, EmptyInputError) as exc:
        if b"PDF-" in head:  # a damaged header such as "%UPDF-1.4": a PDF, but broken
            raise CorruptInputError(f"a damaged PDF that MuPDF cannot repair ({exc.message})", source=shown) from exc
        formats = ", ".join(SUPPORTED_IMAGE_FORMATS)
        raise UnsupportedInputError(f"not a PDF or a supported image ({formats})", source=shown) from exc


def _read_input(source: SourceInput, *, name: str | None = None) -> tuple[str, Path | None, bytes | None, bytes]:
    """Normalise the accepted input kinds, without reading a path fully.

    A path stays a path so PyMuPDF and PIL can read it lazily; bytes and streams become
    ``bytes`` (a stream is read once and left open: it belongs to the caller).

    Args:
        source: A path, bytes-like object, or binary file-like object.
        name: Overrides the name errors and metadata show.

    Returns:
        ``(name, path, data, head)``: exactly one of ``path``/``data`` is set; ``head`` is up
        to the first 1024 bytes, for type detection.

    Raises:
        InputError: The path is missing or unreadable, or the stream is not binary.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        shown = name if name is not None else str(source)
        with os_errors(shown), path.open("rb") as handle:
            head = handle.read(1024)
        return shown, path, None, head
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        shown = name if name is not None else UNNAMED_BYTES
    elif hasattr(source, "read"):
        shown = name if name is not None else UNNAMED_STREAM
        with os_errors(shown):
            data = source.read()
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InputError("the stream is not binary; open the file with 'rb'", source=shown)
        data = bytes(data)
    else:
        raise InputError(
            f"expected a path, bytes or a binary file object, got {type(source).__name__}",
            source=name,
        )
    return shown, None, data, data[:1024]
