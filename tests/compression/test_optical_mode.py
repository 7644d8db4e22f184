"""optical_compression=True on convert and both loaders: compact reads, compression metadata."""

from __future__ import annotations

import pymupdf

from deepseek_ocr2_loaders import convert
from deepseek_ocr2_loaders.chunking import count_tokens
from deepseek_ocr2_loaders.langchain import DeepSeekOCR2Loader
from deepseek_ocr2_loaders.llama_index import DeepSeekOCR2Reader
from deepseek_ocr2_loaders.testing import ScriptedEngine


def letter_pdf(path, pages=3):
    doc = pymupdf.open()
    for number in range(pages):
        doc.new_page(width=612, height=792).insert_textbox(
            pymupdf.Rect(72, 72, 540, 720), f"Page {number + 1}. " + "Optical compression of long text. " * 80
        )
    doc.save(path)
    return path


def test_pages_are_read_from_their_compact_view_with_stats(tmp_path):
    pdf = letter_pdf(tmp_path / "report.pdf")
    seen = []
    engine = ScriptedEngine(lambda image, prompt: seen.append(image.size) or "summary")
    pages = list(convert(pdf, engine=engine, optical_compression=True))
    assert {max(size) for size in seen} == {768}  # the model sees only the 1024 global view
    with pymupdf.open(pdf) as doc:
        texts = [page.get_text() for page in doc]
    for page, text in zip(pages, texts, strict=True):
        assert page.vision_tokens == 257
        assert page.compression["vision_tokens_full"] == 1121  # US Letter at 144 DPI: 6 crops
        assert page.compression["text_tokens"] == count_tokens(text)
        assert page.compression["compression_ratio"] == round(count_tokens(text) / 257, 3)
    full = list(convert(pdf, engine=ScriptedEngine(lambda image, prompt: "full")))
    assert full[0].compression is None and full[0].vision_tokens == 1121  # cached apart: no compact answer reused


def test_both_loaders_carry_the_same_compression_metadata(tmp_path):
    pdf = letter_pdf(tmp_path / "report.pdf", pages=2)
    lc = DeepSeekOCR2Loader(pdf, engine=ScriptedEngine(lambda i, p: "summary"), optical_compression=True).load()
    li = DeepSeekOCR2Reader(engine=ScriptedEngine(lambda i, p: "summary"), optical_compression=True).load_data(pdf)
    assert [d.metadata for d in lc] == [d.metadata for d in li]
    meta = lc[0].metadata
    assert meta["vision_tokens"] == 257 and meta["vision_tokens_full"] == 1121
    assert meta["compression_ratio"] > 1 and isinstance(meta["text_tokens"], int)


def test_failed_pages_carry_the_compression_keys_too(tmp_path):
    pdf = letter_pdf(tmp_path / "report.pdf", pages=1)
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7 not really")
    for mode in ("page", "chunks", "elements", "single"):
        docs = DeepSeekOCR2Loader(
            [broken, pdf],
            engine=ScriptedEngine(lambda i, p: "summary"),
            mode=mode,
            optical_compression=True,
            on_error="placeholder",
            cache=False,
        ).load()
        assert docs[0].metadata["ocr_status"] == "failed" and docs[0].metadata["compression_ratio"] == 0.0
        assert len({frozenset(d.metadata) for d in docs}) == 1, mode
