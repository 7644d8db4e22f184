"""`deepseek-ocr2 ray` on a machine without a GPU: one line naming the fix, fast, no Ray noise."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pymupdf

REPO = Path(__file__).resolve().parents[2]


def test_a_gpu_actor_on_a_cpu_only_machine_fails_at_once_naming_gpus_per_actor_0(tmp_path):
    doc = pymupdf.open()
    doc.new_page()
    doc.save(tmp_path / "a.pdf")
    command = [sys.executable, "-m", "deepseek_ocr2_loaders.cli", "ray", str(tmp_path / "a.pdf"), "-o"]
    started = time.monotonic()
    done = subprocess.run(
        [*command, str(tmp_path / "out"), "--model", "any"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,  # this checkout's code, whatever is installed
        env={"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": "", "RAY_ADDRESS": ""},
    )
    seconds = time.monotonic() - started
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "--gpus-per-actor 0" in lines[0] and "Traceback" not in done.stderr
    assert seconds < 30
