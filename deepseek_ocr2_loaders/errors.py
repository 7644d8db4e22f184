"""The exception tree of deepseek-ocr2-loaders.

Every error carries ``source`` (the file or URL it concerns, when known) and ``page``
(0-based, when known). Each class also subclasses the built-in exception that callers
already catch, so ``except ValueError`` keeps working around bad input::

    DeepSeekOCR2Error(Exception)
    ├── InputError(ValueError)                bad input: the caller can fix it
    │   ├── UnsupportedInputError             a format we do not read (or a variant Pillow does not implement)
    │   ├── EmptyInputError                   zero bytes, or a PDF with no pages
    │   ├── CorruptInputError                 a format we read, but damaged (alias: PDFOpenError)
    │   ├── EncryptedPDFError                 password missing or wrong
    │   ├── PageRangeError                    ``pages=`` names pages the file lacks
    │   ├── RenderTimeout(TimeoutError)       a page still rendering at the deadline
    │   └── RenderCrashError                  the render worker died on a page (a native crash)
    ├── ModelLoadError(RuntimeError)          model missing, no network; says how to use a local copy
    ├── EngineError(RuntimeError)             the OCR backend failed
    │   ├── EngineTimeout
    │   ├── EngineConnectionError
    │   ├── EngineResponseError
    │   └── GPUOutOfMemoryError
    ├── CacheError(RuntimeError)
    └── ConfigError(ValueError)               an option out of bounds or unknown
"""

from __future__ import annotations

from os import PathLike

__all__ = [
    "CacheError",
    "ConfigError",
    "CorruptInputError",
    "DeepSeekOCR2Error",
    "EmptyInputError",
    "EncryptedPDFError",
    "EngineConnectionError",
    "EngineError",
    "EngineResponseError",
    "EngineTimeout",
    "GPUOutOfMemoryError",
    "InputError",
    "ModelLoadError",
    "PDFOpenError",
    "PageRangeError",
    "RenderCrashError",
    "RenderTimeout",
    "UnsupportedInputError",
]


class DeepSeekOCR2Error(Exception):
    """Base of every error this package raises on purpose."""

    def __init__(self, message: str, *, source: str | PathLike[str] | None = None, page: int | None = None) -> None:
        self.source = None if source is None else str(source)
        self.page = page
        where = ""
        if self.source is not None:
            where = f"{self.source}"
            if page is not None:
                where += f" (page {page + 1})"
            where += ": "
        super().__init__(f"{where}{message}")
        self.message = message


class InputError(DeepSeekOCR2Error, ValueError):
    """The input cannot be read as a document; fixing the input fixes the error."""


class UnsupportedInputError(InputError):
    """The input is not a format we read: neither a PDF nor a supported image type.

    Also raised for a supported format's variant that the decoder does not implement (a TIFF
    compression Pillow lacks), since no damage is involved.
    """


class EmptyInputError(InputError):
    """The input has no bytes, or a PDF has no pages."""


class CorruptInputError(InputError):
    """The file is a format we read (its signature or MuPDF says so) but is damaged or truncated."""


PDFOpenError = CorruptInputError
"""The former name of :class:`CorruptInputError`, kept so ``except PDFOpenError`` still works."""


class EncryptedPDFError(InputError):
    """The PDF is encrypted and no password, or a wrong one, was given."""


class PageRangeError(InputError):
    """``pages=`` is malformed or names pages that the document does not have."""


class RenderTimeout(InputError, TimeoutError):
    """A page was still rendering at the render deadline; its worker was replaced."""


class RenderCrashError(InputError):
    """The worker process rendering a page died (a crash in a native decoder); it was replaced."""


class ModelLoadError(DeepSeekOCR2Error, RuntimeError):
    """The model could not be loaded; the message says how to point at a local copy."""


class EngineError(DeepSeekOCR2Error, RuntimeError):
    """The OCR backend failed on a batch of pages."""


class EngineTimeout(EngineError, TimeoutError):
    """The backend did not answer in time."""


class EngineConnectionError(EngineError, ConnectionError):
    """The backend could not be reached."""


class EngineResponseError(EngineError):
    """The backend answered with something we cannot use."""


class GPUOutOfMemoryError(EngineError, MemoryError):
    """The GPU ran out of memory; lower ``max_batch_size`` or ``vision_batch_size``."""


class CacheError(DeepSeekOCR2Error, RuntimeError):
    """The page cache could not be read or written."""


class ConfigError(DeepSeekOCR2Error, ValueError):
    """An option is unknown or out of its bounds."""
