"""Second decoders for image frames that Pillow cannot read: its truncated mode, then MuPDF.

Real collections hold many images that Pillow refuses but that are still mostly readable: a
JPEG cut off mid-scan decodes with the missing rows grey, and MuPDF's own decoders read many
files Pillow's reject. A page recovered this way is kept and flagged (``SourcePage.recovered``)
rather than failed, so the caller sees both the text and the warning.
"""

# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import threading
from pathlib import Path

import pymupdf
from PIL import Image, ImageFile

__all__ = ["MUPDF_IMAGE_FORMATS", "decode_truncated", "mupdf_frame", "mupdf_frame_count"]

MUPDF_IMAGE_FORMATS: dict[str, str] = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "BMP": "bmp", "TIFF": "tif"}
"""Pillow format name -> the file type MuPDF opens it as (MuPDF has no WebP decoder)."""

_TRUNCATED_LOCK = threading.Lock()  # LOAD_TRUNCATED_IMAGES is a Pillow global


def decode_truncated(image: Image.Image) -> Image.Image:
    """Decode the current frame with Pillow's truncated-image mode (missing rows stay grey).

    Pillow only reads the switch as a module global, so it is set under a lock and restored.
    """
    with _TRUNCATED_LOCK:
        before = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = True
        try:
            image.load()
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = before
    return image


def _open(path: Path | None, data: bytes | None, filetype: str) -> pymupdf.Document:
    if path is not None:
        return pymupdf.open(path, filetype=filetype)
    return pymupdf.open(stream=data, filetype=filetype)


def mupdf_frame_count(path: Path | None, data: bytes | None, filetype: str) -> int:
    """How many frames MuPDF finds in the image file (raises whatever MuPDF raises)."""
    with _open(path, data, filetype) as doc:
        return int(doc.page_count)


def mupdf_frame(path: Path | None, data: bytes | None, filetype: str, index: int) -> Image.Image:
    """Decode frame ``index`` with MuPDF at its own pixel size, in RGB on white.

    MuPDF shows an image file as a page sized by the image's DPI; converted to PDF, that page
    holds the image as an XObject whose pixmap gives the file's pixel size, and the page is
    rendered at the zoom that reproduces it.
    """
    with _open(path, data, filetype) as doc, pymupdf.open("pdf", doc.convert_to_pdf()) as pdf:
        page = pdf[index]
        width = pymupdf.Pixmap(pdf, page.get_images()[0][0]).width
        zoom = width / page.rect.width
        pixmap = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False, colorspace=pymupdf.csRGB)
    return Image.frombytes("RGB", (pixmap.width, pixmap.height), pixmap.samples)
