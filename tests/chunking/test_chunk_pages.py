"""chunk_pages on realistic OCR output: a multi-page paper, tables across pages, figures, furniture."""

from __future__ import annotations

import dataclasses

import pytest
from chunk_helpers import box_of, failed_page, g, html_table, page, read_html_tables

from deepseek_ocr2_loaders.chunking import BoxRef, ChunkOptions, MarkdownChunker, count_tokens

TITLE = "Sparse Mixture Routing for Long-Context Document Understanding"
RUNNING = "Sparse Mixture Routing (preprint)"
ATTENTION = r"\[\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\left(\frac{Q K^{\top}}{\sqrt{d_k}}\right) V \tag{1}\]"
LOSS = "$$\n\\mathcal{L} = -\\sum_{t=1}^{T} \\log p_\\theta(y_t \\mid y_{<t}, x)\n$$"
TABLE_HEAD = ["Dataset", "Pages", "Tables", "Figures"]
TABLE_ROWS_1 = [["DocVQA", "12,767", "1,204", "3,310"], ["InfographicVQA", "5,485", "312", "9,112"]]
TABLE_ROWS_2 = [["ChartQA", "21,945", "0", "21,945"], ["ArXiv-OCR", "48,000", "7,420", "15,300"]]


def paper_pages():
    """Six pages of a two-column paper; every heading written as ``##``; page 5 failed."""
    furniture = g("header", [80, 30, 500, 46], RUNNING)
    return [
        page(
            0,
            g("title", [118, 72, 880, 101], f"# {TITLE}")
            + g("text", [262, 118, 737, 152], "Mei Lin, Jonas Berg, Priya Raman")
            + g("sub_title", [82, 190, 180, 206], "## Abstract")
            + g("text", [82, 214, 488, 452], "Long documents mix prose, tables and figures. We route each page region.")
            + g("sub_title", [82, 472, 260, 489], "## 1 Introduction")
            + g("text", [82, 497, 488, 905], "Optical character recognition has moved to vision-language models.")
            + g(
                "text", [510, 190, 917, 430], "In this work we ask whether the decoder needs every region at full size."
            )
            + g("sub_title", [510, 450, 700, 467], "## 2 Related Work")
            + g("text", [510, 475, 917, 905], "Layout-aware readers such as LayoutLM use token positions.")
            + g("page-number", [490, 940, 509, 955], "1"),
        ),
        page(
            1,
            furniture
            + g("sub_title", [82, 80, 300, 96], "## 3 Method")
            + g("text", [82, 100, 917, 140], "Our method has two parts: a router and a set of experts.")
            + g("sub_title", [82, 150, 300, 166], "## 3.1 Routing")
            + g("text", [82, 170, 917, 200], "The attention weights are computed from queries and keys:")
            + g("equation", [300, 210, 700, 250], ATTENTION)
            + g("text", [82, 700, 917, 900], "The router sends each region to one expert")
            + g("footer", [120, 950, 560, 966], "Preprint. Under review."),
        ),
        page(
            2,
            furniture
            + g("text", [82, 80, 917, 120], "chosen by its layout label, as the next paragraph explains.")
            + g("sub_title", [82, 140, 300, 156], "## 3.2 Data")
            + g("text", [82, 160, 917, 200], "We train on four public collections, listed in Table 1.")
            + g("table_caption", [120, 600, 878, 620], "Table 1: Training collections.")
            + g("table", [120, 630, 878, 930], html_table(TABLE_HEAD, TABLE_ROWS_1))
            + g("page-number", [490, 940, 509, 955], "3"),
        ),
        page(
            3,
            furniture
            + g("table", [120, 60, 878, 200], html_table(None, TABLE_ROWS_2))
            + g("text", [82, 220, 917, 260], "All collections are deduplicated by page hash.")
            + g("sub_title", [82, 280, 300, 296], "## 4 Results")
            + g("text", [82, 300, 917, 340], "We minimise the negative log-likelihood:")
            + g("equation", [330, 350, 670, 400], LOSS)
            + g("footer", [120, 950, 560, 966], "Preprint. Under review."),
        ),
        failed_page(4),
        page(
            5,
            g("sub_title", [82, 60, 300, 76], "## 4.1 Ablations")
            + g("text", [82, 80, 917, 120], "Removing the router costs 38% more decoding time.")
            + g("image", [120, 130, 880, 470])
            + g("image_caption", [120, 478, 880, 506], "Figure 1: Decoding time by expert count."),
        ),
    ]


@pytest.fixture(scope="module")
def chunks():
    return list(MarkdownChunker().chunk_pages(paper_pages()))


def find(chunks, needle):
    (found,) = [c for c in chunks if needle in c.text]
    return found


def test_indices_and_token_counts(chunks):
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk.token_count == count_tokens(chunk.text) <= 512
        assert chunk.page <= chunk.page_end


def test_heading_levels_are_repaired_and_carried_across_pages(chunks):
    assert find(chunks, "Mei Lin").headers == ((1, TITLE),)
    assert find(chunks, "Long documents").headers == ((1, TITLE), (2, "Abstract"))
    assert find(chunks, "Optical character").headers == ((1, "1 Introduction"),)
    assert find(chunks, "router and a set").headers == ((1, "3 Method"),)
    routing = find(chunks, "The router sends")
    assert routing.headers == ((1, "3 Method"), (2, "3.1 Routing"))
    assert routing.header_path == "3 Method > 3.1 Routing"
    assert find(chunks, "deduplicated").headers == ((1, "3 Method"), (2, "3.2 Data"))
    # page 4 failed: page 5 still knows where it is
    assert find(chunks, "Removing the router").headers == ((1, "4 Results"), (2, "4.1 Ablations"))


def test_a_section_starts_a_chunk_with_its_heading_line_at_the_repaired_level(chunks):
    starts = [c.text.split("\n", 1)[0] for c in chunks]
    assert starts == [
        f"# {TITLE}",
        "## Abstract",
        "# 1 Introduction",
        "# 2 Related Work",
        "# 3 Method",
        "## 3.1 Routing",
        "## 3.2 Data",
        "# 4 Results",
        "## 4.1 Ablations",
    ]


def test_a_section_continued_over_a_page_break_spans_both_pages(chunks):
    routing = find(chunks, "The router sends")
    assert "chosen by its layout label" in routing.text
    assert (routing.page, routing.page_end) == (1, 2)
    assert routing.element_types == ("sub_title", "text", "equation")
    assert ATTENTION in routing.text


def test_two_column_reading_order_is_kept(chunks):
    intro = find(chunks, "Optical character")
    assert intro.text.index("Optical character") < intro.text.index("In this work")
    assert [b.bbox for b in intro.bboxes] == [
        box_of([82, 472, 260, 489]),
        box_of([82, 497, 488, 905]),
        box_of([510, 190, 917, 430]),
    ]
    assert all(b.page == 0 for b in intro.bboxes)


def test_table_continued_on_the_next_page_is_stitched(chunks):
    data = find(chunks, "<table>")
    assert data.text.count("<table>") == 1 and data.text.count("</table>") == 1
    (table,) = read_html_tables(data.text)
    assert table == [TABLE_HEAD, *TABLE_ROWS_1, *TABLE_ROWS_2]
    assert (data.page, data.page_end) == (2, 3)
    assert BoxRef(2, "table", box_of([120, 630, 878, 930])) in data.bboxes
    assert BoxRef(3, "table", box_of([120, 60, 878, 200])) in data.bboxes
    assert data.element_types == ("sub_title", "text", "table_caption", "table")
    # the text after the table on page 3 follows in the same section
    assert "deduplicated" in find(chunks, "deduplicated").text


def test_equations_stay_whole(chunks):
    results = find(chunks, "negative log-likelihood")
    assert LOSS in results.text and results.element_types == ("sub_title", "text", "equation")


def test_furniture_is_dropped_but_pages_are_not_missed(chunks):
    everything = "\n".join(c.text for c in chunks)
    assert RUNNING not in everything and "Under review" not in everything
    assert "\n1\n" not in everything and not any(c.text.strip() in ("1", "3") for c in chunks)
    pages = {p for c in chunks for p in range(c.page, c.page_end + 1)}
    assert pages == {0, 1, 2, 3, 5}  # page 4 failed and holds no text
    assert not any(b.label in ("header", "footer", "page-number") for c in chunks for b in c.bboxes)


def test_figure_page(chunks):
    figure = find(chunks, "![Figure 1]")
    assert "![Figure 1](page-0006-figure-1.png)\n\nFigure 1: Decoding time" in figure.text
    assert figure.element_types == ("sub_title", "text", "image", "image_caption")
    assert [b.label for b in figure.bboxes] == ["sub_title", "text", "image", "image_caption"]
    assert figure.page == figure.page_end == 5


def test_no_text_is_lost(chunks):
    everything = "\n".join(c.text for c in chunks)
    for p in paper_pages():
        for block in p.blocks:
            if block.label not in ("header", "footer", "page-number") and block.text:
                assert block.text.lstrip("# ") in everything or block.label == "table"


def test_bboxes_are_unique_per_block_and_in_order(chunks):
    for chunk in chunks:
        assert len(set(chunk.bboxes)) == len(chunk.bboxes)
        assert [b.page for b in chunk.bboxes] == sorted(b.page for b in chunk.bboxes)


def test_repair_can_be_turned_off():
    chunks = list(MarkdownChunker(ChunkOptions(repair_heading_levels=False)).chunk_pages(paper_pages()))
    assert find(chunks, "The router sends").headers == ((1, TITLE), (2, "3.1 Routing"))
    assert find(chunks, "# 3 Method").text.startswith("## 3 Method")


def test_title_blocks_without_hashes_are_headings():
    pages = [
        page(0, g("title", [100, 50, 900, 90], "Annual Report\n2024") + g("text", [100, 100, 900, 200], "Intro text.")),
        page(
            1,
            g("sub_title", [100, 50, 900, 90], "Outlook")
            + g("text", [100, 100, 900, 200], "Next year.")
            + g("sub_title", [100, 210, 900, 230], "2.1 Risks")
            + g("text", [100, 240, 900, 300], "Currency."),
        ),
    ]
    chunks = list(MarkdownChunker().chunk_pages(pages))
    assert [c.headers for c in chunks] == [
        ((1, "Annual Report 2024"),),
        ((1, "Annual Report 2024"), (2, "Outlook")),
        ((1, "Annual Report 2024"), (2, "2.1 Risks")),
    ]
    assert chunks[0].text == "# Annual Report 2024\n\nIntro text."
    assert chunks[2].text == "## 2.1 Risks\n\nCurrency."


def test_chunk_indices_restart_per_call():
    chunker = MarkdownChunker()
    first = list(chunker.chunk_pages(paper_pages()))
    second = list(chunker.chunk_pages(paper_pages()))
    assert first == second and first[0].index == 0


@pytest.mark.parametrize(
    "second_table",
    [
        html_table(["Region", "Count"], [["EU", "3"]], th=True),  # its own <th> header
        html_table(TABLE_HEAD, TABLE_ROWS_2),  # repeats the header row: a new table
        html_table(None, [["a", "b", "c"]]),  # other column count
    ],
)
def test_tables_are_not_stitched_when_the_next_one_is_a_new_table(second_table):
    pages = [
        page(
            0,
            g("text", [82, 60, 917, 100], "Intro.")
            + g("table", [120, 630, 878, 930], html_table(TABLE_HEAD, TABLE_ROWS_1)),
        ),
        page(1, g("header", [80, 30, 500, 46], RUNNING) + g("table", [120, 60, 878, 200], second_table)),
    ]
    chunks = list(MarkdownChunker().chunk_pages(pages))
    (joined,) = chunks
    assert joined.text.count("<table>") == 2 and (joined.page, joined.page_end) == (0, 1)
    assert len(read_html_tables(joined.text)) == 2


def test_no_stitching_over_a_caption_a_gap_a_failed_page_or_when_disabled():
    first = g("table", [120, 630, 878, 930], html_table(TABLE_HEAD, TABLE_ROWS_1))
    rest = g("table", [120, 60, 878, 200], html_table(None, TABLE_ROWS_2))
    cases = [
        ([page(0, first), page(1, g("text", [82, 40, 917, 55], "Table 1 (continued)") + rest)], ChunkOptions()),
        ([page(0, first), page(2, rest)], ChunkOptions()),
        ([page(0, first), failed_page(1), page(2, rest)], ChunkOptions()),
        ([page(0, first), page(1, rest)], ChunkOptions(stitch_tables=False)),
    ]
    for pages, options in cases:
        text = "\n\n".join(c.text for c in MarkdownChunker(options).chunk_pages(pages))
        assert len(read_html_tables(text)) == 2


def test_three_page_table_is_stitched_once():
    pages = [
        page(0, g("table", [120, 600, 878, 930], html_table(TABLE_HEAD, TABLE_ROWS_1))),
        page(1, g("table", [120, 60, 878, 930], html_table(None, TABLE_ROWS_2))),
        page(
            2,
            g("table", [120, 60, 878, 200], html_table(None, [["Total", "88,197", "8,936", "49,667"]]))
            + g("text", [82, 220, 917, 260], "After."),
        ),
    ]
    (chunk,) = MarkdownChunker().chunk_pages(pages)
    (table,) = read_html_tables(chunk.text)
    assert len(table) == 6 and table[-1][0] == "Total"
    assert (chunk.page, chunk.page_end) == (0, 2) and [b.page for b in chunk.bboxes] == [0, 1, 2, 2]


def test_free_ocr_pages_are_read_as_plain_markdown():
    free = (
        "# Meeting Minutes\n\nDate: 3 March 2025\n\n## Decisions\n\n- Move the release.\n- Keep the API.\n\n"
        "| Item | Owner |\n| --- | --- |\n| Notes | B. Okafor |"
    )
    grounded_less = page(0, free)  # no <|ref|>: one text block without a box
    markdown_only = dataclasses.replace(grounded_less, page=1, blocks=())
    for p in (grounded_less, markdown_only):
        chunks = list(MarkdownChunker().chunk_pages([p]))
        assert [c.headers for c in chunks] == [((1, "Meeting Minutes"),), ((1, "Meeting Minutes"), (2, "Decisions"))]
        assert chunks[1].element_types == ("heading", "text", "table")
        assert all(c.bboxes == () and c.page == p.page for c in chunks)


def test_streaming_yields_before_the_last_page_is_read():
    consumed = []

    def pages():
        for number in range(20):
            consumed.append(number)
            yield page(
                number,
                g("sub_title", [82, 60, 300, 76], f"## {number + 1} Part")
                + g("text", [82, 80, 917, 900], f"Body of part {number + 1}."),
                total=20,
            )

    stream = MarkdownChunker().chunk_pages(pages())
    first = next(stream)
    assert first.headers == ((1, "1 Part"),) and len(consumed) < 20
    assert len(consumed) <= 2
    rest = list(stream)
    assert len(rest) == 19 and len(consumed) == 20


def test_a_table_ending_a_page_waits_for_the_next_page_only():
    consumed = []
    raw = [
        g("table", [120, 600, 878, 930], html_table(TABLE_HEAD, TABLE_ROWS_1)),
        g("table", [120, 60, 878, 200], html_table(None, TABLE_ROWS_2))
        + g("sub_title", [82, 280, 300, 296], "## 5 End"),
        g("text", [82, 60, 917, 100], "Done."),
    ]

    def pages():
        for number, text in enumerate(raw):
            consumed.append(number)
            yield page(number, text, total=3)

    stream = MarkdownChunker().chunk_pages(pages())
    table = next(stream)
    assert len(consumed) == 2 and len(read_html_tables(table.text)[0]) == 5
    assert [c.text for c in stream] == ["# 5 End\n\nDone."]
