"""LlamaIndex: long-document question answering as a query engine over page summaries.

A thin wrapper: the prompt comes from :func:`~deepseek_ocr2_loaders.compression.build_context`,
so LlamaIndex and LangChain send the same prompt for the same question.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.llms.types import ChatMessage, ContentBlock, ImageBlock, MessageRole, TextBlock
from llama_index.core.base.response.schema import Response
from llama_index.core.llms import LLM
from llama_index.core.query_engine import CustomQueryEngine

from ..chunking import count_tokens as default_count
from ..compression import PageImage, PageSummary, QAContext, answer_pages, build_context, embedding_ranker
from ..errors import ConfigError

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
    count_tokens: Callable[[str], int] = default_count  # the LLM's own tokenizer for the budget
    page_images: Callable[[int], PageImage] | None = None  # selected pages go as images (PageImages)

    def custom_query(self, query_str: str) -> Response:
        """Build the context, ask the LLM, and read the answer's citations.

        A text-only context goes through ``complete``; one with page images goes through
        ``chat`` as one user message of text and image blocks.

        Raises:
            ConfigError: ``page_images`` with an LLM that is not a chat model (its ``chat``
                would flatten the message to text and drop the images).
        """
        context = self._context(query_str)
        if context.images:
            answer = self.llm.chat([_message(context)]).message.content or ""
        else:
            answer = self.llm.complete(context.prompt).text
        return _response(answer, context)

    async def acustom_query(self, query_str: str) -> Response:
        """Async :meth:`custom_query`: ranking and rendering on a thread, the LLM through its async API."""
        context = await asyncio.to_thread(self._context, query_str)
        if context.images:
            answer = (await self.llm.achat([_message(context)])).message.content or ""
        else:
            answer = (await self.llm.acomplete(context.prompt)).text
        return _response(answer, context)

    def _context(self, query_str: str) -> QAContext:
        if self.page_images is not None and not self.llm.metadata.is_chat_model:
            name = self.llm.metadata.model_name
            raise ConfigError(f"page_images needs a chat model that reads images; {name} is not a chat model")
        rank = None
        if self.embed_model is not None:
            rank = embedding_ranker(self.embed_model.get_query_embedding, self.embed_model.get_text_embedding_batch)
        return build_context(
            query_str,
            self.pages,
            token_budget=self.token_budget,
            rank=rank,
            count=self.count_tokens,
            page_images=self.page_images,
        )


def _response(answer: str, context: QAContext) -> Response:
    """The answer with the pages it cites (or, citing none, the pages in its context)."""
    cited = answer_pages(answer)
    return Response(
        response=answer,
        metadata={"pages": list(cited or context.pages_used), "context_pages": list(context.pages_used)},
    )


def _message(context: QAContext) -> ChatMessage:
    """One user message of the context's text runs and page images, in order."""
    blocks: list[ContentBlock] = [
        ImageBlock(image=part.png, image_mimetype="image/png") if isinstance(part, PageImage) else TextBlock(text=part)
        for part in context.parts
    ]
    return ChatMessage(role=MessageRole.USER, blocks=blocks)
