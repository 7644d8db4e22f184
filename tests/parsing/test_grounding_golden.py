"""Golden tests: hand-written model outputs against reviewed expected results.

Set ``DEEPSEEK_OCR2_GEN_TEST_DATA=1`` to rewrite the groundtruth after a deliberate
change, then review every diff by eye; ``test_not_regenerating`` keeps CI from ever
running in that mode.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from deepseek_ocr2_loaders.parsing import ParsedPage, parse_grounding

DATA = Path(__file__).resolve().parent.parent / "data" / "grounding"
SOURCES = sorted((DATA / "sources").glob("*.txt"))
GEN_VAR = "DEEPSEEK_OCR2_GEN_TEST_DATA"
WIDTH, HEIGHT = 612, 792


def _to_json(page: ParsedPage) -> dict[str, Any]:
    return {
        "markdown": page.markdown,
        "blocks": [block.to_dict() for block in page.blocks],
        "figure_blocks": list(page.figure_blocks),
        "has_grounding": page.has_grounding,
        "problems": list(page.problems),
    }


def test_sources_present() -> None:
    assert len(SOURCES) >= 12


@pytest.mark.parametrize("source", SOURCES, ids=[path.stem for path in SOURCES])
def test_golden(source: Path) -> None:
    text = source.read_text(encoding="utf-8")
    actual = _to_json(parse_grounding(text, width=WIDTH, height=HEIGHT))
    expected_path = DATA / "groundtruth" / f"{source.stem}.json"
    if os.environ.get(GEN_VAR) == "1":
        expected_path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    assert actual == expected


def test_not_regenerating() -> None:
    assert GEN_VAR not in os.environ, f"unset {GEN_VAR}: it rewrites the groundtruth"
