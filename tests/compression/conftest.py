"""Fixtures: the 64-page report (see ``long_report``) and its summaries, read once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from long_report import report_engine, write_report

from deepseek_ocr2_loaders.compression import PageSummary, summarize_pages


@pytest.fixture(scope="session")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(tmp_path_factory.mktemp("report") / "report.pdf")


@pytest.fixture(scope="session")
def summaries(report: Path) -> list[PageSummary]:
    return list(summarize_pages(report, engine=report_engine(), cache=False))
