"""What every loader does, once: options, input expansion, pages -> records, sync and async.

The LangChain loader and parser, the LlamaIndex reader and the CLI all call these, so the
adapters stay thin and cannot drift apart.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ..chunking import ChunkOptions, MarkdownChunker
from ..engines._base import OCREngine
from ..engines._default import resolve_engine
from ..model import DEFAULT_DPI, DEFAULT_PROMPT
from ..options import RenderPolicy, check_on_error
from ..pipeline._convert import Source, aconvert, convert
from ..types import OCRStatus
from ._modes import PAGE_SEPARATOR, DocumentRecord, Mode, arecords, check_mode, records

__all__ = ["LoadOptions", "aload_records", "load_records", "make_engine"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadOptions:
    """How a loader reads its documents.

    Attributes:
        mode: ``page`` (one Document per page), ``single`` (per file), ``elements`` (per
            grounded block) or ``chunks`` (Markdown-structure chunks).
        prompt: Prompt preset or custom instruction.
        pages: ``"1-3,7"`` (1-based) or 0-based indices, applied to every file.
        dpi: PDF render resolution.
        password: Password of encrypted PDFs.
        chunk: Chunking options for ``mode="chunks"``.
        on_error: A file that cannot be opened: ``raise``, ``skip`` or ``placeholder``.
        cache: Page cache: ``True`` (user cache folder), a SQLite path, or ``False``.
        optical_compression: Read pages from their compact view; record compression stats.
        render: Render worker processes and the per-page deadline (default ``RenderPolicy()``).
        pages_delimiter: What joins the pages of a ``single`` Document (``PyPDFLoader``'s name).
        figures_dir: Where to write figure crops, which the text then links; ``None`` links none.
        skip_failed_pages: Leave out the empty records of failed pages (placeholders included),
            so that they never reach a vector store; by default they are kept, flagged.
    """

    mode: str = "page"
    prompt: str = DEFAULT_PROMPT
    pages: str | Sequence[int] | None = None
    dpi: int = DEFAULT_DPI
    password: str | None = None
    chunk: ChunkOptions = ChunkOptions()
    on_error: str = "raise"
    cache: bool | str | os.PathLike[str] | None = True
    optical_compression: bool = False
    render: RenderPolicy | None = None
    pages_delimiter: str = PAGE_SEPARATOR
    figures_dir: str | os.PathLike[str] | None = None
    skip_failed_pages: bool = False

    def __post_init__(self) -> None:
        check_mode(self.mode)
        check_on_error(self.on_error)

    def chunker(self) -> MarkdownChunker:
        """The chunker for ``mode="chunks"``."""
        return MarkdownChunker(self.chunk)

    def keeps(self, record: DocumentRecord) -> bool:
        """False for the empty record of a failed page when ``skip_failed_pages`` is set."""
        failed = not record.text and record.metadata["ocr_status"] == OCRStatus.FAILED.value
        if self.skip_failed_pages and failed:
            logger.info(
                "left out the empty record of failed page %s of %s", record.metadata["page"], record.metadata["source"]
            )
            return False
        return True

    def record_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`records` / :func:`arecords` these options set."""
        figures = None if self.figures_dir is None else Path(self.figures_dir).expanduser().resolve()
        return {"pages_delimiter": self.pages_delimiter, "figures_dir": figures}

    def convert_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`convert` / :func:`aconvert` these options set."""
        return {
            "prompt": self.prompt,
            "pages": self.pages,
            "dpi": self.dpi,
            "password": self.password,
            "on_error": self.on_error,
            "cache": self.cache,
            "optical_compression": self.optical_compression,
            "render": self.render,
        }


def make_engine(engine: OCREngine | None, engine_options: dict[str, Any]) -> OCREngine:
    """The engine a loader keeps for its lifetime: the one given, or a TransformersEngine.

    The model loads on first use and is shared by every engine naming the same model.
    """
    return resolve_engine(engine, engine_options)[0]


def load_records(
    sources: Sequence[Source], engine: OCREngine, options: LoadOptions, *, show_progress: bool = False
) -> Iterator[DocumentRecord]:
    """Read the sources and yield records as pages finish."""
    pages = convert(list(sources), engine=engine, **options.convert_options())
    if show_progress:
        from tqdm import tqdm

        pages = iter(tqdm(pages, unit="page", desc="DeepSeek-OCR-2"))
    for record in records(pages, cast(Mode, options.mode), options.chunker(), **options.record_options()):
        if options.keeps(record):
            yield record


async def aload_records(
    sources: Sequence[Source], engine: OCREngine, options: LoadOptions
) -> AsyncIterator[DocumentRecord]:
    """Async :func:`load_records`, through ``engine.agenerate``; never starts an event loop."""
    pages = aconvert(list(sources), engine=engine, **options.convert_options())
    mode = cast(Mode, options.mode)
    async for record in arecords(pages, mode, options.chunker(), **options.record_options()):
        if options.keeps(record):
            yield record
