"""LangChain: long-document question answering as a ``Runnable`` over page summaries.

A thin wrapper: the prompt comes from :func:`~deepseek_ocr2_loaders.compression.build_context`,
so LangChain and LlamaIndex send the same prompt for the same question.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseLLM
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig
from typing_extensions import TypedDict

from ..chunking import count_tokens as default_count
from ..compression import PageImage, PageSummary, QAContext, answer_pages, build_context, embedding_ranker
from ..errors import ConfigError

__all__ = ["LongContextQA", "QAInput"]


class QAInput(TypedDict):
    """The input of :class:`LongContextQA`: a typed key, so ``as_tool()`` knows its argument."""

    question: str


class LongContextQA(Runnable[QAInput, dict[str, Any]]):
    """Answer ``{"question": ...}`` from a long document with any chat model or ``Runnable``.

    Returns ``{"answer", "pages", "context_pages"}``: ``pages`` are the pages the answer
    cites (``[p. N]``), or the pages whose full text was in the prompt when it cites none.

    Example:
        >>> qa = LongContextQA(list(summarize_pages("report.pdf", engine=engine)), llm)  # doctest: +SKIP
        >>> qa.invoke({"question": "What was the coolant flow?"})["pages"]  # doctest: +SKIP
        [41]
    """

    def __init__(
        self,
        pages: Sequence[PageSummary],
        llm: Runnable[Any, Any],
        *,
        token_budget: int = 8000,
        embeddings: Embeddings | None = None,
        count_tokens: Callable[[str], int] | None = None,
        page_images: Callable[[int], PageImage] | None = None,
    ) -> None:
        """Keep the pages and the model.

        ``embeddings`` ranks pages by similarity instead of BM25; ``count_tokens`` is the
        downstream model's own tokenizer for the budget (default tiktoken ``cl100k_base``).
        ``page_images`` (a :class:`~deepseek_ocr2_loaders.compression.PageImages`) sends the
        selected pages as images to a vision-capable chat model, in one message of standard
        LangChain text and image content blocks.

        Raises:
            ConfigError: ``page_images`` with a text-completion LLM, which would drop the images.
        """
        if page_images is not None and isinstance(llm, BaseLLM):
            raise ConfigError(f"page_images needs a chat model that reads images; {type(llm).__name__} takes text only")
        self.pages = list(pages)
        self.llm = llm
        self.token_budget = token_budget
        self.rank = embedding_ranker(embeddings.embed_query, embeddings.embed_documents) if embeddings else None
        self.count = count_tokens or default_count
        self.page_images = page_images

    def invoke(self, input: QAInput, config: RunnableConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        """Build the context for ``input["question"]``, ask the model, and read its citations."""
        context = build_context(
            input["question"],
            self.pages,
            token_budget=self.token_budget,
            rank=self.rank,
            count=self.count,
            page_images=self.page_images,
        )
        reply = self.llm.invoke(_model_input(context), config=config, **kwargs)
        answer = str(reply.text) if isinstance(reply, BaseMessage) else str(reply)
        cited = answer_pages(answer)
        return {
            "answer": answer,
            "pages": list(cited or context.pages_used),
            "context_pages": list(context.pages_used),
        }


def _model_input(context: QAContext) -> str | list[HumanMessage]:
    """The prompt as plain text, or as one multimodal message when it holds page images."""
    if not context.images:
        return context.prompt
    blocks: list[str | dict[str, Any]] = [
        {"type": "image", "base64": part.base64, "mime_type": "image/png"}
        if isinstance(part, PageImage)
        else {"type": "text", "text": part}
        for part in context.parts
    ]
    return [HumanMessage(content=blocks)]
