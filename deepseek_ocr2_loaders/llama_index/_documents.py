"""Core records -> LlamaIndex Documents: the only conversion the adapter owns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llama_index.core.schema import Document

from ..records._metadata import HEAVY_KEYS
from ..records._modes import DocumentRecord


def to_document(record: DocumentRecord, extra_info: Mapping[str, Any] | None = None) -> Document:
    """A LlamaIndex Document; JSON-string metadata (boxes, lists) stays out of embeddings and prompts."""
    metadata = {**(extra_info or {}), **record.metadata}
    excluded = [key for key in HEAVY_KEYS if key in metadata]
    return Document(
        id_=record.id,
        text=record.text,
        metadata=metadata,
        excluded_embed_metadata_keys=excluded,
        excluded_llm_metadata_keys=excluded,
    )
