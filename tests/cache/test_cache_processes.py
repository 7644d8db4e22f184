"""Real processes: two writers share one file; a writer killed with SIGKILL loses nothing committed."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deepseek_ocr2_loaders.pipeline._cache import PageCache

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and fork semantics are POSIX")

WRITER = r"""
import os, sys, time
from deepseek_ocr2_loaders.pipeline._cache import PageCache

path, prefix, other, count, go = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
with PageCache(path) as cache:
    cache.get("warm-up")  # open the file and schema before the race starts
    print("ready", flush=True)
    while go and not os.path.exists(go):
        time.sleep(0.005)
    i = 0
    while count < 0 or i < count:
        key = f"{prefix}-{i}"
        cache.put(key, {"prefix": prefix, "i": i, "text": "é" * 200})
        assert cache.get(key)["i"] == i
        cache.get_many([f"{other}-{j}" for j in range(max(0, i - 20), i)])
        print(key, flush=True)
        i += 1
"""


def start_writer(path: Path, prefix: str, other: str, count: int, go: Path | str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), prefix, other, str(count), str(go)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n", proc.stderr.read() if proc.stderr else ""
    return proc


def test_two_processes_write_and_read_one_cache_at_once(tmp_path):
    path = tmp_path / "shared.sqlite3"
    go = tmp_path / "go"
    procs = [start_writer(path, "a", "b", 200, go), start_writer(path, "b", "a", 200, go)]
    go.touch()  # both are ready: release them together
    outputs = [proc.communicate(timeout=60) for proc in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert err == ""
        assert len(out.splitlines()) == 200
    with PageCache(path) as cache:
        assert len(cache) == 400
        found = cache.get_many([f"{p}-{i}" for p in "ab" for i in range(200)])
        assert len(found) == 400 and found["b-199"]["i"] == 199


def test_a_writer_killed_mid_loop_keeps_every_finished_put(tmp_path):
    path = tmp_path / "killed.sqlite3"
    proc = start_writer(path, "k", "none", -1, "")
    assert proc.stdout is not None
    done: list[str] = []
    deadline = time.monotonic() + 30
    while len(done) < 300 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line.endswith("\n"), proc.stderr.read() if proc.stderr else ""
        done.append(line.strip())
    os.kill(proc.pid, signal.SIGKILL)
    # read through the same buffered reader: communicate() reads the raw pipe and would miss
    # lines that readline() has already pulled into the buffer (seen under load)
    with proc:  # closes both pipes
        rest = proc.stdout.read()
        assert proc.wait(timeout=30) == -signal.SIGKILL
    done += [line.strip() for line in rest.splitlines(keepends=True) if line.endswith("\n")]
    assert len(done) >= 300

    conn = sqlite3.connect(path)  # the file is a sound database, not just readable by us
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    with PageCache(path) as cache:
        found = cache.get_many(done)
        assert set(found) == set(done)
        assert len(cache) in (len(done), len(done) + 1)  # the put in flight may or may not have landed
        cache.put("after-restart", {"ok": True})
        assert cache.get("after-restart") == {"ok": True}


def _child_put(cache: PageCache) -> None:
    cache.put("from-child", {"pid": os.getpid()})
    assert cache.get("from-parent") == {"x": 1}
    os._exit(0)  # skip atexit and finalizers inherited from pytest


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # 3.12+ warns about fork() in general
def test_a_forked_child_opens_its_own_connection(tmp_path):
    with PageCache(tmp_path / "fork.sqlite3") as cache:
        cache.put("from-parent", {"x": 1})
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                _child_put(cache)
            finally:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert cache.get("from-child") is not None  # the parent's connection still works
        assert len(cache) == 2
