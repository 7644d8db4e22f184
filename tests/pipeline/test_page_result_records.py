"""One serialisation of a page result: ``to_dict`` (CLI JSONL, Ray rows) and its inverse ``from_dict``."""

from __future__ import annotations

import dataclasses
import json

from deepseek_ocr2_loaders import PageResult, convert
from deepseek_ocr2_loaders.testing import ScriptedEngine

GROUNDED = (
    "<|ref|>title<|/ref|><|det|>[[100, 50, 900, 90]]<|/det|>\n# Results\n\n"
    "<|ref|>text<|/ref|><|det|>[[100, 120, 900, 300], [100, 320, 900, 400]]<|/det|>\nTwo columns of text.\n\n"
    "<|ref|>table<|/ref|><|det|>[[100, 420, 900, 600]]<|/det|>\n<table><tr><td>1</td></tr></table>"
)


def test_a_page_result_survives_its_json_form(real_pdfs):
    pages = list(convert(real_pdfs / "mattsnotes.pdf", engine=ScriptedEngine(lambda i, p: GROUNDED), pages="1-2"))
    assert pages and all(page.blocks for page in pages)
    for page in pages:
        line = json.loads(json.dumps(page.to_dict()))
        rebuilt = PageResult.from_dict(line)
        assert rebuilt.to_dict() == line
        assert rebuilt == dataclasses.replace(page, figures=(), blocks=rebuilt.blocks)  # boxes are kept to 0.01
        for mine, theirs in zip(rebuilt.blocks, page.blocks, strict=True):
            assert (mine.label, mine.text, len(mine.boxes)) == (theirs.label, theirs.text, len(theirs.boxes))
            assert max(abs(a - b) for a, b in zip(mine.bbox, theirs.bbox, strict=True)) <= 0.005
        assert line["prompt"] == page.prompt and line["compression"] is None
