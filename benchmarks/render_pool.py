"""Pages rendered per second at 144 DPI on the real PDFs: in-process, and the worker pool at 1, 2, 4 workers.

Every page of every PDF in ``tests/data/real-pdfs`` (top level) is rendered ``--repeat``
times. The in-process row is :meth:`PdfSource.load_page` on one thread (what ``convert`` did
before the pool); each pool row is :meth:`RenderPool.render` over the same pages, timed from
the first request (worker start-up included) to the last page back in the parent.

    python benchmarks/render_pool.py --repeat 3 --json benchmarks/results/render_pool.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from deepseek_ocr2_loaders import RenderPolicy
from deepseek_ocr2_loaders.sources import open_source
from deepseek_ocr2_loaders.sources._render_pool import DocumentRef, RenderPool, RenderTask

REAL_PDFS = Path(__file__).resolve().parents[1] / "tests" / "data" / "real-pdfs"


def page_tasks(repeat: int) -> list[RenderTask]:
    tasks = []
    for _ in range(repeat):
        for path in sorted(REAL_PDFS.glob("*.pdf")):
            with open_source(path, dpi=144) as document:
                ref = DocumentRef.of(document, password=None, dpi=144)
                tasks.extend(RenderTask(ref, index) for index in range(document.total_pages))
    return tasks


def in_process(tasks: list[RenderTask]) -> float:
    started = time.perf_counter()
    opened = None
    for task in tasks:
        if opened is None or opened[0] != task.document.key:  # each document opened once, like a worker
            if opened is not None:
                opened[1].close()
            opened = (task.document.key, open_source(Path(task.document.path or ""), dpi=144))
        opened[1].load_page(task.index)
    if opened is not None:
        opened[1].close()
    return time.perf_counter() - started


def pooled(tasks: list[RenderTask], workers: int) -> float:
    started = time.perf_counter()
    with RenderPool(RenderPolicy(workers=workers)) as pool:
        rendered = list(pool.render(tasks))
    elapsed = time.perf_counter() - started
    failed = [r for r in rendered if r.error is not None]  # type: ignore[union-attr]
    if failed:
        raise SystemExit(f"{len(failed)} page(s) failed to render: {failed[0].error}")  # type: ignore[union-attr]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="render every page this many times")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    tasks = page_tasks(args.repeat)
    rows = [{"mode": "in-process, one thread", "workers": 0, "seconds": in_process(tasks)}]
    rows += [{"mode": "worker pool", "workers": n, "seconds": pooled(tasks, n)} for n in args.workers]
    for row in rows:
        row["pages_per_s"] = round(len(tasks) / row["seconds"], 1)
        row["seconds"] = round(row["seconds"], 2)
        print(f"{row['mode']:>24} {row['workers']} worker(s): {row['pages_per_s']:6.1f} pages/s ({row['seconds']} s)")
    result = {
        "pages": len(tasks),
        "dpi": 144,
        "pdfs": sorted(p.name for p in REAL_PDFS.glob("*.pdf")),
        "cpu_cores": os.cpu_count(),
        "load_average_at_start": os.getloadavg()[0],
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "note": "a shared machine with 2 CPU cores (other jobs running): 4 workers cannot beat 2 here",
        "rows": rows,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
