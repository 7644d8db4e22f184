"""split_markdown and heading parsing: the atomic blocks plain Markdown is cut into."""

from __future__ import annotations

import pytest

from deepseek_ocr2_loaders.chunking._headings import HeadingStack, parse_atx, repair_level, section_depth
from deepseek_ocr2_loaders.chunking._markdown import is_pipe_separator, split_markdown


def kinds(text: str) -> list[str]:
    return [kind for kind, _ in split_markdown(text)]


def test_every_kind_is_recognised():
    text = (
        "# 1 Intro\n\nFirst paragraph line one\nline two.\n\n- item a\n- item b\n\n"
        "```python\nx = 1\n\ny = 2\n```\n\n"
        "$$\na = b\n$$\n\n\\[ E = mc^2 \\]\n\n\\[\n\\sum_i x_i\n\\]\n\n"
        "| a | b |\n| --- | --- |\n| 1 | 2 |\n\n"
        "<table>\n<tr><td>1</td></tr>\n</table>\n\n## Next\nText right after."
    )
    assert split_markdown(text) == [
        ("heading", "# 1 Intro"),
        ("text", "First paragraph line one\nline two."),
        ("text", "- item a\n- item b"),
        ("code", "```python\nx = 1\n\ny = 2\n```"),
        ("math", "$$\na = b\n$$"),
        ("math", "\\[ E = mc^2 \\]"),
        ("math", "\\[\n\\sum_i x_i\n\\]"),
        ("pipe_table", "| a | b |\n| --- | --- |\n| 1 | 2 |"),
        ("html_table", "<table>\n<tr><td>1</td></tr>\n</table>"),
        ("heading", "## Next"),
        ("text", "Text right after."),
    ]


def test_blocks_interrupt_a_paragraph_without_blank_lines():
    text = "Caption text\n| a | b |\n|---|---|\n| 1 | 2 |\nafter"
    # "after" has no pipe, so it ends the table and starts a paragraph of its own
    assert kinds(text) == ["text", "pipe_table", "text"]
    text = "Caption text\n| a | b |\n|---|---|\n| 1 | 2 |\n\nafter\n$$ x $$\nmore"
    assert kinds(text) == ["text", "pipe_table", "text", "math", "text"]


def test_table_after_caption_on_the_same_line_and_text_after_it():
    text = "Table 2: Accuracy. <table><tr><td>a</td></tr></table> See above."
    assert split_markdown(text) == [
        ("text", "Table 2: Accuracy."),
        ("html_table", "<table><tr><td>a</td></tr></table>"),
        ("text", "See above."),
    ]


def test_nested_and_unclosed_tables():
    nested = "<table><tr><td><table><tr><td>x</td></tr></table></td></tr></table>"
    assert split_markdown(nested) == [("html_table", nested)]
    cut = "<table><tr><td>a</td></tr><tr><td>b\n\nNext paragraph."
    assert split_markdown(cut) == [("html_table", "<table><tr><td>a</td></tr><tr><td>b"), ("text", "Next paragraph.")]


def test_unclosed_math_is_prose_and_unclosed_fence_runs_to_the_end():
    assert kinds("$$ a = b\n\nno close here") == ["text", "text"]
    assert kinds("\\[ x\n\ny") == ["text", "text"]
    assert split_markdown("```\ncode\n\nmore code") == [("code", "```\ncode\n\nmore code")]


def test_fences_need_the_same_marker_to_close():
    text = "````md\n```\ninner\n```\n````\nafter"
    assert split_markdown(text) == [("code", "````md\n```\ninner\n```\n````"), ("text", "after")]
    assert kinds("~~~\na\n```\n~~~") == ["code"]


def test_pipe_separator():
    assert is_pipe_separator("| --- | :-: |")
    assert is_pipe_separator("|---|---|")
    assert is_pipe_separator("--- | ---")
    assert not is_pipe_separator("---")
    assert not is_pipe_separator("| a | b |")


def test_table_without_leading_pipes():
    assert kinds("a | b\n--- | ---\n1 | 2") == ["pipe_table"]


def test_crlf_and_blank_input():
    assert split_markdown("") == []
    assert split_markdown("\n \n\t\n") == []
    assert split_markdown("a\r\n\r\nb") == [("text", "a"), ("text", "b")]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("## 3.2 Data", (2, "3.2 Data")),
        ("# Title #", (1, "Title")),
        ("###### Deep", (6, "Deep")),
        ("####### Too deep", None),
        ("#hashtag", None),
        ("#", None),
        ("   ## indented", (2, "indented")),
    ],
)
def test_parse_atx(line, expected):
    assert parse_atx(line) == expected


@pytest.mark.parametrize(
    ("title", "depth"),
    [
        ("1 Introduction", 1),
        ("3.2 Data", 2),
        ("3.2.1 Cleaning", 3),
        ("3. Methods", 1),
        ("3.2. Data", 2),
        ("A.1 Proofs", 2),
        ("A.1.2 Lemma", 3),
        ("A Study of Things", None),
        ("2024 Annual Report", None),
        ("Introduction", None),
        ("3.2Data", None),
        ("42", None),
    ],
)
def test_section_depth(title, depth):
    assert section_depth(title) == depth


def test_repair_level():
    assert repair_level(2, "3.2.1 Cleaning", repair=True) == 3
    assert repair_level(2, "3.2.1 Cleaning", repair=False) == 2
    assert repair_level(2, "Abstract", repair=True) == 2


def test_heading_stack_pops_same_and_deeper_levels():
    stack = HeadingStack()
    stack.push(1, "Paper")
    stack.push(2, "3 Methods")
    stack.push(3, "3.2 Data")
    stack.push(2, "4 Results")
    assert stack.path == ((1, "Paper"), (2, "4 Results"))
    stack.push(1, "Appendix")
    assert stack.path == ((1, "Appendix"),)
