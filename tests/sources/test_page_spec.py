"""parse_page_spec: print-dialog strings (1-based) and index lists (0-based)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deepseek_ocr2_loaders.errors import PageRangeError
from deepseek_ocr2_loaders.sources import parse_page_spec


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("1", [0]),
        ("1-3,7", [0, 1, 2, 6]),
        (" 1 - 3 , 7 ", [0, 1, 2, 6]),
        ("5-", [4, 5, 6, 7, 8, 9]),
        ("-2", [0, 1]),
        ("10", [9]),
        ("3,1,2,3", [0, 1, 2]),
        ("2-4,3-5", [1, 2, 3, 4]),
        ("1-10", list(range(10))),
        ("4-4", [3]),
    ],
)
def test_strings_are_one_based_and_inclusive(spec: str, expected: list[int]) -> None:
    assert parse_page_spec(spec, 10) == expected


def test_none_means_all_pages() -> None:
    assert parse_page_spec(None, 10) is None


@pytest.mark.parametrize(
    ("spec", "expected"),
    [([0], [0]), ([9, 0, 9], [0, 9]), (range(3), [0, 1, 2]), ((4, 2), [2, 4]), ({7}, [7])],
)
def test_ints_are_zero_based(spec: object, expected: list[int]) -> None:
    assert parse_page_spec(spec, 10) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("0", "numbered from 1"),
        ("0-3", "numbered from 1"),
        ("11", "past the last page"),
        ("9-12", "past the last page"),
        ("11-", "past the last page"),
        ("5-3", "reversed"),
        ("abc", "cannot read"),
        ("1,,2", "cannot read"),
        ("1,", "cannot read"),
        ("", "cannot read"),
        ("-", "cannot read"),
        ("1-2-3", "cannot read"),
        ("1.5", "cannot read"),
        ("٣", "cannot read"),  # Arabic-Indic digit three: only ASCII digits are pages
        ([10], "out of range"),
        ([-1], "out of range"),
        ([0, "1"], "not an integer"),
        ([True], "not a page index"),
        ([], "selects no pages"),
        (3, "expected a string"),
        (b"1-3", "expected a string"),
    ],
)
def test_bad_specs(spec: object, why: str) -> None:
    with pytest.raises(PageRangeError, match=why) as caught:
        parse_page_spec(spec, 10, source="doc.pdf")  # type: ignore[arg-type]
    message = str(caught.value)
    assert "the document has 10 pages" in message
    assert caught.value.source == "doc.pdf"
    if isinstance(spec, str):
        assert repr(spec) in message


def test_huge_range_fails_without_building_it() -> None:
    with pytest.raises(PageRangeError, match="past the last page"):
        parse_page_spec("1-1000000000000", 3)
    with pytest.raises(PageRangeError, match="out of range"):
        parse_page_spec(range(10**12), 3)


@given(st.integers(1, 50), st.data())
def test_string_and_index_forms_agree(total: int, data: st.DataObject) -> None:
    pages = data.draw(st.lists(st.integers(1, total), min_size=1, max_size=8))
    spec = ",".join(str(p) for p in pages)
    expected = sorted({p - 1 for p in pages})
    assert parse_page_spec(spec, total) == expected
    assert parse_page_spec([p - 1 for p in pages], total) == expected


@given(st.integers(1, 50), st.data())
def test_ranges_are_inclusive(total: int, data: st.DataObject) -> None:
    first = data.draw(st.integers(1, total))
    last = data.draw(st.integers(first, total))
    assert parse_page_spec(f"{first}-{last}", total) == list(range(first - 1, last))
    assert parse_page_spec(f"{first}-", total) == list(range(first - 1, total))
    assert parse_page_spec(f"-{last}", total) == list(range(last))
