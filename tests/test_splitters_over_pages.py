"""Both splitters handed a file's page Documents give exactly the Documents of ``mode="chunks"``.

The page Documents carry their layout blocks (``layout`` metadata), so the splitter rebuilds
each file's pages and chunks them with the core function of ``mode="chunks"``: same texts,
boxes, heading paths across pages, tables stitched across pages, ``chunk_index`` over the
file, same metadata keys and ids.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from scripted_paper import PAGES, paper_engine, write_paper

from deepseek_ocr2_loaders.langchain import DeepSeekOCR2Loader, MarkdownStructureSplitter
from deepseek_ocr2_loaders.llama_index import DeepSeekOCR2Reader, MarkdownStructureNodeParser
from deepseek_ocr2_loaders.testing import ScriptedEngine

REAL_PDFS = Path(__file__).parent / "data" / "real-pdfs"
GROUNDING = Path(__file__).parent / "data" / "grounding" / "sources"
# model-format page texts: the scripted paper's pages and the authored grounding samples
POOL = [*PAGES, *(path.read_text() for path in sorted(GROUNDING.glob("*.txt")))]


def grounded_engine() -> ScriptedEngine:
    """Answers each page image with a model-format page text picked by the image's digest."""

    def handler(image, prompt):
        return POOL[int(hashlib.sha256(image.tobytes()).hexdigest(), 16) % len(POOL)]

    return ScriptedEngine(handler, name="grounded")


def langchain_pair(paths, engine_factory, **options):
    chunks = DeepSeekOCR2Loader(paths, engine=engine_factory(), mode="chunks", **options).load()
    pages = DeepSeekOCR2Loader(paths, engine=engine_factory(), mode="page", **options).load()
    split = MarkdownStructureSplitter(**_chunking(options)).split_documents(pages)
    as_tuples = lambda docs: [(d.page_content, d.metadata, d.id) for d in docs]  # noqa: E731
    return as_tuples(chunks), as_tuples(split)


def llama_index_pair(paths, engine_factory, **options):
    chunks = DeepSeekOCR2Reader(engine=engine_factory(), mode="chunks", **options).load_data(paths)
    pages = DeepSeekOCR2Reader(engine=engine_factory(), mode="page", **options).load_data(paths)
    nodes = MarkdownStructureNodeParser(**_chunking(options)).get_nodes_from_documents(pages)
    as_tuples = lambda docs: [  # noqa: E731
        (d.text, d.metadata, d.id_, d.excluded_embed_metadata_keys, d.excluded_llm_metadata_keys) for d in docs
    ]
    return as_tuples(chunks), as_tuples(nodes)


def _chunking(options):
    return {key: options[key] for key in ("chunk_size", "chunk_overlap") if key in options}


PAIRS = [pytest.param(langchain_pair, id="langchain"), pytest.param(llama_index_pair, id="llama_index")]


@pytest.mark.parametrize("pair", PAIRS)
@pytest.mark.parametrize(("chunk_size", "chunk_overlap"), [(64, 0), (256, 16)])
def test_splitting_the_real_pdfs_page_documents_gives_the_chunks_mode_documents(
    tmp_path, broken_page_pdf, pair, chunk_size, chunk_overlap
):
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7 not really")  # a placeholder in both modes
    (tmp_path / "broken-page.pdf").write_bytes(broken_page_pdf)  # a failed page between two read ones
    paths = [REAL_PDFS, tmp_path / "broken.pdf", tmp_path / "broken-page.pdf"]
    chunks, split = pair(
        paths, grounded_engine, chunk_size=chunk_size, chunk_overlap=chunk_overlap, on_error="placeholder"
    )
    assert split == chunks
    metadata = [m for _, m, *_ in chunks]
    assert len({m["source"] for m in metadata}) == len(list(REAL_PDFS.rglob("*.pdf"))) + 2
    assert any(m["page_end"] > m["page"] for m in metadata)  # chunks run across pages
    assert any(json.loads(m["bboxes"]) for m in metadata) and all("layout" not in m for m in metadata)


@pytest.mark.parametrize("pair", PAIRS)
def test_headings_tables_and_chunk_index_run_across_pages(tmp_path, pair):
    paper = write_paper(tmp_path / "paper.pdf")
    chunks, split = pair(paper, paper_engine, chunk_size=512)
    assert split == chunks
    metadata = [m for _, m, *_ in split]
    assert [m["chunk_index"] for m in metadata] == list(range(len(metadata)))
    table = next(text for text, *_ in split if "<td>Books</td>" in text)
    assert "<td>arXiv</td>" in table and table.count("<table>") == 1  # stitched across pages 2 and 3
    stitched = next(m for text, m, *_ in split if text == table)
    assert {box["page"] for box in json.loads(stitched["bboxes"]) if box["label"] == "table"} == {1, 2}
    small_chunks, small_split = pair(paper, paper_engine, chunk_size=64)
    assert small_split == small_chunks
    page_3 = [m["header_path"] for _, m, *_ in small_split if m["page"] == 2]
    assert page_3 and all(path == "3 Methods > 3.2 Data" for path in page_3)


@pytest.mark.parametrize("pair", PAIRS)
def test_the_real_model_path_with_the_tiny_checkpoint(tiny_engine, pair):
    chunks, split = pair(REAL_PDFS / "mattsnotes.pdf", lambda: tiny_engine, chunk_size=64)
    assert split == chunks and chunks


def test_the_page_layout_stays_out_of_llama_index_embed_and_llm_text(tmp_path):
    (document, *_) = DeepSeekOCR2Reader(engine=paper_engine()).load_data(write_paper(tmp_path / "paper.pdf"))
    assert json.loads(document.metadata["layout"])[0]["label"] == "title"
    assert "layout" in document.excluded_embed_metadata_keys and "layout" in document.excluded_llm_metadata_keys
    assert "layout" not in document.get_metadata_str(mode="embed")
