"""open_source: input kinds, type detection from bytes, hashing, and every input error."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import random
import struct
from pathlib import Path

import pymupdf
import pytest
from PIL import Image, UnidentifiedImageError

from deepseek_ocr2_loaders.errors import (
    ConfigError,
    CorruptInputError,
    DeepSeekOCR2Error,
    EmptyInputError,
    EncryptedPDFError,
    InputError,
    PDFOpenError,
    UnsupportedInputError,
)
from deepseek_ocr2_loaders.sources import ImageSource, PdfSource, open_source
from deepseek_ocr2_loaders.sources._image import _pil_errors
from deepseek_ocr2_loaders.sources._pdf import _pymupdf_errors


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (10, 20, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def random_bytes(size: int) -> bytes:
    return random.Random(1234).randbytes(size)


# --- input kinds ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["str", "path", "bytes", "bytearray", "memoryview", "stream"])
def test_every_input_kind_gives_the_same_hash_and_pixels(real_pdfs: Path, kind: str) -> None:
    path = real_pdfs / "small_page_size.pdf"
    data = path.read_bytes()
    stream = io.BytesIO(data)
    inputs = {
        "str": str(path),
        "path": path,
        "bytes": data,
        "bytearray": bytearray(data),
        "memoryview": memoryview(data),
        "stream": stream,
    }
    with open_source(path) as reference:
        expected = next(reference.iter_pages()).image.tobytes()
    with open_source(inputs[kind]) as source:
        assert source.sha256 == hashlib.sha256(data).hexdigest()
        assert source.sha256 == source.sha256  # computed once, then kept
        assert next(source.iter_pages()).image.tobytes() == expected
    assert not stream.closed  # the caller's stream is left open


@pytest.mark.parametrize(
    ("make", "name", "file_name"),
    [
        (lambda p: str(p), None, "small_page_size.pdf"),
        (lambda p: p.read_bytes(), None, "<bytes>"),
        (lambda p: io.BytesIO(p.read_bytes()), None, "<stream>"),
        (lambda p: p.read_bytes(), "uploads/report.pdf", "report.pdf"),
        (lambda p: io.BytesIO(p.read_bytes()), "report.pdf", "report.pdf"),
    ],
)
def test_names(real_pdfs: Path, make: object, name: str | None, file_name: str) -> None:
    path = real_pdfs / "small_page_size.pdf"
    with open_source(make(path), name=name) as source:  # type: ignore[operator]
        assert source.file_name == file_name
        expected_name = name or {"<bytes>": "<bytes>", "<stream>": "<stream>"}.get(file_name, str(path))
        assert source.name == expected_name


def test_image_hash_is_the_same_for_path_and_bytes(tmp_path: Path) -> None:
    data = png_bytes()
    path = tmp_path / "a.png"
    path.write_bytes(data)
    with open_source(path) as by_path, open_source(data) as by_bytes:
        assert by_path.sha256 == by_bytes.sha256 == hashlib.sha256(data).hexdigest()
        assert next(by_path.iter_pages()).image.tobytes() == next(by_bytes.iter_pages()).image.tobytes()


def test_type_comes_from_the_bytes_not_the_extension(real_pdfs: Path, tmp_path: Path) -> None:
    pdf_as_png = tmp_path / "really-a-pdf.png"
    pdf_as_png.write_bytes((real_pdfs / "small_page_size.pdf").read_bytes())
    png_as_pdf = tmp_path / "really-a-png.pdf"
    png_as_pdf.write_bytes(png_bytes())
    with open_source(pdf_as_png) as source:
        assert isinstance(source, PdfSource)
    with open_source(png_as_pdf) as source:
        assert isinstance(source, ImageSource)


def test_pdf_header_after_leading_junk_is_a_pdf(real_pdfs: Path) -> None:
    data = b"junk from a mail gateway\n" + (real_pdfs / "small_page_size.pdf").read_bytes()
    with open_source(data) as source:
        assert isinstance(source, PdfSource)
        assert source.total_pages == 1


def test_repaired_pdf_opens_with_a_warning(real_pdfs: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = (real_pdfs / "load_v_error.pdf").read_bytes()
    with open_source(data[: int(len(data) * 0.9)], name="cut.pdf") as source:
        assert source.total_pages == 16
    assert any("cut.pdf" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_context_manager_closes(real_pdfs: Path) -> None:
    with open_source(real_pdfs / "mattsnotes.pdf") as source:
        pass
    with pytest.raises(InputError, match="closed"):
        source.load_page(0)
    source.close()  # closing twice is fine


# --- errors ---------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pdf"
    with pytest.raises(InputError, match="file not found") as caught:
        open_source(missing)
    assert caught.value.source == str(missing)
    assert "nowhere.pdf" in str(caught.value)
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="directory"):
        open_source(tmp_path)


def test_zero_byte_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    with pytest.raises(EmptyInputError, match="empty") as caught:
        open_source(empty)
    assert "empty.pdf" in str(caught.value)
    with pytest.raises(EmptyInputError):
        open_source(b"", name="upload.pdf")
    with pytest.raises(EmptyInputError):
        open_source(io.BytesIO())


def test_pdf_with_zero_pages(zero_page_pdf: bytes, tmp_path: Path) -> None:
    path = tmp_path / "no-pages.pdf"
    path.write_bytes(zero_page_pdf)
    with pytest.raises(EmptyInputError, match="no pages") as caught:
        open_source(path)
    assert "no-pages.pdf" in str(caught.value)


def test_truncated_pdf(real_pdfs: Path, tmp_path: Path) -> None:
    data = (real_pdfs / "load_v_error.pdf").read_bytes()
    path = tmp_path / "truncated.pdf"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PDFOpenError, match="corrupt or truncated") as caught:
        open_source(path)
    assert caught.value.source == str(path)
    assert "truncated.pdf" in str(caught.value)


def test_pdf_header_then_garbage(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pdf"
    path.write_bytes(b"%PDF-1.7\n" + random_bytes(4000))
    with pytest.raises(PDFOpenError) as caught:
        open_source(path)
    assert "garbage.pdf" in str(caught.value)
    assert isinstance(caught.value.__cause__, pymupdf.FileDataError)


def test_random_bytes_named_pdf(tmp_path: Path) -> None:
    path = tmp_path / "random.pdf"
    path.write_bytes(random_bytes(4000).replace(b"%PDF", b"xxxx"))
    with pytest.raises(UnsupportedInputError, match="not a PDF or a supported image") as caught:
        open_source(path)
    assert "random.pdf" in str(caught.value)
    assert isinstance(caught.value.__cause__, CorruptInputError)  # MuPDF was asked, and could not repair it


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("Just some notes.\nNot a document image.\n")
    with pytest.raises(UnsupportedInputError) as caught:
        open_source(path)
    assert caught.value.source == str(path)


def test_encrypted_pdf_without_password(encrypted_pdf: Path) -> None:
    with pytest.raises(EncryptedPDFError, match="password=") as caught:
        open_source(encrypted_pdf)
    assert "encrypted.pdf" in str(caught.value)


def test_encrypted_pdf_with_wrong_password(encrypted_pdf: Path) -> None:
    with pytest.raises(EncryptedPDFError, match="password is wrong") as caught:
        open_source(encrypted_pdf, password="guess")
    assert "encrypted.pdf" in str(caught.value)


def test_encrypted_pdf_with_password(encrypted_pdf: Path) -> None:
    with open_source(encrypted_pdf, password="secret", dpi=72) as source:
        assert source.total_pages == 2
        pages = list(source.iter_pages())
    assert [p.image.size for p in pages] == [(100, 150), (100, 150)]


def test_password_is_ignored_for_unencrypted_pdfs(real_pdfs: Path) -> None:
    with open_source(real_pdfs / "small_page_size.pdf", password="unused") as source:
        assert source.total_pages == 1


@pytest.mark.parametrize("dpi", [0, -72, 5000, True, "144", None])
def test_bad_dpi(real_pdfs: Path, dpi: object) -> None:
    with pytest.raises(ConfigError, match="dpi"):
        open_source(real_pdfs / "small_page_size.pdf", dpi=dpi)  # type: ignore[arg-type]


def test_text_stream_and_wrong_type() -> None:
    with pytest.raises(InputError, match="not binary"):
        open_source(io.StringIO("%PDF-1.7"))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="got int"):
        open_source(42)  # type: ignore[arg-type]


# --- one translation point per library, each foreign type mapped -------------------------------

PYMUPDF_ERRORS = [
    (pymupdf.FileDataError("broken xref"), PDFOpenError),
    (pymupdf.EmptyFileError("empty"), EmptyInputError),
    (pymupdf.FileNotFoundError("gone"), InputError),
    (RuntimeError("generic MuPDF failure"), PDFOpenError),
    (ValueError("document closed or encrypted"), PDFOpenError),
    (pymupdf.mupdf.FzErrorFormat("cycle in page tree"), PDFOpenError),
    (pymupdf.mupdf.FzErrorLimit("too large"), PDFOpenError),
]


@pytest.mark.parametrize(("foreign", "mapped"), PYMUPDF_ERRORS, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize("page", [None, 3])
def test_pymupdf_exceptions_are_mapped(foreign: BaseException, mapped: type, page: int | None) -> None:
    with pytest.raises(mapped) as caught, _pymupdf_errors("doc.pdf", page=page):
        raise foreign
    assert caught.value.__cause__ is foreign
    assert caught.value.source == "doc.pdf"
    if mapped is PDFOpenError:
        assert caught.value.page == page


PIL_ERRORS = [
    (UnidentifiedImageError("cannot identify"), UnsupportedInputError),
    (NotImplementedError("unsupported BMP compression"), UnsupportedInputError),
    (Image.DecompressionBombError("too many pixels"), InputError),
    (Image.DecompressionBombWarning("many pixels"), InputError),
    (MemoryError(), InputError),
    (OSError("image file is truncated"), CorruptInputError),
    (SyntaxError("broken PNG file"), CorruptInputError),
    (ValueError("tile cannot extend outside image"), CorruptInputError),
    (EOFError(), CorruptInputError),
    (struct.error("unpack requires a buffer"), CorruptInputError),
    (IndexError("list index out of range"), CorruptInputError),
    (TypeError("Missing dimensions"), CorruptInputError),
    (OverflowError("Python int too large to convert to C int"), CorruptInputError),
]


@pytest.mark.parametrize(("foreign", "mapped"), PIL_ERRORS, ids=lambda v: type(v).__name__)
def test_pil_exceptions_are_mapped(foreign: BaseException, mapped: type) -> None:
    with pytest.raises(mapped) as caught, _pil_errors("scan.png", page=0):
        raise foreign
    assert type(caught.value) is mapped
    assert caught.value.__cause__ is foreign
    assert caught.value.source == "scan.png"


@pytest.mark.parametrize("translate", [_pymupdf_errors, _pil_errors])
def test_our_own_errors_pass_through_untranslated(translate: object) -> None:
    error = EncryptedPDFError("mine", source="x")
    with pytest.raises(DeepSeekOCR2Error) as caught, translate("x"):  # type: ignore[operator]
        raise error
    assert caught.value is error


def test_no_unexpected_file_left_open(real_pdfs: Path, tmp_path: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        with open_source(real_pdfs / "mattsnotes.pdf") as source:
            next(source.iter_pages())
        path = tmp_path / "x.png"
        path.write_bytes(png_bytes())
        with open_source(path) as source:
            next(source.iter_pages())
    assert len(os.listdir("/proc/self/fd")) <= before
