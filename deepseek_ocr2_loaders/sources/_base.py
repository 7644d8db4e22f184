"""The source contract: a document that yields rendered pages one at a time.

A source owns one open document (a PDF or an image file) and renders a page only when asked,
so a 1,000-page PDF never holds more than one page image in memory. The pipeline needs
nothing else from a file: page images, page sizes for mapping boxes back, labels and the
text layer for fallbacks, and a content hash for cache keys.
"""

from __future__ import annotations

import hashlib
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

from ..errors import InputError, PageRangeError

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["DocumentSource", "SourceInput", "SourcePage"]

logger = logging.getLogger(__name__)

SourceInput = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]
"""What :func:`open_source` accepts: a path, raw bytes, or a binary file-like object."""

_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class SourcePage:
    """One rendered page, with what is needed to map model boxes back onto the page.

    Attributes:
        index: 0-based page index in the document.
        label: The PDF page label when the PDF defines one (``"iv"``, ``"A-3"``), else
            ``str(index + 1)``.
        image: The rendered page, always mode ``RGB``.
        width: Page width in ``unit``: PDF points as displayed (``/Rotate`` applied), or pixels.
        height: Page height in ``unit``.
        unit: ``"pt"`` for PDFs, ``"px"`` for images.
        text: The PDF text layer of the page (``None`` for images), for text fallbacks.
        recovered: Set when the first decoder failed and a fallback read the page (a truncated
            JPEG, an image only MuPDF reads): what happened, for the page's error record.
    """

    index: int
    label: str
    image: Image.Image = field(repr=False, compare=False)
    width: float
    height: float
    unit: str
    text: str | None = field(default=None, repr=False)
    recovered: str | None = None


class DocumentSource(ABC):
    """A document opened for rendering; subclasses implement :meth:`load_page`.

    Sources are context managers: ``close()`` releases the file handle and the parser's
    memory. Use :func:`deepseek_ocr2_loaders.sources.open_source` rather than a subclass, so
    the type is picked from the bytes, not the file name.

    Attributes:
        name: ``str(path)`` for a path, ``"<bytes>"`` or ``"<stream>"`` otherwise, unless the
            caller passed ``name=``.
        total_pages: Number of pages (image frames for a multi-page TIFF).
    """

    total_pages: int

    def __init__(self, *, name: str, path: Path | None = None, data: bytes | None = None) -> None:
        self.name = name
        self._path = path
        self._data = data
        self._closed = False

    @property
    def file_name(self) -> str:
        """The base name of :attr:`name` (what metadata shows as ``file_name``)."""
        return os.path.basename(self.name) or self.name

    @cached_property
    def sha256(self) -> str:
        """Hex SHA-256 of the input bytes: the document part of every cache key.

        Computed on first use and kept. A path is read in 1 MiB chunks, so hashing a large
        file never holds it in memory twice.
        """
        digest = hashlib.sha256()
        if self._data is not None:
            digest.update(self._data)
        elif self._path is not None:
            with os_errors(self.name), self._path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
                    digest.update(chunk)
        return digest.hexdigest()

    @abstractmethod
    def load_page(self, index: int) -> SourcePage:
        """Render one page.

        Args:
            index: 0-based page index, ``0 <= index < total_pages``.

        Returns:
            The rendered page.

        Raises:
            InputError: The page cannot be rendered; ``page`` is set, and the other pages of
                the document stay usable.
        """

    @abstractmethod
    def _close(self) -> None:
        """Release the underlying document (called once)."""

    def iter_pages(self, pages: Sequence[int] | None = None) -> Iterator[SourcePage]:
        """Yield rendered pages lazily, one at a time, in the order given.

        The indices are checked now, but a page is rendered only when the iterator reaches
        it, and no rendered page is kept. If a page fails, its :class:`InputError` (with
        ``page`` set) is raised from ``next()`` and the iterator ends; a caller that wants to
        go on past a bad page calls :meth:`load_page` per index instead.

        Args:
            pages: 0-based page indices (see :func:`parse_page_spec`), or ``None`` for all.

        Returns:
            An iterator of :class:`SourcePage`.

        Raises:
            PageRangeError: An index is not an int in ``range(total_pages)``.
        """
        indices = list(range(self.total_pages)) if pages is None else list(pages)
        for index in indices:
            self._check_page(index)
        return (self.load_page(index) for index in indices)

    def _check_page(self, index: int) -> None:
        """Reject a closed source or a bad index before the parser sees it."""
        if self._closed:
            raise InputError("the source is closed", source=self.name, page=index)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.total_pages:
            raise PageRangeError(
                f"page index {index!r} is out of range; the document has {self.total_pages} pages",
                source=self.name,
            )

    def close(self) -> None:
        """Release the document; safe to call more than once."""
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> DocumentSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, total_pages={self.total_pages})"


@contextmanager
def os_errors(name: str) -> Iterator[None]:
    """Turn ``OSError`` from reading the input into :class:`InputError`, chaining the cause."""
    try:
        yield
    except FileNotFoundError as exc:
        raise InputError("file not found", source=name) from exc
    except IsADirectoryError as exc:
        raise InputError("is a directory, not a file", source=name) from exc
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror or exc}", source=name) from exc
