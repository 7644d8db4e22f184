"""A realistic 4-page paper as DeepSeek-OCR-2 would write it, for adapter and chunking tests.

Each PDF page has its own width (600 + index points), so the scripted engine knows which
page it is looking at from the rendered image alone (width = (600 + index) * 2 px at 144 DPI).
The model text is authored here, in the model's grounding format: two-column reading order,
headings all written as ``##`` (levels come from the numbering), a table that continues on
the next page without a header, display equations and a figure with its caption.
"""

from __future__ import annotations

from pathlib import Path

import pymupdf

from deepseek_ocr2_loaders.testing import ScriptedEngine

PAGES = [
    # page 1: title, abstract, section 1 in two columns
    "<|ref|>title<|/ref|><|det|>[[120, 40, 880, 80]]<|/det|>\n# Optical Compression for Long Documents\n\n"
    "<|ref|>text<|/ref|><|det|>[[100, 100, 900, 180]]<|/det|>\nWe study how page images compress text. "
    "A page of a thousand words fits in a few hundred vision tokens.\n\n"
    "<|ref|>sub_title<|/ref|><|det|>[[60, 200, 480, 225]]<|/det|>\n## 1 Introduction\n\n"
    "<|ref|>text<|/ref|><|det|>[[60, 230, 480, 900]]<|/det|>\nThe left column starts the introduction. "
    "Readers scan the left column first.\n\n"
    "<|ref|>text<|/ref|><|det|>[[520, 100, 940, 900]]<|/det|>\nThe right column continues the introduction "
    "after the left one ends.",
    # page 2: section 3 / 3.2 and the first part of a table
    "<|ref|>sub_title<|/ref|><|det|>[[60, 40, 500, 70]]<|/det|>\n## 3 Methods\n\n"
    "<|ref|>text<|/ref|><|det|>[[60, 80, 940, 200]]<|/det|>\nWe render every page at 144 DPI.\n\n"
    "<|ref|>sub_title<|/ref|><|det|>[[60, 210, 500, 240]]<|/det|>\n## 3.2 Data\n\n"
    "<|ref|>equation<|/ref|><|det|>[[200, 250, 800, 300]]<|/det|>\n\\[ r = \\frac{T_{text}}{T_{vision}} \\]\n\n"
    "<|ref|>table_caption<|/ref|><|det|>[[60, 700, 940, 720]]<|/det|>\nTable 1: Compression per corpus.\n\n"
    "<|ref|>table<|/ref|><|det|>[[60, 730, 940, 990]]<|/det|>\n<table><tr><td>Corpus</td><td>Pages</td>"
    "<td>Ratio</td></tr><tr><td>arXiv</td><td>120</td><td>9.8</td></tr><tr><td>News</td><td>80</td>"
    "<td>7.1</td></tr></table>",
    # page 3: the table continues (same 3 columns, no header), then more text and a figure
    "<|ref|>table<|/ref|><|det|>[[60, 40, 940, 200]]<|/det|>\n<table><tr><td>Books</td><td>300</td>"
    "<td>11.2</td></tr><tr><td>Forms</td><td>40</td><td>5.5</td></tr></table>\n\n"
    "<|ref|>text<|/ref|><|det|>[[60, 220, 940, 400]]<|/det|>\nThe data section ends with a note on scans.\n\n"
    "<|ref|>image<|/ref|><|det|>[[100, 420, 700, 800]]<|/det|>\n\n"
    "<|ref|>image_caption<|/ref|><|det|>[[100, 810, 700, 840]]<|/det|>\nFigure 1: Ratio against page density.",
    # page 4: section 4 with display math
    "<|ref|>sub_title<|/ref|><|det|>[[60, 40, 500, 70]]<|/det|>\n## 4 Results\n\n"
    "<|ref|>text<|/ref|><|det|>[[60, 80, 940, 300]]<|/det|>\n"
    "Accuracy stays above 96 percent below tenfold compression.\n\n"
    "<|ref|>equation<|/ref|><|det|>[[200, 320, 800, 380]]<|/det|>\n$$\nacc(r) \\approx 0.97 \\quad r < 10\n$$",
]


def write_paper(path: Path) -> Path:
    """A 4-page PDF whose page i is (600 + i) x 792 points."""
    doc = pymupdf.open()
    for index in range(len(PAGES)):
        doc.new_page(width=600 + index, height=792).insert_text((72, 72), f"Page {index + 1}")
    doc.save(path)
    return path


def paper_engine(batch_size: int = 3) -> ScriptedEngine:
    """Answers each page of :func:`write_paper` with its authored model text; it pickles."""
    return ScriptedEngine(_page_text, batch_size=batch_size, name="scripted-deepseek-ocr2")


def _page_text(image, prompt):
    return PAGES[round(image.width / 2) - 600]
