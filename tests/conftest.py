"""Fixtures shared by every test folder: the real PDFs and the tiny checkpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymupdf
import pytest

REPO = Path(__file__).resolve().parents[1]
# copies of ../shared/fixtures/real-pdfs (openly licensed, see SOURCE.md there) so CI needs nothing outside
REAL_PDFS = REPO / "tests" / "data" / "real-pdfs"


@pytest.fixture(autouse=True)
def isolated_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own page cache folder: no test sees another's cached pages."""
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("DEEPSEEK_OCR2_CACHE_DIR", str(folder))
    return folder


@pytest.fixture(autouse=True)
def no_parked_render_workers() -> Iterator[None]:
    """Every test starts with no idle render workers parked by an earlier test's pools (processes it would count)."""
    from deepseek_ocr2_loaders.sources._render_pool import _idle

    _idle.stop_all()
    yield


@pytest.fixture(scope="session")
def real_pdfs() -> Path:
    assert REAL_PDFS.is_dir(), f"real PDF fixtures missing at {REAL_PDFS}"
    return REAL_PDFS


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from deepseek_ocr2_loaders.testing import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "DeepSeek-OCR-2-tiny")


@pytest.fixture(scope="session")
def tiny_engine(tiny_checkpoint: Path) -> Iterator[object]:
    from deepseek_ocr2_loaders import TransformersEngine

    engine = TransformersEngine(str(tiny_checkpoint), max_new_tokens=12, max_batch_size=4)
    yield engine
    engine.close()


@pytest.fixture
def engine_batches(tiny_engine: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The page count of every ``tiny_engine.generate`` call this test makes (the engine runs for real)."""
    batches: list[int] = []
    generate = tiny_engine.generate

    def recording(images: list[Any], prompt: str) -> list[Any]:
        batches.append(len(images))
        return generate(images, prompt)

    monkeypatch.setattr(tiny_engine, "generate", recording)
    return batches


@pytest.fixture
def broken_page_pdf() -> bytes:
    """Three pages; the page tree's middle entry is ``null``, so MuPDF cannot load page 2."""
    doc = pymupdf.open()
    for _ in range(3):
        doc.new_page(width=100, height=100)
    pages_xref = int(doc.xref_get_key(doc.pdf_catalog(), "Pages")[1].split()[0])
    doc.xref_set_key(pages_xref, "Kids", f"[{doc[0].xref} 0 R null {doc[2].xref} 0 R]")
    return doc.tobytes()
