"""Every CLI failure is one line on stderr naming the flag or file and the fix, with its exit code.

0 done, 1 an input, page or the model failed, 2 a usage error, 130 Ctrl-C. The engine is
``ScriptedEngine`` (no model), except where the flag under test builds the real engine.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pymupdf
import pytest

from deepseek_ocr2_loaders.cli import main
from deepseek_ocr2_loaders.errors import EngineError
from deepseek_ocr2_loaders.testing import ScriptedEngine

TEXT = ScriptedEngine(lambda image, prompt: "text")


def pdf(path, pages=1):
    doc = pymupdf.open()
    for _ in range(pages):
        doc.new_page()
    doc.save(path)
    return path


def run(capsys, *argv, engine=None):
    status = main(["convert", *map(str, argv), "--no-cache", "-q"], engine=engine)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return status, err.strip().splitlines()


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--batch-size", "0"], "--batch-size must be an integer >= 1"),
        (["--max-new-tokens", "0"], "--max-new-tokens must be an integer >= 1"),
        (["--dtype", "float8"], "--dtype must be one of"),
        (["--device", "nope"], "--device 'nope' is not a torch device"),
        (["--pages", "x"], "--pages x: cannot read 'x'"),
        (["--device", "cuda"], "this PyTorch build sees no CUDA GPU; use --device 'cpu'"),
    ],
)
def test_a_bad_flag_value_is_one_line_naming_the_flag_and_exit_2(tmp_path, capsys, flags, words):
    if flags == ["--device", "cuda"] and pytest.importorskip("torch").cuda.is_available():
        pytest.skip("--device cuda is valid on a machine with a GPU")
    status, lines = run(capsys, pdf(tmp_path / "a.pdf"), "-o", tmp_path / "out", *flags)
    assert status == 2 and len(lines) == 1 and words in lines[0], lines


def test_an_output_that_cannot_be_a_folder_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "taken").write_text("")
    status, lines = run(capsys, pdf(tmp_path / "a.pdf"), "-o", tmp_path / "taken", engine=TEXT)
    assert status == 2 and lines == [
        f"error: -o {tmp_path / 'taken'}: is a file, not a folder; name a new or existing folder"
    ]
    status, lines = run(capsys, tmp_path / "a.pdf", "-o", "/proc/nope", engine=TEXT)
    assert status == 2 and len(lines) == 1 and "-o /proc/nope: cannot create the folder" in lines[0]


def test_a_missing_input_says_not_found(tmp_path, capsys):
    status, lines = run(capsys, tmp_path / "nonexistent.pdf", "-o", tmp_path / "out", engine=TEXT)
    assert status == 1 and lines == ["1 input had problems:", f"  {tmp_path / 'nonexistent.pdf'}: file not found"]


def test_a_mistyped_model_folder_says_not_found_without_network_advice(tmp_path, capsys):
    status, lines = run(capsys, pdf(tmp_path / "a.pdf"), "-o", tmp_path / "out", "--model", "./no-such-folder")
    assert status == 1 and len(lines) == 1
    assert (
        lines[0].startswith("error: --model ./no-such-folder: model folder not found") and "hf download" not in lines[0]
    )


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        main(["convert", "--no-such-flag"])
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1 and "see deepseek-ocr2 convert --help" in err[0]


def test_the_summary_lists_each_problem_once_in_cli_words(tmp_path, capsys):
    (tmp_path / "empty.pdf").write_bytes(b"")
    encrypted = pymupdf.open()
    encrypted.new_page()
    encrypted.save(tmp_path / "locked.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="x", owner_pw="y")
    pdf(tmp_path / "one.pdf")
    pdf(tmp_path / "three.pdf", 3)
    status = main(
        ["convert", str(tmp_path), "-o", str(tmp_path / "out"), "--pages", "2-3", "--on-error", "skip", "--no-cache"],
        engine=ScriptedEngine(lambda image, prompt: "text"),
    )
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err and "ERROR" not in err and "on_error" not in err
    assert f"  {tmp_path / 'empty.pdf'}: the input is empty (0 bytes)\n" in err  # no repeated path
    assert "pass --password to open it" in err
    assert f"  {tmp_path / 'one.pdf'}: --pages 2-3: it has 1 page; nothing converted\n" in err
    assert [
        json.loads(line)["page_number"] for line in (tmp_path / "out" / "three.jsonl").read_text().splitlines()
    ] == [2, 3]
    assert not (tmp_path / "out" / "empty.jsonl").exists()  # --on-error skip


def test_the_output_mirrors_the_input_tree(tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / "in" / folder).mkdir(parents=True)
        pdf(tmp_path / "in" / folder / "x.pdf")
    assert main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-q", "--no-cache"], engine=TEXT) == 0
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.jsonl"))
    assert written == ["a/x.jsonl", "b/x.jsonl"]


def test_failed_pages_have_the_loaders_empty_finish_reason(tmp_path, capsys):
    def fail(image, prompt):
        raise EngineError("engine down")

    main(
        ["convert", str(pdf(tmp_path / "a.pdf")), "-o", str(tmp_path / "out"), "-q", "--no-cache"],
        engine=ScriptedEngine(fail),
    )
    (record,) = [json.loads(line) for line in (tmp_path / "out" / "a.jsonl").read_text().splitlines()]
    assert record["status"] == "failed" and record["finish_reason"] == ""


def test_ctrl_c_says_how_far_it_got_and_exits_130(tmp_path, capsys):
    def interrupt(image, prompt):
        raise KeyboardInterrupt

    status, lines = run(capsys, pdf(tmp_path / "a.pdf", 2), "-o", tmp_path / "out", engine=ScriptedEngine(interrupt))
    assert status == 130 and len(lines) == 1 and lines[0].startswith("interrupted: 0/2 pages done")


def test_progress_off_a_terminal_is_a_plain_line_and_quiet_is_silent(tmp_path, capsys):
    def slow(image, prompt):
        import time

        time.sleep(0.3)
        return "text"

    source = pdf(tmp_path / "a.pdf", 2)
    argv = ["convert", str(source), "-o", str(tmp_path / "out"), "--no-cache", "--progress-every", "0.1"]
    assert main([*argv, "--batch-size", "1"], engine=ScriptedEngine(slow)) == 0
    err = capsys.readouterr().err
    assert "progress: 0/2 pages (0%), 0.00 pages/s, ETA unknown, reading a.pdf, 0 failed" in err
    assert "pages/s, ETA" in err.splitlines()[-2] and err.splitlines()[-1].startswith("done: 2/2 pages in")
    assert main([*argv, "-q"], engine=ScriptedEngine(slow)) == 0
    assert capsys.readouterr().err == ""


def test_quiet_silences_transformers_loading_the_model(tmp_path, tiny_checkpoint):
    command = [sys.executable, "-m", "deepseek_ocr2_loaders.cli", "convert", str(pdf(tmp_path / "a.pdf")), "-o"]
    flags = ["--model", str(tiny_checkpoint), "--max-new-tokens", "2", "--device", "cpu", "--no-cache", "-q"]
    done = subprocess.run([*command, str(tmp_path / "out"), *flags], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stderr == "", done.stderr
