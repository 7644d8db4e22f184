"""Selected pages sent as images to a vision-capable downstream model, within the token budget.

Pages are rendered from the real 64-page report PDF and from the real PDFs in tests/data.
The downstream models are the recording FAKES of test_adapters (no vision chat model can run
here): the tests check what each framework would send, not what a model would answer.
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
from dataclasses import replace
from functools import partial

import pytest
from langchain_core.messages import AIMessage, HumanMessage, convert_to_openai_messages
from langchain_core.runnables import RunnableLambda
from llama_index.core.base.llms.types import ImageBlock, TextBlock
from long_report import FACT, FACT_PAGE, PAGE_COUNT, QUESTION
from PIL import Image
from test_adapters import ANSWER, RecordingChatModel, RecordingLLM

from deepseek_ocr2_loaders.chunking import count_tokens
from deepseek_ocr2_loaders.compression import (
    PageImage,
    PageImages,
    anthropic_image_tokens,
    build_context,
    deepseek_ocr2_image_tokens,
    max_image_tokens,
    openai_patch_tokens,
    openai_tile_tokens,
)
from deepseek_ocr2_loaders.errors import ConfigError, InputError, PageRangeError
from deepseek_ocr2_loaders.langchain import LongContextQA
from deepseek_ocr2_loaders.llama_index import LongContextQueryEngine

# Worked examples from the providers' documentation (OpenAI vision guide, Anthropic vision
# docs), plus DeepSeek-OCR-2's count from the model card's view sizes.
PUBLISHED = [
    (openai_tile_tokens, 1024, 1024, 765),
    (openai_tile_tokens, 2048, 4096, 1105),
    (openai_patch_tokens, 1024, 1024, 1024),
    (openai_patch_tokens, 1800, 2400, 1452),
    (anthropic_image_tokens, 1000, 1000, 1334),
    (anthropic_image_tokens, 200, 200, 54),
    (anthropic_image_tokens, 1092, 1092, 1590),
    (deepseek_ocr2_image_tokens, 768, 768, 257),
    (deepseek_ocr2_image_tokens, 1224, 1584, 257 + 6 * 144),
]


@pytest.mark.parametrize(("estimate", "width", "height", "tokens"), PUBLISHED)
def test_image_token_estimates_match_the_published_examples(estimate, width, height, tokens):
    assert estimate(width, height) == tokens


@pytest.mark.parametrize(
    ("width", "height", "tokens"),
    [
        (791, 1024, 1080),  # a letter page: Claude's w*h/750 is the largest
        (3000, 400, 1222),  # a wide strip: GPT patches (scaled to 1536 at most) are the largest
        (64, 64, 255),  # a small image: one GPT-4o tile is the largest
    ],
)
def test_the_default_estimate_is_the_largest_formula_for_each_shape(width, height, tokens):
    assert max_image_tokens(width, height) == tokens


def test_patch_models_count_with_their_multiplier():
    gpt_4_1_mini = partial(openai_patch_tokens, multiplier=1.62)
    assert gpt_4_1_mini(1024, 1024) == 1659 > max_image_tokens(1024, 1024)  # the default would undercount it
    assert gpt_4_1_mini(1800, 2400) == math.ceil(1452 * 1.62)


@pytest.fixture(scope="module")
def images(report):
    return PageImages(report)


def test_a_page_renders_as_a_png_within_max_side_with_its_estimate(real_pdfs):
    page = PageImages(real_pdfs / "lincoln_letter.pdf", max_side=800, image_tokens=anthropic_image_tokens)(1)
    decoded = Image.open(io.BytesIO(page.png))
    assert decoded.format == "PNG" and decoded.size == (page.width, page.height)
    assert max(decoded.size) == 800
    assert page.tokens == anthropic_image_tokens(page.width, page.height)
    assert base64.b64decode(page.base64) == page.png
    assert page.data_url.startswith("data:image/png;base64,iVBOR")


def test_a_page_asked_for_again_is_not_rendered_again(images):
    assert images(3) is images(3)
    assert images(3) is not images(4)


def test_bytes_and_streams_render_the_same_page_as_a_path(real_pdfs):
    path = real_pdfs / "newspaper.pdf"
    by_path = PageImages(path)(1)
    assert PageImages(path.read_bytes())(1).png == by_path.png
    with path.open("rb") as stream:
        from_stream = PageImages(stream)
    assert from_stream(1).png == by_path.png  # read once, renders after the stream is closed


def test_a_missing_page_or_file_is_a_typed_error_naming_the_file(real_pdfs, tmp_path):
    with pytest.raises(PageRangeError, match=r"lincoln_letter\.pdf.*page 99 is out of range; the document has 1 pages"):
        PageImages(real_pdfs / "lincoln_letter.pdf")(99)
    with pytest.raises(PageRangeError, match="page 0 is out of range"):
        PageImages(real_pdfs / "lincoln_letter.pdf")(0)
    with pytest.raises(InputError, match="gone.pdf"):
        PageImages(tmp_path / "gone.pdf")(1)


@pytest.mark.parametrize("budget", [2000, 3000, 6000, 12000])
def test_selected_pages_go_as_images_and_the_budget_counts_them(summaries, images, budget):
    context = build_context(QUESTION, summaries, token_budget=budget, page_images=images)
    assert context.pages_used[0] == FACT_PAGE
    assert [image.page_number for image in context.images] == list(context.pages_used)
    texts = [part for part in context.parts if isinstance(part, str)]
    assert context.token_count == sum(map(count_tokens, texts)) + sum(image.tokens for image in context.images)
    assert context.token_count <= budget
    assert "Page 41 (image)" in context.prompt and FACT not in context.prompt
    assert "".join(texts) == context.prompt
    assert context.summary_pages == tuple(range(1, PAGE_COUNT + 1))


def test_a_budget_with_no_room_for_an_image_sends_the_map_alone(summaries, images):
    context = build_context(QUESTION, summaries, token_budget=1000, page_images=images)
    assert context.images == () and context.pages_used == ()
    assert context.parts == (context.prompt,) and context.token_count <= 1000


def test_only_pages_that_can_still_fit_are_rendered(summaries, images):
    rendered: list[int] = []

    def counting(page_number: int) -> PageImage:
        rendered.append(page_number)
        return images(page_number)

    cost = images(FACT_PAGE).tokens
    context = build_context(QUESTION, summaries, token_budget=1000 + 2 * cost, page_images=counting)
    assert len(context.images) >= 1
    assert len(rendered) <= len(context.images) + 1


def test_scanned_pages_without_a_text_layer_can_still_go_as_images(summaries, images):
    scans = [replace(page, full_text=None) for page in summaries]
    question = "Which page has the cooling system operating figures?"
    as_text = build_context(question, scans, token_budget=4000)
    as_images = build_context(question, scans, token_budget=4000, page_images=images)
    assert as_text.pages_used == ()
    assert as_images.pages_used[0] == FACT_PAGE


def test_both_frameworks_send_the_same_text_and_images(summaries, images):
    chat = RecordingChatModel(responses=[ANSWER], prompts=[], inputs=[])
    result = LongContextQA(summaries, chat, token_budget=4000, page_images=images).invoke({"question": QUESTION})
    assert result["pages"] == [FACT_PAGE] and result["context_pages"][0] == FACT_PAGE
    (messages,) = chat.inputs
    (message,) = messages
    assert isinstance(message, HumanMessage)
    lc_texts = [b["text"] for b in message.content if b["type"] == "text"]
    lc_images = [base64.b64decode(b["base64"]) for b in message.content if b["type"] == "image"]

    llm = RecordingLLM(prompts=[], chats=[])
    response = LongContextQueryEngine(pages=summaries, llm=llm, token_budget=4000, page_images=images).query(QUESTION)
    assert response.metadata["context_pages"] == result["context_pages"]
    assert llm.prompts == []  # went through chat, not complete
    ((li_message,),) = llm.chats
    li_texts = [b.text for b in li_message.blocks if isinstance(b, TextBlock)]
    li_images = [b.resolve_image().read() for b in li_message.blocks if isinstance(b, ImageBlock)]

    expected = build_context(QUESTION, summaries, token_budget=4000, page_images=images)
    assert lc_texts == li_texts == [part for part in expected.parts if isinstance(part, str)]
    assert lc_images == li_images == [image.png for image in expected.images]
    assert lc_images[0] == images(FACT_PAGE).png


def test_the_langchain_message_converts_to_openai_image_urls(summaries, images):
    chat = RecordingChatModel(responses=[ANSWER], prompts=[], inputs=[])
    LongContextQA(summaries, chat, token_budget=4000, page_images=images).invoke({"question": QUESTION})
    (openai_message,) = convert_to_openai_messages(chat.inputs[0])
    kinds = [block["type"] for block in openai_message["content"]]
    assert kinds[:3] == ["text", "image_url", "text"]
    assert openai_message["content"][1]["image_url"]["url"] == images(FACT_PAGE).data_url


def test_a_context_without_images_stays_a_plain_prompt(summaries, images):
    chat = RecordingChatModel(responses=[ANSWER], prompts=[], inputs=[])
    LongContextQA(summaries, chat, token_budget=1000, page_images=images).invoke({"question": QUESTION})
    assert isinstance(chat.inputs[0], str)
    llm = RecordingLLM(prompts=[], chats=[])
    LongContextQueryEngine(pages=summaries, llm=llm, token_budget=1000, page_images=images).query(QUESTION)
    assert llm.chats == [] and llm.prompts == [chat.inputs[0]]


def test_images_with_a_model_that_cannot_read_them_are_a_config_error(summaries, images):
    from langchain_core.language_models import FakeListLLM

    with pytest.raises(ConfigError, match="FakeListLLM takes text only"):
        LongContextQA(summaries, FakeListLLM(responses=[ANSWER]), page_images=images)
    engine = LongContextQueryEngine(pages=summaries, llm=RecordingLLM(chat_model=False), page_images=images)
    with pytest.raises(ConfigError, match="recording-fake is not a chat model"):
        engine.query(QUESTION)


def test_an_answer_in_content_blocks_is_read_as_its_text(summaries, images):
    reply = AIMessage(content=[{"type": "text", "text": "It was 7,342 L/min"}, {"type": "text", "text": " [p. 41]."}])
    qa = LongContextQA(summaries, RunnableLambda(lambda _: reply), page_images=images)
    result = qa.invoke({"question": QUESTION})
    assert result["answer"] == "It was 7,342 L/min [p. 41]." and result["pages"] == [FACT_PAGE]


def test_the_llamaindex_engine_answers_async_with_the_same_message(summaries, images):
    sync_llm = RecordingLLM(prompts=[], chats=[], async_calls=[])
    async_llm = RecordingLLM(prompts=[], chats=[], async_calls=[])
    expected = LongContextQueryEngine(pages=summaries, llm=sync_llm, token_budget=4000, page_images=images).query(
        QUESTION
    )
    engine = LongContextQueryEngine(pages=summaries, llm=async_llm, token_budget=4000, page_images=images)
    response = asyncio.run(engine.aquery(QUESTION))
    assert response.metadata == expected.metadata and str(response) == str(expected)
    assert async_llm.chats == sync_llm.chats
    assert async_llm.async_calls == ["achat"] and sync_llm.async_calls == []  # the LLM's async API, awaited
