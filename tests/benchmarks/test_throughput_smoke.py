"""benchmarks/throughput.py end to end on a CPU with the tiny checkpoint: every path runs, lengths are fixed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "throughput.py"


@pytest.mark.slow
def test_throughput_script_measures_every_path_at_a_fixed_length(tmp_path: Path) -> None:
    out = tmp_path / "throughput.json"
    command = [
        sys.executable,
        str(SCRIPT),
        "--tiny",
        "--device",
        "cpu",
        "--checkpoint",
        str(tmp_path / "tiny"),
        "--pages",
        "3",
        "--new-tokens",
        "3",
        "--naive-pages",
        "1",
        "--batch-sizes",
        "2",
        "--engine-batch-sizes",
        "2",
        "--vision-batch-size",
        "4",
        "--json",
        str(out),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]

    result = json.loads(out.read_text())
    by_path = {entry["path"]: entry for entry in result["measurements"]}
    assert set(by_path) == {"naive", "batched_generate", "engine"}
    for path, entry in by_path.items():
        assert entry["status"] == "ok", (path, entry)
        assert entry["pages_per_s"] > 0, path
        assert entry["output_tokens_per_s"] > 0, path
        per_page = entry["output_tokens_per_page"]
        assert per_page["min"] == per_page["max"] == 3, (path, per_page)
        assert per_page["all_exact"], path
    assert by_path["engine"]["pages"] == 4  # 3 pages rounded up to full batches of 2
    assert by_path["engine"]["output_tokens"] == 4 * 3

    assert [(v["vision_batch_size"], v["status"]) for v in result["vision_encode"]] == [(2, "ok"), (4, "ok")]
    assert all(v["ms_per_page"] > 0 for v in result["vision_encode"])
    bound = result["bound"]
    assert bound["kv_bytes_per_token"] == 2 * 2 * 2 * 16 * 4  # tiny: 2 layers, 2 kv heads, head_dim 16, fp32
    assert bound["by_batch_size"][0]["pages_per_s_bound"] > 0
    assert "fraction_of_bound" in by_path["engine"]
    # the table comes last on stdout
    assert done.stdout.strip().splitlines()[0].startswith("path")
