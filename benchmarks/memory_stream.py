"""Peak memory while streaming a long PDF through ``DeepSeekOCR2Loader.lazy_load``.

Generates an N-page PDF (A5, text on every page), builds the tiny random checkpoint,
and streams every page through the real TransformersEngine on the CPU with a small
``max_new_tokens``. Samples the resident set size (VmRSS) as pages arrive, so a leak or an
unbounded buffer shows up as growth between the early and the late samples.

    python benchmarks/memory_stream.py --pages 1000 --json benchmarks/results/memory-stream.json
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import pymupdf

from deepseek_ocr2_loaders.langchain import DeepSeekOCR2Loader
from deepseek_ocr2_loaders.testing import make_tiny_checkpoint


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def make_pdf(path: Path, pages: int) -> None:
    """A5 pages (420x595 pt: 840x1190 px at 144 DPI, a global view and 2 crops each)."""
    doc = pymupdf.open()
    for number in range(pages):
        page = doc.new_page(width=420, height=595)
        page.insert_text((48, 60), f"Section {number // 10 + 1}", fontsize=16)
        text = f"Page {number + 1}. " + "Lorem ipsum dolor sit amet. " * 40
        page.insert_textbox(pymupdf.Rect(48, 80, 372, 560), text)
    doc.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--max-new-tokens", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "long.pdf"
        make_pdf(pdf, args.pages)
        checkpoint = make_tiny_checkpoint(Path(tmp) / "tiny")
        loader = DeepSeekOCR2Loader(
            pdf,
            model=str(checkpoint),
            device="cpu",
            max_new_tokens=args.max_new_tokens,
            max_batch_size=args.batch_size,
            cache=False,
        )
        samples: list[tuple[int, float]] = [(0, rss_mib())]
        started = time.perf_counter()
        count = 0
        for document in loader.lazy_load():
            count += 1
            assert document.metadata["page"] == count - 1
            if count % 50 == 0 or count == args.pages:
                samples.append((count, round(rss_mib(), 1)))
                print(
                    f"{count:>5} pages  {samples[-1][1]:8.1f} MiB RSS  {time.perf_counter() - started:7.1f} s",
                    flush=True,
                )
        elapsed = time.perf_counter() - started
    early = next(rss for pages, rss in samples if pages >= min(100, args.pages))
    late = samples[-1][1]
    result = {
        "pages": count,
        "pdf_pages": args.pages,
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "seconds": round(elapsed, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_at_100_pages_mib": early,
        "rss_at_end_mib": late,
        "growth_100_to_end_mib": round(late - early, 1),
        "samples": samples,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
