"""Bad files among good ones: typed errors naming the file, and nothing of the good files lost."""

from __future__ import annotations

import os

import pymupdf
import pytest
from PIL import Image

from deepseek_ocr2_loaders import EncryptedPDFError, InputError, OCRStatus, PDFOpenError, convert
from deepseek_ocr2_loaders.cli import main
from deepseek_ocr2_loaders.langchain import DeepSeekOCR2Loader
from deepseek_ocr2_loaders.llama_index import DeepSeekOCR2Reader
from deepseek_ocr2_loaders.testing import ScriptedEngine


def engine():
    return ScriptedEngine(lambda image, prompt: "ok text", batch_size=3)


@pytest.fixture
def mixed_folder(tmp_path, real_pdfs):
    """Good and bad files, each named after what is wrong with it."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "a_good.pdf").write_bytes((real_pdfs / "mattsnotes.pdf").read_bytes())
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "secret")
    doc.save(folder / "b_encrypted.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="pw", owner_pw="o")
    data = (real_pdfs / "load_v_error.pdf").read_bytes()
    (folder / "c_truncated.pdf").write_bytes(data[: len(data) // 2])
    (folder / "d_random_bytes.pdf").write_bytes(os.urandom(4096))
    (folder / "e_zero_bytes.pdf").write_bytes(b"")
    Image.new("CMYK", (900, 1200), (0, 0, 0, 0)).save(folder / "f_good_cmyk.jpg")
    return folder


BAD = ["b_encrypted.pdf", "c_truncated.pdf", "d_random_bytes.pdf", "e_zero_bytes.pdf"]


def test_each_bad_file_raises_its_typed_error_naming_the_file(mixed_folder):
    expected = {"b_encrypted.pdf": EncryptedPDFError, "c_truncated.pdf": PDFOpenError}
    for name in BAD:
        with pytest.raises(InputError) as info:
            list(convert(mixed_folder / name, engine=engine()))
        assert name in str(info.value)
        if name in expected:
            assert isinstance(info.value, expected[name])


def test_placeholder_keeps_every_good_page_and_flags_each_bad_file(mixed_folder):
    files = sorted(mixed_folder.iterdir())
    pages = list(convert(files, engine=engine(), on_error="placeholder"))
    names = [p.file_name for p in pages]
    assert names == ["a_good.pdf"] * 3 + BAD + ["f_good_cmyk.jpg"]  # in input order
    for page in pages:
        bad = page.file_name in BAD
        assert (page.status is OCRStatus.FAILED) == bad
        if bad:
            assert page.errors[0].stage == "open" and page.file_name in page.errors[0].message


def test_skip_leaves_bad_files_out_and_raise_stops_at_the_first(mixed_folder):
    files = sorted(mixed_folder.iterdir())
    skipped = list(convert(files, engine=engine(), on_error="skip"))
    assert [p.file_name for p in skipped] == ["a_good.pdf"] * 3 + ["f_good_cmyk.jpg"]
    seen = []
    with pytest.raises(EncryptedPDFError):
        for page in convert(files, engine=engine()):
            seen.append(page.file_name)
    assert seen == ["a_good.pdf"] * 3  # what came before the bad file was delivered


def test_both_loaders_expose_on_error(mixed_folder):
    lc = DeepSeekOCR2Loader(mixed_folder, engine=engine(), on_error="placeholder").load()
    li = DeepSeekOCR2Reader(engine=engine(), on_error="placeholder").load_data(mixed_folder)
    assert [d.metadata for d in lc] == [d.metadata for d in li]
    failed = [d.metadata["file_name"] for d in lc if d.metadata["ocr_status"] == "failed"]
    assert failed == BAD
    assert len({d.id for d in lc}) == len(lc)
    chunks = DeepSeekOCR2Loader(mixed_folder, engine=engine(), on_error="placeholder", mode="chunks").load()
    assert [d.metadata["file_name"] for d in chunks if d.metadata["ocr_status"] == "failed"] == BAD


def test_cli_lists_every_bad_file_exits_1_and_writes_the_good_ones(mixed_folder, tmp_path, capsys):
    out = tmp_path / "out"
    status = main(["convert", str(mixed_folder), "-o", str(out), "-q", "--on-error", "skip"], engine=engine())
    assert status == 1
    error = capsys.readouterr().err
    assert all(name in error for name in BAD)
    assert sorted(p.name for p in out.iterdir()) == ["a_good.jsonl", "a_good.md", "f_good_cmyk.jsonl", "f_good_cmyk.md"]


def test_cli_placeholder_writes_a_failed_record_and_raise_stops(mixed_folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["convert", str(mixed_folder), "-o", str(out), "-q"], engine=engine()) == 1
    assert (out / "b_encrypted.jsonl").read_text().count('"status": "failed"') == 1
    stopped = tmp_path / "stopped"
    assert main(["convert", str(mixed_folder), "-o", str(stopped), "-q", "--on-error", "raise"], engine=engine()) == 1
    assert sorted(p.name for p in stopped.iterdir()) == ["a_good.jsonl", "a_good.md"]


def test_cli_output_names_cannot_escape_the_output_folder(tmp_path, real_pdfs):
    inputs = tmp_path / "in"
    (inputs / "x").mkdir(parents=True)
    (inputs / "y").mkdir()
    pdf = (real_pdfs / "small_page_size.pdf").read_bytes()
    for name in ("x/..report.pdf", "y/..report.pdf", "x/$(rm -rf ~) ünï.pdf", "y/....pdf"):
        (inputs / name).write_bytes(pdf)
    out = tmp_path / "out"
    assert main(["convert", str(inputs), "-o", str(out), "-q"], engine=engine()) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    # the input tree is mirrored (x/, y/); no part of any name climbs out or hides
    assert all(p.resolve().is_relative_to(out.resolve()) for p in out.rglob("*")), written
    assert all(not part.startswith(".") for name in written for part in name.split("/")), written
    assert len([name for name in written if name.endswith(".md")]) == 4
