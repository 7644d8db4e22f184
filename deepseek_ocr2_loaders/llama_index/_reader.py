"""``DeepSeekOCR2Reader``: PDFs and images to LlamaIndex Documents with DeepSeek-OCR-2."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

from llama_index.core.readers.base import BasePydanticReader
from llama_index.core.schema import Document
from pydantic import Field, PrivateAttr

from ..chunking import ChunkOptions
from ..engines._base import OCREngine
from ..model import DEFAULT_DPI, DEFAULT_PROMPT
from ..options import RenderPolicy
from ..pipeline._convert import NamedSource, Source
from ..records._loading import LoadOptions, aload_records, load_records, make_engine
from ..records._modes import DocumentRecord
from ..records._read_ahead import ReadAhead
from ..sources import expand_inputs
from ._documents import to_document

__all__ = ["DeepSeekOCR2Reader", "DocumentStream"]


class DocumentStream:
    """What ``alazy_load_data`` returns: ``async for`` streams the Documents, ``await`` lists them.

    LlamaIndex's ``BaseReader.alazy_load_data`` is awaited for an iterable, while a lazy async
    load is iterated; one object serves both callers.
    """

    def __init__(self, documents: AsyncIterator[Document]) -> None:
        self._documents = documents

    def __aiter__(self) -> AsyncIterator[Document]:
        return self._documents

    def __await__(self) -> Generator[Any, None, list[Document]]:
        return self._collect().__await__()

    async def _collect(self) -> list[Document]:
        return [document async for document in self._documents]


class DeepSeekOCR2Reader(BasePydanticReader):
    """Read PDFs and images into LlamaIndex Documents with DeepSeek-OCR-2.

    Setup:
        ``pip install deepseek-ocr2-loaders`` (a CUDA GPU for the default engine).

    Instantiate:
        .. code-block:: python

            from deepseek_ocr2_loaders.llama_index import DeepSeekOCR2Reader

            reader = DeepSeekOCR2Reader(mode="page")
            docs = reader.load_data("paper.pdf")

    With SimpleDirectoryReader:
        .. code-block:: python

            SimpleDirectoryReader("scans/", file_extractor={".pdf": reader, ".png": reader}).load_data()

    Async load:
        .. code-block:: python

            docs = await reader.aload_data("paper.pdf")  # native async, inside a running loop

    Metadata and ids are those of :class:`deepseek_ocr2_loaders.langchain.DeepSeekOCR2Loader`; only
    ``file_name``, ``page_label`` and ``header_path`` reach embed and LLM text. Chunk and element
    Documents have their file as SOURCE (``ref_doc_id``), so ``delete_ref_doc`` removes a file.
    """

    is_remote: bool = False
    mode: str = Field(default="page", description="page, single, elements or chunks")
    prompt: str = Field(default=DEFAULT_PROMPT, description="prompt preset or custom instruction")
    pages: str | list[int] | None = Field(default=None, description='"1-3,7" (1-based) or 0-based indices')
    password: str | None = Field(default=None, description="password of encrypted PDFs", repr=False)
    dpi: int = Field(default=DEFAULT_DPI, description="PDF render resolution")
    chunk_size: int = Field(default=512, description="tokens per chunk in chunks mode")
    chunk_overlap: int = Field(default=0, description="overlapping tokens between chunks of one section")
    tables_as_pipe: bool = Field(default=False, description="simple HTML tables as pipe tables in chunks mode")
    on_error: str = Field(default="raise", description="a file that cannot be opened: raise, skip or placeholder")
    cache: bool | str = Field(default=True, description="page cache: True (user cache folder), a SQLite path, or False")
    optical_compression: bool = Field(default=False, description="read pages from their compact view (257 tokens)")
    render: RenderPolicy | None = Field(default=None, description="render workers and per-page deadline")
    pages_delimiter: str = Field(default="\n\n", description="what joins the pages in single mode")
    figures_dir: str | Path | None = Field(default=None, description="write figure crops here and link them")
    skip_failed_pages: bool = Field(default=False, description="leave out the empty Documents of failed pages")
    _engine: OCREngine = PrivateAttr()
    _options: LoadOptions = PrivateAttr()
    _ahead: ReadAhead = PrivateAttr()

    def __init__(self, *, engine: OCREngine | None = None, **data: Any) -> None:
        engine_options = {key: data.pop(key) for key in list(data) if key not in type(self).model_fields}
        super().__init__(**data)
        self._options = LoadOptions(
            mode=self.mode,
            prompt=self.prompt,
            pages=self.pages,
            dpi=self.dpi,
            password=self.password,
            chunk=ChunkOptions(
                chunk_size=self.chunk_size, chunk_overlap=self.chunk_overlap, tables_as_pipe=self.tables_as_pipe
            ),
            on_error=self.on_error,
            cache=self.cache,
            optical_compression=self.optical_compression,
            render=self.render,
            pages_delimiter=self.pages_delimiter,
            figures_dir=self.figures_dir,
            skip_failed_pages=self.skip_failed_pages,
        )
        self._engine = make_engine(engine, engine_options)
        self._ahead = ReadAhead(self._read_files, self._engine.batch_size)

    @classmethod
    def class_name(cls) -> str:
        """Name used when the reader is serialised."""
        return "DeepSeekOCR2Reader"

    def __getstate__(self) -> dict[str, Any]:
        """The fields and the engine, so an unpickled reader reads exactly like this one.

        LlamaIndex unpickles by calling ``__init__(**fields)`` (``SimpleDirectoryReader`` with
        ``num_workers`` does, in each worker), which would otherwise fall back to the default
        engine. An engine that cannot be pickled fails here, loudly, not in the worker.
        """
        state = super().__getstate__()
        state["__dict__"] = {**state["__dict__"], "engine": self._engine}
        private = state.get("__pydantic_private__") or {}
        state["__pydantic_private__"] = {key: value for key, value in private.items() if key != "_ahead"}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._ahead = ReadAhead(self._read_files, self._engine.batch_size)

    def lazy_load_data(
        self,
        file: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        extra_info: dict[str, Any] | None = None,
        fs: Any = None,
    ) -> Iterator[Document]:
        """Yield Documents as pages finish; ``extra_info`` is merged into every Document's metadata.

        Args:
            file: A file, a folder, or a list of them.
            extra_info: Metadata to add (``SimpleDirectoryReader`` passes file metadata here).
            fs: An fsspec filesystem to read ``file`` from instead of the local disk.
        """
        for record in self._records(file, fs):
            yield to_document(record, extra_info)

    def _records(self, file: Any, fs: Any) -> Iterator[DocumentRecord]:
        """One local file goes through the read-ahead (``SimpleDirectoryReader`` asks file by file)."""
        if fs is None and isinstance(file, (str, os.PathLike)) and not str(file).startswith(("http:", "https:")):
            path = Path(file).expanduser().resolve()
            if path.is_file():
                return self._ahead.records(path)
        return load_records(self._sources(file, fs), self._engine, self._options)

    def _read_files(self, paths: list[Path]) -> Iterator[DocumentRecord]:
        return load_records(list(paths), self._engine, self._options)

    def alazy_load_data(  # type: ignore[override]  # an awaitable like the base's, which also streams
        self,
        file: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        extra_info: dict[str, Any] | None = None,
        fs: Any = None,
    ) -> DocumentStream:
        """Native async load through ``engine.agenerate``; safe inside a running event loop.

        ``async for doc in reader.alazy_load_data(...)`` yields Documents as pages finish;
        ``await reader.alazy_load_data(...)`` gives them all, as LlamaIndex's base reader does.
        """

        async def documents() -> AsyncIterator[Document]:
            async for record in aload_records(self._sources(file, fs), self._engine, self._options):
                yield to_document(record, extra_info)

        return DocumentStream(documents())

    async def aload_data(self, *args: Any, **load_kwargs: Any) -> list[Document]:
        """Async load (native, not a thread around :meth:`load_data`)."""
        return await self.alazy_load_data(*args, **load_kwargs)

    @staticmethod
    def _sources(file: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], fs: Any) -> list[Source]:
        if fs is None:
            return list(expand_inputs(file))
        files = [file] if isinstance(file, (str, os.PathLike)) else list(file)
        sources: list[Source] = []
        for item in files:
            with fs.open(str(item), "rb") as stream:
                sources.append(NamedSource(stream.read(), str(Path(item))))
        return sources
