"""Property tests: random Markdown documents (and random OCR pages) through the chunker."""

from __future__ import annotations

import re

from chunk_helpers import read_html_tables
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepseek_ocr2_loaders import Block, FinishReason, OCRStatus, PageResult
from deepseek_ocr2_loaders.chunking import ChunkOptions, MarkdownChunker, count_tokens
from deepseek_ocr2_loaders.chunking._markdown import is_pipe_separator

PROSE = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima"]
HEAD = ["Intro", "Methods", "Data", "Results", "Notes", "Appendix"]
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

word = st.sampled_from(PROSE)
sentence = st.builds(
    lambda ws, end: " ".join(ws).capitalize() + end,
    st.lists(word, min_size=1, max_size=40),
    st.sampled_from([".", "!", "?", ";", ""]),
)
paragraph = st.builds(
    lambda ss, bullets: "\n".join(f"- {s}" for s in ss) if bullets else " ".join(ss),
    st.lists(sentence, min_size=1, max_size=12),
    st.booleans(),
).map(lambda text: ("text", text))
number = st.lists(st.integers(1, 9), min_size=1, max_size=3).map(lambda parts: ".".join(map(str, parts)))
heading = st.builds(
    lambda level, num, title: ("heading", "#" * level + " " + " ".join(filter(None, [num, title]))),
    st.integers(1, 4),
    st.one_of(st.none(), number),
    st.sampled_from(HEAD),
)
cell = st.one_of(
    st.integers(0, 10**6).map(str),
    st.lists(st.sampled_from(["cell", "x", "y9"]), min_size=1, max_size=30).map(" ".join),
)


@st.composite
def html_table(draw):
    cols = draw(st.integers(1, 5))
    rows = draw(st.lists(st.lists(cell, min_size=cols, max_size=cols), min_size=1, max_size=30))
    tag = "th" if draw(st.booleans()) else "td"
    head = "<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in rows[0]) + "</tr>"
    if draw(st.booleans()):
        head = f"<thead>{head}</thead>"
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows[1:])
    return ("table", f"<table>{head}{body}</table>")


@st.composite
def pipe_table(draw):
    cols = draw(st.integers(1, 4))
    rows = draw(st.lists(st.lists(cell, min_size=cols, max_size=cols), min_size=1, max_size=30))
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * cols]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return ("table", "\n".join(lines))


math = st.builds(
    lambda terms, dollars: ("math", f"$$\n{terms}\n$$" if dollars else f"\\[ {terms} \\]"),
    st.lists(st.sampled_from(["\\sum_i", "x_i^2", "+", "\\frac{a}{b}", "="]), min_size=1, max_size=120).map(" ".join),
    st.booleans(),
)
code = st.builds(
    lambda info, lines: ("code", f"```{info}\n" + "\n".join(lines) + "\n```"),
    st.sampled_from(["", "python", "bash"]),
    st.lists(st.lists(st.sampled_from(["var", "=", "call()", "  ", "ret"]), max_size=12).map(" ".join), max_size=40),
)
element = st.one_of(heading, paragraph, paragraph, html_table(), pipe_table(), math, code)
document = st.lists(element, min_size=1, max_size=14)


@st.composite
def options(draw):
    size = draw(st.sampled_from([16, 24, 48, 100, 300]))
    overlap = draw(st.sampled_from([0, 0, (size - 1) // 2, size // 4]))
    return ChunkOptions(chunk_size=size, chunk_overlap=overlap, tables_as_pipe=draw(st.booleans()))


def is_allowed_excess(text: str) -> bool:
    """A single display-math block, or a single table holding at most one body row."""
    if re.fullmatch(r"\$\$\n[^$]*\n\$\$|\\\[ [^\[\]]* \\\]", text):
        return True
    if text.startswith("<table") and text.endswith("</table>") and text.count("<table") == 1:
        (rows,) = read_html_tables(text)
        header = 1 + (text.count("</thead>") and text.split("</thead>")[0].count("<tr>") - 1)
        return len(rows) <= header + 1
    lines = text.split("\n")
    return all(line.startswith("|") for line in lines) and len(lines) <= 3


def check_chunk(chunk, opts):
    text = chunk.text
    assert chunk.token_count == count_tokens(text)
    assert chunk.token_count <= opts.chunk_size or is_allowed_excess(text), text
    assert text.count("<table") == text.count("</table>")
    read_html_tables(text)  # every table is well formed
    lines = text.split("\n")
    assert sum(1 for line in lines if line.startswith("```")) % 2 == 0
    assert text.count("$$") % 2 == 0 and text.count("\\[") == text.count("\\]")
    run: list[str] = []
    for line in [*lines, ""]:  # every run of pipe lines is a table with its separator
        if line.startswith("|"):
            run.append(line)
            continue
        if run:
            assert len(run) >= 2 and is_pipe_separator(run[1]), run
        run = []
    assert chunk.page <= chunk.page_end
    levels = [level for level, _ in chunk.headers]
    assert levels == sorted(set(levels))


def prose_words(text: str) -> list[str]:
    return [w.lower() for w in re.findall(r"[A-Za-z]+", text) if w.lower() in PROSE]


def code_words(text: str) -> list[str]:
    return re.findall(r"var|call\(\)|ret", text)


def assert_subsequence(needle: list[str], haystack: list[str]) -> None:
    it = iter(haystack)
    assert all(any(h == n for h in it) for n in needle)


@SETTINGS
@given(document, options())
def test_random_markdown_documents(doc, opts):
    markdown = "\n\n".join(text for _, text in doc)
    chunks = MarkdownChunker(opts).chunk_text(markdown, page=3)
    for chunk in chunks:
        check_chunk(chunk, opts)
        assert chunk.page == chunk.page_end == 3 and chunk.bboxes == ()
    assert [c.index for c in chunks] == list(range(len(chunks)))
    expected, got = prose_words(markdown), prose_words(" ".join(c.text for c in chunks))
    if opts.chunk_overlap == 0:
        assert got == expected
    else:
        assert_subsequence(expected, got)
    every = "\n".join(c.text for c in chunks)
    assert code_words(every) == code_words(markdown)  # code is never repeated nor lost
    for kind, text in doc:
        if kind == "math":
            assert text in every
        elif kind == "table" and not opts.tables_as_pipe:
            for row in re.findall(r"<tr>(?:(?!</tr>).)*</tr>", text) or text.split("\n"):
                assert row in every


def grounded(number: int, elements: list[tuple[str, str]], furniture: bool, failed: bool) -> PageResult:
    labels = {"heading": "sub_title", "text": "text", "table": "table", "math": "equation", "code": "text"}
    blocks = [
        Block(labels[kind], text, (10.0, 10.0 * i, 500.0, 10.0 * i + 8)) for i, (kind, text) in enumerate(elements)
    ]
    if furniture:
        blocks = [Block("header", "Running Head Zulu"), *blocks, Block("page-number", "Zulu 99", (1.0, 2.0, 3.0, 4.0))]
    return PageResult(
        source="doc.pdf", file_name="doc.pdf", page=number, total_pages=99, page_label=str(number + 1),
        width=612.0, height=792.0, unit="pt", markdown="" if failed else "\n\n".join(b.text for b in blocks),
        blocks=() if failed else tuple(blocks), status=OCRStatus.FAILED if failed else OCRStatus.OK,
        finish_reason=None if failed else FinishReason.STOP, vision_tokens=0, output_tokens=0, raw="",
        model="m", prompt="p",
    )  # fmt: skip


@SETTINGS
@given(
    st.lists(st.tuples(st.lists(element, max_size=5), st.booleans(), st.integers(0, 9)), min_size=1, max_size=8),
    options(),
)
def test_random_ocr_pages(pages_spec, opts):
    pages = [grounded(i, elements, furniture, roll == 0) for i, (elements, furniture, roll) in enumerate(pages_spec)]
    consumed = []

    def stream():
        for p in pages:
            consumed.append(p.page)
            yield p

    chunks = list(MarkdownChunker(opts).chunk_pages(stream()))
    assert consumed == [p.page for p in pages]
    for previous, chunk in zip([None, *chunks], chunks, strict=False):
        check_chunk(chunk, opts)
        assert "Zulu" not in chunk.text
        assert len(set(chunk.bboxes)) == len(chunk.bboxes)
        assert all(chunk.page <= b.page <= chunk.page_end for b in chunk.bboxes)
        if previous is not None:
            assert previous.page <= chunk.page
    covered = {p for c in chunks for p in range(c.page, c.page_end + 1)}
    for p in pages:
        if p.status is OCRStatus.OK and any(
            b.label not in ("header", "page-number") and b.text.strip() for b in p.blocks
        ):
            assert p.page in covered
    expected = prose_words(" ".join(b.text for p in pages for b in p.blocks if b.label == "text"))
    got = prose_words(" ".join(c.text for c in chunks))
    if opts.chunk_overlap == 0:
        assert got == expected
    else:
        assert_subsequence(expected, got)
