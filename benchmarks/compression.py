"""Text tokens per page (PDF text layer, tiktoken cl100k_base) against vision tokens.

Compact = the 1024 global view only (257 tokens); full = global view plus 768 crops at
144 DPI. No model needed. Writes benchmarks/results/compression.json.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from deepseek_ocr2_loaders.compression import compression_stats
from deepseek_ocr2_loaders.sources import open_source

ROOT = Path(__file__).resolve().parents[1]
PDFS = ROOT / "tests" / "data" / "real-pdfs"
OUT = ROOT / "benchmarks" / "results" / "compression.json"


def main() -> None:
    documents = []
    for path in sorted(PDFS.rglob("*.pdf")):
        with open_source(path, dpi=144) as doc:
            pages = []
            for index in range(doc.total_pages):
                page = doc.load_page(index)
                stats = compression_stats(*page.image.size, page.text or "")
                pages.append({"page": index + 1, "pixels": list(page.image.size), **stats.to_dict()})
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
    )
    for d in documents:
        text = statistics.median(p["text_tokens"] for p in d["page_stats"])
        full = statistics.median(p["vision_tokens_full"] for p in d["page_stats"])
        span = f"{d['min_ratio']:.2f}-{d['max_ratio']:.2f}"
        print(f"{d['file'][:44]:44} {d['pages']:>5} {text:>14.0f} {full:>14.0f} {d['median_ratio']:>9.2f} {span:>13}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"compact_vision_tokens": 257, "dpi": 144, "documents": documents}, indent=2))
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
