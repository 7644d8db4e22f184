"""A 64-page report with one fact on page 41, and a scripted engine that summarizes each page.

Page i is (400 + 3i) x 792 points, so the scripted engine knows which page a compact view
shows from its width alone; its summaries are authored here.
"""

from __future__ import annotations

from pathlib import Path

import pymupdf

from deepseek_ocr2_loaders.testing import ScriptedEngine

PAGE_COUNT = 64
FACT_PAGE = 41
FACT = "The reactor coolant flow was 7,342 litres per minute."
QUESTION = "What was the reactor coolant flow in litres per minute?"
TOPICS = [
    "budget planning for the maintenance crew",
    "staff rotas and holiday schedules",
    "inspection of the perimeter fence",
    "catering contracts and canteen menus",
    "training sessions for new operators",
    "archive policy for paper records",
    "visitor badges and parking spaces",
    "software licences for the office",
]
FILLER = (
    "This section records routine matters about {topic}. The committee reviewed the notes and agreed "
    "that the work continues as planned. Several members asked for clearer tables and shorter "
    "reports in the next quarter. Item {n} was closed after a brief discussion of costs, timing and "
    "responsibilities. "
)


def summary_of(index: int) -> str:
    if index + 1 == FACT_PAGE:
        return "Cooling system operating figures measured during the spring test run."
    return f"Minutes on {TOPICS[index % len(TOPICS)]}, item {index + 1}."


def page_text(index: int) -> str:
    text = "".join(FILLER.format(topic=TOPICS[index % len(TOPICS)], n=index * 10 + k) for k in range(3))
    if index + 1 == FACT_PAGE:
        text += FACT + " " + FILLER.format(topic="cooling system operating figures", n=999)
    return text


def write_report(path: Path) -> Path:
    doc = pymupdf.open()
    for index in range(PAGE_COUNT):
        page = doc.new_page(width=400 + 3 * index, height=792)
        assert page.insert_textbox(pymupdf.Rect(36, 36, 400 + 3 * index - 36, 756), page_text(index), fontsize=9) >= 0
    doc.save(path)
    return path


def report_engine() -> ScriptedEngine:
    """Maps a compact view (longer side 768 px, full render 2x points at 144 DPI) back to its page."""

    def handler(image, prompt):
        index = round((image.width * 1584 / 768 / 2 - 400) / 3)
        return summary_of(index)

    return ScriptedEngine(handler, batch_size=8, name="scripted-summaries")
