"""The engine at the default token budget (8,192) with every page stopped at a fixed length, on one GPU.

Full-size architecture, random bf16 weights (``/tmp/full``, written if missing), real pages of
tests/data/real-pdfs at 144 DPI cycled; ``ignore_eos`` and the benchmark-only ``_page_lengths``
hook stop every page at ``--tokens`` tokens while the engine keeps ``max_new_tokens=8192``, so
the KV cache and attention are sized as users run them. ``--hold-free-gb`` leaves only that much
GPU memory free before the model loads (a smaller card). One untimed warm-up call of 8 pages.

    python benchmarks/default_budget.py --json benchmarks/results/default-budget-h200.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from _checkpoint import write_full_size_checkpoint  # benchmarks/ is on sys.path: scripts run from there
from throughput import render_pages

from deepseek_ocr2_loaders import TransformersEngine
from deepseek_ocr2_loaders.model import DEFAULT_PROMPT

ROWS = {  # name: (pages, max_batch_size, GiB left free)
    "fixed1000-b128": (256, None, None),
    "fixed1000-b256": (256, 256, None),
    "fixed1000-24gb": (96, None, 24),
    "fixed1000-16gb": (48, None, 16),
}


def run(name: str, images: list, checkpoint: Path, tokens: int) -> dict:
    pages, batch, hold = ROWS[name]
    held = None
    if hold:
        free, _ = torch.cuda.mem_get_info()
        held = torch.empty(int(free - hold * 2**30), dtype=torch.uint8, device="cuda")
    torch.cuda.reset_peak_memory_stats()
    engine = TransformersEngine(str(checkpoint), ignore_eos=True, stop_loops=False, max_batch_size=batch)
    engine._page_lengths = lambda image: tokens
    batch_images = [images[i % len(images)] for i in range(pages)]
    try:
        engine.generate(batch_images[:8], DEFAULT_PROMPT)  # warm-up: load, kernels, graphs
        torch.cuda.synchronize()
        started = time.perf_counter()
        outputs = engine.generate(batch_images, DEFAULT_PROMPT)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        row = {
            "name": name,
            "pages": pages,
            "s": seconds,
            "pages_s": pages / seconds,
            "tok_s": sum(o.output_tokens for o in outputs) / seconds,
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30 - (held.numel() / 2**30 if held is not None else 0),
            "slots": engine._decoder.slots,
            "blocks": engine._decoder.blocks,
            "vision_batch": engine.vision_batch_size,
            "stats": engine.last_stats,
        }
    except Exception as exc:  # a row that fails is a result too
        row = {"name": name, "error": repr(exc)[:500]}
    engine.close()
    del held
    torch.cuda.empty_cache()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=Path("/tmp/full"))
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not (args.checkpoint / "config.json").exists():
        write_full_size_checkpoint(args.checkpoint)
    images, _ = render_pages(Path(__file__).resolve().parent.parent / "tests" / "data" / "real-pdfs")
    results = []
    for name in args.rows:
        results.append(run(name, images, args.checkpoint, args.tokens))
        print(json.dumps(results[-1]), flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
