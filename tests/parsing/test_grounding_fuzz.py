"""Property tests: the parser never raises, never leaks a tag, never loses body text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from deepseek_ocr2_loaders.parsing import ParsedPage, parse_grounding

TAGS = ["<|ref|>", "<|/ref|>", "<|det|>", "<|/det|>", "<|grounding|>", "<｜end▁of▁sentence｜>", "<|end▁of▁sentence|>"]
LABELS = [
    "title",
    "sub_title",
    "text",
    "table",
    "image",
    "image_caption",
    "table_caption",
    "equation",
    "header",
    "footer",
    "page-number",
    "Title",
    "",
    "bad label!",
]
# Body words; none is a label or label prefix, so none can be read as an abandoned label.
WORDS = [
    "alpha",
    "Bravo",
    "charlie42",
    "delta.",
    "écho",
    "x-ray",
    "3.14",
    "[7]",
    "$x^2$",
    "<b>bold</b>",
    "| a | b |",
    "\\[ y \\]",
    "<",
    "|",
    ">",
]
PIECES = (
    TAGS
    + LABELS
    + WORDS
    + [
        "[",
        "]",
        "[[",
        "]]",
        ",",
        ", ",
        " ",
        "\n",
        "\n\n",
        "-",
        ".",
        "0",
        "999",
        "-12",
        "1500",
        "12.5",
        "<|",
        "|>",
        "｜",
    ]
)

sizes = st.floats(min_value=1.0, max_value=5000.0, allow_nan=False)
numbers = st.one_of(
    st.integers(-2000, 3000).map(str), st.floats(-2000, 3000, allow_nan=False).map(lambda v: f"{v:.3f}")
)
pieces = st.one_of(st.sampled_from(PIECES), numbers, st.text(max_size=6))
tag_soup = st.lists(pieces, max_size=60).map("".join)


def check_invariants(page: ParsedPage, width: float, height: float) -> None:
    texts = [page.markdown] + [block.text for block in page.blocks]
    for tag in TAGS:
        assert all(tag not in text for text in texts), tag
    for block in page.blocks:
        assert block.label and block.label == block.label.strip().lower()
        assert block.text == block.text.strip()
        for x0, y0, x1, y1 in block.boxes + ((block.bbox,) if block.bbox else ()):
            assert 0.0 <= x0 <= x1 <= width and 0.0 <= y0 <= y1 <= height
        assert (block.bbox is None) == (not block.boxes)
    for k, index in enumerate(page.figure_blocks, start=1):
        assert page.blocks[index].label == "image" and page.blocks[index].bbox is not None
        assert f"![Figure {k}](figure-{k}.png)" in page.markdown
    assert len(page.figure_blocks) == page.markdown.count("![Figure ")


@settings(max_examples=300, database=None)
@given(text=st.text(), width=sizes, height=sizes)
def test_arbitrary_text_never_raises(text: str, width: float, height: float) -> None:
    check_invariants(parse_grounding(text, width=width, height=height), width, height)


@settings(max_examples=1000, database=None)
@given(text=tag_soup, width=sizes, height=sizes)
def test_tag_soup_never_raises_or_leaks(text: str, width: float, height: float) -> None:
    check_invariants(parse_grounding(text, width=width, height=height), width, height)


box_lists = st.one_of(
    st.lists(st.lists(numbers, min_size=0, max_size=6), max_size=3).map(
        lambda boxes: "[" + ", ".join("[" + ", ".join(b) + "]" for b in boxes) + "]"
    ),
    st.sampled_from(["[[a,b]]", "", "[[1,2,3", "[[", "]]"]),
)
strays = st.sampled_from(
    ["", "", "", "<|/ref|>", "<|det|>", "<|/det|>", "<|grounding|>", "<｜end▁of▁sentence｜>", " <|det|> "]
)
body_words = st.lists(st.tuples(st.sampled_from(WORDS), strays), min_size=1, max_size=8)
blocks = st.lists(st.tuples(st.sampled_from(LABELS), box_lists, st.booleans(), body_words), max_size=8)


@settings(max_examples=500, database=None)
@given(blocks=blocks, preamble=body_words, eos=st.booleans())
def test_body_words_are_never_lost(blocks: list, preamble: list, eos: bool) -> None:
    def body(words: list[tuple[str, str]]) -> str:
        return " ".join(word + stray for word, stray in words)

    parts = [body(preamble) + "\n"]
    for label, boxes, closed, words in blocks:
        parts.append(f"<|ref|>{label}<|/ref|><|det|>{boxes}{'<|/det|>' if closed else ''}\n{body(words)}\n\n")
    text = "".join(parts) + ("<｜end▁of▁sentence｜>" if eos else "")
    page = parse_grounding(text, width=612, height=792)
    check_invariants(page, 612, 792)
    expected = [word for word, _ in preamble] + [w for *_, words in blocks for w, _ in words]
    position = 0
    for word in expected:  # in order, each after the previous one
        found = page.markdown.find(word, position)
        assert found >= 0, (word, page.markdown)
        position = found + len(word)
    assert page.has_grounding == bool(blocks)


@settings(max_examples=300, database=None)
@given(blocks=blocks, cut=st.integers(0, 10_000))
def test_truncation_anywhere_never_raises(blocks: list, cut: int) -> None:
    text = "".join(
        f"<|ref|>{label}<|/ref|><|det|>{boxes}<|/det|>\n" + " ".join(w for w, _ in words) + "\n\n"
        for label, boxes, _, words in blocks
    )
    check_invariants(parse_grounding(text[:cut], width=612, height=792), 612, 792)
