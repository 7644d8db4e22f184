"""LlamaIndex: long-document question answering as a query engine over page summaries.

A thin wrapper: the prompt comes from :func:`~deepseek_ocr2_loaders.compression.build_context`,
so LlamaIndex and LangChain send the same prompt for the same question.
"""

from __future__ import annotations

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.response.schema import Response
from llama_index.core.llms import LLM
from llama_index.core.query_engine import CustomQueryEngine

from ..compression import PageSummary, answer_pages, build_context, embedding_ranker

__all__ = ["LongContextQueryEngine"]


class LongContextQueryEngine(CustomQueryEngine):
    """Answer a question from a long document with any LlamaIndex ``LLM``.

    The response's ``metadata`` has ``pages`` (pages the answer cites as ``[p. N]``, or the
    pages whose full text was in the prompt when it cites none) and ``context_pages``.

    Example:
        >>> engine = LongContextQueryEngine(pages=summaries, llm=llm)  # doctest: +SKIP
        >>> engine.query("What was the coolant flow?").metadata["pages"]  # doctest: +SKIP
        [41]
    """

    pages: list[PageSummary]
    llm: LLM
    token_budget: int = 8000
    embed_model: BaseEmbedding | None = None  # ranks pages by similarity instead of BM25

    def custom_query(self, query_str: str) -> Response:
        """Build the context, complete it with the LLM, and read the answer's citations."""
        rank = None
        if self.embed_model is not None:
            rank = embedding_ranker(self.embed_model.get_query_embedding, self.embed_model.get_text_embedding_batch)
        context = build_context(query_str, self.pages, token_budget=self.token_budget, rank=rank)
        answer = self.llm.complete(context.prompt).text
        cited = answer_pages(answer)
        return Response(
            response=answer,
            metadata={"pages": list(cited or context.pages_used), "context_pages": list(context.pages_used)},
        )
