"""Exact behaviour of the grounding parser on small, hand-checked inputs."""

from __future__ import annotations

import re

import pytest

from deepseek_ocr2_loaders.parsing import GRID_MAX, ParsedPage, grid_to_bbox, parse_grounding
from deepseek_ocr2_loaders.types import Block

W, H = 612.0, 792.0
TAGS = ("<|ref|>", "<|/ref|>", "<|det|>", "<|/det|>", "<|grounding|>", "<｜end▁of▁sentence｜>", "<|end▁of▁sentence|>")


def parse(text: str) -> ParsedPage:
    return parse_grounding(text, width=W, height=H)


def block(label: str, box: str, body: str) -> str:
    return f"<|ref|>{label}<|/ref|><|det|>{box}<|/det|>\n{body}\n\n"


# --- coordinates -------------------------------------------------------------------


def test_grid_corners_map_to_page_corners() -> None:
    assert grid_to_bbox([0, 0, 999, 999], W, H) == (0.0, 0.0, W, H)


def test_grid_midpoint_is_half_the_page() -> None:
    assert grid_to_bbox([0, 0, 499.5, 499.5], W, H) == (0.0, 0.0, W / 2, H / 2)


def test_grid_scales_each_axis_by_its_own_size() -> None:
    x0, y0, x1, y1 = grid_to_bbox([111, 222, 333, 444], 999, 1998)
    assert (x0, y0, x1, y1) == pytest.approx((111, 444, 333, 888))


def test_small_overshoots_are_clamped() -> None:
    assert grid_to_bbox([-4, -10, 1006, 1009], W, H) == (0.0, 0.0, W, H)


@pytest.mark.parametrize(
    ("box", "why"),
    [
        ([1500, 308, 920, 329], "off the 0-999 grid"),  # 1500 for 150
        ([147, -463, 919, 504], "off the 0-999 grid"),
        ([1100, 0, 999, 100], "off the 0-999 grid"),
        ([100, 200, 1010, 300], "off the 0-999 grid"),
        ([999, 999, 0, 0], "inverted or empty"),
        ([600, 100, 300, 50], "inverted or empty"),
        ([1005, 0, 1008, 100], "inverted or empty"),  # both clamp to 999: no width
        ([10, 40, 20, 40], "inverted or empty"),
    ],
)
def test_garbled_boxes_are_unknown(box: list[float], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        grid_to_bbox(box, W, H)


def test_a_garbled_box_keeps_its_text_drops_the_box_and_says_why() -> None:
    page = parse(
        block("text", "[[120, 30, 880, 60], [1700, 70, 880, 90]]", "Kept.")
        + block("title", "[[5, 1300, 90, 1400]]", "# T")
    )
    assert [(b.text, b.boxes) for b in page.blocks] == [
        ("Kept.", (grid_to_bbox([120, 30, 880, 60], W, H),)),
        ("# T", ()),
    ]
    assert page.blocks[1].bbox is None
    assert page.problems == (
        "block 0 (text): box [1700, 70, 880, 90] dropped: a value is off the 0-999 grid",
        "block 1 (title): box [5, 1300, 90, 1400] dropped: a value is off the 0-999 grid",
    )


def test_grid_needs_four_values() -> None:
    with pytest.raises(ValueError):
        grid_to_bbox([1, 2, 3], W, H)


def test_grid_max_is_999() -> None:
    assert GRID_MAX == 999


def test_box_parsing_accepts_floats_and_clamps() -> None:
    page = parse(block("text", "[[-5, 0.0, 999.5, 499.5]]", "x"))
    assert page.blocks[0].bbox == (0.0, 0.0, W, H / 2)


@pytest.mark.parametrize(
    "box",
    ["[[12, 30, 400]]", "[[a,b]]", "[[1, 2, 3, 4, 5]]", "[[1, 2, x, 4]]", "[]", "", "[[1,2,3"],
)
def test_malformed_box_is_skipped(box: str) -> None:
    page = parse(block("text", box, "Body text."))
    assert page.blocks == (Block("text", "Body text."),)
    assert page.markdown == "Body text."


def test_multiple_boxes_give_enclosing_bbox() -> None:
    page = parse(block("text", "[[0, 0, 333, 333], [666, 666, 999, 999], [1, 2, 3]]", "Two columns."))
    (only,) = page.blocks
    assert only.boxes == (grid_to_bbox([0, 0, 333, 333], W, H), (W * 666 / 999, H * 666 / 999, W, H))
    assert only.bbox == (0.0, 0.0, W, H)


# --- blocks and markdown -----------------------------------------------------------


def test_basic_blocks_and_markdown() -> None:
    text = block("Title", "[[0, 0, 999, 100]]", "# Heading") + block("text", "[[0, 100, 999, 200]]", "Para.")
    page = parse(text)
    assert page.has_grounding
    assert [(b.label, b.text) for b in page.blocks] == [("title", "# Heading"), ("text", "Para.")]
    assert page.markdown == "# Heading\n\nPara."
    assert page.figure_blocks == ()


def test_empty_and_garbled_labels_become_text() -> None:
    page = parse(block("", "[[0,0,1,1]]", "a") + block("  ", "[[0,0,1,1]]", "b") + block("x|y", "[[0,0,1,1]]", "c"))
    assert [b.label for b in page.blocks] == ["text", "text", "text"]
    assert page.blocks[2].text == "x|y\nc"


def test_figures_are_linked_and_counted() -> None:
    text = (
        block("image", "[[0, 0, 500, 500]]", "")
        + block("image_caption", "[[0, 500, 500, 520]]", "Figure 1: A cat.")
        + block("image", "[[1, 2]]", "")  # no usable box: no link, not counted
        + block("image", "[[500, 0, 999, 500]]", "Inline text.")
    )
    page = parse_grounding(text, width=W, height=H, figure_name=lambda i: f"p3_{i}.jpg")
    assert page.figure_blocks == (0, 3)
    assert page.markdown == ("![Figure 1](p3_0.jpg)\n\nFigure 1: A cat.\n\n![Figure 2](p3_1.jpg)\nInline text.")
    assert page.blocks[3].text == "Inline text."


def test_default_figure_name() -> None:
    page = parse(block("image", "[[0, 0, 10, 10]]", ""))
    assert page.markdown == "![Figure 1](figure-1.png)"


def test_text_before_first_ref_is_kept() -> None:
    page = parse("Stray preamble.\n" + block("text", "[[0,0,1,1]]", "Body."))
    assert page.blocks[0] == Block("text", "Stray preamble.")
    assert page.markdown == "Stray preamble.\n\nBody."


def test_free_ocr_is_one_text_block() -> None:
    page = parse("\n# Plain\n\nNo tags here.\n")
    assert page == ParsedPage("# Plain\n\nNo tags here.", (Block("text", "# Plain\n\nNo tags here."),), (), False)


@pytest.mark.parametrize("text", ["", "   \n", "<｜end▁of▁sentence｜>", "<|grounding|>"])
def test_empty_text_gives_no_blocks(text: str) -> None:
    page = parse(text)
    assert page.blocks == ()
    assert page.markdown == ""
    assert not page.has_grounding


def test_special_tokens_are_removed() -> None:
    page = parse(block("text", "[[0,0,1,1]]", "End.<｜end▁of▁sentence｜>"))
    assert page.markdown == "End."
    page = parse("<|grounding|>Free text.<|end▁of▁sentence|>")
    assert page.markdown == "Free text."
    assert not page.has_grounding


def test_truncated_mid_box_keeps_block_without_box() -> None:
    page = parse(block("text", "[[0,0,1,1]]", "Done.") + "<|ref|>text<|/ref|><|det|>[[1,2,3")
    assert page.blocks == (
        Block("text", "Done.", grid_to_bbox([0, 0, 1, 1], W, H), (grid_to_bbox([0, 0, 1, 1], W, H),)),
        Block("text", ""),
    )
    assert page.markdown == "Done."


def test_unclosed_det_keeps_following_body() -> None:
    page = parse("<|ref|>text<|/ref|><|det|>[[10, 20, 30, 40]]\nBody after unclosed det.")
    assert page.blocks[0].text == "Body after unclosed det."
    assert page.blocks[0].bbox == grid_to_bbox([10, 20, 30, 40], W, H)


@pytest.mark.parametrize("tail", ["<|", "<|re", "<|ref|", "<|/de", "<｜end▁of", "<|ref|>", "<|ref|>tex"])
def test_truncated_mid_tag_leaves_nothing_behind(tail: str) -> None:
    page = parse(block("text", "[[0,0,1,1]]", "Done.") + tail)
    assert page.markdown == "Done."
    assert [b.text for b in page.blocks] == ["Done."]


def test_lone_angle_bracket_at_end_is_text() -> None:
    assert parse("if a <").markdown == "if a <"


def test_nested_ref_keeps_inner_label() -> None:
    page = parse("<|ref|>text<|ref|>title<|/ref|><|det|>[[0,0,1,1]]<|/det|>\n# T")
    assert [(b.label, b.text) for b in page.blocks] == [("title", "# T")]


def test_stray_ref_before_prose_keeps_the_prose() -> None:
    page = parse(block("text", "[[0,0,1,1]]", "One.") + "<|ref|>Two words\nand more.")
    assert page.markdown == "One.\n\nTwo words\nand more."


def test_stray_tags_in_body_are_removed_without_losing_text() -> None:
    body = "alpha <|/ref|>beta<|det|> gamma <|/det|> delta"
    page = parse(block("text", "[[0,0,1,1]]", body))
    assert page.markdown == "alpha beta gamma delta"


def test_det_payload_that_is_prose_stays_in_body() -> None:
    page = parse("<|ref|>text<|/ref|><|det|>hello world<|/det|>\nmore")
    assert page.blocks[0].bbox is None
    assert page.markdown == "hello world\nmore"


def test_tag_halves_joined_by_removal_are_removed_too() -> None:
    page = parse("<|re<|det|>f|>text")
    assert page.markdown == "text"


def test_no_tags_left_and_no_words_lost() -> None:
    text = (
        "Preamble words\n"
        + block("title", "[[10, 10, 990, 50]]", "# Grand Title")
        + "<|ref|>text<|/ref|><|det|>[[10, 60, 990, 200]]<|/det|>First <|/ref|>para<|det|>graph.\n\n"
        + block("table", "[[10, 210, 990, 400]]", "<table><tr><td>cell</td></tr></table>")
        + block("equation", "[[10, 410, 990, 450]]", r"\[ E = mc^2 \]")
        + "<|ref|>text<|/ref|><|det|>[[10, 460, 990, 500]]<|/det|>\nLast words<｜end▁of▁sentence｜>"
    )
    page = parse(text)
    for tag in TAGS:
        assert tag not in page.markdown
        assert all(tag not in b.text for b in page.blocks)
    for word in ("Preamble", "Grand", "Title", "First", "paragraph.", "cell", "mc^2", "Last", "words"):
        assert word in page.markdown
    assert [b.label for b in page.blocks] == ["text", "title", "text", "table", "equation", "text"]
    assert all(b.bbox is not None for b in page.blocks[1:])


def test_width_and_height_scale_boxes() -> None:
    page = parse_grounding(block("text", "[[0, 0, 999, 999]]", "x"), width=1000, height=500)
    assert page.blocks[0].bbox == (0.0, 0.0, 1000.0, 500.0)


def test_markdown_has_no_triple_newlines_from_empty_blocks() -> None:
    page = parse("".join(block("text", "[[0,0,1,1]]", body) for body in ("a", "", "b")))
    assert page.markdown == "a\n\nb"
    assert len(page.blocks) == 3
    assert not re.search(r"\n{3,}", page.markdown)
