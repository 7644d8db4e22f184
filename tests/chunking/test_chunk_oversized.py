"""Oversized segments, overlap and tables_as_pipe, mostly through chunk_text on plain Markdown."""

from __future__ import annotations

import re

from chunk_helpers import g, html_table, page, read_html_tables, words

from deepseek_ocr2_loaders.chunking import ChunkOptions, MarkdownChunker, count_tokens

SENTENCES = [
    f"Sentence number {i} explains how the {w} stage of the pipeline reads a page of a scanned report."
    for i, w in enumerate(["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"] * 3)
]
LONG_PARAGRAPH = " ".join(SENTENCES)


def chunk(markdown: str, **options):
    return MarkdownChunker(ChunkOptions(**options)).chunk_text(markdown)


def assert_within(chunks, size):
    for c in chunks:
        assert c.token_count == count_tokens(c.text) <= size, c.text


def test_oversized_paragraph_is_split_at_sentence_ends():
    chunks = chunk(f"# 2 Pipeline\n\n{LONG_PARAGRAPH}\n\nShort closing paragraph.", chunk_size=64)
    assert len(chunks) > 5
    assert_within(chunks, 64)
    assert words(" ".join(c.text for c in chunks)) == words(f"2 Pipeline {LONG_PARAGRAPH} Short closing paragraph.")
    assert chunks[0].text.startswith("# 2 Pipeline\n\nSentence number 0")  # heading kept with the start
    for c in chunks[:-1]:
        assert c.text.endswith("scanned report.")  # cut between sentences, never inside
    for previous, current in zip(chunks, chunks[1:], strict=False):  # and each part is as large as it can be
        next_sentence = current.text.split(". ")[0] + "."
        assert count_tokens(f"{previous.text} {next_sentence}") > 64
    assert all(c.headers == ((1, "2 Pipeline"),) for c in chunks)


def test_a_sentence_without_stops_is_split_at_words_and_a_huge_word_at_characters():
    run_on = " ".join(f"word{i}" for i in range(300))
    blob = "QUJD" * 400  # one 1,600-character "word", as a base64 image would be
    chunks = chunk(f"{run_on}\n\n{blob}", chunk_size=32)
    assert_within(chunks, 32)
    joined = " ".join(c.text for c in chunks)
    assert words(joined)[:300] == [f"word{i}" for i in range(300)]
    pieces = [part for c in chunks for part in c.text.split("\n\n") if set(part) <= set("QUJD")]
    assert len(pieces) > 10 and "".join(pieces) == blob


def test_oversized_html_table_repeats_its_header_in_every_part():
    rows = [[f"row {i}", f"{i * 3.5:.1f}", f"note {i}"] for i in range(60)]
    text = "Intro paragraph.\n\n" + html_table(["Name", "Value", "Note"], rows) + "\n\nAfter the table."
    chunks = chunk(text, chunk_size=128)
    table_chunks = [c for c in chunks if "<table" in c.text]
    assert len(table_chunks) > 3
    assert_within(chunks, 128)
    seen = []
    for c in table_chunks:
        assert c.text.count("<table") == c.text.count("</table>") == 1
        (table,) = read_html_tables(c.text)
        assert table[0] == ["Name", "Value", "Note"]
        seen += table[1:]
    assert seen == rows
    assert chunks[0].text.startswith("Intro paragraph.") and chunks[-1].text.endswith("After the table.")


def test_thead_is_the_repeated_header():
    head = "<thead><tr><th>Year</th><th>Revenue</th></tr><tr><th></th><th>EUR m</th></tr></thead>"
    body = "".join(f"<tr><td>{1990 + i}</td><td>{i * 11}</td></tr>" for i in range(40))
    chunks = chunk(f'<table class="t">{head}<tbody>{body}</tbody></table>', chunk_size=100)
    assert len(chunks) > 2
    assert_within(chunks, 100)
    for c in chunks:
        assert c.text.startswith(f'<table class="t">{head}<tbody><tr>')
        (table,) = read_html_tables(c.text)
        assert table[:2] == [["Year", "Revenue"], ["", "EUR m"]]


def test_oversized_pipe_table_keeps_header_and_separator():
    lines = ["| Item | Owner | Due |", "| --- | :-: | ---: |"] + [
        f"| Task {i} | Person {i} | 2025-0{1 + i % 9}-1{i % 10} |" for i in range(50)
    ]
    chunks = chunk("\n".join(lines), chunk_size=80)
    assert len(chunks) > 3
    assert_within(chunks, 80)
    body = []
    for c in chunks:
        got = c.text.split("\n")
        assert got[:2] == lines[:2]
        body += got[2:]
    assert body == lines[2:]
    assert all(c.element_types == ("table",) for c in chunks)


def test_oversized_code_fence_is_split_between_lines_and_refenced():
    code = [f"    total_{i} = compute(page_{i}, scale={i})" for i in range(60)]
    text = "```python\ndef run():\n" + "\n".join(code) + "\n```"
    chunks = chunk(text, chunk_size=96)
    assert len(chunks) > 3
    assert_within(chunks, 96)
    body = []
    for c in chunks:
        assert c.text.startswith("```python\n") and c.text.endswith("\n```")
        assert c.text.count("```") == 2
        body += c.text.split("\n")[1:-1]
    assert body == ["def run():", *code]
    assert all(c.element_types == ("code",) for c in chunks)


def test_math_block_larger_than_the_limit_is_kept_whole():
    terms = " + ".join(f"\\alpha_{{{i}}} x^{{{i}}}" for i in range(80))
    math = f"$$\nf(x) = {terms}\n$$"
    chunks = chunk(f"# 1 Model\n\nThe polynomial is\n\n{math}\n\nwith real coefficients.", chunk_size=64)
    (big,) = [c for c in chunks if "$$" in c.text]
    assert big.text == math and big.token_count > 64
    assert big.element_types == ("equation",) and big.headers == ((1, "1 Model"),)
    assert_within([c for c in chunks if c is not big], 64)


def test_a_single_row_larger_than_the_limit_stays_whole_with_the_header():
    huge = " ".join(f"value{i}" for i in range(120))
    rows = [["a", "short"], ["b", huge], ["c", "short"]]
    chunks = chunk(html_table(["Key", "Text"], rows), chunk_size=48)
    tables = [read_html_tables(c.text)[0] for c in chunks]
    assert [t[0] for t in tables] == [["Key", "Text"]] * len(tables)
    assert [r for t in tables for r in t[1:]] == rows
    (excess,) = [c for c in chunks if c.token_count > 48]
    assert read_html_tables(excess.text)[0][1:] == [["b", huge]]


def test_overlap_repeats_trailing_sentences_within_a_section_only():
    text = f"# 1 Part\n\n{LONG_PARAGRAPH}\n\n# 2 Part\n\n{LONG_PARAGRAPH}"
    chunks = chunk(text, chunk_size=80, chunk_overlap=30)
    assert_within(chunks, 80)
    for previous, current in zip(chunks, chunks[1:], strict=False):
        if current.text.startswith("#"):
            assert current.headers != previous.headers  # a new section starts without overlap
            continue
        overlap = current.text.split("\n\n")[0]
        assert previous.text.endswith(overlap)
        assert 0 < count_tokens(overlap) <= 30
        assert overlap[0].isupper()  # whole sentences
    plain = chunk(text, chunk_size=80)
    assert len(chunks) > len(plain)


def test_overlap_falls_back_to_words_and_never_repeats_tables_or_code():
    one_sentence = " ".join(f"token{i}" for i in range(200))
    chunks = chunk(one_sentence, chunk_size=40, chunk_overlap=10)
    assert_within(chunks, 40)
    for previous, current in zip(chunks, chunks[1:], strict=False):
        overlap = current.text.split("\n\n")[0]
        assert previous.text.endswith(overlap) and 0 < count_tokens(overlap) <= 10
    table = html_table(["k", "v"], [[str(i), "x" * 5] for i in range(30)])
    chunks = chunk(
        f"Lead sentence here.\n\n{table}\n\n```\n" + "\n".join(f"line {i}" for i in range(40)) + "\n```",
        chunk_size=64,
        chunk_overlap=20,
    )
    assert_within(chunks, 64)
    assert chunks[0].text.startswith("Lead sentence here.\n\n<table>")  # the lead-in stays with the first rows
    assert sum(c.text.count("Lead sentence") for c in chunks) == 1
    for c in chunks[1:]:
        assert c.text.startswith(("<table>", "```")), c.text  # nothing repeated in front


def test_tables_as_pipe():
    simple = html_table(["Model", "F1"], [["Base|line", "81.2"], ["Ours", "<b>91.7</b>"]])
    complex_table = '<table><tr><td colspan="2">Both</td></tr><tr><td>a</td><td>b</td></tr></table>'
    (result,) = chunk(f"{simple}\n\n{complex_table}", tables_as_pipe=True)
    assert result.text == f"| Model | F1 |\n| --- | --- |\n| Base\\|line | 81.2 |\n| Ours | 91.7 |\n\n{complex_table}"
    assert result.element_types == ("table",)


def test_tables_as_pipe_applies_after_stitching():
    pages = [
        page(0, g("table", [100, 500, 900, 950], html_table(["Year", "Sales"], [["2020", "1"]]))),
        page(
            1,
            g("table", [100, 50, 900, 200], html_table(None, [["2021", "2"]]))
            + g("text", [100, 210, 900, 260], "Next."),
        ),
    ]
    (c,) = MarkdownChunker(ChunkOptions(tables_as_pipe=True)).chunk_pages(pages)
    assert c.text == "| Year | Sales |\n| --- | --- |\n| 2020 | 1 |\n| 2021 | 2 |\n\nNext."
    assert (c.page, c.page_end) == (0, 1)


def test_split_stitched_table_parts_name_their_own_pages():
    rows_a = [[f"a{i}", str(i)] for i in range(25)]
    rows_b = [[f"b{i}", str(i)] for i in range(25)]
    pages = [
        page(0, g("table", [100, 100, 900, 950], html_table(["Key", "Value"], rows_a))),
        page(1, g("table", [100, 50, 900, 950], html_table(None, rows_b))),
    ]
    chunks = list(MarkdownChunker(ChunkOptions(chunk_size=100)).chunk_pages(pages))
    assert len(chunks) > 3
    seen = []
    for c in chunks:
        (table,) = read_html_tables(c.text)
        assert table[0] == ["Key", "Value"]
        keys = {row[0][0] for row in table[1:]}
        assert (c.page, c.page_end) == ({"a": (0, 0), "b": (1, 1)}.get("".join(sorted(keys)), (0, 1)))
        assert {b.page for b in c.bboxes} == set(range(c.page, c.page_end + 1))
        seen += table[1:]
    assert seen == rows_a + rows_b


def test_chunk_text_on_plain_markdown():
    text = (
        "# Guide\n\nRead this first.\n\n## 1 Setup\n\nInstall it:\n\n```bash\npip install x\n```\n\n"
        "## 1.1 Check\n\n\\[ a^2 + b^2 = c^2 \\]\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n## Notes\n\nDone."
    )
    chunks = MarkdownChunker().chunk_text(text, page=7)
    assert [c.header_path for c in chunks] == ["Guide", "1 Setup", "1 Setup > 1.1 Check", "1 Setup > Notes"]
    assert [c.element_types for c in chunks] == [
        ("heading", "text"),
        ("heading", "text", "code"),
        ("heading", "equation", "table"),
        ("heading", "text"),
    ]
    assert all(c.page == c.page_end == 7 and c.bboxes == () for c in chunks)
    assert [c.index for c in chunks] == [0, 1, 2, 3]
    assert MarkdownChunker().chunk_text("") == [] and MarkdownChunker().chunk_text("  \n\n ") == []


def test_heading_only_sections_and_text_before_any_heading():
    chunks = MarkdownChunker().chunk_text("Preface text.\n\n# A\n\n## B\n\nBody.")
    assert [(c.text, c.headers) for c in chunks] == [
        ("Preface text.", ()),
        ("# A", ((1, "A"),)),
        ("## B\n\nBody.", ((1, "A"), (2, "B"))),
    ]


def test_no_chunk_ever_starts_with_a_dangling_separator():
    chunks = chunk(f"{LONG_PARAGRAPH}\n\n{LONG_PARAGRAPH}", chunk_size=50, chunk_overlap=12)
    assert all(c.text == c.text.strip() and not re.search(r"\n{3,}", c.text) for c in chunks)


def test_huge_segments_are_chunked_in_linear_time():
    """4x the input takes about 4x the time (16x if quadratic); a ratio, so a loaded machine cannot fail it."""
    import time

    def seconds(scale: int) -> float:
        started = time.perf_counter()
        paragraph = " ".join(f"word{i}" for i in range(25_000 * scale))
        chunks = chunk(paragraph, chunk_size=512, chunk_overlap=64)
        rows = "".join(f"<tr><td>{i}</td><td>value</td></tr>" for i in range(5_000 * scale))
        tables = chunk(f"<table>{rows}</table>", chunk_size=512)
        assert len(chunks) > 120 * scale and len(tables) > 120 * scale
        return time.perf_counter() - started

    small = min(seconds(1) for _ in range(2))
    assert seconds(4) < 8 * small


def test_a_table_that_fits_a_chunk_is_not_split_to_make_room_for_overlap():
    prose = " ".join(SENTENCES[:6])  # more than one chunk of prose, so the table follows a closed chunk
    table = html_table(["Row", "Value"], [[f"r{i}", f"{i * 7}"] for i in range(6)])
    table_tokens = count_tokens(table)
    assert 96 < table_tokens <= 128
    for size, overlap in ((128, 32), (128, 60), (200, 90)):
        chunks = chunk(f"{prose}\n\n{table}\n\nA closing sentence.", chunk_size=size, chunk_overlap=overlap)
        assert_within(chunks, size)
        holding = [c for c in chunks if "<table>" in c.text or "</table>" in c.text]
        assert len(holding) == 1 and table in holding[0].text, (size, overlap)
