"""benchmarks/compression.py over the real PDFs: every page counted, figures consistent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pymupdf

from deepseek_ocr2_loaders.compression import max_image_tokens

REPO = Path(__file__).resolve().parents[2]


def test_every_page_of_every_real_pdf_gets_its_token_counts(tmp_path: Path, real_pdfs: Path) -> None:
    out = tmp_path / "compression.json"
    run = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "compression.py"), "--json", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.read_text())
    documents = {d["file"]: d for d in result["documents"]}
    expected = {str(p.relative_to(real_pdfs)): p for p in real_pdfs.rglob("*.pdf")}
    assert documents.keys() == expected.keys()
    for name, path in expected.items():
        with pymupdf.open(path) as pdf:
            assert documents[name]["pages"] == pdf.page_count
        assert name[:44] in run.stdout
    newspaper = documents["newspaper.pdf"]["page_stats"][0]
    assert newspaper["vision_tokens"] == 257
    assert newspaper["compression_ratio"] == round(newspaper["text_tokens"] / 257, 3) > 10
    width, height = newspaper["pixels"]
    scale = min(1.0, result["page_image_side"] / max(width, height))
    assert newspaper["page_image_tokens"]["max"] == max_image_tokens(round(width * scale), round(height * scale))
