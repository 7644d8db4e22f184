"""`deepseek-ocr2 convert` end to end: files written, figures linked, failures reported."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pymupdf
import pytest
from PIL import Image

from deepseek_ocr2_loaders.cli import main
from deepseek_ocr2_loaders.cli._engine_args import add_engine_arguments, engine_options
from deepseek_ocr2_loaders.testing import ScriptedEngine

FIGURE_PAGE = (
    "<|ref|>sub_title<|/ref|><|det|>[[80, 40, 920, 80]]<|/det|>\n## Methods\n\n"
    "<|ref|>image<|/ref|><|det|>[[100, 100, 600, 400]]<|/det|>\n\n"
    "<|ref|>text<|/ref|><|det|>[[80, 420, 920, 700]]<|/det|>\nWe measured things."
)


def make_pdf(path: Path, pages: int) -> Path:
    doc = pymupdf.open()
    for number in range(pages):
        doc.new_page(width=612, height=792).insert_text((72, 72), f"Page {number + 1}")
    doc.save(path)
    return path


def test_convert_writes_markdown_jsonl_and_linked_figures(tmp_path):
    pdf = make_pdf(tmp_path / "My Report (final).pdf", 2)
    out = tmp_path / "out"
    status = main(["convert", str(pdf), "-o", str(out), "-q"], engine=ScriptedEngine(lambda i, p: FIGURE_PAGE))
    assert status == 0
    stem = "My_Report_final"
    markdown = (out / f"{stem}.md").read_text()
    assert markdown.count("<!-- page ") == 2 and "\n---\n" in markdown
    assert f"![Figure 1]({stem}_figures/page-0001-figure-1.png)" in markdown
    assert f"![Figure 1]({stem}_figures/page-0002-figure-1.png)" in markdown
    with Image.open(out / f"{stem}_figures" / "page-0001-figure-1.png") as figure:
        assert abs(figure.width - (600 - 100) / 999 * 612 * 2) <= 2
    records = [json.loads(line) for line in (out / f"{stem}.jsonl").read_text().splitlines()]
    assert [r["page_number"] for r in records] == [1, 2]
    first = records[0]
    assert first["status"] == "ok" and first["markdown"].startswith("## Methods")
    assert [b["label"] for b in first["blocks"]] == ["sub_title", "image", "text"]
    assert first["figures"][0]["path"] == f"{stem}_figures/page-0001-figure-1.png"
    assert {"vision_tokens", "output_tokens", "finish_reason"} <= first.keys()


def test_a_folder_with_a_bad_file_keeps_the_good_ones_and_exits_non_zero(tmp_path, capsys):
    folder = tmp_path / "inbox"
    folder.mkdir()
    make_pdf(folder / "good.pdf", 3)
    (folder / "broken.pdf").write_bytes(os.urandom(2048))
    Image.new("RGB", (640, 480), "white").save(folder / "scan.png")
    (folder / "notes.txt").write_text("not a document")  # ignored: not a PDF or image suffix
    out = tmp_path / "out"
    status = main(
        ["convert", str(folder), "-o", str(out), "-q", "--pages", "1"], engine=ScriptedEngine(lambda i, p: "text")
    )
    assert status == 1
    assert len((out / "good.jsonl").read_text().splitlines()) == 1
    assert len((out / "scan.jsonl").read_text().splitlines()) == 1
    error = capsys.readouterr().err
    assert "1 input had problems" in error and "broken.pdf" in error


@pytest.mark.compat
def test_installed_command_runs_the_tiny_model(tmp_path, tiny_checkpoint, real_pdfs):
    out = tmp_path / "out"
    cli = Path(sys.executable).with_name("deepseek-ocr2")
    command = [str(cli)] if cli.exists() else [sys.executable, "-m", "deepseek_ocr2_loaders.cli"]
    done = subprocess.run(
        [
            *command,
            "convert",
            str(real_pdfs / "mattsnotes.pdf"),
            "-o",
            str(out),
            "--model",
            str(tiny_checkpoint),
            "--pages",
            "2",
            "--max-new-tokens",
            "4",
            "--device",
            "cpu",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (record,) = [json.loads(line) for line in (out / "mattsnotes.jsonl").read_text().splitlines()]
    assert record["page"] == 1 and record["model"] == str(tiny_checkpoint)
    assert record["output_tokens"] <= 4 and record["vision_tokens"] > 256


def test_missing_model_exits_with_the_local_path_advice(tmp_path, capsys):
    pdf = make_pdf(tmp_path / "a.pdf", 1)
    status = main(["convert", str(pdf), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "no-model"), "-q"])
    assert status == 1
    assert "--model" in capsys.readouterr().err


def test_help_lists_convert():
    done = subprocess.run([sys.executable, "-m", "deepseek_ocr2_loaders.cli", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "convert" in done.stdout


@pytest.mark.parametrize(("flags", "compiled"), [([], False), (["--compile-decode"], True)])
def test_the_compile_decode_switch_reaches_the_engine_options(flags, compiled):
    parser = argparse.ArgumentParser()
    add_engine_arguments(parser)
    options = engine_options(parser.parse_args(["--model", "m", *flags]))
    assert options.compile_decode is compiled
    assert options.max_new_tokens == 8192 and options.model == "m"
