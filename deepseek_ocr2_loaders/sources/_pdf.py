"""PDF pages rendered with PyMuPDF, one page at a time.

Pages are rendered at 144 DPI by default, as the official DeepSeek-OCR scripts do, so the
model sees pages at the scale it was tuned on. Every PyMuPDF exception is translated in one
place, :func:`_pymupdf_errors`, with the original kept as ``__cause__``. A password is
tried as given, then in its SASLprep form (:mod:`.saslprep`), as PDF 2.0 writers store it.
"""

# PyMuPDF leaves Document, Matrix and some Page methods unannotated:
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pymupdf
from PIL import Image

from ..errors import CorruptInputError, DeepSeekOCR2Error, EmptyInputError, EncryptedPDFError, InputError
from ..model import DEFAULT_DPI
from ._base import DocumentSource, SourcePage
from ._saslprep import saslprep

__all__ = ["MAX_RENDER_PIXELS", "MUPDF_LOCK", "PdfSource"]

logger = logging.getLogger(__name__)

MAX_RENDER_PIXELS = 20_000_000
"""A page that would render larger than this is rendered at a lower zoom that fits.

At 144 DPI a Letter page is about 2 MP, so only posters and huge scans reach the cap; 20 MP
RGB is 60 MB, and the model downsizes pages to 1024 px tiles anyway.
"""

MUPDF_LOCK = threading.RLock()
"""Held around every call into PyMuPDF, which does not support use from several threads.

``convert`` renders on a worker thread while, for example, :func:`summarize_pages` reads
text layers on the caller's; PyMuPDF holds the GIL while it works, so the lock costs no
parallelism.
"""


@contextmanager
def _pymupdf_errors(source: str, page: int | None = None) -> Iterator[None]:
    """Translate PyMuPDF exceptions into the package's errors, chaining the cause.

    PyMuPDF raises its own RuntimeError subclasses (FileDataError, EmptyFileError), plain
    ValueError/RuntimeError, MuPDF's FzError* classes from the low-level binding, and on
    hostile files whatever its Python layer trips on (TypeError, IndexError...), so every
    ``Exception`` is mapped; ``BaseException`` (Ctrl-C) is not.

    Args:
        source: The document name for the error.
        page: The 0-based page being rendered, or ``None`` while opening the document.
    """
    try:
        yield
    except DeepSeekOCR2Error:
        raise
    except pymupdf.EmptyFileError as exc:
        raise EmptyInputError("the input is empty (0 bytes)", source=source) from exc
    except pymupdf.FileNotFoundError as exc:
        raise InputError("file not found", source=source) from exc
    except MemoryError as exc:
        raise InputError("the PDF is too large to render safely", source=source, page=page) from exc
    except Exception as exc:
        why = str(exc) or type(exc).__name__
        if page is None:
            raise CorruptInputError(f"cannot open the PDF: it is corrupt or truncated ({why})", source=source) from exc
        raise CorruptInputError(f"cannot render the page ({why})", source=source, page=page) from exc


class PdfSource(DocumentSource):
    """A PDF opened with PyMuPDF; pages are rendered on demand and never kept.

    A page that fails to render raises :class:`CorruptInputError` (an :class:`InputError`) with
    ``page`` set, from :meth:`load_page` or from ``next()`` on :meth:`iter_pages`; the
    document stays open, so the pipeline records that page as failed and goes on.

    Args:
        name: The document name for errors and metadata.
        path: The file to read (read lazily by PyMuPDF), or ``None`` when ``data`` is given.
        data: The PDF bytes, or ``None`` when ``path`` is given.
        password: Opens an encrypted PDF; ignored for unencrypted ones.
        dpi: Render resolution; pages render at ``points * dpi / 72`` pixels.

    Raises:
        CorruptInputError: PyMuPDF cannot open the file, or repairing it recovered no page.
        EmptyInputError: The PDF is well formed but has no pages.
        EncryptedPDFError: The PDF needs a password and none, or a wrong one, was given.
    """

    def __init__(
        self,
        *,
        name: str,
        path: Path | None = None,
        data: bytes | None = None,
        password: str | None = None,
        dpi: float = DEFAULT_DPI,
    ) -> None:
        super().__init__(name=name, path=path, data=data)
        self.dpi = dpi
        with MUPDF_LOCK:
            self._open(name, path, data, password)

    def _open(self, name: str, path: Path | None, data: bytes | None, password: str | None) -> None:
        with _pymupdf_errors(name):
            if path is not None:
                doc = pymupdf.open(path, filetype="pdf")
            else:
                doc = pymupdf.open(stream=data, filetype="pdf")
        if not doc.is_pdf:  # MuPDF sniffs the content and may open another format (PNM, XPS...)
            kind = (doc.metadata or {}).get("format") or "another format"
            doc.close()
            raise CorruptInputError(f"not a PDF: MuPDF reads it as {kind}", source=name)
        try:
            with _pymupdf_errors(name):
                _unlock(doc, password, name)
                total = doc.page_count
                repaired = doc.is_repaired
        except BaseException:
            doc.close()
            raise
        if total == 0:
            doc.close()
            if repaired:  # MuPDF rebuilt a broken file and found nothing: truncated, not empty
                raise CorruptInputError(
                    "cannot open the PDF: it is corrupt or truncated (no page recovered)", source=name
                )
            raise EmptyInputError("the PDF has no pages", source=name)
        if repaired:
            logger.warning("%s: the PDF is damaged; MuPDF repaired it, some pages may be incomplete", name)
        self._doc = doc
        self.total_pages = total

    def load_page(self, index: int) -> SourcePage:
        """Render one page at :attr:`dpi` (lowered for pages over :data:`MAX_RENDER_PIXELS`).

        Args:
            index: 0-based page index.

        Returns:
            The page: RGB image, label, size in points as displayed, and its text layer.

        Raises:
            CorruptInputError: The page cannot be rendered (``page`` is set).
            PageRangeError: ``index`` is not a page of the document.
        """
        self._check_page(index)
        with MUPDF_LOCK, _pymupdf_errors(self.name, page=index):
            page = self._doc.load_page(index)
            rect = page.rect  # already rotated by /Rotate: the size as displayed
            if rect.is_empty:
                raise CorruptInputError(f"the page has an empty size ({rect})", source=self.name, page=index)
            zoom = self._zoom_for(rect, index)
            pixmap = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False)
            image = Image.frombytes("RGB", (pixmap.width, pixmap.height), pixmap.samples)
            label = page.get_label() or str(index + 1)
            text = page.get_text()
        return SourcePage(
            index=index, label=label, image=image, width=rect.width, height=rect.height, unit="pt", text=text
        )

    def _zoom_for(self, rect: pymupdf.Rect, index: int) -> float:
        """The zoom for ``dpi``, lowered so the page renders within the pixel cap."""
        zoom = self.dpi / 72
        if _pixels(rect, zoom) <= MAX_RENDER_PIXELS:
            return zoom
        capped = math.sqrt(MAX_RENDER_PIXELS / (rect.width * rect.height))
        while _pixels(rect, capped) > MAX_RENDER_PIXELS:  # pixel edges round outwards
            capped *= 0.999
        logger.info(
            "%s: page %d (%.0fx%.0f pt) would render over %d pixels at %s DPI; rendering at %.1f DPI",
            self.name, index + 1, rect.width, rect.height, MAX_RENDER_PIXELS, self.dpi, capped * 72,
        )  # fmt: skip
        return capped

    def _close(self) -> None:
        with MUPDF_LOCK:
            self._doc.close()


def _pixels(rect: pymupdf.Rect, zoom: float) -> int:
    """Pixel count of the pixmap PyMuPDF makes for ``rect`` at ``zoom``."""
    box = (rect * pymupdf.Matrix(zoom, zoom)).irect
    return int(box.width) * int(box.height)


def _unlock(doc: pymupdf.Document, password: str | None, name: str) -> None:
    """Authenticate an encrypted PDF, or say what the caller must pass."""
    if not doc.needs_pass:
        return
    if password is None:
        raise EncryptedPDFError("the PDF is encrypted; pass password= to open it", source=name)
    if doc.authenticate(password):
        return
    prepared = saslprep(password)
    if prepared is None or prepared == password or not doc.authenticate(prepared):
        raise EncryptedPDFError("the password is wrong for this encrypted PDF", source=name)
