"""HTML and pipe tables: parsing rows, rebuilding parts, pipe conversion, stitching rules."""

from __future__ import annotations

from chunk_helpers import html_table, read_html_tables

from deepseek_ocr2_loaders.chunking._html_tables import parse_html_table
from deepseek_ocr2_loaders.chunking._pipe_tables import parse_pipe_table, pipe_cells
from deepseek_ocr2_loaders.chunking._segments import Origin, Segment
from deepseek_ocr2_loaders.chunking._stitching import stitch_tables
from deepseek_ocr2_loaders.chunking._units import to_pipe_segment

TABLE_2 = (
    "<table><tr><td>Model</td><td>Invoices</td><td>Papers</td><td>Forms</td></tr>"
    "<tr><td>Baseline</td><td>81.2</td><td>77.5</td><td>69.0</td></tr>"
    "<tr><td>Ours (small)</td><td>88.4</td><td>84.1</td><td>79.3</td></tr>"
    "<tr><td>Ours (large)</td><td><b>91.7</b></td><td><b>87.9</b></td><td><b>83.6</b></td></tr></table>"
)


def seg(kind: str, text: str, page: int) -> Segment:
    return Segment(kind, text, "table", (Origin(page, 0),))  # type: ignore[arg-type]


def test_parse_model_table():
    table = parse_html_table(TABLE_2)
    assert table is not None
    assert [row.cells for row in table.header] == [["Model", "Invoices", "Papers", "Forms"]]
    assert [row.cells[0] for row in table.body] == ["Baseline", "Ours (small)", "Ours (large)"]
    assert table.columns == 4 and table.is_simple()
    assert table.render(table.body[2:]) == (
        "<table><tr><td>Model</td><td>Invoices</td><td>Papers</td><td>Forms</td></tr>"
        "<tr><td>Ours (large)</td><td><b>91.7</b></td><td><b>87.9</b></td><td><b>83.6</b></td></tr></table>"
    )


def test_thead_tbody_attributes_and_missing_end_tags():
    text = (
        '<table border="1"><caption>Results</caption><thead><tr><th>a</th><th>b</th></tr></thead>'
        "<tbody><tr><td>1<td>2<tr><td>3<td>4</tbody></table>"
    )
    table = parse_html_table(text)
    assert table is not None and table.header_in_thead and table.has_tbody
    assert [row.cells for row in table.body] == [["1", "2"], ["3", "4"]]
    part = table.render(table.body[1:])
    assert part.startswith('<table border="1"><caption>Results</caption><thead><tr><th>a</th>')
    assert read_html_tables(part) == [[["a", "b"], ["3", "4"]]]


def test_spans_and_nesting_make_a_table_complex():
    spans = parse_html_table('<table><tr><td colspan="2">wide</td></tr><tr><td>a</td><td>b</td></tr></table>')
    assert spans is not None and not spans.is_simple() and spans.columns == 2
    ragged = parse_html_table("<table><tr><td>a</td></tr><tr><td>a</td><td>b</td></tr></table>")
    assert ragged is not None and not ragged.is_simple()
    nested = parse_html_table("<table><tr><td><table><tr><td>x</td></tr></table></td></tr></table>")
    assert nested is not None and nested.nested and len(nested.rows) == 1
    assert parse_html_table("<table></table>") is None


def test_to_pipe_escapes_and_collapses():
    text = "<table><tr><td>Item</td><td>Note</td></tr><tr><td>a|b</td><td>two\n  lines<br>here</td></tr></table>"
    segment = to_pipe_segment(seg("html_table", text, 0))
    assert segment.kind == "pipe_table"
    assert segment.text == "| Item | Note |\n| --- | --- |\n| a\\|b | two lines here |"
    assert pipe_cells("| a\\|b | two lines here |") == ["a\\|b", "two lines here"]
    complex_table = seg("html_table", '<table><tr><td rowspan="2">a</td></tr></table>', 0)
    assert to_pipe_segment(complex_table) is complex_table


def test_parse_pipe_table():
    table = parse_pipe_table("| a | b |\n| --- | --- |\n| 1 | 2 |\n| 3 | 4 |")
    assert table.header == ("| a | b |", "| --- | --- |") and table.columns == 2
    assert table.render(table.body[1:]) == "| a | b |\n| --- | --- |\n| 3 | 4 |"
    headless = parse_pipe_table("| 1 | 2 |\n| 3 | 4 |")
    assert headless.header == () and headless.columns == 2


def test_html_continuation_is_stitched_with_both_origins():
    first = seg("html_table", html_table(["Year", "Sales"], [["2020", "1"], ["2021", "2"]]), 3)
    second = seg("html_table", html_table(None, [["2022", "3"], ["2023", "4"]]), 4)
    joined = stitch_tables(first, second)
    assert joined is not None
    assert read_html_tables(joined.text) == [
        [["Year", "Sales"], ["2020", "1"], ["2021", "2"], ["2022", "3"], ["2023", "4"]]
    ]
    assert [o.page for o in joined.origins] == [3, 4]
    assert [(rows, origins[0].page) for rows, origins in joined.row_groups] == [(2, 3), (2, 4)]


def test_html_not_stitched_with_a_header_row_or_other_width():
    first = seg("html_table", html_table(["Year", "Sales"], [["2020", "1"]]), 0)
    with_th = seg("html_table", html_table(["Region", "Count"], [["EU", "3"]], th=True), 1)
    repeated = seg("html_table", html_table(["Year", "Sales"], [["2022", "3"]]), 1)
    wider = seg("html_table", html_table(None, [["2022", "3", "x"]]), 1)
    pipe = seg("pipe_table", "| 2022 | 3 |\n| --- | --- |", 1)
    prose = Segment("text", "Some text.", "text", (Origin(1, 0),))
    for second in (with_th, repeated, wider, pipe, prose):
        assert stitch_tables(first, second) is None


def test_pipe_stitching_keeps_a_data_header_and_drops_a_repeated_one():
    first = seg("pipe_table", "| Year | Sales |\n| --- | --- |\n| 2020 | 1 |", 0)
    data_header = seg("pipe_table", "| 2021 | 2 |\n| --- | --- |\n| 2022 | 3 |", 1)
    joined = stitch_tables(first, data_header)
    assert joined is not None
    assert joined.text == "| Year | Sales |\n| --- | --- |\n| 2020 | 1 |\n| 2021 | 2 |\n| 2022 | 3 |"
    repeated = seg("pipe_table", "| Year | Sales |\n|---|---|\n| 2021 | 2 |", 1)
    joined = stitch_tables(first, repeated)
    assert joined is not None and joined.text == "| Year | Sales |\n| --- | --- |\n| 2020 | 1 |\n| 2021 | 2 |"
    assert stitch_tables(first, seg("pipe_table", "| a | b | c |\n|---|---|---|", 1)) is None
