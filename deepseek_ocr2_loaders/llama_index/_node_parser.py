"""``MarkdownStructureNodeParser``: LlamaIndex NodeParser over the core Markdown chunker."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from llama_index.core.node_parser import NodeParser
from llama_index.core.node_parser.node_utils import build_nodes_from_splits
from llama_index.core.schema import BaseNode, Document
from pydantic import Field, PrivateAttr

from ..chunking import ChunkOptions, MarkdownChunker
from ..records import LAYOUT_KEY
from ..records._splitting import split_documents
from ._documents import bookkeeping_keys

__all__ = ["MarkdownStructureNodeParser"]


class MarkdownStructureNodeParser(NodeParser):
    """Split Documents by Markdown structure into token-bounded nodes; usable in an IngestionPipeline.

    Nodes keep their source relationship and metadata, extended with ``header_path``,
    ``Header 1``..``Header 6``, ``token_count`` and ``chunk_index``; ids are deterministic.
    Handed a file's page Documents (consecutive, in page order) it gives exactly the texts,
    metadata and ids of ``mode="chunks"``; each node's SOURCE is the page Document it starts
    on (not the file, as in ``mode="chunks"``), so a docstore's upserts follow the pages.

    Example:
        .. code-block:: python

            pipeline = IngestionPipeline(transformations=[MarkdownStructureNodeParser(chunk_size=512)])
            nodes = pipeline.run(documents=DeepSeekOCR2Reader().load_data("paper.pdf"))
    """

    chunk_size: int = Field(default=512, description="max tokens per node")
    chunk_overlap: int = Field(default=0, description="overlapping tokens between nodes of one section")
    tables_as_pipe: bool = Field(default=False, description="simple HTML tables as pipe tables")
    _chunker: MarkdownChunker = PrivateAttr()

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        self._chunker = MarkdownChunker(
            ChunkOptions(
                chunk_size=self.chunk_size, chunk_overlap=self.chunk_overlap, tables_as_pipe=self.tables_as_pipe
            )
        )

    @classmethod
    def class_name(cls) -> str:
        """Name used when the parser is serialised."""
        return "MarkdownStructureNodeParser"

    def _parse_nodes(self, nodes: Sequence[BaseNode], show_progress: bool = False, **kwargs: Any) -> list[BaseNode]:
        records = split_documents([(node.get_content(), node.metadata) for node in nodes], self._chunker)
        out: list[BaseNode] = []
        for start, group in itertools.groupby(records, key=lambda pair: pair[0]):
            parts = [record for _, record in group]
            built = build_nodes_from_splits(
                [r.text for r in parts], nodes[start], id_func=lambda i, _doc, parts=parts: parts[i].id
            )
            for child, record in zip(built, parts, strict=True):
                child.metadata = dict(record.metadata)
                child.excluded_embed_metadata_keys = bookkeeping_keys(child.metadata)
                child.excluded_llm_metadata_keys = bookkeeping_keys(child.metadata)
            out.extend(built)
        return out

    def _postprocess_parsed_nodes(self, nodes: list[BaseNode], parent_doc_map: dict[str, Document]) -> list[BaseNode]:
        """LlamaIndex merges each source Document's metadata into its nodes: keep the page layout out."""
        processed = super()._postprocess_parsed_nodes(nodes, parent_doc_map)
        for node in processed:
            node.metadata.pop(LAYOUT_KEY, None)
        return processed
