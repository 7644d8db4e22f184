"""A small corpus of the real PDFs, an edit of one of them, and an engine that reads them.

The engine answers each page image with Markdown derived from the image's pixels, so an
edited page reads differently and an unchanged one identically, with no model. Embeddings
in the store tests are deterministic fakes: no embedding model can be downloaded here.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pymupdf

from deepseek_ocr2_loaders.testing import ScriptedEngine

REAL_PDFS = Path(__file__).parent / "data" / "real-pdfs"
NOTES = REAL_PDFS / "mattsnotes.pdf"  # 3 pages
LETTER = REAL_PDFS / "lincoln_letter.pdf"
OPTIONS = {"chunk_size": 24, "cache": False}


def pixel_engine() -> ScriptedEngine:
    """Answers a page with a heading and paragraphs named after the page image's digest.

    The number of paragraphs (2 to 5) also comes from the digest, so an edit changes how
    many chunks a page gives: stale chunks then show up as extra ids.
    """

    def handler(image, prompt):
        digest = hashlib.sha256(image.tobytes()).hexdigest()[:12]
        paragraphs = "\n\n".join(
            f"Paragraph {n} of page {digest} says something worth retrieving about {digest[n:]}."
            for n in range(2 + int(digest[0], 16) % 4)
        )
        return f"# Notes {digest}\n\n## Part A\n\n{paragraphs}\n\n## Part B\n\nThe end of {digest}."

    return ScriptedEngine(handler, name="pixel-engine")


def corpus(folder: Path) -> Path:
    """A folder with two real PDFs and a byte-identical copy of one of them."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(NOTES, folder / "notes.pdf")
    shutil.copy(LETTER, folder / "letter.pdf")
    shutil.copy(NOTES, folder / "notes-copy.pdf")
    return folder


def edit(path: Path, *, drop_last_page: bool = False) -> None:
    """Edit a PDF in place: stamp text on its first page and, optionally, drop its last page."""
    doc = pymupdf.open(path)
    doc[0].insert_text((72, 72), "EDITED", fontsize=40)
    if drop_last_page:
        doc.delete_page(doc.page_count - 1)
    data = doc.tobytes()
    doc.close()
    path.write_bytes(data)
