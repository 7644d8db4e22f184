"""Loops found in the text of outputs that ran out of tokens, whichever engine wrote them."""

from __future__ import annotations

import random

import pytest

from deepseek_ocr2_loaders.parsing._loops import find_loop

INTRO = "# 3 Results\n\nThe survey reached every school in the district; the tables below give the counts.\n\n"


def exact() -> str:
    return INTRO + "The model wrote this sentence once and then could not stop writing it. " * 40


def perturbed(seed: int) -> str:
    rng = random.Random(seed)
    return INTRO + "".join(rng.choice([r"[\underline", r"[\underline", r"[\line", r"[\overline"]) for _ in range(400))


def counting() -> str:
    return INTRO + "<|ref|>table<|/ref|><|det|>[[" + " ".join(str(i // 9) if i % 4 else "0" for i in range(1200))


def ex_units() -> str:
    return INTRO + "\\[ x = " + " ".join(f"{i % 3}.5ex]" for i in range(600))


def advancing(blocks: int = 170) -> str:
    return INTRO + "".join(
        f"<|ref|>text<|/ref|><|det|>[[{80 + i % 2}, {40 + i * 5}, 910, {52 + i * 5}]]<|/det|>\nPaid in full.\n\n"
        for i in range(blocks)
    )


@pytest.mark.parametrize(
    "text",
    [exact(), perturbed(1), perturbed(2), counting(), ex_units(), advancing()],
    ids=["exact", "perturbed-1", "perturbed-2", "counting-box-list", "ex-units", "advancing-blocks"],
)
def test_looping_tails_are_found_and_the_text_before_them_kept(text: str) -> None:
    cut = find_loop(text)
    assert cut is not None  # the cut may take the intro's last unit along: "." also ends each repeat
    assert len(INTRO) - 3 <= cut <= len(INTRO) + 120, text[cut - 40 : cut + 40]


@pytest.mark.parametrize(
    "text",
    [
        INTRO,
        "<table>" + "<tr>" + "<td></td>" * 120 + "</tr>" + "</table>",
        "<table>" + ("<tr>" + "<td></td>" * 16 + "</tr>") * 40 + "</table>",
        "| | | |\n" * 200,
        INTRO
        + " ".join(
            f"Item {i}: {random.Random(i).choice(['paid', 'open', 'late'])} on {i % 28 + 1} May." for i in range(60)
        ),
        advancing(12),
        "<table>" + "".join(f"<tr><td>{i}</td><td>{i * i % 97} units</td></tr>" for i in range(400)) + "</table>",
        "".join(f"{i}. A B C D\n" for i in range(1, 300)),
    ],
    ids=[
        "prose",
        "blank-120-cells",
        "40-empty-rows",
        "empty-pipe-rows",
        "varied-list",
        "a-few-similar-blocks",
        "long-numeric-table",
        "answer-sheet",
    ],
)
def test_blank_forms_and_ordinary_text_do_not_loop(text: str) -> None:
    assert find_loop(text) is None
