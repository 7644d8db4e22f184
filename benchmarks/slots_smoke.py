"""Quick GPU check of the slot decoder on the full-size architecture: does it run, how fast.

python benchmarks/slots_smoke.py --checkpoint /tmp/full --pages 64 --slots 64 --new-tokens 300
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from pathlib import Path

import torch

from deepseek_ocr2_loaders import TransformersEngine
from deepseek_ocr2_loaders.sources import open_source
from deepseek_ocr2_loaders.testing import make_random_checkpoint

CONFIG = Path(__file__).parent / "configs" / "full-size-config.json"
PDFS = Path(__file__).parent.parent / "tests" / "data" / "real-pdfs"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--pages", type=int, default=64)
    parser.add_argument("--slots", type=int, nargs="+", default=[64])
    parser.add_argument("--new-tokens", type=int, default=300)
    args = parser.parse_args()
    if not (args.checkpoint / "config.json").exists():
        config = json.loads(CONFIG.read_text())
        make_random_checkpoint(
            args.checkpoint,
            vision_config=config["vision_config"],
            text_config=config["text_config"],
            dtype="bfloat16",
            device="cuda",
        )
    images = []
    for pdf in sorted(PDFS.glob("*.pdf")):
        with open_source(pdf) as document:
            images.extend(page.image for page in document.iter_pages())
    images = (images * (args.pages // len(images) + 1))[: args.pages]
    for slots in args.slots:
        engine = TransformersEngine(
            str(args.checkpoint),
            max_batch_size=slots,
            max_new_tokens=args.new_tokens,
            ignore_eos=True,
            stop_loops=False,
        )
        try:
            engine.generate(images[:2], "<image>\nFree OCR.")  # warm-up and graph capture at 2 slots
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            started = time.perf_counter()
            outputs = engine.generate(images, "<image>\nFree OCR.")
            torch.cuda.synchronize()
            seconds = time.perf_counter() - started
            tokens = sum(o.output_tokens for o in outputs)
            print(
                json.dumps(
                    {
                        "slots": slots,
                        "pages": len(images),
                        "seconds": round(seconds, 2),
                        "pages_per_s": round(len(images) / seconds, 3),
                        "tok_per_s": round(tokens / seconds),
                        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1),
                        "stats": {k: round(v, 3) for k, v in engine.last_stats.items()},
                    }
                ),
                flush=True,
            )
        except Exception:  # a smoke test reports every failure in full
            traceback.print_exc()
        engine.close()


if __name__ == "__main__":
    main()
