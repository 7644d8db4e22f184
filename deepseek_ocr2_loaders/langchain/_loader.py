"""``DeepSeekOCR2Loader``: PDFs and images to LangChain Documents with DeepSeek-OCR-2."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any

from langchain_core.document_loaders import BaseLoader, BlobLoader
from langchain_core.documents import Document

from ..chunking import ChunkOptions
from ..engines._base import OCREngine
from ..model import DEFAULT_DPI, DEFAULT_PROMPT
from ..options import RenderPolicy
from ..pipeline._convert import Source
from ..records._loading import LoadOptions, aload_records, load_records, make_engine
from ..sources import expand_inputs
from ._documents import to_document
from ._parser import blob_source

__all__ = ["DeepSeekOCR2Loader"]


class DeepSeekOCR2Loader(BaseLoader):
    """Load PDFs and images as LangChain Documents, read by DeepSeek-OCR-2.

    Setup:
        ``pip install deepseek-ocr2-loaders`` (a CUDA GPU for the default engine).

    Instantiate:
        .. code-block:: python

            from deepseek_ocr2_loaders.langchain import DeepSeekOCR2Loader

            loader = DeepSeekOCR2Loader("reports/", mode="chunks", chunk_size=512)

    Lazy load:
        .. code-block:: python

            for doc in loader.lazy_load():  # pages arrive as their GPU batch finishes
                print(doc.metadata["page_number"], doc.metadata["header_path"], doc.page_content[:80])

    Async load:
        .. code-block:: python

            async for doc in loader.alazy_load():  # native async, inside a running loop
                ...

    Metadata of a page Document (``mode="page"``)::

        {'source': '/data/paper.pdf', 'file_name': 'paper.pdf', 'total_pages': 16, 'page': 0,
         'page_number': 1, 'page_label': '1', 'ocr_status': 'ok', 'finish_reason': 'stop',
         'element_types': '["title","text"]', 'vision_tokens': 1121, 'output_tokens': 812,
         'model': 'deepseek-community/DeepSeek-OCR-2', 'unit': 'pt',
         'bboxes': '[{"page":0,"label":"title","bbox":[61.3,39.6,550.7,62.6]}, ...]',
         'errors': '[]', 'sha256': '9f1c...',
         'layout': '[{"label":"title","bbox":[61.3,39.6,550.7,62.6],"span":[0,41]}, ...]'}

    Args:
        file_path: A file, a folder (its PDFs and images, recursively), or a list of them;
            ``~`` is expanded. A URL is refused: download it, or use the parser on its bytes.
            Or a LangChain ``BlobLoader`` (what ``GenericLoader`` takes): its blobs are read
            together, pages of many blobs sharing each engine batch.
        password: Password of encrypted PDFs (second positional, as in ``PyPDFLoader``).
        mode: ``page``, ``single``, ``elements`` or ``chunks``.
        engine: Any :class:`~deepseek_ocr2_loaders.OCREngine`; default a ``TransformersEngine``
            built from ``engine_options`` (``model=``, ``device=``, ``max_new_tokens=``...).
        prompt: Prompt preset (``markdown``, ``free``, ``figure``, ``describe``) or instruction.
        pages: ``"1-3,7"`` (1-based) or 0-based indices, for every file.
        dpi: PDF render resolution.
        chunk_size: Tokens per chunk in ``chunks`` mode.
        chunk_overlap: Overlapping tokens between chunks of one section.
        tables_as_pipe: Turn simple HTML tables into pipe tables in ``chunks`` mode.
        on_error: A file that cannot be opened: ``raise`` (default), ``skip`` (logged), or
            ``placeholder`` (one empty Document with ``ocr_status="failed"`` and the error).
        cache: The page cache: ``True`` (user cache folder), a SQLite file path, or ``False``.
        optical_compression: Read each page from its compact view (257 vision tokens) and add
            ``vision_tokens_full``, ``text_tokens`` and ``compression_ratio`` to the metadata.
        render: Render worker processes and the per-page deadline
            (:class:`~deepseek_ocr2_loaders.RenderPolicy`; default: up to 4 workers, 60 s).
        pages_delimiter: What joins the pages in ``single`` mode (as in ``PyPDFLoader``).
        figures_dir: Write each figure crop here and link it from the text by ``file:`` URI;
            by default the text links no figure (captions keep their text).
        skip_failed_pages: Leave out the empty Documents of failed pages (``ocr_status="failed"``,
            placeholders included), so they never reach a vector store; by default they are kept.
        show_progress: A tqdm bar over pages.

    Raises:
        InputError: A path is missing, or a file cannot be read (encrypted, corrupt, ...).
        ConfigError: An unknown mode or option.
    """

    def __init__(
        self,
        file_path: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | BlobLoader,
        password: str | None = None,
        *,
        mode: str = "page",
        engine: OCREngine | None = None,
        prompt: str = DEFAULT_PROMPT,
        pages: str | Sequence[int] | None = None,
        dpi: int = DEFAULT_DPI,
        chunk_size: int = 512,
        chunk_overlap: int = 0,
        tables_as_pipe: bool = False,
        on_error: str = "raise",
        cache: bool | str | os.PathLike[str] = True,
        optical_compression: bool = False,
        render: RenderPolicy | None = None,
        pages_delimiter: str = "\n\n",
        figures_dir: str | os.PathLike[str] | None = None,
        skip_failed_pages: bool = False,
        show_progress: bool = False,
        **engine_options: Any,
    ) -> None:
        self.blob_loader = file_path if isinstance(file_path, BlobLoader) else None
        self.paths = [] if isinstance(file_path, BlobLoader) else expand_inputs(file_path)
        self.options = LoadOptions(
            mode=mode,
            prompt=prompt,
            pages=pages,
            dpi=dpi,
            password=password,
            chunk=ChunkOptions(chunk_size=chunk_size, chunk_overlap=chunk_overlap, tables_as_pipe=tables_as_pipe),
            on_error=on_error,
            cache=cache,
            optical_compression=optical_compression,
            render=render,
            pages_delimiter=pages_delimiter,
            figures_dir=figures_dir,
            skip_failed_pages=skip_failed_pages,
        )
        self.engine = make_engine(engine, engine_options)
        self.show_progress = show_progress

    def lazy_load(self) -> Iterator[Document]:
        """Yield Documents as pages finish (chunks as they close)."""
        for record in load_records(self._sources(), self.engine, self.options, show_progress=self.show_progress):
            yield to_document(record)

    async def alazy_load(self) -> AsyncIterator[Document]:
        """Native async :meth:`lazy_load` through ``engine.agenerate``; safe in a running loop."""
        async for record in aload_records(self._sources(), self.engine, self.options):
            yield to_document(record)

    def _sources(self) -> list[Source]:
        """The paths, or the blob loader's blobs (listed afresh on every load)."""
        if self.blob_loader is None:
            return list(self.paths)
        return [blob_source(blob) for blob in self.blob_loader.yield_blobs()]
