"""One contract, run against both adapters: same behaviour, same texts, same metadata.

A subclass supplies ``load`` and ``aload`` (paths and loader options in, a list of
``(text, metadata, id)`` out) and inherits every test; ``test_no_contract_test_is_overridden``
fails if a subclass quietly replaces one.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from scripted_paper import PAGES, paper_engine, write_paper

from deepseek_ocr2_loaders import EngineOutput, OCREngine

Loaded = list[tuple[str, dict[str, Any], str]]

PAGE_KEYS = {
    "source",
    "file_name",
    "total_pages",
    "page",
    "page_number",
    "page_label",
    "ocr_status",
    "element_types",
    "vision_tokens",
    "output_tokens",
    "model",
}
CHUNK_KEYS = PAGE_KEYS | {"page_end", "header_path", "token_count", "bboxes"}


class LoaderContract:
    """Subclasses implement these two; they must not override any ``test_``."""

    def load(self, paths: list[Path], **options: Any) -> Loaded:
        raise NotImplementedError

    async def aload(self, paths: list[Path], **options: Any) -> Loaded:
        raise NotImplementedError

    @pytest.fixture
    def paper(self, tmp_path: Path) -> Path:
        return write_paper(tmp_path / "paper.pdf")

    def test_page_mode_gives_one_document_per_page_in_order(self, paper):
        docs = self.load([paper], engine=paper_engine())
        assert [meta["page"] for _, meta, _ in docs] == [0, 1, 2, 3]
        assert [meta["page_number"] for _, meta, _ in docs] == [1, 2, 3, 4]
        assert docs[0][0].startswith("# Optical Compression for Long Documents")
        assert all("<|ref|>" not in text and "<|det|>" not in text for text, _, _ in docs)
        assert docs[0][1]["model"] == "scripted-deepseek-ocr2" and docs[0][1]["total_pages"] == 4

    def test_metadata_is_flat_scalar_and_complete(self, paper):
        for mode, required in (
            ("page", PAGE_KEYS),
            ("chunks", CHUNK_KEYS),
            ("elements", PAGE_KEYS),
            ("single", PAGE_KEYS),
        ):
            for _, meta, _ in self.load([paper], engine=paper_engine(), mode=mode):
                assert required <= meta.keys(), (mode, required - meta.keys())
                assert all(isinstance(v, (str, int, float, bool)) for v in meta.values()), mode
                assert isinstance(json.loads(meta["element_types"]), list)
                assert meta["ocr_status"] in ("ok", "retried", "fallback_text", "truncated", "failed")

    def test_ids_are_deterministic_and_unique(self, paper):
        for mode in ("page", "chunks", "elements", "single"):
            first = [doc_id for _, _, doc_id in self.load([paper], engine=paper_engine(), mode=mode)]
            again = [doc_id for _, _, doc_id in self.load([paper], engine=paper_engine(batch_size=1), mode=mode)]
            assert first == again and len(set(first)) == len(first), mode

    def test_chunks_carry_the_heading_path_across_pages_and_stitch_the_table(self, paper):
        chunks = self.load([paper], engine=paper_engine(), mode="chunks", chunk_size=256)
        table = [c for c in chunks if "<table>" in c[0]]
        assert len(table) == 1, "the table continued on page 3 is one table"
        text, meta, _ = table[0]
        assert meta["page"] == 1 and meta["page_end"] == 2
        assert meta["header_path"] == "3 Methods > 3.2 Data"
        assert meta["Header 1"] == "3 Methods" and meta["Header 2"] == "3.2 Data"
        assert text.count("<table") == 1 and text.count("</table>") == 1
        assert all(word in text for word in ("arXiv", "News", "Books", "Forms"))
        assert {box["page"] for box in json.loads(meta["bboxes"])} == {1, 2}
        note = next(c for c in chunks if "note on scans" in c[0])
        assert note[1]["page_end"] == 2 and note[1]["header_path"] == "3 Methods > 3.2 Data"
        results = next(c for c in chunks if "tenfold" in c[0])
        assert results[1]["header_path"] == "4 Results" and results[1]["page"] == 3

    def test_chunks_hold_the_token_limit_and_never_cut_math(self, paper):
        from deepseek_ocr2_loaders.chunking import count_tokens

        chunks = self.load([paper], engine=paper_engine(), mode="chunks", chunk_size=64)
        for text, meta, _ in chunks:
            assert meta["token_count"] == count_tokens(text) <= 64
            assert text.count("\\[") == text.count("\\]") and text.count("$$") % 2 == 0
            assert meta["page"] <= meta["page_end"]

    def test_elements_mode_gives_one_document_per_block(self, paper):
        elements = self.load([paper], engine=paper_engine(), mode="elements")
        assert len(elements) == sum(page.count("<|ref|>") for page in PAGES)
        labels = [meta["category"] for _, meta, _ in elements]
        assert labels[:3] == ["title", "text", "sub_title"]
        figure = next(e for e in elements if e[1]["category"] == "image")
        assert figure[1]["page"] == 2 and json.loads(figure[1]["bbox"])[0] > 0

    def test_single_mode_gives_one_document_per_file(self, paper, tmp_path):
        other = write_paper(tmp_path / "other.pdf")
        docs = self.load([paper, other], engine=paper_engine(), mode="single")
        assert [meta["file_name"] for _, meta, _ in docs] == ["paper.pdf", "other.pdf"]
        assert docs[0][0].count("Optical Compression") == 1 and "tenfold" in docs[0][0]
        assert docs[0][1]["page_end"] == 3

    def test_async_load_inside_a_running_loop_matches_sync(self, paper):
        async def inside_loop() -> Loaded:
            assert asyncio.get_running_loop() is not None
            return await self.aload([paper], engine=paper_engine(), mode="chunks")

        assert asyncio.run(inside_loop()) == self.load([paper], engine=paper_engine(), mode="chunks")

    def test_a_folder_loads_every_pdf_and_image(self, paper, tmp_path):
        from PIL import Image

        Image.new("RGB", (1200, 1584), "white").save(tmp_path / "scan.png")
        docs = self.load([tmp_path], engine=_OneTextEngine())
        assert sorted({meta["file_name"] for _, meta, _ in docs}) == ["paper.pdf", "scan.png"]
        assert len(docs) == 5

    @pytest.mark.compat
    def test_the_real_model_path_with_the_tiny_checkpoint(self, paper, tiny_engine):
        docs = self.load([paper], engine=tiny_engine, pages="2")
        ((text, meta, _),) = docs
        assert meta["page"] == 1 and meta["vision_tokens"] == 1121
        assert meta["model"].endswith("DeepSeek-OCR-2-tiny") and 1 <= meta["output_tokens"] <= 12

    def test_no_contract_test_is_overridden(self):
        for name in dir(LoaderContract):
            if name.startswith("test_"):
                assert getattr(type(self), name) is getattr(LoaderContract, name), (
                    f"{type(self).__name__} overrides {name}"
                )


class _OneTextEngine(OCREngine):
    """A user's own engine: the same short page text for every image."""

    batch_size = 4

    def generate(self, images, prompt):
        return [EngineOutput(text="Plain page text.") for _ in images]
