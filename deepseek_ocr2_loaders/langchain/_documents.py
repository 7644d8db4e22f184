"""Core records -> LangChain Documents: the only conversion the adapter owns."""

from __future__ import annotations

from langchain_core.documents import Document

from ..records._modes import DocumentRecord


def to_document(record: DocumentRecord) -> Document:
    """A LangChain Document with the record's text, metadata and deterministic id."""
    return Document(page_content=record.text, metadata=dict(record.metadata), id=record.id)
