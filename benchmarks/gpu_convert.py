"""One end-to-end ``convert`` run on a GPU with the full-size DeepSeek-OCR-2 architecture.

Random bf16 weights (speed and memory do not depend on weight values), the real loading
path (a checkpoint folder written with ``make_random_checkpoint`` and read back through
``from_pretrained``), a real multi-page PDF rendered at 144 DPI. Prints pages/s, output
tokens/s, peak GPU memory, and writes the figures as JSON.

    python benchmarks/gpu_convert.py --pdf PATH.pdf --checkpoint /tmp/full \
        --max-new-tokens 512 --batch-size 16 --json results.json
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path

import torch
from _checkpoint import write_full_size_checkpoint

from deepseek_ocr2_loaders import TransformersEngine, convert


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pdf", required=True, type=Path)
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--batch-size", type=int, nargs="+", default=[16])
    parser.add_argument("--vision-batch-size", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import transformers

    result: dict[str, object] = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "pdf": args.pdf.name,
        "max_new_tokens": args.max_new_tokens,
        "vision_batch_size": args.vision_batch_size,
    }
    if not (args.checkpoint / "config.json").exists():
        started = time.perf_counter()
        write_full_size_checkpoint(args.checkpoint)
        result["checkpoint_write_s"] = round(time.perf_counter() - started, 1)
        torch.cuda.empty_cache()
    runs = []
    for batch_size in args.batch_size:
        engine = TransformersEngine(
            str(args.checkpoint),
            max_new_tokens=args.max_new_tokens,
            max_batch_size=batch_size,
            vision_batch_size=args.vision_batch_size,
        )
        started = time.perf_counter()
        loaded = engine._acquire()
        load_s = time.perf_counter() - started
        params = sum(p.numel() for p in loaded.model.parameters())
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        pages = list(convert(args.pdf, engine=engine))
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - started
        output_tokens = sum(p.output_tokens for p in pages)
        run = {
            "batch_size": batch_size,
            "parameters": params,
            "model_load_s": round(load_s, 1),
            "pages": len(pages),
            "seconds": round(elapsed, 2),
            "pages_per_s": round(len(pages) / elapsed, 3),
            "output_tokens": output_tokens,
            "output_tokens_per_s": round(output_tokens / elapsed, 1),
            "vision_tokens": [p.vision_tokens for p in pages],
            "finish_reasons": dict(collections.Counter(str(p.finish_reason) for p in pages)),
            "statuses": dict(collections.Counter(p.status.value for p in pages)),
            "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        }
        engine.close()
        runs.append(run)
        print(json.dumps(run), flush=True)
    result["runs"] = runs
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}))
    for run in runs:
        print(
            f"batch {run['batch_size']:>3}: {run['pages']} pages in {run['seconds']} s = {run['pages_per_s']} pages/s, "
            f"{run['output_tokens_per_s']} output tok/s, peak {run['peak_gpu_gib']} GiB, {run['finish_reasons']}"
        )


if __name__ == "__main__":
    main()
