"""Page retrieval by a user's embedding model, through the core and both adapters.

The embedding here is a real, deterministic function (hashed bag of words), not a fake:
no embedding weights can be downloaded on this machine. The downstream LLMs are the
recording fakes of test_adapters (no chat model can run here).
"""

from __future__ import annotations

import math
import re
import zlib

from langchain_core.embeddings import Embeddings
from llama_index.core.base.embeddings.base import BaseEmbedding
from long_report import FACT_PAGE
from test_adapters import ANSWER, RecordingChatModel, RecordingLLM

from deepseek_ocr2_loaders.compression import build_context, embedding_ranker
from deepseek_ocr2_loaders.langchain import LongContextQA
from deepseek_ocr2_loaders.llama_index import LongContextQueryEngine

QUESTION = "coolant flow litres"  # words that occur on the fact page, ranked by similarity


def bag_of_words(text: str, dim: int = 512) -> list[float]:
    vector = [0.0] * dim
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        vector[zlib.crc32(word.encode()) % dim] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


class HashingEmbeddings(Embeddings):
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [bag_of_words(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return bag_of_words(text)


class HashingEmbedding(BaseEmbedding):
    def _get_query_embedding(self, query: str) -> list[float]:
        return bag_of_words(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return bag_of_words(text)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return bag_of_words(query)


def test_a_custom_ranker_decides_which_full_pages_enter_the_context(summaries):
    context = build_context("anything", summaries, token_budget=2000, rank=lambda q, texts: [(7, 1.0)])
    assert context.pages_used == (7,) and "Page 7 (full text)" in context.prompt


def test_embedding_ranking_finds_the_fact_page(summaries):
    rank = embedding_ranker(HashingEmbeddings().embed_query, HashingEmbeddings().embed_documents)
    context = build_context(QUESTION, summaries, token_budget=3000, rank=rank)
    assert context.pages_used[0] == FACT_PAGE and context.token_count <= 3000


def test_both_adapters_rank_with_the_users_embedding_model_and_agree(summaries):
    chat = RecordingChatModel(responses=[ANSWER], prompts=[])
    result = LongContextQA(summaries, chat, token_budget=3000, embeddings=HashingEmbeddings()).invoke(
        {"question": QUESTION}
    )
    llm = RecordingLLM(prompts=[])
    response = LongContextQueryEngine(
        pages=summaries, llm=llm, token_budget=3000, embed_model=HashingEmbedding(embed_batch_size=64)
    ).query(QUESTION)
    assert result["context_pages"][0] == FACT_PAGE
    assert response.metadata["context_pages"] == result["context_pages"]
    assert chat.prompts == llm.prompts


def test_the_budget_is_counted_with_the_models_own_tokenizer(summaries):
    def words(text: str) -> int:  # a downstream tokenizer that counts words
        return len(text.split())

    chat = RecordingChatModel(responses=[ANSWER], prompts=[])
    LongContextQA(summaries, chat, token_budget=900, count_tokens=words).invoke({"question": QUESTION})
    assert words(chat.prompts[0]) <= 900
    llm = RecordingLLM(prompts=[])
    LongContextQueryEngine(pages=summaries, llm=llm, token_budget=900, count_tokens=words).query(QUESTION)
    assert llm.prompts == chat.prompts
