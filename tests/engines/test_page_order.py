"""A call's pages start the most text first; outputs still come back in the call's order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepseek_ocr2_loaders.engines import EngineOutput
from deepseek_ocr2_loaders.engines.transformers._page_order import longest_first, text_edges
from deepseek_ocr2_loaders.engines.transformers._scheduler import PageQueue
from deepseek_ocr2_loaders.model import DEFAULT_DPI
from deepseek_ocr2_loaders.sources import open_source

LENGTHS = Path(__file__).parents[2] / "benchmarks" / "results" / "page-lengths.json"


def render(pdf: Path, page: int = 0) -> Image.Image:
    """The page as the loaders hand it to the engine (144 DPI, the pixel cap)."""
    with open_source(pdf, dpi=DEFAULT_DPI) as doc:
        return doc.load_page(page).image


@pytest.fixture(scope="module")
def pages(real_pdfs):
    return {
        "newspaper": render(real_pdfs / "newspaper.pdf"),
        "notes": render(real_pdfs / "mattsnotes.pdf", 2),  # the shortest text page measured (136 tokens)
        "blank": render(real_pdfs / "blank_book_pg1.pdf"),
    }


def test_edges_rank_the_real_pages_as_their_measured_output_lengths(real_pdfs):
    """Spearman correlation of edges and the grounded-Markdown tokens of page_lengths.py, every text page."""
    measured = [page for page in json.loads(LENGTHS.read_text())["pages"] if page["tokens"]]
    edges = [text_edges(render(real_pdfs / page["file"], page["page"] - 1)) for page in measured]
    tokens = [page["tokens"] for page in measured]
    ranks = [np.argsort(np.argsort(values)) for values in (edges, tokens)]
    assert np.corrcoef(*ranks)[0, 1] > 0.6
    assert int(np.argmax(edges)) == int(np.argmax(tokens))  # the longest page (the newspaper) comes first


def test_blank_empty_and_foreign_images_have_no_edges(pages):
    assert text_edges(pages["blank"]) == 0
    assert text_edges(Image.new("RGB", (0, 0))) == 0
    assert text_edges(Image.new("L", (1, 40))) == 0
    assert text_edges(b"not an image") == 0
    assert text_edges(pages["notes"]) > 0


def test_a_call_queues_its_pages_the_most_text_first_behind_earlier_calls(pages):
    queue = PageQueue()
    first = queue.submit([pages["blank"], pages["newspaper"], pages["notes"]], "prompt", 8)
    second = queue.submit([pages["notes"], pages["newspaper"]], "prompt", 8)
    jobs = queue.take(10, block=False)
    assert [(job.call.future, job.index) for job in jobs] == [
        (first, 1),
        (first, 2),
        (first, 0),  # the call's pages most text first...
        (second, 1),
        (second, 0),  # ...and a later call's pages after all of them
    ]
    for job in reversed(jobs):
        queue.deliver(job.id, EngineOutput(text=f"page {job.index}", finish_reason="stop"))
    assert [output.text for output in first.result(timeout=1)] == ["page 0", "page 1", "page 2"]
    assert [output.text for output in second.result(timeout=1)] == ["page 0", "page 1"]


def test_ties_keep_the_call_order():
    same = [Image.new("RGB", (64, 64), "white") for _ in range(4)]
    assert longest_first(same) == [0, 1, 2, 3]
