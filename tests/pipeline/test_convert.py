"""convert(): real PDFs and images through a scripted engine and through the tiny checkpoint."""

from __future__ import annotations

import io
from pathlib import Path

import pymupdf
import pytest
from PIL import Image

from deepseek_ocr2_loaders import (
    ConfigError,
    EncryptedPDFError,
    EngineError,
    EngineOutput,
    OCRStatus,
    PageRangeError,
    convert,
)
from deepseek_ocr2_loaders.model._vision_tokens import count_vision_tokens
from deepseek_ocr2_loaders.options import RetryPolicy
from deepseek_ocr2_loaders.testing import ScriptedEngine

PAGE_TEXT = (
    "<|ref|>title<|/ref|><|det|>[[100, 50, 900, 100]]<|/det|>\n# Results\n\n"
    "<|ref|>text<|/ref|><|det|>[[100, 120, 499, 600]]<|/det|>\nLeft column.\n\n"
    "<|ref|>image<|/ref|><|det|>[[500, 120, 900, 500]]<|/det|>\n\n"
    "<|ref|>image_caption<|/ref|><|det|>[[500, 510, 900, 540]]<|/det|>\nFigure 1: A plot."
)


def scripted(text: str = PAGE_TEXT, **kwargs) -> ScriptedEngine:
    return ScriptedEngine(lambda image, prompt: text, **kwargs)


def test_every_page_of_a_real_pdf_comes_back_in_order(real_pdfs):
    engine = scripted(batch_size=5)
    pages = list(convert(real_pdfs / "load_v_error.pdf", engine=engine))
    assert [p.page for p in pages] == list(range(16))
    assert [p.page_number for p in pages] == list(range(1, 17))
    assert engine.calls == [5, 5, 5, 1]
    first = pages[0]
    assert first.total_pages == 16 and first.file_name == "load_v_error.pdf"
    assert first.status is OCRStatus.OK and first.unit == "pt"
    assert first.markdown.startswith("# Results\n\nLeft column.\n\n![Figure 1](page-0001-figure-1.png)")
    assert "<|ref|>" not in first.markdown and first.raw == PAGE_TEXT
    assert first.element_types == ("title", "text", "image", "image_caption")


def test_boxes_are_in_pdf_points_and_figures_are_cropped_at_render_scale(real_pdfs):
    (page,) = convert(real_pdfs / "load_v_error.pdf", engine=scripted(), pages="2")
    assert page.page == 1
    title = page.blocks[0]
    assert title.bbox == pytest.approx(
        (100 / 999 * page.width, 50 / 999 * page.height, 900 / 999 * page.width, 100 / 999 * page.height)
    )
    (figure,) = page.figures
    assert figure.name == "page-0002-figure-1.png"
    scale = 144 / 72
    expected_w = (900 - 500) / 999 * page.width * scale
    expected_h = (500 - 120) / 999 * page.height * scale
    assert figure.image.width == pytest.approx(expected_w, abs=2)
    assert figure.image.height == pytest.approx(expected_h, abs=2)


def test_the_engine_sees_the_rendered_page_and_the_resolved_prompt(real_pdfs):
    seen = []

    def handler(image, prompt):
        seen.append((image.size, prompt))
        return "plain text"

    pages = list(convert(real_pdfs / "small_page_size.pdf", engine=ScriptedEngine(handler), prompt="free", dpi=288))
    assert seen == [((720, 1200), "<image>\nFree OCR.")]  # 180x300 pt at 4x
    assert pages[0].vision_tokens == count_vision_tokens(720, 1200)
    assert pages[0].prompt == "<image>\nFree OCR."


def test_pages_selection_and_bad_selection(real_pdfs):
    pdf = real_pdfs / "load_v_error.pdf"
    assert [p.page for p in convert(pdf, engine=scripted(), pages="3-4,16")] == [2, 3, 15]
    assert [p.page for p in convert(pdf, engine=scripted(), pages=[0, 5])] == [0, 5]
    with pytest.raises(PageRangeError, match="17"):
        list(convert(pdf, engine=scripted(), pages="17"))


def test_pages_of_several_documents_share_batches(real_pdfs, tmp_path):
    image = tmp_path / "scan.png"
    Image.new("RGB", (300, 200), "white").save(image)
    engine = scripted(batch_size=4)
    sources = [real_pdfs / "mattsnotes.pdf", image, (real_pdfs / "olmo2-pg4.pdf").read_bytes()]
    pages = list(convert(sources, engine=engine))
    assert [(p.file_name, p.page) for p in pages] == [
        ("mattsnotes.pdf", 0),
        ("mattsnotes.pdf", 1),
        ("mattsnotes.pdf", 2),
        ("scan.png", 0),
        ("<bytes>", 0),
    ]
    assert engine.calls == [4, 1]
    assert pages[3].unit == "px" and (pages[3].width, pages[3].height) == (300, 200)


def test_bytes_and_file_objects_give_the_same_pages_as_a_path(real_pdfs):
    pdf = real_pdfs / "mathfuncs.pdf"
    by_path = [p.blocks for p in convert(pdf, engine=scripted())]
    by_bytes = [p.blocks for p in convert(pdf.read_bytes(), engine=scripted())]
    by_stream = [p.blocks for p in convert(io.BytesIO(pdf.read_bytes()), engine=scripted())]
    assert by_path == by_bytes == by_stream


def test_cut_off_and_looping_pages_are_kept_and_flagged_without_retries(real_pdfs):
    reasons = iter(["length", "repetition", "stop"])

    def handler(image, prompt):
        return EngineOutput(
            text="<|ref|>text<|/ref|><|det|>[[1, 2, 3, 4]]<|/det|>\nSome text",
            finish_reason=next(reasons),
            vision_tokens=1121,
            output_tokens=8192,
        )

    no_retry = RetryPolicy(retries=0, fallback_to_text_layer=False)
    pages = list(convert(real_pdfs / "mattsnotes.pdf", engine=ScriptedEngine(handler), retry=no_retry))
    assert [p.status for p in pages] == [OCRStatus.TRUNCATED, OCRStatus.TRUNCATED, OCRStatus.OK]
    assert [p.finish_reason.value for p in pages] == ["length", "repetition", "stop"]
    assert pages[0].errors[0].category == "length" and pages[1].errors[0].category == "repetition"
    assert all(p.markdown == "Some text" for p in pages)


class LoopingEngine(ScriptedEngine):
    """Loops on the pages listed in ``loops`` (by rendered width); its stricter twin loops on ``strict_loops``."""

    def __init__(self, loops, strict_loops, strict=False):
        super().__init__(self.answer, batch_size=4)
        self.loops, self.strict_loops, self.strict = loops, strict_loops, strict
        self.twin = None

    def answer(self, image, prompt):
        looping = image.width in (self.strict_loops if self.strict else self.loops)
        text = "la la la" if looping else f"page of width {image.width}"
        return EngineOutput(text=text, finish_reason="repetition" if looping else "stop")

    def stricter(self):
        if self.twin is None:
            self.twin = LoopingEngine(self.loops, self.strict_loops, strict=True)
        return self.twin


def widths(real_pdfs, name):
    import pymupdf

    with pymupdf.open(real_pdfs / name) as doc:
        return [round(page.rect.width * 2) for page in doc]


def test_a_looping_page_is_retried_with_the_stricter_engine(real_pdfs):
    (width,) = widths(real_pdfs, "mathfuncs.pdf")  # landscape: the only page of this width below
    engine = LoopingEngine(loops={width}, strict_loops=set())
    sources = [real_pdfs / "olmo2-pg4.pdf", real_pdfs / "mathfuncs.pdf", real_pdfs / "load_v_error.pdf"]
    pages = list(convert(sources, engine=engine, pages="1"))
    assert [p.status for p in pages] == [OCRStatus.OK, OCRStatus.RETRIED, OCRStatus.OK]
    assert pages[1].markdown == f"page of width {width}"
    assert engine.calls == [3] and engine.twin.calls == [1]  # only the looping page is retried


def test_a_page_that_keeps_looping_falls_back_to_the_pdf_text_layer(real_pdfs):
    width = widths(real_pdfs, "load_v_error.pdf")[0]
    engine = LoopingEngine(loops={width}, strict_loops={width})
    (page,) = convert(real_pdfs / "load_v_error.pdf", engine=engine, pages="1")
    assert page.status is OCRStatus.FALLBACK_TEXT and page.finish_reason.value == "repetition"
    import pymupdf

    with pymupdf.open(real_pdfs / "load_v_error.pdf") as doc:
        assert page.markdown == doc[0].get_text().strip() and len(page.markdown) > 200
    assert page.raw == "la la la" and page.errors[0].category == "repetition"


def test_a_looping_scan_without_text_layer_stays_truncated(real_pdfs):
    (width,) = widths(real_pdfs, "lincoln_letter.pdf")
    engine = LoopingEngine(loops={width}, strict_loops={width})
    (page,) = convert(real_pdfs / "lincoln_letter.pdf", engine=engine)
    assert page.status is OCRStatus.TRUNCATED and page.markdown == "la la la"


class FailingEngine(ScriptedEngine):
    """Fails its second batch, as a backend that lost its GPU would."""

    batches = 0

    def generate(self, images, prompt):
        self.batches += 1
        if self.batches == 2:
            raise EngineError("backend exploded")
        return super().generate(images, prompt)


def test_an_engine_failure_fails_its_pages_and_keeps_the_others(real_pdfs):
    engine = FailingEngine(lambda image, prompt: "ok", batch_size=4)
    pages = list(convert(real_pdfs / "load_v_error.pdf", engine=engine))
    assert len(pages) == 16
    statuses = [p.status for p in pages]
    assert statuses[4:8] == [OCRStatus.FAILED] * 4
    assert statuses[:4] + statuses[8:] == [OCRStatus.OK] * 12
    assert "backend exploded" in pages[5].errors[0].message and pages[5].errors[0].stage == "ocr"
    assert pages[5].page_label == "6" and pages[5].width > 0


def test_encrypted_pdf_needs_its_password(tmp_path):
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "secret")
    path = tmp_path / "locked.pdf"
    doc.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="pw", owner_pw="owner")
    with pytest.raises(EncryptedPDFError, match="locked.pdf"):
        list(convert(path, engine=scripted()))
    assert len(list(convert(path, engine=scripted(), password="pw"))) == 1


def test_unknown_options_and_options_beside_an_engine_are_config_errors(real_pdfs):
    with pytest.raises(ConfigError, match="colour"):
        list(convert(real_pdfs / "mathfuncs.pdf", colour="red"))
    with pytest.raises(ConfigError, match="max_new_tokens"):
        list(convert(real_pdfs / "mathfuncs.pdf", engine=scripted(), max_new_tokens=10))
    with pytest.raises(ConfigError, match="dpi"):
        list(convert(real_pdfs / "mathfuncs.pdf", engine=scripted(), dpi=5))


@pytest.mark.compat
def test_convert_with_the_tiny_checkpoint_end_to_end(real_pdfs, tiny_checkpoint: Path):
    pages = list(convert(real_pdfs / "mattsnotes.pdf", model=str(tiny_checkpoint), max_new_tokens=6, pages="1-2"))
    assert [p.page for p in pages] == [0, 1]
    for page in pages:
        assert page.model == str(tiny_checkpoint)
        assert page.vision_tokens == count_vision_tokens(round(page.width * 2), round(page.height * 2))
        assert 1 <= page.output_tokens <= 6
        assert page.status in (OCRStatus.OK, OCRStatus.TRUNCATED)
        assert "<|ref|>" not in page.markdown and "<|det|>" not in page.markdown


def test_a_page_that_fails_to_render_is_kept_as_failed(broken_page_pdf):
    """Page 2's page-tree entry is null: pages 1 and 3 still come back, page 2 is flagged."""
    engine = scripted(batch_size=8)
    pages = list(convert(broken_page_pdf, engine=engine))
    assert [p.page for p in pages] == [0, 1, 2]
    assert [p.status for p in pages] == [OCRStatus.OK, OCRStatus.FAILED, OCRStatus.OK]
    assert pages[1].errors[0].stage == "render" and pages[1].markdown == ""
    assert engine.calls == [2]  # the broken page never reached the engine
