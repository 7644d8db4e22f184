"""The compression core: compact views, summaries through the cache, and the budgeted context."""

from __future__ import annotations

import pytest
from long_report import FACT, FACT_PAGE, PAGE_COUNT, QUESTION, report_engine, summary_of
from PIL import Image

from deepseek_ocr2_loaders.chunking._tokens import count_tokens
from deepseek_ocr2_loaders.compression import (
    CompactViewEngine,
    answer_pages,
    build_context,
    compact_view,
    summarize_pages,
)
from deepseek_ocr2_loaders.errors import ConfigError
from deepseek_ocr2_loaders.model._vision_tokens import count_vision_tokens


def test_compact_view_uses_only_the_global_view():
    letter = Image.new("RGB", (1224, 1584))
    compact = compact_view(letter)
    assert max(compact.size) == 768
    assert count_vision_tokens(*compact.size) == 257
    assert count_vision_tokens(*letter.size) == 1121
    small = Image.new("RGB", (500, 600))
    assert compact_view(small) is small


def test_every_page_is_summarized_from_its_compact_view(summaries):
    assert [s.page_number for s in summaries] == list(range(1, PAGE_COUNT + 1))
    assert [s.summary for s in summaries] == [summary_of(i) for i in range(PAGE_COUNT)]
    for summary in summaries:
        assert summary.stats.vision_tokens == 257
        assert summary.stats.vision_tokens_full > 257  # 792 pt tall renders at 1584 px: crops
        assert summary.full_text is not None
        assert summary.stats.text_tokens == count_tokens(summary.full_text)
        assert summary.stats.compression_ratio == pytest.approx(summary.stats.text_tokens / 257)
    assert FACT.split()[0] in summaries[FACT_PAGE - 1].full_text


def test_summaries_are_cached_apart_from_full_pages(report, tmp_path):
    cache = tmp_path / "pages.sqlite"
    engine = report_engine()
    first = list(summarize_pages(report, engine=engine, pages="1-5", cache=cache))
    calls = len(engine.calls)
    assert calls > 0
    again = list(summarize_pages(report, engine=engine, pages="1-5", cache=cache))
    assert len(engine.calls) == calls  # every summary came from the cache
    assert [s.summary for s in again] == [s.summary for s in first]
    assert CompactViewEngine(engine).fingerprint == {**engine.fingerprint, "view": "compact"}


@pytest.mark.parametrize("budget", [1500, 3000, 8000])
def test_context_fits_the_budget_maps_every_page_and_holds_the_fact(summaries, budget):
    context = build_context(QUESTION, summaries, token_budget=budget)
    assert count_tokens(context.prompt) == context.token_count <= budget
    assert context.summary_pages == tuple(range(1, PAGE_COUNT + 1))
    for number in range(1, PAGE_COUNT + 1):
        assert f"[p. {number}]" in context.prompt
    assert context.pages_used[0] == FACT_PAGE
    assert "Page 41 (full text)" in context.prompt
    assert "7,342 litres per minute" in context.prompt
    assert context.prompt.endswith(f"Question: {QUESTION}")


@pytest.mark.parametrize("budget", [120, 200, 400, 700, 1000, 2000])
def test_any_budget_that_holds_the_question_is_never_exceeded(summaries, budget):
    context = build_context(QUESTION, summaries, token_budget=budget)
    assert count_tokens(context.prompt) <= budget


def test_a_tight_budget_shortens_summaries_evenly_before_dropping_pages(summaries):
    context = build_context(QUESTION, summaries, token_budget=700)
    assert context.summary_pages == tuple(range(1, PAGE_COUNT + 1))
    assert summary_of(0) not in context.prompt  # shortened


def test_a_budget_below_the_question_is_a_config_error(summaries):
    with pytest.raises(ConfigError):
        build_context(QUESTION, summaries, token_budget=10)


def test_full_texts_override_the_text_layer(summaries):
    context = build_context("zebra migration", summaries, token_budget=3000, full_texts={7: "The zebra migration."})
    assert context.pages_used == (7,)
    assert "Page 7 (full text)\nThe zebra migration." in context.prompt


def test_answer_pages_reads_citations():
    assert answer_pages("The flow was 7,342 L/min [p. 41].") == (41,)
    assert answer_pages("See [p. 3], [pp. 4, 5] and [p. 3].") == (3, 4, 5)
    assert answer_pages("No citation.") == ()
