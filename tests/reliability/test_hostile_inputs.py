"""Hostile inputs: one bad file never costs another file's pages, and no file hangs or kills a run.

Real files and real render workers; hangs and crashes are injected in the worker through
``DEEPSEEK_OCR2_TEST_RENDER_FAULTS`` (the worker really sleeps past the deadline or really
dies of SIGSEGV). Every file is named after the failure it reproduces.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import hostile_files as bad
import pytest
from PIL import Image

from deepseek_ocr2_loaders import CorruptInputError, EncryptedPDFError, OCRStatus, RenderPolicy, aconvert, convert
from deepseek_ocr2_loaders.cli import main
from deepseek_ocr2_loaders.langchain import DeepSeekOCR2Loader
from deepseek_ocr2_loaders.llama_index import DeepSeekOCR2Reader
from deepseek_ocr2_loaders.testing import ScriptedEngine

FAST = RenderPolicy(workers=2, page_timeout=2)
REPO = Path(__file__).resolve().parents[2]


def engine(batch_size: int = 3) -> ScriptedEngine:
    return ScriptedEngine(lambda image, prompt: "ok text", batch_size=batch_size)


def faults(monkeypatch: pytest.MonkeyPatch, *entries: tuple[str, str, int]) -> None:
    monkeypatch.setenv("DEEPSEEK_OCR2_TEST_RENDER_FAULTS", json.dumps([list(e) for e in entries]))


# --- item 1: the pages ahead of a bad file are never lost -------------------------------------


@pytest.fixture
def long_then_bad(tmp_path: Path) -> list[Path]:
    paths = [tmp_path / "a_23_pages.pdf", tmp_path / "b_corrupt_header.pdf", tmp_path / "c_good.pdf"]
    paths[0].write_bytes(bad.text_pdf(23))
    paths[1].write_bytes(bad.damaged_pdf_header())
    paths[2].write_bytes(bad.text_pdf(2))
    return paths


@pytest.mark.parametrize("batch_size", [1, 4, 16, 128])
@pytest.mark.parametrize("on_error", ["raise", "skip", "placeholder"])
def test_every_page_before_a_bad_file_is_delivered(long_then_bad, batch_size, on_error) -> None:
    got: list[tuple[str, int]] = []
    run = convert(long_then_bad, engine=engine(batch_size), on_error=on_error, cache=False, render=FAST)
    if on_error == "raise":
        with pytest.raises(CorruptInputError, match="b_corrupt_header.pdf"):
            for page in run:
                got.append((page.file_name, page.page))
        assert got == [("a_23_pages.pdf", n) for n in range(23)]
        return
    got = [(page.file_name, page.page) for page in run]
    placeholder = [("b_corrupt_header.pdf", 0)] if on_error == "placeholder" else []
    assert got == [("a_23_pages.pdf", n) for n in range(23)] + placeholder + [("c_good.pdf", 0), ("c_good.pdf", 1)]


def test_an_encrypted_file_after_a_long_one_in_aconvert(long_then_bad) -> None:
    long_then_bad[1].write_bytes(bad.encrypted_pdf())
    got: list[int] = []

    async def read() -> None:
        async for page in aconvert(long_then_bad, engine=engine(16), cache=False, render=FAST):
            got.append(page.page)

    with pytest.raises(EncryptedPDFError):
        asyncio.run(read())
    assert got == list(range(23))


# --- the mixed folder: good, bad, good, hanging, good ----------------------------------------


@pytest.fixture
def mixed_folder(tmp_path: Path, real_pdfs: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "a_good.pdf").write_bytes((real_pdfs / "mattsnotes.pdf").read_bytes())
    (folder / "b_corrupt_pdf_header.pdf").write_bytes(bad.damaged_pdf_header())
    Image.new("RGB", (300, 200), (250, 250, 250)).save(folder / "c_good.png")
    (folder / "d_hangs_on_page_2.pdf").write_bytes(bad.text_pdf(3))
    (folder / "e_good.pdf").write_bytes((real_pdfs / "small_page_size.pdf").read_bytes())
    faults(monkeypatch, ("hang", "d_hangs_on_page_2.pdf", 1))
    return folder


EXPECTED = (
    [("a_good.pdf", n, "ok") for n in range(3)]
    + [("b_corrupt_pdf_header.pdf", 0, "failed")]
    + [("c_good.png", 0, "ok")]
    + [("d_hangs_on_page_2.pdf", 0, "ok"), ("d_hangs_on_page_2.pdf", 1, "failed"), ("d_hangs_on_page_2.pdf", 2, "ok")]
    + [("e_good.pdf", 0, "ok")]
)
CATEGORIES = {"b_corrupt_pdf_header.pdf": "CorruptInputError", "d_hangs_on_page_2.pdf": "RenderTimeout"}


def check_pages(pages) -> None:
    assert [(p.file_name, p.page, p.status.value) for p in pages] == EXPECTED
    failed = [p for p in pages if p.status is OCRStatus.FAILED]
    assert [(p.file_name, [e.category for e in p.errors]) for p in failed] == [
        (name, [category]) for name, category in CATEGORIES.items()
    ]


def test_mixed_folder_through_convert(mixed_folder: Path) -> None:
    started = time.monotonic()
    pages = list(convert(sorted(mixed_folder.iterdir()), engine=engine(), on_error="placeholder", render=FAST))
    check_pages(pages)
    assert time.monotonic() - started < 60


def test_mixed_folder_through_aconvert(mixed_folder: Path) -> None:
    async def read():
        files = sorted(mixed_folder.iterdir())
        return [p async for p in aconvert(files, engine=engine(), on_error="placeholder", render=FAST)]

    check_pages(asyncio.run(read()))


def metadata_rows(documents) -> list[tuple[str, int, str]]:
    return [(d.metadata["file_name"], d.metadata["page"], d.metadata["ocr_status"]) for d in documents]


def test_mixed_folder_through_both_loaders(mixed_folder: Path) -> None:
    lc = DeepSeekOCR2Loader(mixed_folder, engine=engine(), on_error="placeholder", render=FAST).load()
    li = DeepSeekOCR2Reader(engine=engine(), on_error="placeholder", render=FAST).load_data(mixed_folder)
    assert metadata_rows(lc) == metadata_rows(li) == EXPECTED
    errors = {
        d.metadata["file_name"]: json.loads(d.metadata["errors"]) for d in lc if d.metadata["ocr_status"] == "failed"
    }
    assert {name: [e["category"] for e in found] for name, found in errors.items()} == {
        name: [category] for name, category in CATEGORIES.items()
    }


def test_mixed_folder_through_the_cli(mixed_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    args = ["convert", str(mixed_folder), "-o", str(out), "-q", "--page-timeout", "2", "--on-error", "skip"]
    assert main(args, engine=engine()) == 1
    written = sorted(p.name for p in out.iterdir())
    assert written == [
        f"{stem}.{ext}" for stem in ("a_good", "c_good", "d_hangs_on_page_2", "e_good") for ext in ("jsonl", "md")
    ]
    lines = capsys.readouterr().err.splitlines()
    assert sum("b_corrupt_pdf_header.pdf" in line for line in lines) == 1
    assert sum("d_hangs_on_page_2.pdf: 1 page failed" in line for line in lines) == 1
    records = [json.loads(line) for line in (out / "d_hangs_on_page_2.jsonl").read_text().splitlines()]
    assert [r["status"] for r in records] == ["ok", "failed", "ok"]
    assert records[1]["errors"][0]["category"] == "RenderTimeout"


@pytest.mark.parametrize("on_error", ["raise", "skip", "placeholder"])
def test_a_worker_crash_costs_one_page_in_every_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on_error) -> None:
    files = [tmp_path / "a_segfaults_on_page_1.pdf", tmp_path / "b_good.pdf"]
    files[0].write_bytes(bad.text_pdf(3))
    files[1].write_bytes(bad.text_pdf(1))
    faults(monkeypatch, ("segfault", files[0].name, 0))
    pages = list(convert(files, engine=engine(), on_error=on_error, render=FAST))
    assert [(p.file_name, p.page, p.status.value) for p in pages] == [
        ("a_segfaults_on_page_1.pdf", 0, "failed"),
        ("a_segfaults_on_page_1.pdf", 1, "ok"),
        ("a_segfaults_on_page_1.pdf", 2, "ok"),
        ("b_good.pdf", 0, "ok"),
    ]
    assert pages[0].errors[0].category == "RenderCrashError" and "SIGSEGV" in pages[0].errors[0].message


# --- stopping: early close and Ctrl-C leave no worker behind -----------------------------------


def test_closing_convert_early_on_a_hung_page_returns_and_leaves_no_worker(tmp_path, monkeypatch) -> None:
    path = tmp_path / "hangs_on_page_3.pdf"
    path.write_bytes(bad.text_pdf(4))
    faults(monkeypatch, ("hang", path.name, 2))
    pages = convert(path, engine=engine(1), cache=False, render=RenderPolicy(workers=1, page_timeout=600))
    assert next(pages).page == 0
    started = time.monotonic()
    pages.close()
    assert time.monotonic() - started < 10
    assert not bad.render_workers_of(os.getpid())


CTRL_C_SCRIPT = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even if the test runner ignores SIGINT
from deepseek_ocr2_loaders import RenderPolicy, convert
from deepseek_ocr2_loaders.testing import ScriptedEngine
engine = ScriptedEngine(lambda image, prompt: "text", batch_size=1)
for page in convert(sys.argv[1], engine=engine, cache=False, render=RenderPolicy(workers=2, page_timeout=600)):
    print("page", page.page, flush=True)
"""


def test_ctrl_c_on_a_hung_page_stops_the_run_and_its_workers(tmp_path, monkeypatch) -> None:
    path = tmp_path / "hangs_on_page_2.pdf"
    path.write_bytes(bad.text_pdf(3))
    faults(monkeypatch, ("hang", path.name, 1))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_SCRIPT, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group, which gets the Ctrl-C, as from a terminal
    )
    try:
        assert child.stdout.readline().strip() == "page 0"
        workers = bad.render_workers_of(child.pid)
        assert workers
        time.sleep(1.0)  # page 2 is hanging in a worker
        os.killpg(child.pid, signal.SIGINT)
        child.wait(20)
        errors = child.stderr.read()
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.stdout.close()
        child.stderr.close()
    assert child.returncode != 0 and "KeyboardInterrupt" in errors
    time.sleep(0.5)
    assert [pid for pid in workers if Path(f"/proc/{pid}").exists()] == []


def test_a_recovered_page_is_kept_and_flagged_through_convert(tmp_path: Path) -> None:
    path = tmp_path / "truncated_scan.jpg"
    path.write_bytes(bad.truncated_jpeg())
    (page,) = convert(path, engine=engine(), cache=False, render=FAST)
    assert page.status is OCRStatus.OK and page.markdown == "ok text"
    assert [(e.stage, e.category) for e in page.errors] == [("render", "recovered")]
    assert "truncated" in page.errors[0].message
