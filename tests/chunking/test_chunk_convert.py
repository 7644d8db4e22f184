"""End to end: a generated PDF through convert() with a scripted engine, then chunk_pages."""

from __future__ import annotations

import itertools

import pymupdf
from chunk_helpers import g, html_table, read_html_tables

from deepseek_ocr2_loaders import EngineError, convert
from deepseek_ocr2_loaders.chunking import ChunkOptions, MarkdownChunker, count_tokens
from deepseek_ocr2_loaders.testing import ScriptedEngine

PAGES = [
    g("header", [80, 30, 500, 46], "Quarterly Report")
    + g("title", [100, 60, 900, 100], "## 1 Overview")
    + g("text", [100, 110, 900, 300], "Revenue grew in every quarter. Costs stayed flat.")
    + g("table_caption", [100, 700, 900, 720], "Table 1: Revenue by region.")
    + g("table", [100, 730, 900, 950], html_table(["Region", "Q1", "Q2"], [["North", "10", "12"], ["South", "8", "9"]]))
    + g("page-number", [490, 960, 509, 975], "1"),
    g("header", [80, 30, 500, 46], "Quarterly Report")
    + g("table", [100, 60, 900, 200], html_table(None, [["East", "7", "7"], ["West", "5", "6"]]))
    + g("sub_title", [100, 220, 900, 240], "## 1.1 Outlook")
    + g("text", [100, 250, 900, 400], "We expect growth to continue.")
    + g("equation", [300, 410, 700, 450], r"\[ g = \frac{R_{t}}{R_{t-1}} - 1 \]"),
    g("sub_title", [100, 60, 900, 80], "## 2 Sites")
    + g("image", [120, 90, 880, 470])
    + g("image_caption", [120, 478, 880, 506], "Figure 1: Our two production sites."),
]


def pdf_bytes(pages: int) -> bytes:
    doc = pymupdf.open()
    for _ in range(pages):
        doc.new_page(width=612, height=792)
    return doc.tobytes()


def test_convert_then_chunk():
    answers = itertools.cycle(PAGES)
    engine = ScriptedEngine(lambda image, prompt: next(answers), batch_size=2)
    chunks = list(MarkdownChunker(ChunkOptions(chunk_size=256)).chunk_pages(convert(pdf_bytes(3), engine=engine)))
    assert [c.header_path for c in chunks] == ["1 Overview", "1 Overview > 1.1 Outlook", "2 Sites"]
    overview, outlook, sites = chunks
    (table,) = read_html_tables(overview.text)
    assert [row[0] for row in table] == ["Region", "North", "South", "East", "West"]
    assert (overview.page, overview.page_end) == (0, 1)
    assert {b.page for b in overview.bboxes if b.label == "table"} == {0, 1}
    assert "Quarterly Report" not in overview.text
    assert outlook.text.endswith(r"\[ g = \frac{R_{t}}{R_{t-1}} - 1 \]") and outlook.page == 1
    assert "![Figure 1](page-0003-figure-1.png)" in sites.text and sites.page == 2
    assert all(c.token_count == count_tokens(c.text) <= 256 for c in chunks)


def test_streaming_over_convert_with_a_failing_engine_batch():
    calls = itertools.count()

    def handler(image, prompt):
        number = next(calls)
        if number == 2:
            raise EngineError("backend went away")
        return g("sub_title", [100, 60, 900, 80], f"## {number + 1} Section") + g(
            "text", [100, 90, 900, 300], f"Page {number + 1} body."
        )

    engine = ScriptedEngine(handler, batch_size=1)
    stream = MarkdownChunker().chunk_pages(convert(pdf_bytes(6), engine=engine))
    first = next(stream)
    assert first.header_path == "1 Section" and len(engine.calls) < 6
    rest = list(stream)
    assert [c.header_path for c in rest] == ["2 Section", "4 Section", "5 Section", "6 Section"]
    assert [c.page for c in rest] == [1, 3, 4, 5]
