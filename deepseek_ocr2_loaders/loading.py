"""What every loader does, once: options, input expansion, pages -> records, sync and async.

The LangChain loader and parser, the LlamaIndex reader and the CLI all call these, so the
adapters stay thin and cannot drift apart.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from .chunking import ChunkOptions, MarkdownChunker
from .documents import DocumentRecord, Mode, arecords, check_mode, records
from .engines.base import OCREngine
from .errors import ConfigError, InputError
from .pipeline import Source, aconvert, convert
from .policies import RenderPolicy, check_on_error

__all__ = ["SUFFIXES", "LoadOptions", "aload_records", "expand_inputs", "load_records", "make_engine"]

SUFFIXES = frozenset({".pdf", ".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"})


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
    """

    mode: str = "page"
    prompt: str = "markdown"
    pages: str | Sequence[int] | None = None
    dpi: int = 144
    password: str | None = None
    chunk: ChunkOptions = ChunkOptions()
    on_error: str = "raise"
    cache: bool | str | os.PathLike[str] | None = True
    optical_compression: bool = False
    render: RenderPolicy | None = None

    def __post_init__(self) -> None:
        check_mode(self.mode)
        check_on_error(self.on_error)

    def chunker(self) -> MarkdownChunker:
        """The chunker for ``mode="chunks"``."""
        return MarkdownChunker(self.chunk)

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
    if engine is not None:
        if engine_options:
            raise ConfigError(f"options {sorted(engine_options)} configure the default engine; set them on your engine")
        return engine
    from .engines.transformers import TransformersEngine

    try:
        return TransformersEngine(**engine_options)
    except TypeError as exc:
        raise ConfigError(f"unknown loader option: {exc}") from exc


def expand_inputs(inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Paths as given; folders expanded to the PDFs and images inside them, sorted.

    Raises:
        InputError: A path does not exist, or a folder holds no PDF or image.
    """
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    paths: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
            if not found:
                raise InputError("the folder holds no PDF or image files", source=path)
            paths.extend(found)
        elif path.exists():
            paths.append(path)
        else:
            raise InputError("file not found", source=path)
    return paths


def load_records(
    sources: Sequence[Source], engine: OCREngine, options: LoadOptions, *, show_progress: bool = False
) -> Iterator[DocumentRecord]:
    """Read the sources and yield records as pages finish."""
    pages = convert(list(sources), engine=engine, **options.convert_options())
    if show_progress:
        from tqdm import tqdm

        pages = iter(tqdm(pages, unit="page", desc="DeepSeek-OCR-2"))
    yield from records(pages, cast(Mode, options.mode), options.chunker())


async def aload_records(
    sources: Sequence[Source], engine: OCREngine, options: LoadOptions
) -> AsyncIterator[DocumentRecord]:
    """Async :func:`load_records`, through ``engine.agenerate``; never starts an event loop."""
    pages = aconvert(list(sources), engine=engine, **options.convert_options())
    async for record in arecords(pages, cast(Mode, options.mode), options.chunker()):
        yield record
