"""Page results -> framework-free records per loader mode, with flat metadata and ids.

The adapters only turn a :class:`DocumentRecord` into their framework's ``Document``, so
LangChain and LlamaIndex get identical texts, metadata and ids.
"""

from __future__ import annotations

from ._layout import LAYOUT_KEY
from ._loading import LoadOptions, aload_records, load_records, make_engine
from ._metadata import (
    CITATION_KEYS,
    Metadata,
    chunk_metadata,
    document_id,
    element_metadata,
    page_metadata,
    record_id,
)
from ._modes import MODES, DocumentRecord, Mode, arecords, check_mode, chunk_records, records
from ._splitting import split_documents, split_records

__all__ = [
    "CITATION_KEYS",
    "LAYOUT_KEY",
    "MODES",
    "DocumentRecord",
    "LoadOptions",
    "Metadata",
    "Mode",
    "aload_records",
    "arecords",
    "check_mode",
    "chunk_metadata",
    "chunk_records",
    "document_id",
    "element_metadata",
    "load_records",
    "make_engine",
    "page_metadata",
    "record_id",
    "records",
    "split_documents",
    "split_records",
]
