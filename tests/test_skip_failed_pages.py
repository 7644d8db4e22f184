"""``skip_failed_pages=True`` keeps failed pages' empty Documents out of what reaches a store.

By default a failed page stays a Document (empty, ``ocr_status="failed"``) so page numbers
never shift; the option leaves exactly those out, in both frameworks and every mode.
"""

from __future__ import annotations

import asyncio

import pytest
from scripted_paper import PAGES, write_paper

from deepseek_ocr2_loaders.langchain import DeepSeekOCR2Loader
from deepseek_ocr2_loaders.llama_index import DeepSeekOCR2Reader
from deepseek_ocr2_loaders.testing import ScriptedEngine


def engine():
    """The scripted paper's model text on its pages (known by their width), a line on any other."""

    def handler(image, prompt):
        index = round(image.width / 2) - 600
        return PAGES[index] if 0 <= index < len(PAGES) else "A short page."

    return ScriptedEngine(handler)


def langchain(paths, **options):
    return [(d.id, d.page_content, d.metadata) for d in DeepSeekOCR2Loader(paths, **options).load()]


def langchain_async(paths, **options):
    async def collect():
        return [(d.id, d.page_content, d.metadata) async for d in DeepSeekOCR2Loader(paths, **options).alazy_load()]

    return asyncio.run(collect())


def llama_index(paths, **options):
    return [(d.id_, d.text, d.metadata) for d in DeepSeekOCR2Reader(**options).load_data(paths)]


@pytest.mark.parametrize("load", [langchain, langchain_async, llama_index])
@pytest.mark.parametrize("mode", ["page", "single", "elements", "chunks"])
def test_only_the_empty_documents_of_failed_pages_are_left_out(tmp_path, broken_page_pdf, load, mode):
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7 not really")
    (tmp_path / "broken-page.pdf").write_bytes(broken_page_pdf)
    paths = [tmp_path / "broken.pdf", tmp_path / "broken-page.pdf", write_paper(tmp_path / "paper.pdf")]
    options = {"engine": engine(), "mode": mode, "on_error": "placeholder", "chunk_size": 64}
    kept = load(paths, **options)
    skipped = load(paths, skip_failed_pages=True, **options)
    empty_failed = [doc for doc in kept if not doc[1] and doc[2]["ocr_status"] == "failed"]
    # the file that cannot be opened; in every mode but single also the page that cannot be loaded
    assert len(empty_failed) == (1 if mode == "single" else 2)
    assert skipped == [doc for doc in kept if doc not in empty_failed]
