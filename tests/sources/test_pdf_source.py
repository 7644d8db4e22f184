"""PdfSource: page counts, sizes, rendering, labels, laziness and bad pages, on real PDFs."""

from __future__ import annotations

import logging
import types
from pathlib import Path

import pymupdf
import pytest

from deepseek_ocr2_loaders.errors import InputError, PageRangeError, PDFOpenError
from deepseek_ocr2_loaders.sources import MAX_RENDER_PIXELS, PdfSource, SourcePage, open_source

LABELLED_WIDTHS = (200, 210, 220, 230, 240)  # as conftest.labelled_pdf builds it
LABELS = ("i", "ii", "A-1", "A-2", "A-3")

PAGE_COUNTS = {
    "blank_book_pg1.pdf": 1,
    "discoverworld_crazy_table4.pdf": 1,
    "edgar-rotated90.pdf": 1,
    "headers_footers/ff0f0b22c55d8b90dd77d153f48e144fc9db_pg2.pdf": 1,
    "lincoln_letter.pdf": 1,
    "load_v_error.pdf": 16,
    "mathfuncs.pdf": 1,
    "mattsnotes.pdf": 3,
    "newspaper.pdf": 1,
    "olmo2-pg4.pdf": 1,
    "openstax_caculus_pg_273.pdf": 1,
    "small_page_size.pdf": 1,
}


class CountingPdfSource(PdfSource):
    """Records every page it renders, to prove rendering is lazy."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.rendered: list[int] = []

    def load_page(self, index: int) -> SourcePage:
        self.rendered.append(index)
        return super().load_page(index)


@pytest.mark.parametrize(("name", "pages"), sorted(PAGE_COUNTS.items()))
def test_page_counts_of_real_pdfs(real_pdfs: Path, name: str, pages: int) -> None:
    with open_source(real_pdfs / name) as source:
        assert isinstance(source, PdfSource)
        assert source.total_pages == pages


@pytest.mark.parametrize(
    ("name", "width", "height"),
    [
        ("small_page_size.pdf", 180, 300),
        ("lincoln_letter.pdf", 1836.75, 2267.25),
        ("mathfuncs.pdf", 792, 612),
        # MediaBox is 612x792 portrait with /Rotate 90: the displayed page is landscape.
        ("edgar-rotated90.pdf", 792, 612),
    ],
)
def test_sizes_in_points_as_displayed(real_pdfs: Path, name: str, width: float, height: float) -> None:
    with open_source(real_pdfs / name) as source:
        page = next(source.iter_pages())
    assert (page.width, page.height, page.unit) == (width, height, "pt")


@pytest.mark.parametrize("dpi", [72, 144, 200])
@pytest.mark.parametrize("name", ["small_page_size.pdf", "edgar-rotated90.pdf", "mathfuncs.pdf"])
def test_rendered_pixels_are_points_times_dpi(real_pdfs: Path, name: str, dpi: int) -> None:
    with open_source(real_pdfs / name, dpi=dpi) as source:
        page = next(source.iter_pages())
    assert page.image.mode == "RGB"
    assert abs(page.image.width - page.width * dpi / 72) <= 1
    assert abs(page.image.height - page.height * dpi / 72) <= 1


def test_default_dpi_is_144(real_pdfs: Path) -> None:
    with open_source(real_pdfs / "small_page_size.pdf") as source:
        assert next(source.iter_pages()).image.size == (360, 600)


def test_rotated_page_is_rendered_as_displayed(tmp_path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=200, height=100)
    page.draw_rect(pymupdf.Rect(0, 0, 20, 20), color=(1, 0, 0), fill=(1, 0, 0))  # top-left, unrotated
    page.set_rotation(90)
    with open_source(doc.tobytes(), dpi=72) as source:
        shown = next(source.iter_pages())
    assert (shown.width, shown.height) == (100, 200)
    assert shown.image.size == (100, 200)
    # Turned 90 degrees clockwise, the top-left corner moves to the top-right.
    assert shown.image.getpixel((95, 5)) == (255, 0, 0)
    assert shown.image.getpixel((5, 5)) == (255, 255, 255)


def test_labels_text_and_page_order(labelled_pdf: Path) -> None:
    with open_source(labelled_pdf, dpi=72) as source:
        pages = list(source.iter_pages([3, 0, 2]))
    assert [p.index for p in pages] == [3, 0, 2]
    assert [p.label for p in pages] == [LABELS[3], LABELS[0], LABELS[2]]
    assert [p.width for p in pages] == [LABELLED_WIDTHS[3], LABELLED_WIDTHS[0], LABELLED_WIDTHS[2]]
    assert [p.image.width for p in pages] == [LABELLED_WIDTHS[3], LABELLED_WIDTHS[0], LABELLED_WIDTHS[2]]
    assert ["Page number 4" in (p.text or "") for p in pages] == [True, False, False]


def test_label_defaults_to_page_number(real_pdfs: Path) -> None:
    with open_source(real_pdfs / "mattsnotes.pdf", dpi=36) as source:
        assert [p.label for p in source.iter_pages()] == ["1", "2", "3"]


def test_text_layer(real_pdfs: Path) -> None:
    with open_source(real_pdfs / "load_v_error.pdf", dpi=36) as source:
        first = next(source.iter_pages([0]))
    assert first.text and len(first.text) > 500
    with open_source(real_pdfs / "blank_book_pg1.pdf", dpi=36) as source:
        assert next(source.iter_pages()).text == ""


def test_rendering_is_lazy(real_pdfs: Path) -> None:
    path = real_pdfs / "load_v_error.pdf"
    with CountingPdfSource(name=str(path), path=path) as source:
        assert source.total_pages == 16
        pages = source.iter_pages([7])
        assert isinstance(pages, types.GeneratorType)
        assert source.rendered == []
        page = next(pages)
        assert page.index == 7
        assert source.rendered == [7]
        everything = source.iter_pages()
        next(everything)
        next(everything)
        assert source.rendered == [7, 0, 1]


def test_bad_page_range_is_raised_before_rendering(labelled_pdf: Path) -> None:
    with CountingPdfSource(name="x", path=labelled_pdf) as source:
        with pytest.raises(PageRangeError, match="the document has 5 pages"):
            source.iter_pages([0, 5])
        with pytest.raises(PageRangeError):
            source.iter_pages([-1])
        assert source.rendered == []
        with pytest.raises(PageRangeError):
            source.load_page(True)


def test_a_page_that_fails_is_an_input_error_and_other_pages_still_render(broken_page_pdf: bytes) -> None:
    with open_source(broken_page_pdf, name="broken-page.pdf") as source:
        assert source.total_pages == 3
        pages = source.iter_pages()
        assert next(pages).index == 0
        with pytest.raises(PDFOpenError) as caught:
            next(pages)
        assert isinstance(caught.value, InputError)
        assert caught.value.page == 1
        assert caught.value.source == "broken-page.pdf"
        assert "broken-page.pdf (page 2)" in str(caught.value)
        assert isinstance(caught.value.__cause__, pymupdf.mupdf.FzErrorBase)
        # The document is still usable: the pipeline marks page 2 failed and goes on.
        assert source.load_page(2).index == 2


def test_huge_page_is_capped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    doc = pymupdf.open()
    doc.new_page(width=14400, height=14400)
    path = tmp_path / "poster.pdf"
    doc.save(path)
    caplog.set_level(logging.INFO, logger="deepseek_ocr2_loaders.sources._pdf")
    with open_source(path) as source:
        page = next(source.iter_pages())
    assert (page.width, page.height) == (14400, 14400)
    pixels = page.image.width * page.image.height
    assert MAX_RENDER_PIXELS * 0.99 < pixels <= MAX_RENDER_PIXELS
    assert page.image.width == page.image.height
    assert any("poster.pdf" in r.getMessage() and r.levelno == logging.INFO for r in caplog.records)


def test_pages_below_the_cap_are_not_logged(real_pdfs: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="deepseek_ocr2_loaders.sources._pdf")
    with open_source(real_pdfs / "lincoln_letter.pdf") as source:  # 1837x2267 pt: 3674x4535 px
        assert next(source.iter_pages()).image.size == (3674, 4535)
    assert caplog.records == []
