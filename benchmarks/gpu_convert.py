"""``convert`` end to end on a GPU: render, engine, parse, page results.

The full-size DeepSeek-OCR-2 architecture with random bf16 weights (speed and memory do not
depend on weight values) through the real loading path (a checkpoint folder written with
``make_random_checkpoint`` and read back through ``from_pretrained``). The document is the
real PDFs of ``tests/data/real-pdfs`` (or ``--pdf``) joined and cycled to ``--pages`` pages,
rendered at 144 DPI. EOS is blocked and the loop stop is off, so every page writes exactly
``--max-new-tokens`` tokens, as in ``throughput.py``; the page cache is off. Prints pages/s,
output tokens/s, peak GPU memory, and writes the figures as JSON.

    python benchmarks/gpu_convert.py --checkpoint /tmp/full --pages 256 --max-new-tokens 1000 \
        --batch-size 128 256 --json results.json
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
import time
from pathlib import Path

import pymupdf
import torch
from _checkpoint import write_full_size_checkpoint

from deepseek_ocr2_loaders import TransformersEngine, convert

REAL_PDFS = Path(__file__).resolve().parents[1] / "tests" / "data" / "real-pdfs"


def long_document(sources: list[Path], pages: int, path: Path) -> Path:
    """The sources' pages, cycled until the document has ``pages`` pages."""
    with pymupdf.open() as out:
        while out.page_count < pages:
            for source in sources:
                with pymupdf.open(source) as pdf:
                    out.insert_pdf(pdf, to_page=min(pdf.page_count, pages - out.page_count) - 1)
                if out.page_count >= pages:
                    break
        out.save(path)
    return path


def timed(engine: TransformersEngine) -> list[float]:
    """Seconds of each ``engine.generate`` call from now on (the rest of ``convert`` is outside)."""
    seconds: list[float] = []
    generate = engine.generate

    def wrapper(images: list, prompt: str) -> list:
        begun = time.perf_counter()
        try:
            return generate(images, prompt)
        finally:
            seconds.append(time.perf_counter() - begun)

    engine.generate = wrapper  # type: ignore[method-assign]
    return seconds


def direct(engine: TransformersEngine, document: Path) -> dict[str, object]:
    """``engine.generate`` on every page of ``document`` rendered beforehand: the engine alone."""
    from deepseek_ocr2_loaders.model._prompts import resolve_prompt
    from deepseek_ocr2_loaders.sources import open_source

    with open_source(document) as source:
        images = [source.load_page(index).image for index in range(source.total_pages)]
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    outputs = engine.generate(images, resolve_prompt("markdown"))
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    return {
        "pages": len(outputs),
        "seconds": round(elapsed, 2),
        "pages_per_s": round(len(outputs) / elapsed, 3),
        "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        "engine_last_stats": engine.last_stats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdf", type=Path, help="one PDF to cycle (default: every PDF in tests/data/real-pdfs)")
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--pages", type=int, default=256)
    parser.add_argument("--max-new-tokens", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, nargs="+", help="max_batch_size values (default: the engine's)")
    parser.add_argument("--vision-batch-size", type=int, help="default: the engine's")
    parser.add_argument(
        "--direct", action="store_true", help="also time engine.generate alone on the same pages, pre-rendered"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import transformers

    sources = [args.pdf] if args.pdf else sorted(REAL_PDFS.rglob("*.pdf"))
    document = long_document(sources, args.pages, Path(tempfile.mkdtemp()) / "long.pdf")
    result: dict[str, object] = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "document": f"{args.pages} pages cycled from {[s.name for s in sources]}",
        "max_new_tokens": args.max_new_tokens,
        "decoding": "greedy, EOS blocked, loop stop off: every page writes max_new_tokens",
    }
    if not (args.checkpoint / "config.json").exists():
        started = time.perf_counter()
        write_full_size_checkpoint(args.checkpoint)
        result["checkpoint_write_s"] = round(time.perf_counter() - started, 1)
        torch.cuda.empty_cache()
    runs = []
    for batch_size in args.batch_size or [None]:
        engine = TransformersEngine(
            str(args.checkpoint),
            max_new_tokens=args.max_new_tokens,
            max_batch_size=batch_size,
            vision_batch_size=args.vision_batch_size,
            ignore_eos=True,
            stop_loops=False,
        )
        started = time.perf_counter()
        loaded = engine._acquire()
        load_s = time.perf_counter() - started
        list(convert(document, engine=engine, pages=[0, 1], cache=False))  # warm-up: kernels, CUDA graph
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        in_engine = timed(engine)
        started = time.perf_counter()
        pages = list(convert(document, engine=engine, cache=False))
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - started
        output_tokens = sum(p.output_tokens for p in pages)
        run = {
            "max_batch_size": engine.batch_size,
            "vision_batch_size": engine.vision_batch_size,
            "parameters": sum(p.numel() for p in loaded.model.parameters()),
            "model_load_s": round(load_s, 1),
            "pages": len(pages),
            "seconds": round(elapsed, 2),
            "pages_per_s": round(len(pages) / elapsed, 3),
            "output_tokens": output_tokens,
            "output_tokens_per_s": round(output_tokens / elapsed, 1),
            "finish_reasons": dict(collections.Counter(str(p.finish_reason) for p in pages)),
            "statuses": dict(collections.Counter(p.status.value for p in pages)),
            "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
            "engine_generate_s": round(sum(in_engine), 2),
            "engine_calls": len(in_engine),
            "engine_last_stats": engine.last_stats,
        }
        if args.direct:
            run["direct"] = direct(engine, document)
        engine.close()
        runs.append(run)
        print(json.dumps(run), flush=True)
    result["runs"] = runs
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    for run in runs:
        print(
            f"max_batch_size {run['max_batch_size']:>3}: {run['pages']} pages in {run['seconds']} s = "
            f"{run['pages_per_s']} pages/s, {run['output_tokens_per_s']} output tok/s, peak {run['peak_gpu_gib']} GiB"
        )


if __name__ == "__main__":
    main()
