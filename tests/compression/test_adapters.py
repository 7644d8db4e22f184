"""LangChain and LlamaIndex wrappers over the same context.

The downstream LLMs here are FAKES that record the prompt they receive and reply with a fixed
answer: a real chat model cannot run in the test environment. The tests check what each
framework sends and how the answer's citations are read back, not answer quality.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from long_report import FACT_PAGE, QUESTION

from deepseek_ocr2_loaders.compression import build_context
from deepseek_ocr2_loaders.langchain._qa import LongContextQA
from deepseek_ocr2_loaders.llama_index._qa import LongContextQueryEngine

ANSWER = "The flow was 7,342 L/min [p. 41]."


class RecordingChatModel(FakeListChatModel):
    """A fake chat model that keeps every input it is given (``prompts``: as text)."""

    prompts: list[str] = []
    inputs: list[Any] = []

    def invoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
        self.prompts.append(input if isinstance(input, str) else str(input))
        self.inputs.append(input)
        return super().invoke(input, config, **kwargs)


class RecordingLLM(CustomLLM):
    """A fake LlamaIndex LLM that keeps every prompt and answers with a fixed text."""

    answer: str = ANSWER
    prompts: list[str] = []
    chats: list[list[ChatMessage]] = []
    async_calls: list[str] = []  # which async entry points were awaited
    chat_model: bool = True

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="recording-fake", is_chat_model=self.chat_model)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self.prompts.append(prompt)
        return CompletionResponse(text=self.answer)

    @llm_chat_callback()
    def chat(self, messages: Any, **kwargs: Any) -> ChatResponse:
        self.chats.append(list(messages))
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=self.answer))

    @llm_chat_callback()
    async def achat(self, messages: Any, **kwargs: Any) -> ChatResponse:
        self.async_calls.append("achat")
        return self.chat(messages, **kwargs)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        yield self.complete(prompt)


def test_both_frameworks_send_the_same_prompt_and_read_the_cited_page(summaries):
    chat = RecordingChatModel(responses=[ANSWER], prompts=[])
    result = LongContextQA(summaries, chat, token_budget=3000).invoke({"question": QUESTION})
    assert result["answer"] == ANSWER
    assert result["pages"] == [FACT_PAGE]
    assert result["context_pages"][0] == FACT_PAGE

    llm = RecordingLLM(prompts=[])
    response = LongContextQueryEngine(pages=summaries, llm=llm, token_budget=3000).query(QUESTION)
    assert str(response) == ANSWER
    assert response.metadata["pages"] == [FACT_PAGE]
    assert response.metadata["context_pages"] == result["context_pages"]

    expected = build_context(QUESTION, summaries, token_budget=3000).prompt
    assert chat.prompts == [expected]
    assert llm.prompts == [expected]
    assert "7,342 litres per minute" in expected


def test_an_answer_without_citations_falls_back_to_the_context_pages(summaries):
    chat = FakeListChatModel(responses=["I am not sure."])
    result = LongContextQA(summaries, chat, token_budget=1500).invoke({"question": QUESTION})
    assert result["pages"] == result["context_pages"]
    assert FACT_PAGE in result["pages"]


@pytest.mark.filterwarnings("ignore::langchain_core._api.beta_decorator.LangChainBetaWarning")  # as_tool is beta
def test_the_langchain_runnable_becomes_a_tool_with_a_typed_question(summaries):
    chat = FakeListChatModel(responses=[ANSWER])
    tool = LongContextQA(summaries, chat, token_budget=3000).as_tool(name="ask_report", description="Ask the report.")
    assert tool.args == {"question": {"title": "Question", "type": "string"}}
    assert tool.invoke({"question": QUESTION})["pages"] == [FACT_PAGE]
