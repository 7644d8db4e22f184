"""Fixtures shared by every test folder: the real PDFs and the tiny checkpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL_PDFS = REPO.parent / "shared" / "fixtures" / "real-pdfs"


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
