"""``DeepSeekOCR2Parser``: a blob parser, for ``GenericLoader`` and any blob loader."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.document_loaders import BaseBlobParser
from langchain_core.documents import Document
from langchain_core.documents.base import Blob

from ..chunking import ChunkOptions
from ..engines._base import OCREngine
from ..model import DEFAULT_DPI, DEFAULT_PROMPT
from ..options import RenderPolicy
from ..pipeline._convert import NamedSource, Source
from ..records._loading import LoadOptions, load_records, make_engine
from ..records._modes import DocumentRecord
from ..records._read_ahead import ReadAhead
from ._documents import to_document

__all__ = ["DeepSeekOCR2Parser"]


class DeepSeekOCR2Parser(BaseBlobParser):
    """Parse PDF and image blobs into Documents with DeepSeek-OCR-2.

    Example:
        .. code-block:: python

            from langchain_community.document_loaders.generic import GenericLoader
            from deepseek_ocr2_loaders.langchain import DeepSeekOCR2Parser

            loader = GenericLoader.from_filesystem("scans/", glob="**/*.pdf", parser=DeepSeekOCR2Parser())
            docs = loader.load()

    Takes the same arguments as :class:`DeepSeekOCR2Loader` except the paths.
    """

    def __init__(
        self,
        *,
        mode: str = "page",
        engine: OCREngine | None = None,
        prompt: str = DEFAULT_PROMPT,
        pages: str | Sequence[int] | None = None,
        password: str | None = None,
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
        **engine_options: Any,
    ) -> None:
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
        self._ahead = ReadAhead(self._read_files, self.engine.batch_size, order="directory")

    def lazy_parse(self, blob: Blob) -> Iterator[Document]:
        """Yield the blob's Documents as its pages finish.

        ``GenericLoader`` hands blobs over one at a time and waits for each: a file blob goes
        through the read-ahead, so once two neighbouring files of a folder were asked for (in
        the directory's order, as ``FileSystemBlobLoader`` globs them) the folder's next files
        are read in shared engine batches. In-memory blobs are read one by one.
        """
        source = blob_source(blob)
        records = (
            self._ahead.records(source)
            if isinstance(source, Path) and source.is_file()
            else load_records([source], self.engine, self.options)
        )
        for record in records:
            yield to_document(record)

    def _read_files(self, paths: list[Path]) -> Iterator[DocumentRecord]:
        return load_records(list(paths), self.engine, self.options)


def blob_source(blob: Blob) -> Source:
    """What a blob is read as: a file blob by its resolved path, an in-memory one by its ``source``.

    An unnamed in-memory blob is named by its content hash (``source="sha256:<hex>"``), so
    two uploads never share ids or delete each other in the indexing API.
    """
    if blob.path is not None and blob.data is None:
        return Path(blob.path).expanduser().resolve()
    if blob.source is not None:
        return NamedSource(blob.as_bytes(), str(blob.source))
    return blob.as_bytes()
