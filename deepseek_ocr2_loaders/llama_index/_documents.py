"""Core records -> LlamaIndex Documents: the only conversion the adapter owns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llama_index.core.schema import Document, NodeRelationship, RelatedNodeInfo

from ..records._metadata import CITATION_KEYS
from ..records._modes import DocumentRecord


def to_document(record: DocumentRecord, extra_info: Mapping[str, Any] | None = None) -> Document:
    """A LlamaIndex Document with the record's id; a chunk or element points to its file as SOURCE.

    The SOURCE relationship makes the file the ``ref_doc_id``, so ``delete_ref_doc`` removes
    all of a file's chunks. Only :data:`CITATION_KEYS` reach embeddings and LLM prompts.
    """
    metadata = {**(extra_info or {}), **record.metadata}
    excluded = bookkeeping_keys(metadata)
    relationships = {NodeRelationship.SOURCE: RelatedNodeInfo(node_id=record.ref_id)} if record.ref_id else {}
    return Document(
        id_=record.id,
        text=record.text,
        metadata=metadata,
        relationships=relationships,
        excluded_embed_metadata_keys=excluded,
        excluded_llm_metadata_keys=excluded,
    )


def bookkeeping_keys(metadata: Mapping[str, Any]) -> list[str]:
    """The metadata keys to keep out of embed and LLM text: all but :data:`CITATION_KEYS`."""
    return [key for key in metadata if key not in CITATION_KEYS]
