"""Fixtures for the sources tests: PDFs built with PyMuPDF in tmp_path or memory.

The real PDFs come from the ``real_pdfs`` fixture of ``tests/conftest.py``
(``tests/data/real-pdfs``, copied from ``../shared/fixtures/real-pdfs``: nothing is skipped).
"""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

# The generated labelled PDF: page widths and the labels it defines.
LABELLED_WIDTHS = (200, 210, 220, 230, 240)
LABELS = ("i", "ii", "A-1", "A-2", "A-3")


@pytest.fixture
def labelled_pdf(tmp_path: Path) -> Path:
    """Five pages, widths LABELLED_WIDTHS, labelled LABELS, each with "Page number N" as text."""
    doc = pymupdf.open()
    for number, width in enumerate(LABELLED_WIDTHS, start=1):
        page = doc.new_page(width=width, height=300)
        page.insert_text((20, 50), f"Page number {number}", fontsize=12)
    doc.set_page_labels(
        [
            {"startpage": 0, "prefix": "", "style": "r", "firstpagenum": 1},
            {"startpage": 2, "prefix": "A-", "style": "D", "firstpagenum": 1},
        ]
    )
    path = tmp_path / "labelled.pdf"
    doc.save(path)
    return path


@pytest.fixture
def encrypted_pdf(tmp_path: Path) -> Path:
    """A 2-page AES-256 PDF whose user password is ``secret``."""
    doc = pymupdf.open()
    for _ in range(2):
        doc.new_page(width=100, height=150)
    path = tmp_path / "encrypted.pdf"
    doc.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="secret", owner_pw="owner-secret")
    return path


@pytest.fixture
def zero_page_pdf() -> bytes:
    """A well-formed PDF (valid xref) whose page tree is empty; PyMuPDF refuses to write one."""
    body = b"%PDF-1.4\n"
    offsets = []
    for number, obj in enumerate((b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[]/Count 0>>"), start=1):
        offsets.append(len(body))
        body += b"%d 0 obj\n%s\nendobj\n" % (number, obj)
    xref = len(body)
    body += b"xref\n0 3\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    body += b"trailer\n<</Size 3/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % xref
    return body
