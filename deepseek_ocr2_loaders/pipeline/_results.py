"""Build a :class:`PageResult` from what happened to one page: parse, crop, decide the status."""

from __future__ import annotations

from dataclasses import dataclass

from ..engines._base import EngineOutput
from ..errors import DeepSeekOCR2Error
from ..parsing import parse_grounding
from ..sources import SourcePage
from ..types import Block, ErrorRecord, Figure, FinishReason, OCRStatus, PageResult
from ._figures import crop_figures
from ._optical import compression_stats

__all__ = ["DocumentInfo", "PageOutcome", "build_page_result", "unopened_document"]


@dataclass(frozen=True)
class DocumentInfo:
    """What results need to know of their document (not the open file itself)."""

    name: str
    file_name: str
    total_pages: int
    sha256: str


@dataclass(frozen=True)
class PageOutcome:
    """The engine's last answer for a page and how many attempts it took."""

    output: EngineOutput
    attempts: int = 1


def build_page_result(
    document: DocumentInfo,
    index: int,
    page: SourcePage | None,
    outcome: PageOutcome | DeepSeekOCR2Error,
    *,
    model: str,
    prompt: str,
    use_text_layer: bool,
    failure_stage: str = "render",
    compression: bool = False,
) -> PageResult:
    """The result of one page: parsed Markdown, or a failed page carrying its error.

    Status: ``ok`` (clean stop), ``retried`` (clean stop after a loop), ``fallback_text``
    (every attempt looped and the PDF's text layer replaced the output), ``truncated``
    (cut at the token limit, or looped with no text layer), ``failed`` (not rendered or
    the engine failed).
    """
    markdown, raw = "", ""
    blocks: tuple[Block, ...] = ()
    figures: tuple[Figure, ...] = ()
    status, finish, vision_tokens, output_tokens = OCRStatus.FAILED, None, 0, 0
    errors: tuple[ErrorRecord, ...] = ()
    if page is None or isinstance(outcome, DeepSeekOCR2Error):
        stage = failure_stage if page is None else "ocr"
        errors = (ErrorRecord(stage, str(outcome), type(outcome).__name__, None if stage == "open" else index),)
    else:
        output = outcome.output

        def figure_name(number: int) -> str:
            return f"page-{index + 1:04d}-figure-{number + 1}.png"

        parsed = parse_grounding(output.text, width=page.width, height=page.height, figure_name=figure_name)
        markdown, raw, blocks = parsed.markdown, output.text, parsed.blocks
        figures = crop_figures(
            page.image,
            parsed.blocks,
            parsed.figure_blocks,
            page_width=page.width,
            page_height=page.height,
            figure_name=figure_name,
        )
        finish = FinishReason(output.finish_reason)
        vision_tokens, output_tokens = output.vision_tokens, output.output_tokens
        status = OCRStatus.OK if outcome.attempts == 1 else OCRStatus.RETRIED
        if finish is FinishReason.REPETITION:
            why = f"the model looped on {outcome.attempts} attempt(s) and was stopped"
            errors = (ErrorRecord("ocr", why, finish.value, index),)
            status = OCRStatus.TRUNCATED
            if use_text_layer and page.text and page.text.strip():
                status, markdown, blocks, figures = OCRStatus.FALLBACK_TEXT, page.text.strip(), (), ()
        elif finish is FinishReason.LENGTH:
            errors = (ErrorRecord("ocr", "hit max_new_tokens", finish.value, index),)
            status = OCRStatus.TRUNCATED
        if blocks:  # what the parser repaired or dropped (a garbled box), kept as data on the page
            errors += tuple(ErrorRecord("parse", problem, "grounding", index) for problem in parsed.problems)
    if page is not None and page.recovered:  # a fallback decoder read the page: keep it, say so
        errors = (ErrorRecord("render", page.recovered, "recovered", index), *errors)
    stats = None
    if compression and page is not None and not isinstance(outcome, DeepSeekOCR2Error):
        stats = _compression(page, outcome.output)
    elif compression:  # a failed page keeps the keys (zero), so every record has the same schema
        stats = {"vision_tokens_full": 0, "text_tokens": 0, "compression_ratio": 0.0}
    return PageResult(
        source=document.name,
        file_name=document.file_name,
        page=index,
        total_pages=document.total_pages,
        page_label=page.label if page else str(index + 1),
        width=page.width if page else 0.0,
        height=page.height if page else 0.0,
        unit=page.unit if page else "",
        markdown=markdown,
        blocks=blocks,
        status=status,
        finish_reason=finish,
        vision_tokens=vision_tokens,
        output_tokens=output_tokens,
        raw=raw,
        model=model,
        prompt=prompt,
        figures=figures,
        errors=errors,
        sha256=document.sha256,
        compression=stats,
    )


def _compression(page: SourcePage, output: EngineOutput) -> dict[str, float]:
    """Compact-view cost against the full render and the page's text (its text layer, else the output)."""
    text = page.text if page.text and page.text.strip() else output.text
    stats = compression_stats(*page.image.size, text)
    vision = output.vision_tokens or stats.vision_tokens
    return {
        "vision_tokens_full": stats.vision_tokens_full,
        "text_tokens": stats.text_tokens,
        "compression_ratio": round(stats.text_tokens / vision, 3) if vision else 0.0,
    }


def unopened_document(error: DeepSeekOCR2Error) -> DocumentInfo:
    """Stand-in document info for a file that could not be opened (``on_error="placeholder"``)."""
    name = error.source or "<unknown>"
    return DocumentInfo(name=name, file_name=name.replace("\\", "/").rsplit("/", 1)[-1], total_pages=0, sha256="")
