"""Text tokens per page (PDF text layer, tiktoken cl100k_base) against vision tokens.

Compact = the 1024 global view only (257 tokens); full = global view plus 768 crops at
144 DPI. Page image = what a vision-capable downstream model spends on the page sent as an
image (longer side 1024 px) under each provider's published formula. No model needed.
Writes benchmarks/results/compression.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from deepseek_ocr2_loaders.compression import (
    DEFAULT_IMAGE_SIDE,
    anthropic_image_tokens,
    compression_stats,
    fit_size,
    max_image_tokens,
    openai_patch_tokens,
    openai_tile_tokens,
)
from deepseek_ocr2_loaders.sources import open_source

ROOT = Path(__file__).resolve().parents[1]
PDFS = ROOT / "tests" / "data" / "real-pdfs"
OUT = ROOT / "benchmarks" / "results" / "compression.json"
ESTIMATES = {
    "openai_tile": openai_tile_tokens,
    "openai_patch": openai_patch_tokens,
    "anthropic": anthropic_image_tokens,
    "max": max_image_tokens,
}


def page_image_tokens(width: int, height: int) -> dict[str, int]:
    """Downstream tokens of the page sent as an image no larger than DEFAULT_IMAGE_SIDE."""
    size = fit_size(width, height, DEFAULT_IMAGE_SIDE)
    return {name: estimate(*size) for name, estimate in ESTIMATES.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=OUT, help="where to write the result")
    out = parser.parse_args().json
    documents = []
    for path in sorted(PDFS.rglob("*.pdf")):
        with open_source(path, dpi=144) as doc:
            pages = []
            for index in range(doc.total_pages):
                page = doc.load_page(index)
                stats = compression_stats(*page.image.size, page.text or "")
                pages.append(
                    {
                        "page": index + 1,
                        "pixels": list(page.image.size),
                        **stats.to_dict(),
                        "page_image_tokens": page_image_tokens(*page.image.size),
                    }
                )
        ratios = [p["compression_ratio"] for p in pages]
        documents.append(
            {
                "file": str(path.relative_to(PDFS)),
                "pages": len(pages),
                "median_ratio": round(statistics.median(ratios), 3),
                "min_ratio": min(ratios),
                "max_ratio": max(ratios),
                "page_stats": pages,
            }
        )
    print(
        f"{'document':44} {'pages':>5} {'text tok (med)':>14} {'full vis (med)':>14} {'ratio med':>9} {'min-max':>13}"
        f" {'page image tok (med, max est.)':>30}"
    )
    for d in documents:
        text = statistics.median(p["text_tokens"] for p in d["page_stats"])
        full = statistics.median(p["vision_tokens_full"] for p in d["page_stats"])
        image = statistics.median(p["page_image_tokens"]["max"] for p in d["page_stats"])
        span = f"{d['min_ratio']:.2f}-{d['max_ratio']:.2f}"
        print(
            f"{d['file'][:44]:44} {d['pages']:>5} {text:>14.0f} {full:>14.0f} {d['median_ratio']:>9.2f} {span:>13}"
            f" {image:>30.0f}"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"compact_vision_tokens": 257, "dpi": 144, "page_image_side": DEFAULT_IMAGE_SIDE, "documents": documents},
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
