"""The render pool: real worker processes, a per-page deadline, crash containment, clean shutdown.

Hangs and crashes are injected in the worker (``DEEPSEEK_OCR2_TEST_RENDER_FAULTS``): the
worker really sleeps past the deadline or really dies of SIGSEGV, and the real pool handles it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import hostile_files as bad
import pytest

from deepseek_ocr2_loaders import ConfigError, RenderCrashError, RenderPolicy, RenderTimeout
from deepseek_ocr2_loaders.sources import _render_pool, open_source
from deepseek_ocr2_loaders.sources._render_pool import DocumentRef, RenderPool, RenderTask, _idle


def faults(monkeypatch: pytest.MonkeyPatch, *entries: tuple[str, str, int]) -> None:
    monkeypatch.setenv("DEEPSEEK_OCR2_TEST_RENDER_FAULTS", json.dumps([list(e) for e in entries]))


def tasks(source: Path | bytes, name: str | None = None) -> list[RenderTask]:
    with open_source(source, name=name) as document:
        ref = DocumentRef.of(document, password=None, dpi=144)
        return [RenderTask(ref, index) for index in range(document.total_pages)]


def no_workers_left() -> bool:
    deadline = time.monotonic() + 5
    while bad.render_workers_of(os.getpid()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def parked() -> set[int]:
    """The pids of the idle workers finished pools left for the next one."""
    return {worker.proc.pid for _, worker in _idle._workers}


def only_parked_workers_left() -> bool:
    """Every live worker is an idle one parked for reuse (none busy, none leaked)."""
    deadline = time.monotonic() + 5
    while set(bad.render_workers_of(os.getpid())) != parked():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_pages_come_back_in_order_with_the_pixels_of_an_in_process_render(real_pdfs: Path) -> None:
    pdf = real_pdfs / "load_v_error.pdf"
    with RenderPool(RenderPolicy(workers=2)) as pool:
        results = list(pool.render(tasks(pdf)))
    assert [r.task.index for r in results] == list(range(16))
    with open_source(pdf) as document:
        for index in (0, 7, 15):
            local = document.load_page(index)
            page = results[index].page
            assert page.image.tobytes() == local.image.tobytes()
            assert (page.label, page.width, page.height, page.text) == (
                local.label,
                local.width,
                local.height,
                local.text,
            )
    assert len(parked()) == 2 and only_parked_workers_left()  # left for the next pool
    _idle.stop_all()
    assert no_workers_left()


def test_a_new_pool_takes_the_idle_workers_of_a_finished_one_instead_of_starting_processes(real_pdfs: Path) -> None:
    """File-by-file callers build a pool per file: the worker process outlives each pool."""
    pdf = real_pdfs / "load_v_error.pdf"
    pages = tasks(pdf)
    with RenderPool(RenderPolicy(workers=1)) as pool:
        first = list(pool.render(pages[:2]))
    (worker,) = parked()
    for index in (2, 3):
        with RenderPool(RenderPolicy(workers=1)) as pool:
            (result,) = list(pool.render(pages[index : index + 1]))
        assert result.page is not None and parked() == {worker}  # the same process rendered it
        with open_source(pdf) as document:
            assert result.page.image.tobytes() == document.load_page(index).image.tobytes()
    assert [r.task.index for r in first] == [0, 1]
    assert bad.render_workers_of(os.getpid()) == [worker]


def test_idle_workers_stop_after_the_idle_time(real_pdfs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_render_pool, "IDLE_SECONDS", 0.3)
    with RenderPool(RenderPolicy(workers=1)) as pool:
        list(pool.render(tasks(real_pdfs / "load_v_error.pdf")[:1]))
    assert len(parked()) == 1
    assert no_workers_left()  # within 5 s: stopped by the reaper, no pool asked for it


def test_a_worker_started_under_other_faults_is_not_reused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "hangs_on_page_2.pdf"
    path.write_bytes(bad.text_pdf(2))
    with RenderPool(RenderPolicy(workers=1)) as pool:
        list(pool.render(tasks(path)[:1]))
    (clean,) = parked()
    faults(monkeypatch, ("hang", path.name, 1))
    with RenderPool(RenderPolicy(workers=1, page_timeout=1)) as pool:
        results = list(pool.render(tasks(path)))
    assert isinstance(results[1].error, RenderTimeout)  # a fresh worker, started with the fault
    assert clean in parked()


def test_a_hanging_page_times_out_and_the_run_goes_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "hangs_on_page_2.pdf"
    path.write_bytes(bad.text_pdf(5))
    faults(monkeypatch, ("hang", path.name, 1))
    started = time.monotonic()
    with RenderPool(RenderPolicy(workers=2, page_timeout=2)) as pool:
        results = list(pool.render(tasks(path)))
    assert time.monotonic() - started < 30
    assert [r.page is not None for r in results] == [True, False, True, True, True]
    error = results[1].error
    assert isinstance(error, RenderTimeout) and isinstance(error, TimeoutError)
    assert (error.source, error.page) == (str(path), 1) and "within 2 s" in str(error)
    assert only_parked_workers_left()  # the hung worker is gone, the idle one parked


def test_a_worker_killed_by_sigsegv_fails_its_page_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "segfaults_on_page_1.pdf"
    path.write_bytes(bad.text_pdf(4))
    faults(monkeypatch, ("segfault", path.name, 0))
    with RenderPool(RenderPolicy(workers=1)) as pool:  # one worker: the replacement renders the rest
        results = list(pool.render(tasks(path)))
    assert [r.page is not None for r in results] == [False, True, True, True]
    error = results[0].error
    assert isinstance(error, RenderCrashError) and "SIGSEGV" in str(error)
    assert (error.source, error.page) == (str(path), 0)


def test_in_memory_documents_and_passthrough_items_keep_their_place() -> None:
    items = ["before", *tasks(bad.text_pdf(3), name="<bytes>"), "after"]
    with RenderPool(RenderPolicy(workers=2)) as pool:
        out = list(pool.render(items))
    assert out[0] == "before" and out[-1] == "after"
    assert [r.page.text.strip() for r in out[1:-1]] == ["Page 1", "Page 2", "Page 3"]


def test_an_error_from_the_items_comes_after_every_page_taken_before_it(tmp_path: Path) -> None:
    path = tmp_path / "good.pdf"
    path.write_bytes(bad.text_pdf(3))

    def items():
        yield from tasks(path)
        raise ValueError("the next file would not open")

    got = []
    with RenderPool(RenderPolicy(workers=2)) as pool, pytest.raises(ValueError, match="would not open"):
        for result in pool.render(items()):
            got.append(result.task.index)
    assert got == [0, 1, 2]


def test_close_from_another_thread_stops_a_hung_render_and_leaves_no_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "hangs_on_page_1.pdf"
    path.write_bytes(bad.text_pdf(2))
    faults(monkeypatch, ("hang", path.name, 0))
    pool = RenderPool(RenderPolicy(workers=1, page_timeout=600))
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            list(pool.render(tasks(path)))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert _wait_for(lambda: bad.render_workers_of(os.getpid()))
    time.sleep(1.0)  # it is hanging now
    started = time.monotonic()
    pool.close()
    thread.join(10)
    assert not thread.is_alive() and time.monotonic() - started < 10
    assert outcome and "closed" in str(outcome[0])  # never a silent, short result
    assert no_workers_left()


def test_closing_the_iterator_early_stops_busy_workers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "hangs_on_page_3.pdf"
    path.write_bytes(bad.text_pdf(4))
    faults(monkeypatch, ("hang", path.name, 2))
    pool = RenderPool(RenderPolicy(workers=2, page_timeout=600))
    results = pool.render(tasks(path))
    assert next(results).task.index == 0
    results.close()  # page 3 is hanging in a worker: that worker is stopped now
    assert [w for w in pool._workers if w.slot is not None] == []
    pool.close()
    assert only_parked_workers_left()  # the idle one waits for the next pool; the busy one is gone


@pytest.mark.parametrize(
    "bad_value", [{"workers": 0}, {"workers": 2.5}, {"page_timeout": 0}, {"page_timeout": float("nan")}]
)
def test_render_policy_is_validated(bad_value: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        RenderPolicy(**bad_value)  # type: ignore[arg-type]


def _wait_for(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_pools_running_at_once_share_the_workers_up_to_the_process_cap(
    real_pdfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten one-page callers at once (asyncio.gather over files, a server) start two processes, not ten."""
    monkeypatch.setattr(_render_pool, "MAX_LIVE", 2)
    started: list[int] = []
    start = _render_pool._Worker.__init__

    def counted(self: object, events: object) -> None:
        start(self, events)  # type: ignore[arg-type]
        started.append(self.proc.pid)  # type: ignore[attr-defined]

    monkeypatch.setattr(_render_pool._Worker, "__init__", counted)
    pages = tasks(real_pdfs / "load_v_error.pdf")

    def one_call(index: int) -> bytes:
        with RenderPool(RenderPolicy(workers=1)) as pool:
            (result,) = list(pool.render(pages[index : index + 1]))
        assert result.page is not None
        return result.page.image.tobytes()

    with ThreadPoolExecutor(10) as callers:
        images = list(callers.map(one_call, range(10)))
    assert len(started) <= 2 and parked() <= set(started)
    with open_source(real_pdfs / "load_v_error.pdf") as document:
        assert images[9] == document.load_page(9).image.tobytes()
