"""Hostile and odd files at the source level: typed errors, one corrupt/unsupported rule, recovery.

Each file comes from ``tests/hostile_files.py``, named after the failure it reproduces.
"""

from __future__ import annotations

import builtins
import io
import re
from pathlib import Path

import hostile_files as bad
import pytest
from PIL import Image

from deepseek_ocr2_loaders import errors
from deepseek_ocr2_loaders.errors import (
    CorruptInputError,
    EmptyInputError,
    EncryptedPDFError,
    InputError,
    PageRangeError,
    UnsupportedInputError,
)
from deepseek_ocr2_loaders.sources import PdfSource, open_source
from deepseek_ocr2_loaders.sources._image import _pil_errors
from deepseek_ocr2_loaders.sources._pdf import _pymupdf_errors
from deepseek_ocr2_loaders.sources._rgb import to_rgb
from deepseek_ocr2_loaders.sources._saslprep import saslprep

README = Path(__file__).resolve().parents[2] / "README.md"


def every_builtin_exception() -> list[type[Exception]]:
    """Every concrete built-in ``Exception`` class (what a decoder can raise on damaged data)."""
    found = []
    for value in vars(builtins).values():
        if isinstance(value, type) and issubclass(value, Exception) and not issubclass(value, Warning):
            found.append(value)
    return sorted(found, key=lambda cls: cls.__name__)


def instance(cls: type[Exception]) -> Exception:
    if issubclass(cls, UnicodeDecodeError):
        return cls("utf-8", b"\xff", 0, 1, "bad")
    if issubclass(cls, UnicodeEncodeError):
        return cls("ascii", "\xff", 0, 1, "bad")
    if issubclass(cls, UnicodeTranslateError):
        return cls("\xff", 0, 1, "bad")
    if cls.__name__ in ("ExceptionGroup", "BaseExceptionGroup"):
        return cls("group", [ValueError("inner")])
    return cls("from the decoder")


@pytest.mark.parametrize("cls", every_builtin_exception(), ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("translate", [_pil_errors, _pymupdf_errors], ids=["pillow", "pymupdf"])
def test_no_exception_type_from_a_decoder_escapes_untyped(translate, cls) -> None:
    foreign = instance(cls)
    with pytest.raises(InputError) as caught, translate("scan.tif", page=2):
        raise foreign
    assert caught.value.__cause__ is foreign
    assert caught.value.source == "scan.tif"


def test_keyboard_interrupt_is_not_swallowed() -> None:
    with pytest.raises(KeyboardInterrupt), _pil_errors("scan.tif"):
        raise KeyboardInterrupt


def test_tiff_with_a_frame_missing_its_dimensions_keeps_its_readable_frames() -> None:
    with open_source(bad.tiff_frame_missing_dimensions(), name="missing_dims.tif") as source:
        assert source.total_pages == 3  # counted by MuPDF when Pillow's frame count raised TypeError
        assert source.load_page(0).image.size == (64, 48)
        with pytest.raises(CorruptInputError, match="Missing dimensions") as caught:
            source.load_page(1)
        assert (caught.value.source, caught.value.page) == ("missing_dims.tif", 1)
        assert source.load_page(2).image.size == (80, 48)


def test_tiff_with_a_garbled_frame_fails_that_frame_only() -> None:
    with open_source(bad.tiff_frame_garbled_strip(), name="garbled.tif") as source:
        assert source.load_page(0).image.size == (64, 48)
        with pytest.raises(CorruptInputError) as caught:
            source.load_page(1)
        assert caught.value.page == 1
        assert source.load_page(2).image.size == (80, 48)


# Every mode Pillow has, as a white page with a black mark: each must come out white with a black mark.
MODES = sorted(Image.MODES)


@pytest.mark.parametrize("mode", MODES)
def test_every_pillow_mode_reaches_rgb(mode: str) -> None:
    page = Image.new("RGB", (8, 4), (255, 255, 255))
    page.putpixel((0, 0), (0, 0, 0))
    image = page.convert("LA").convert("La") if mode == "La" else _as_mode(page, mode)
    rgb = to_rgb(image)
    assert rgb.mode == "RGB" and rgb.size == (8, 4)
    assert max(abs(a - b) for a, b in zip(rgb.getpixel((5, 2)), (255, 255, 255), strict=True)) <= 3
    assert max(rgb.getpixel((0, 0))) <= 3


def _as_mode(page: Image.Image, mode: str) -> Image.Image:
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        grey = Image.new(mode, page.size, 65535)
        grey.putpixel((0, 0), 0)
        return grey
    if mode == "LAB":
        lab = Image.new("LAB", page.size, (255, 128, 128))
        lab.putpixel((0, 0), (0, 128, 128))
        return lab
    return page.convert(mode)


def test_la_tiff_is_read_as_grey_on_white() -> None:
    data = bad.la_tiff()
    assert Image.open(io.BytesIO(data)).mode == "La"
    with open_source(data) as source:
        pixel = source.load_page(0).image.getpixel((0, 0))
    assert all(abs(v - 217) <= 2 for v in pixel)  # 90 premultiplied at alpha 0.5 is 180, on white 217


def test_headerless_pdf_is_repaired_by_mupdf(caplog: pytest.LogCaptureFixture) -> None:
    data = bad.headerless_pdf()
    assert b"%PDF" not in data[:1024]
    with open_source(data, name="headerless.pdf") as source:
        assert isinstance(source, PdfSource) and source.total_pages == 2
        assert "Headerless 2" in (source.load_page(1).text or "")
    assert "repaired" in caplog.text


def test_truncated_jpeg_is_decoded_and_flagged() -> None:
    with open_source(bad.truncated_jpeg(), name="cut.jpg") as source:
        page = source.load_page(0)
    assert page.image.size == (120, 160)
    assert page.recovered is not None and "truncated" in page.recovered


def test_image_pillow_refuses_is_decoded_by_mupdf_and_flagged() -> None:
    with open_source(bad.png_pillow_refuses(), name="crc.png") as source:
        page = source.load_page(0)
    assert page.image.size == (50, 40) and page.image.getpixel((3, 3)) == (10, 200, 30)
    assert page.recovered is not None and "MuPDF" in page.recovered


def test_saslprep_password_is_normalised_and_retried() -> None:
    assert saslprep(bad.SASLPREP_TYPED) == bad.SASLPREP_STORED
    with open_source(bad.saslprep_password_pdf(), password=bad.SASLPREP_TYPED) as source:
        assert "secret" in (source.load_page(0).text or "")
    with pytest.raises(EncryptedPDFError, match="wrong"):
        open_source(bad.saslprep_password_pdf(), password="IX pas")


# --- the README's error table matches the code --------------------------------------------------

SAMPLES = {
    "UnsupportedInputError": [b"just some text, not a document\n" * 8, b"P6\n4 4\n255\n" + bytes(48)],
    "EmptyInputError": [b""],
    "CorruptInputError": [bad.broken_png(), bad.damaged_pdf_header(), b"%PDF-1.7\n" + b"\x00" * 64],
    "EncryptedPDFError": [bad.encrypted_pdf()],
}


def readme_error_table() -> dict[str, str]:
    section = README.read_text(encoding="utf-8").split("## Errors", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| (.+?) \|$", section, flags=re.M)
    return dict(rows)


def test_readme_error_table_lists_every_input_error_class() -> None:
    table = readme_error_table()
    for name in errors.__all__:
        if issubclass(getattr(errors, name), InputError) and name != "PDFOpenError":
            assert name in table, name


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_a_sample_of_each_row_raises_the_class_the_readme_names(name: str) -> None:
    assert name in readme_error_table()
    for data in SAMPLES[name]:
        with pytest.raises(InputError) as caught:
            with open_source(data, name="sample") as source:
                for index in range(source.total_pages):
                    source.load_page(index)
        assert type(caught.value).__name__ == name, (data[:16], caught.value)


def test_page_range_error_row() -> None:
    assert "PageRangeError" in readme_error_table()
    with open_source(bad.text_pdf(2)) as source, pytest.raises(PageRangeError):
        list(source.iter_pages([5]))
    assert issubclass(EmptyInputError, InputError) and issubclass(UnsupportedInputError, InputError)
