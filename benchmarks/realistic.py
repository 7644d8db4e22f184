"""Realistic page lengths at the defaults users run, through every public entry point (issue 14's headline).

Why: ``throughput.py`` and ``gpu_convert.py`` write a fixed 1,000 tokens per page under a budget
lowered to match, which hides what the default budget (``max_new_tokens=8192``) costs, what a
long tail of dense pages costs, and what the frameworks' own calling patterns cost. Here each
page stops at its own length (``results/page-lengths.json`` from ``page_lengths.py``: the
grounded Markdown rebuilt from the real PDFs' text layers), the engine keeps every default
(``max_new_tokens``, ``max_batch_size``, vision batch) but ``ignore_eos=True, stop_loops=False``,
and the same pages go through every entry point in one run, one shared engine (as an
application holds one):

* ``engine``: one ``engine.generate(images, prompt)`` call over all pages (default prompt).
* ``langchain-pdf`` / ``langchain-png``: ``DeepSeekOCR2Loader(folder, engine=engine).lazy_load()``
  consumed, over a folder of the real PDFs (copied and cycled to ``--pages`` pages) and over a
  folder of one PNG per page (rendered at the package's 144 DPI).
* ``langchain-generic``: ``GenericLoader(FileSystemBlobLoader(png_folder, glob="*.png"),
  DeepSeekOCR2Parser(engine=engine)).lazy_load()``, one parser call per blob (a fraction of
  ``langchain-png``, one loader over the same folder).
* ``llamaindex-load-data``: one ``DeepSeekOCR2Reader(engine=engine).load_data(png_folder)`` call.
* ``llamaindex-sdr``: ``SimpleDirectoryReader(png_folder, file_extractor={".png": reader})``, one
  reader call per file (``iter_data()``: ``load_data()``'s own per-file loop, so a row can stop).
* ``llamaindex-sdr-async``: the same through ``await aload_data()`` (all files at once).

Random weights never end a page, so the engine has a benchmark-only hook: ``engine._page_lengths
= fn``, ``fn(image) -> int``, and each page stops after ``min(fn(image), max_new_tokens)`` tokens.
``fn`` looks the page up by the SHA-256 of its pixels; every image the loaders hand the engine is
checked against that table before the rows run (a scripted engine through both loaders), and a
miss on a page with a text layer stops the run. Pages without a text layer get a length drawn
from the measured ones, fixed per page (by its name). The page cache is off (``cache=False``):
the folders repeat pages and every row reads the same ones.

Each row: an untimed warm-up through the same path (a second engine on the same model, 4 tokens
per page, two pages), the slot decoder pre-built for the row's call size, peak memory reset,
``torch.cuda.synchronize()`` around the timing. Rows that yield as they go (``lazy_load``,
``iter_data``) stop at the time budget or ``--row-time-s`` and are marked ``partial``; the others
are skipped when predicted not to fit. ``--hold-free-gb`` allocates GPU memory before the model
loads so only that much stays free: the run a smaller card gets (peak memory is reported net of
the held block). The HBM bound is throughput.py's, at the lengths the first row generated.
Each row records when its pages reached the engine (``pages_submitted``: the first call, and
when a quarter, half, ... of them were queued). JSON written after every row, the command line
in it; a table printed last. ``--arrival-order`` starts each call's pages in the order given
instead of the most text first (what ordering buys).

    python benchmarks/realistic.py --checkpoint /tmp/full --pages 256 --hbm-gbs 4800 \\
        --json benchmarks/results/realistic-h200.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import math
import platform
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import page_lengths  # benchmarks/ is on sys.path: scripts run from there
import pymupdf
import throughput
import torch
from PIL import Image

from deepseek_ocr2_loaders import EngineOutput, TransformersEngine
from deepseek_ocr2_loaders.engines.transformers import _scheduler
from deepseek_ocr2_loaders.model import DEFAULT_DPI, DEFAULT_PROMPT, MAX_NEW_TOKENS
from deepseek_ocr2_loaders.model._prompts import resolve_prompt
from deepseek_ocr2_loaders.sources import open_source
from deepseek_ocr2_loaders.testing import ScriptedEngine

ROWS = (
    "engine",
    "langchain-pdf",
    "langchain-png",
    "langchain-generic",
    "llamaindex-load-data",
    "llamaindex-sdr",
    "llamaindex-sdr-async",
)
PER_FILE = {
    "langchain-generic": "langchain-png",
    "llamaindex-sdr": "llamaindex-load-data",
    "llamaindex-sdr-async": "llamaindex-load-data",
}
"""Per-file rows and the one-call row over the same PNG folder they are a fraction of."""
PREDICT_FROM = {"llamaindex-load-data": "langchain-png", "llamaindex-sdr-async": "llamaindex-load-data"}
"""Rows that cannot stop part-way, and the row whose rate predicts their duration."""
PROMPT = resolve_prompt(DEFAULT_PROMPT)
WARM_TOKENS = 4


def log(message: str) -> None:
    print(f"[realistic] {message}", file=sys.stderr, flush=True)


def image_key(image: Image.Image) -> str:
    """What a page is known by: the SHA-256 of its pixels."""
    return hashlib.sha256(image.tobytes()).hexdigest()


class PageLengths:
    """``fn(image) -> int`` for the engine hook: the page's measured length, looked up by its pixels."""

    def __init__(self, lengths: dict[str, int], pool: list[int]) -> None:
        self.lengths = lengths
        self.pool = pool
        self.misses: list[str] = []
        self.seconds = 0.0  # time spent hashing, reported per row (it runs inside the timed engine)
        self.calls = 0

    def __call__(self, image: Image.Image) -> int:
        started = time.perf_counter()
        key = image_key(image)
        length = self.lengths.get(key)
        if length is None:
            self.misses.append(key)
            length = page_lengths.drawn_length(key, self.pool)
        self.seconds += time.perf_counter() - started
        self.calls += 1
        return length


# -- workloads -------------------------------------------------------------------------


@dataclass
class Inputs:
    """One set of pages in the three forms the rows read: images, a PDF folder, a PNG folder."""

    images: list[Image.Image]
    pdf_dir: Path
    png_dir: Path


@dataclass
class Workload:
    """The ``--pages`` pages, their lengths and where each page of each folder came from."""

    full: Inputs
    warm: Inputs
    keys: list[str]  # pixel hash of each of full.images
    lengths: dict[str, int]  # pixel hash -> tokens
    measured: set[str]  # hashes whose length was measured (page has a text layer)
    origin: dict[str, str]  # pixel hash -> "file#page" of the real PDF
    by_source: dict[tuple[str, int], str] = field(default_factory=dict)  # (resolved file, 0-based page) -> hash


def _slug(name: str) -> str:
    return name.replace("/", "_").removesuffix(".pdf")


def build_workload(pdf_dir: Path, distribution: dict[str, Any], pages: int, root: Path, warm_pages: int) -> Workload:
    """The real pages cycled to ``pages``: rendered once each, written as a PDF folder and a PNG folder."""
    measured_pool = [p["tokens"] for p in distribution["pages"] if p["tokens"] is not None]
    cycle = [(p["file"], p["page"], p["tokens"]) for p in distribution["pages"]]
    order = [cycle[i % len(cycle)] for i in range(pages)]
    rendered: dict[tuple[str, int], tuple[Image.Image, str]] = {}
    lengths: dict[str, int] = {}
    measured: set[str] = set()
    origin: dict[str, str] = {}
    unique_png = root / "png-unique"
    unique_png.mkdir(parents=True)
    for file, page, tokens in order:
        if (file, page) in rendered:
            continue
        with open_source(pdf_dir / file, dpi=DEFAULT_DPI) as doc:
            image = doc.load_page(page - 1).image
        key = image_key(image)
        length = tokens if tokens is not None else page_lengths.drawn_length(f"{file}#{page}", measured_pool)
        if lengths.get(key, length) != length:
            raise SystemExit(f"{file}#{page} renders like {origin[key]} but has another length")
        rendered[(file, page)] = (image, key)
        lengths[key] = length
        origin.setdefault(key, f"{file}#{page}")
        if tokens is not None:
            measured.add(key)
        image.save(unique_png / f"{_slug(file)}-p{page}.png", compress_level=1)

    workload = Workload(
        full=Inputs([rendered[(f, p)][0] for f, p, _ in order], root / "pdf", root / "png"),
        warm=Inputs([rendered[(f, p)][0] for f, p, _ in order[:warm_pages]], root / "warm-pdf", root / "warm-png"),
        keys=[rendered[(f, p)][1] for f, p, _ in order],
        lengths=lengths,
        measured=measured,
        origin=origin,
    )
    for inputs in (workload.full, workload.warm):
        inputs.pdf_dir.mkdir()
        inputs.png_dir.mkdir()
    for index, (file, page, _) in enumerate(order):
        for inputs, count in ((workload.full, pages), (workload.warm, warm_pages)):
            if index < count:
                png = inputs.png_dir / f"{index:05d}-{_slug(file)}-p{page}.png"
                shutil.copyfile(unique_png / f"{_slug(file)}-p{page}.png", png)
                workload.by_source[(str(png.resolve()), 0)] = rendered[(file, page)][1]
    _write_pdfs(workload, pdf_dir, order, rendered)
    return workload


def _write_pdfs(
    workload: Workload, pdf_dir: Path, order: list[tuple[str, int, Any]], rendered: dict[tuple[str, int], Any]
) -> None:
    """Copies of the real PDFs in cycle order, the last one cut to the page count (warm: the first pages)."""
    for inputs, count in ((workload.full, len(workload.keys)), (workload.warm, len(workload.warm.images))):
        index = copy = 0
        while index < count:
            file, first, _ = order[index]
            with pymupdf.open(pdf_dir / file) as doc:
                take = min(doc.page_count - (first - 1), count - index)
                target = inputs.pdf_dir / f"{copy:04d}-{_slug(file)}.pdf"
                if first == 1 and take == doc.page_count:
                    shutil.copyfile(pdf_dir / file, target)  # duplicates under other names, byte for byte
                else:
                    doc.select(range(first - 1, first - 1 + take))
                    doc.save(target)
            for offset in range(take):
                workload.by_source[(str(target.resolve()), offset)] = rendered[(file, first + offset)][1]
            index += take
            copy += 1


def check_hashes(workload: Workload) -> dict[str, Any]:
    """Every page the loaders hand the engine must be in the length table; a text page that is not stops the run.

    Runs both folders through ``DeepSeekOCR2Loader`` with a scripted engine (no model), so it
    checks the very images the real rows will hand to the engine (render workers included).
    """

    def answer(image: Image.Image, prompt: str) -> EngineOutput:
        key = image_key(image)
        found = key in workload.lengths
        return EngineOutput(text="found" if found else f"miss {key}", finish_reason="length", vision_tokens=0)

    from deepseek_ocr2_loaders.langchain import DeepSeekOCR2Loader

    started = time.perf_counter()
    report: dict[str, Any] = {}
    failed = []
    for name, folder in (("pdf", workload.full.pdf_dir), ("png", workload.full.png_dir)):
        loader = DeepSeekOCR2Loader(str(folder), engine=ScriptedEngine(answer, batch_size=32), cache=False)
        docs = list(loader.lazy_load())
        misses = []
        for doc in docs:
            if doc.page_content.startswith("miss"):
                key = workload.by_source.get((doc.metadata["source"], doc.metadata["page"]), "")
                miss = {
                    "file": Path(doc.metadata["source"]).name,
                    "page": doc.metadata["page"] + 1,
                    "rendered_from": workload.origin.get(key),
                    "text_layer": key in workload.measured,
                }
                misses.append(miss)
                if miss["text_layer"]:
                    failed.append(f"{name}: {miss}")
        report[name] = {"pages": len(docs), "misses": misses}
        if len(docs) != len(workload.keys):
            failed.append(f"{name}: {len(docs)} pages, not {len(workload.keys)}")
        for miss in misses:
            log(f"hash miss ({name}): {miss}")
    report["seconds"] = round(time.perf_counter() - started, 1)
    if failed:
        raise SystemExit("page images the engine would see are not in the length table: " + "; ".join(failed))
    return report


# -- memory ----------------------------------------------------------------------------


def hold_gpu_memory(device: torch.device, free_gib: float) -> tuple[torch.Tensor | None, dict[str, Any]]:
    """One allocation leaving only ``free_gib`` free: the engine sizes itself from free memory, as on a small card."""
    free, total = torch.cuda.mem_get_info(device)
    hold = free - int(free_gib * 2**30)
    block = torch.empty(hold, dtype=torch.uint8, device=device) if hold > 0 else None
    after, _ = torch.cuda.mem_get_info(device)
    return block, {
        "free_gib_wanted": free_gib,
        "held_bytes": max(hold, 0),
        "free_gib_before": round(free / 2**30, 2),
        "free_gib_after": round(after / 2**30, 2),
        "total_gib": round(total / 2**30, 2),
        "note": "a real card of this size has a little less free: its CUDA context comes out of it",
    }


class RealisticBench(throughput.Bench):
    """throughput's Bench: peak memory net of the held block, per-file and end-to-end fractions on every save."""

    held_bytes = 0

    def peak_gib(self) -> float | None:
        if not self.cuda:
            return None
        return round((torch.cuda.max_memory_allocated(self.device) - self.held_bytes) / 2**30, 2)

    def save(self) -> None:
        rows = {e["path"]: e for e in self.result["measurements"] if e.get("status") == "ok"}
        for entry in rows.values():
            for key, base in (("of_one_call", PER_FILE.get(entry["path"])), ("of_engine", "engine")):
                if base in rows and base != entry["path"]:
                    entry[key] = {
                        "pages_per_s": round(entry["pages_per_s"] / rows[base]["pages_per_s"], 4),
                        "output_tokens_per_s": round(
                            entry["output_tokens_per_s"] / rows[base]["output_tokens_per_s"], 4
                        ),
                        "of": base,
                    }
        super().save()


# -- rows ------------------------------------------------------------------------------


def consume(items: Iterator[Any], stop_at: float, *, lists: bool = False) -> list[Any]:
    """Everything ``items`` yields (flattened when it yields lists), or what it gave by ``stop_at``."""
    got: list[Any] = []
    try:
        for item in items:
            got.extend(item) if lists else got.append(item)
            if time.perf_counter() >= stop_at:
                break
    finally:
        close = getattr(items, "close", None)
        if close:
            close()
    return got


def _reader(engine: TransformersEngine) -> Any:
    from deepseek_ocr2_loaders.llama_index import DeepSeekOCR2Reader

    return DeepSeekOCR2Reader(engine=engine, cache=False)


def _generic(folder: Path, engine: TransformersEngine) -> Any:
    from langchain_community.document_loaders.blob_loaders import FileSystemBlobLoader
    from langchain_community.document_loaders.generic import GenericLoader

    from deepseek_ocr2_loaders.langchain import DeepSeekOCR2Parser

    return GenericLoader(FileSystemBlobLoader(folder, glob="*.png"), DeepSeekOCR2Parser(engine=engine, cache=False))


def _directory(folder: Path, engine: TransformersEngine) -> Any:
    from llama_index.core import SimpleDirectoryReader

    return SimpleDirectoryReader(str(folder), file_extractor={".png": _reader(engine)}, raise_on_error=True)


def run_path(name: str, engine: TransformersEngine, inputs: Inputs, stop_at: float) -> list[Any]:
    """One row's entry point over ``inputs``: EngineOutputs (``engine``) or Documents, in order."""
    from deepseek_ocr2_loaders.langchain import DeepSeekOCR2Loader

    if name == "engine":
        return engine.generate(inputs.images, PROMPT)
    if name in ("langchain-pdf", "langchain-png"):
        folder = inputs.pdf_dir if name == "langchain-pdf" else inputs.png_dir
        return consume(DeepSeekOCR2Loader(str(folder), engine=engine, cache=False).lazy_load(), stop_at)
    if name == "langchain-generic":
        return consume(_generic(inputs.png_dir, engine).lazy_load(), stop_at)
    if name == "llamaindex-load-data":
        return _reader(engine).load_data(str(inputs.png_dir))
    if name == "llamaindex-sdr":
        return consume(_directory(inputs.png_dir, engine).iter_data(), stop_at, lists=True)
    if name == "llamaindex-sdr-async":
        return asyncio.run(_directory(inputs.png_dir, engine).aload_data())
    raise ValueError(name)


@contextlib.contextmanager
def submissions(engine: TransformersEngine) -> Iterator[list[tuple[float, int]]]:
    """``(time, pages)`` of every call that hands the engine pages meanwhile (sync or async, any thread).

    Why: a loader row slower than the engine alone with as many decode steps in its last call
    spends the difference before its pages reach the queue (rendering, chunking); this shows when.
    """
    submitted: list[tuple[float, int]] = []
    submit = engine._submit_slots

    def recording(images: list[Any], prompt: str) -> Any:
        submitted.append((time.perf_counter(), len(images)))
        return submit(images, prompt)

    engine._submit_slots = recording  # type: ignore[method-assign]
    try:
        yield submitted
    finally:
        del engine._submit_slots


def arrival(submitted: list[tuple[float, int]], started: float) -> dict[str, Any]:
    """Seconds from the row's start until the first call, and until a quarter, half, ... of its pages were queued."""
    total = sum(pages for _, pages in submitted)
    if not total:
        return {"calls": 0}
    marks: dict[str, float] = {}
    queued = 0
    for at, pages in sorted(submitted):
        queued += pages
        for share in (25, 50, 75, 100):
            if f"{share}%_at_s" not in marks and queued * 100 >= share * total:
                marks[f"{share}%_at_s"] = round(at - started, 2)
    return {
        "calls": len(submitted),
        "pages": total,
        "first_at_s": round(min(at for at, _ in submitted) - started, 2),
        **marks,
    }


def per_page(values: list[int]) -> dict[str, Any]:
    return {
        "mean": round(statistics.fmean(values), 1),
        "std": round(statistics.pstdev(values), 1),
        "min": min(values),
        "max": max(values),
    }


def page_keys(name: str, items: list[Any], workload: Workload) -> list[str]:
    """The pixel hash of the page behind each output."""
    if name == "engine":
        return workload.keys[: len(items)]
    return [workload.by_source[(d.metadata["source"], d.metadata["page"])] for d in items]


def run_row(bench: RealisticBench, name: str, engine: TransformersEngine, workload: Workload, fn: PageLengths) -> None:
    args = bench.args
    pages = len(workload.keys)
    predicted = None
    if name in PREDICT_FROM:
        rows = {e["path"]: e for e in bench.result["measurements"] if e.get("status") == "ok"}
        base = rows.get(PREDICT_FROM[name]) or rows.get("engine")
        predicted = 1.1 * pages / base["pages_per_s"] if base else None

    def body() -> dict[str, Any]:
        started = time.perf_counter()
        engine._page_lengths = lambda image: WARM_TOKENS  # the row's own path, its pages stopped at once
        try:
            run_path(name, engine, workload.warm, math.inf)
        finally:
            engine._page_lengths = fn
        warmup_s = time.perf_counter() - started
        if "decoder_prewarm" not in bench.result:  # once per engine, before its first timed row
            bench.result["decoder_prewarm"] = throughput.prewarm_decoder(bench, engine, workload.full.images, PROMPT)
        fn.seconds, fn.calls, misses = 0.0, 0, len(fn.misses)
        stop_at = time.perf_counter() + min(bench.left(), args.row_time_s or math.inf)
        bench.reset_peak()
        bench.sync()
        started = time.perf_counter()
        with submissions(engine) as submitted:
            items = run_path(name, engine, workload.full, stop_at)
        bench.sync()
        seconds = time.perf_counter() - started
        if name == "engine":
            tokens = [o.output_tokens for o in items]
            finish = Counter(o.finish_reason for o in items)
        else:
            tokens = [int(d.metadata["output_tokens"]) for d in items]
            finish = Counter(str(d.metadata["finish_reason"]) for d in items)
        keys = page_keys(name, items, workload)
        expected = [min(workload.lengths[k], args.max_new_tokens) for k in keys]
        fields = throughput.throughput(len(items), seconds, tokens, args.max_new_tokens)
        stats = getattr(engine, "last_stats", None) or {}
        fields.update(
            partial=len(items) < pages,
            output_tokens_per_page=per_page(tokens),
            expected_tokens_per_page=per_page(expected),
            pages_at_expected_length=sum(t == e for t, e in zip(tokens, expected, strict=True)),
            finish_reasons=dict(finish),
            peak_gpu_gib=bench.peak_gib(),
            slots=stats.get("slots"),
            warmup_s=round(warmup_s, 1),
            page_lengths_fn={"calls": fn.calls, "seconds": round(fn.seconds, 3), "misses": len(fn.misses) - misses},
            engine_last_stats=stats,
            pages_submitted=arrival(submitted, started),
        )
        if fields["partial"]:
            fields["stopped"] = "time budget" if bench.left() <= 0 else f"--row-time-s {args.row_time_s}"
        # one call holds every page: its vision time is the row's
        generated.update(keys=keys, tokens=tokens, vision_s=stats.get("vision_s") if name == "engine" else None)
        return fields

    generated: dict[str, Any] = {}
    entry = bench.measure(name, engine.batch_size, body, predicted)
    if entry.get("status") == "ok" and "bound" not in bench.result:
        try:
            bench.result["bound"] = live_bound(bench, engine, workload, **generated)
        except Exception as exc:  # the rows matter more than the bound
            bench.result["notes"].append(f"bound failed: {type(exc).__name__}: {exc}"[:300])
        bench.save()


def live_bound(
    bench: RealisticBench,
    engine: TransformersEngine,
    workload: Workload,
    keys: list[str],
    tokens: list[int],
    vision_s: float | None,
) -> dict[str, Any]:
    """throughput.py's HBM bound at the lengths this run generated (the first row's), not a fixed N."""
    inputs = {}
    for key in dict.fromkeys(keys):
        image = workload.full.images[workload.keys.index(key)]
        inputs[key] = int(engine.encode([image], PROMPT)["input_ids"].numel())
    total = sum(tokens)
    weighted_input = sum(t * inputs[k] for k, t in zip(keys, tokens, strict=True)) / total
    vision_ms = 1000 * vision_s / len(tokens) if vision_s else None
    slots = (getattr(engine, "last_stats", None) or {}).get("slots")
    batch_sizes = sorted({engine.batch_size, int(slots or engine.batch_size)})
    result = throughput.bound(
        bench,
        engine._acquire().model,
        lambda _batch: weighted_input,
        max(inputs.values()),
        vision_ms,
        batch_sizes,
        new_tokens=total / len(tokens),
        kv_new_tokens=sum(t * t for t in tokens) / total,
        full_new_tokens=bench.args.max_new_tokens,
    )
    result["T_avg_pages"] = (
        "the first row's pages, each weighted by the tokens it generated (a slot holds a page that long): "
        "T_avg = sum(L * prompt) / sum(L) + E[L^2] / E[L] / 2; N = E[L]"
    )
    result["live_lengths"] = {"N_mean": round(total / len(tokens), 1), **per_page(tokens)}
    return result


# -- the run ---------------------------------------------------------------------------


def engine_options(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    """Every default but the two that random weights need (and the device, when given)."""
    options: dict[str, Any] = {"ignore_eos": True, "stop_loops": False, "max_new_tokens": args.max_new_tokens}
    if args.device:
        options["device"] = args.device
    if args.compile_decode:
        options["compile_decode"] = True
    return options | extra


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{'row':<22}{'pages':>6}{'pages/s':>9}{'out tok/s':>11}{'tok/page':>15}{'peak GiB':>9}"
        f"{'of bound':>9}{'of 1 call':>10}  status"
    ]
    for e in result["measurements"]:
        if e.get("status") != "ok":
            lines.append(f"{e['path']:<22}{'-':>6}{'-':>9}{'-':>11}{'-':>15}{'-':>9}{'-':>9}{'-':>10}  {e['status']}")
            continue
        tok = e["output_tokens_per_page"]
        spread = f"{tok['mean']:.0f}±{tok['std']:.0f}"
        bound, peak = e.get("fraction_of_bound"), e.get("peak_gpu_gib")
        of_call = e.get("of_one_call", {}).get("pages_per_s")
        status = f"ok (partial: {e['stopped']})" if e.get("partial") else "ok"
        lines.append(
            f"{e['path']:<22}{e['pages']:>6}{e['pages_per_s']:>9.3f}{e['output_tokens_per_s']:>11.1f}{spread:>15}"
            f"{(f'{peak:.2f}' if peak is not None else '-'):>9}{(f'{bound:.1%}' if bound is not None else '-'):>9}"
            f"{(f'{of_call:.1%}' if of_call else '-'):>10}  {status}"
        )
    s = result["distribution"]["summary"]
    lines.append(
        f"page lengths (real PDFs, {s['pages']} text pages): mean {s['mean']}, std {s['std']}, p50 {s['p50']}, "
        f"p90 {s['p90']}, max {s['max']}; budget {result['config']['max_new_tokens']}"
    )
    for row in result.get("bound", {}).get("by_batch_size", []):
        lines.append(f"HBM bound at the live lengths, B={row['batch_size']}: {row['pages_per_s_bound']} pages/s")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path, help="folder; written if it has no config.json")
    parser.add_argument("--tiny", action="store_true", help="write the tiny checkpoint instead (CPU smoke test)")
    parser.add_argument("--pdf-dir", type=Path, default=page_lengths.DEFAULT_PDF_DIR)
    parser.add_argument("--pages", type=int, default=256, help="pages per row: the real pages cycled")
    parser.add_argument("--max-new-tokens", type=int, default=MAX_NEW_TOKENS, help="the default is the point")
    parser.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS))
    parser.add_argument("--warmup-pages", type=int, default=2)
    parser.add_argument("--hold-free-gb", type=float, help="leave only this many GiB of GPU memory free")
    parser.add_argument("--hbm-gbs", type=float, default=4800.0, help="HBM GB/s for the bound (H200 4800, H100 3350)")
    parser.add_argument("--copy-gib", type=float, default=4.0, help="size of the bandwidth copy on the GPU")
    parser.add_argument("--compile-decode", action="store_true", help="the engine option compile_decode=True")
    parser.add_argument(
        "--arrival-order", action="store_true", help="start each call's pages in the order given (comparison)"
    )
    parser.add_argument("--device", help="cuda, cuda:1, cpu, auto (every GPU) or cuda:0,cuda:1; default cuda")
    parser.add_argument("--time-budget-s", type=float, default=480.0, help="whole run, checkpoint and load included")
    parser.add_argument("--row-time-s", type=float, help="stop a row that yields as it goes after this long")
    parser.add_argument("--work-dir", type=Path, help="where the page folders go (default: a new temporary folder)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.pages < 1 or args.warmup_pages < 1:
        parser.error("--pages and --warmup-pages must be >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    bench = RealisticBench(args)
    result = bench.result
    import langchain_core
    import llama_index.core
    import transformers

    result.update(
        command=shlex.join(["python", *sys.argv] if argv is None else ["python", __file__, *argv]),
        device=torch.cuda.get_device_name(bench.device) if bench.cuda else f"cpu ({platform.processor() or '?'})",
        versions={
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "pymupdf": getattr(pymupdf, "__version__", pymupdf.VersionBind),
            "langchain_core": langchain_core.__version__,
            "llama_index_core": llama_index.core.__version__,
            "python": platform.python_version(),
        },
        checkpoint=str(args.checkpoint),
    )
    distribution, source = page_lengths.load(args.pdf_dir)
    result["distribution"] = {"source": source} | {k: v for k, v in distribution.items() if k != "pages"}
    log(f"page lengths ({source}): {distribution['summary']}")

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="realistic-")).resolve()
    started = time.perf_counter()
    workload = build_workload(args.pdf_dir, distribution, args.pages, work, min(args.warmup_pages, args.pages))
    expected = [min(workload.lengths[k], args.max_new_tokens) for k in workload.keys]
    result["workload"] = {
        "pages": args.pages,
        "unique_pages": len(workload.lengths),
        "folders": {"pdf": str(workload.full.pdf_dir), "png": str(workload.full.png_dir)},
        "pdf_files": len(list(workload.full.pdf_dir.iterdir())),
        "dpi": DEFAULT_DPI,
        "expected_tokens_per_page": per_page(expected),
        "pages_at_budget": sum(e == args.max_new_tokens for e in expected),
        "pages_with_drawn_length": sum(k not in workload.measured for k in workload.keys),
        "build_s": round(time.perf_counter() - started, 1),
    }
    result["hash_check"] = check_hashes(workload)
    log(f"workload: {result['workload']}; hash check {result['hash_check']['seconds']} s, no miss on text pages")

    throughput.write_checkpoint(bench)
    if bench.cuda:
        result["bandwidth"] = throughput.measure_bandwidth(bench)
    hold = None
    if args.hold_free_gb is not None:  # after the checkpoint and the copy, before the model: they need room
        if not bench.cuda:
            raise SystemExit("--hold-free-gb needs a CUDA device")
        hold, result["hold"] = hold_gpu_memory(bench.device, args.hold_free_gb)
        bench.held_bytes = result["hold"]["held_bytes"]
        log(f"holding GPU memory: {result['hold']}")

    if args.arrival_order:  # the comparison run: every call's pages start in the order given
        _scheduler.longest_first = lambda images: list(range(len(images)))
    engine = TransformersEngine(str(args.checkpoint), **engine_options(args))
    fn = PageLengths(workload.lengths, [p["tokens"] for p in distribution["pages"] if p["tokens"] is not None])
    engine._page_lengths = fn  # benchmark-only hook: each page stops at min(fn(image), max_new_tokens)
    started = time.perf_counter()
    engine._acquire()
    result["model_load_s"] = round(time.perf_counter() - started, 1)
    result["config"] = {
        "max_new_tokens": engine.max_new_tokens,
        "max_batch_size": engine.batch_size,
        "vision_batch_size": engine.vision_batch_size,
        "engine_options": "ignore_eos=True, stop_loops=False, every other option default; _page_lengths hook"
        + ("; compile_decode=True" if args.compile_decode else "")
        + ("; pages in arrival order (not the most text first)" if args.arrival_order else ""),
        "prompt": PROMPT,
        "cache": "off (cache=False) for every loader and reader",
        "rows": args.rows,
        "row_time_s": args.row_time_s,
        "time_budget_s": args.time_budget_s,
        "dtype": str(engine.dtype),
    }
    bench.save()
    for name in args.rows:
        run_row(bench, name, engine, workload, fn)
    result["page_lengths_fn_misses"] = len(fn.misses)
    if any(e.get("page_lengths_fn", {}).get("calls") == 0 for e in result["measurements"]):
        result["notes"].append("the engine never called _page_lengths in some rows: their pages ran to the budget")
    if not bench.cuda:
        result["notes"].append("not on a GPU: the bound assumes HBM bandwidth and means nothing here")
    engine.close()
    del hold
    bench.save()
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    print(table(result), flush=True)


if __name__ == "__main__":
    main()
