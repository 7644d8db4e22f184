"""Pages/s on 1 GPU and on N GPUs of one host, in one run: one engine process per GPU.

Each worker process sees one GPU (``CUDA_VISIBLE_DEVICES``), loads the full-size random
bf16 checkpoint through ``from_pretrained``, warms up (CUDA-graph capture included), waits
for a common start signal, reads its share of real pages (144 DPI) with a fixed output
length, and reports wall-clock start and end. Throughput over N GPUs is all pages divided
by (last end - first start); scaling efficiency = N-GPU pages/s / (N x 1-GPU pages/s).

    python benchmarks/multi_gpu.py --checkpoint /tmp/full --gpus 2 --pages-per-gpu 256 \
        --new-tokens 1000 --slots 256 --json benchmarks/results/throughput-2gpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PDFS = HERE.parent / "tests" / "data" / "real-pdfs"


def worker(args: argparse.Namespace) -> None:
    import torch

    from deepseek_ocr2_loaders import TransformersEngine
    from deepseek_ocr2_loaders.sources import open_source

    images = []
    for pdf in sorted(PDFS.glob("*.pdf")):
        with open_source(pdf) as document:
            images.extend(page.image for page in document.iter_pages())
    images = (images * (args.pages_per_gpu // len(images) + 1))[: args.pages_per_gpu]
    engine = TransformersEngine(
        str(args.checkpoint),
        max_batch_size=args.slots,
        max_new_tokens=args.new_tokens,
        ignore_eos=True,
        stop_loops=False,
    )
    engine.generate(images[: args.slots], "<image>\nFree OCR.")  # warm-up at full width: graph captured
    torch.cuda.synchronize()
    Path(args.ready).touch()
    while not Path(args.start).exists():
        time.sleep(0.01)
    started = time.time()
    outputs = engine.generate(images, "<image>\nFree OCR.")
    torch.cuda.synchronize()
    ended = time.time()
    assert all(o.output_tokens == args.new_tokens for o in outputs)
    print(
        json.dumps(
            {
                "gpu": os.environ.get("CUDA_VISIBLE_DEVICES"),
                "pages": len(outputs),
                "start": started,
                "end": ended,
                "stats": engine.last_stats,
                "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1),
            }
        ),
        flush=True,
    )


def run_group(args: argparse.Namespace, gpus: list[int], tag: str) -> dict[str, object]:
    flags = Path(f"/tmp/multi_gpu_{tag}")
    flags.mkdir(exist_ok=True)
    start = flags / "start"
    start.unlink(missing_ok=True)
    procs = []
    for gpu in gpus:
        ready = flags / f"ready{gpu}"
        ready.unlink(missing_ok=True)
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": str(gpu)}
        command = [
            sys.executable,
            __file__,
            "--worker",
            "--checkpoint",
            str(args.checkpoint),
            "--pages-per-gpu",
            str(args.pages_per_gpu),
            "--new-tokens",
            str(args.new_tokens),
            "--slots",
            str(args.slots),
            "--ready",
            str(ready),
            "--start",
            str(start),
        ]
        procs.append((ready, subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)))
    while not all(ready.exists() for ready, _ in procs):
        if any(proc.poll() not in (None, 0) for _, proc in procs):
            raise SystemExit(f"a worker failed while warming up ({tag})")
        time.sleep(0.05)
    start.touch()
    reports = []
    for _, proc in procs:
        out, _ = proc.communicate()
        reports.append(json.loads(out.strip().splitlines()[-1]))
    pages = sum(int(r["pages"]) for r in reports)
    seconds = max(float(r["end"]) for r in reports) - min(float(r["start"]) for r in reports)
    return {
        "gpus": len(gpus),
        "pages": pages,
        "seconds": round(seconds, 2),
        "pages_per_s": round(pages / seconds, 3),
        "workers": reports,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--gpus", type=int, default=2)
    parser.add_argument("--pages-per-gpu", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=1000)
    parser.add_argument("--slots", type=int, default=256)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--ready")
    parser.add_argument("--start")
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if not (args.checkpoint / "config.json").exists():
        from _checkpoint import write_full_size_checkpoint

        write_full_size_checkpoint(args.checkpoint)
    one = run_group(args, [0], "one")
    many = run_group(args, list(range(args.gpus)), "many")
    efficiency = many["pages_per_s"] / (args.gpus * one["pages_per_s"])  # type: ignore[operator]
    result = {
        "new_tokens": args.new_tokens,
        "slots": args.slots,
        "pages_per_gpu": args.pages_per_gpu,
        "one_gpu": one,
        f"{args.gpus}_gpus": many,
        "scaling_efficiency": round(efficiency, 3),
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(
        f"1 GPU: {one['pages_per_s']} pages/s; {args.gpus} GPUs: {many['pages_per_s']} pages/s; "
        f"scaling efficiency {efficiency:.3f}"
    )


if __name__ == "__main__":
    main()
