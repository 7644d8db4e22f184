"""Build realistic OCR pages for the chunking tests: grounded model text -> PageResult."""

from __future__ import annotations

import re
from collections.abc import Sequence
from html.parser import HTMLParser

from deepseek_ocr2_loaders import FinishReason, OCRStatus, PageResult
from deepseek_ocr2_loaders.chunking import Chunk
from deepseek_ocr2_loaders.parsing import parse_grounding

WIDTH, HEIGHT = 612.0, 792.0


def g(label: str, box: Sequence[int], text: str = "") -> str:
    """One grounded block as DeepSeek-OCR-2 writes it (0-999 grid)."""
    return f"<|ref|>{label}<|/ref|><|det|>[[{', '.join(str(v) for v in box)}]]<|/det|>\n{text}\n\n"


def page(number: int, raw: str, *, total: int = 10) -> PageResult:
    """A page parsed from grounded model text, as convert() would build it."""
    parsed = parse_grounding(
        raw, width=WIDTH, height=HEIGHT, figure_name=lambda i: f"page-{number + 1:04d}-figure-{i + 1}.png"
    )
    return PageResult(
        source="paper.pdf",
        file_name="paper.pdf",
        page=number,
        total_pages=total,
        page_label=str(number + 1),
        width=WIDTH,
        height=HEIGHT,
        unit="pt",
        markdown=parsed.markdown,
        blocks=parsed.blocks,
        status=OCRStatus.OK,
        finish_reason=FinishReason.STOP,
        vision_tokens=256,
        output_tokens=len(raw.split()),
        raw=raw,
        model="scripted",
        prompt="<image>\n<|grounding|>Convert the document to markdown.",
    )


def failed_page(number: int, *, total: int = 10) -> PageResult:
    return PageResult(
        source="paper.pdf",
        file_name="paper.pdf",
        page=number,
        total_pages=total,
        page_label=str(number + 1),
        width=0.0,
        height=0.0,
        unit="",
        markdown="",
        blocks=(),
        status=OCRStatus.FAILED,
        finish_reason=None,
        vision_tokens=0,
        output_tokens=0,
        raw="",
        model="scripted",
        prompt="",
    )


def box_of(grid: Sequence[int]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = grid
    return (x0 / 999 * WIDTH, y0 / 999 * HEIGHT, x1 / 999 * WIDTH, y1 / 999 * HEIGHT)


def html_table(header: Sequence[str] | None, rows: Sequence[Sequence[str]], *, th: bool = False) -> str:
    cell = "th" if th else "td"
    out = "<table>"
    if header is not None:
        out += "<tr>" + "".join(f"<{cell}>{c}</{cell}>" for c in header) + "</tr>"
    for row in rows:
        out += "<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>"
    return out + "</table>"


class _TableReader(HTMLParser):
    """Reads every table of a string into lists of cell texts; checks that tags nest.

    ``td``/``th``/``tr``/``thead``/``tbody`` end tags are optional in HTML, so an open one is
    closed implicitly as a browser would; anything else out of order fails the test.
    """

    OPTIONAL = ("td", "th", "tr", "thead", "tbody")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self.stack: list[str] = []
        self.cell: list[str] | None = None

    def _close_cell(self):
        if self.cell is not None:
            self.tables[-1][-1].append("".join(self.cell).strip())
            self.cell = None

    def _pop_until(self, tag):
        assert tag in self.stack, f"</{tag}> without <{tag}> in {self.stack}"
        while self.stack[-1] != tag:
            assert self.stack[-1] in self.OPTIONAL, f"</{tag}> closes <{self.stack[-1]}>"
            self.stack.pop()
        self.stack.pop()

    def handle_starttag(self, tag, attrs):
        if tag in ("td", "th"):
            self._close_cell()
            while self.stack and self.stack[-1] in ("td", "th"):
                self.stack.pop()
            self.cell = []
        if tag == "tr":
            self._close_cell()
            while self.stack and self.stack[-1] in ("td", "th", "tr"):
                self.stack.pop()
            self.tables[-1].append([])
        if tag == "table":
            self.tables.append([])
        if tag in ("table", *self.OPTIONAL):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in ("table", *self.OPTIONAL):
            if tag != "td" and tag != "th":
                self._close_cell()
            self._pop_until(tag)
        if tag in ("td", "th"):
            self._close_cell()

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def read_html_tables(text: str) -> list[list[list[str]]]:
    """Parse every HTML table of ``text``, asserting each is well formed."""
    reader = _TableReader()
    reader.feed(text)
    reader.close()
    assert reader.stack == [], f"unclosed tags {reader.stack}"
    return reader.tables


def words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9]+", text)


def texts(chunks: Sequence[Chunk]) -> list[str]:
    return [c.text for c in chunks]
