"""The page cache in use: nothing computed twice, and a killed run resumes where it stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pymupdf

from deepseek_ocr2_loaders import OCRStatus, TransformersEngine, convert
from deepseek_ocr2_loaders.pipeline._cache import PageCache
from deepseek_ocr2_loaders.testing import ScriptedEngine

REPO = Path(__file__).resolve().parents[2]


def make_pdf(path: Path, pages: int) -> Path:
    doc = pymupdf.open()
    for number in range(pages):
        doc.new_page(width=300, height=400).insert_text((40, 60), f"Page {number + 1}")
    doc.save(path)
    return path


def echo(image, prompt):
    return f"text of a {image.width}x{image.height} page"


def test_a_second_run_reads_every_page_from_the_cache(tmp_path):
    pdf = make_pdf(tmp_path / "doc.pdf", 6)
    first_engine, second_engine = ScriptedEngine(echo), ScriptedEngine(echo)
    first = list(convert(pdf, engine=first_engine))
    second = list(convert(pdf, engine=second_engine))
    assert sum(first_engine.calls) == 6 and second_engine.calls == []
    assert [p.markdown for p in first] == [p.markdown for p in second]
    assert [p.status for p in second] == [OCRStatus.OK] * 6


def test_cache_false_a_new_prompt_or_other_engine_settings_recompute(tmp_path):
    pdf = make_pdf(tmp_path / "doc.pdf", 2)
    list(convert(pdf, engine=ScriptedEngine(echo)))
    for kwargs, engine in (
        ({"cache": False}, ScriptedEngine(echo)),
        ({"prompt": "free"}, ScriptedEngine(echo)),
        ({}, ScriptedEngine(echo, name="another-model")),
        ({"dpi": 72}, ScriptedEngine(echo)),
    ):
        list(convert(pdf, engine=engine, **kwargs))
        assert sum(engine.calls) == 2, kwargs


def test_transformers_engine_settings_are_part_of_the_key(tiny_checkpoint):
    short = TransformersEngine(str(tiny_checkpoint), max_new_tokens=4)
    longer = TransformersEngine(str(tiny_checkpoint), max_new_tokens=8)
    assert short.fingerprint != longer.fingerprint
    assert short.fingerprint["model"] == str(tiny_checkpoint)


def test_an_explicit_cache_file_holds_json_pages(tmp_path):
    pdf = make_pdf(tmp_path / "doc.pdf", 3)
    cache_file = tmp_path / "pages.sqlite3"
    list(convert(pdf, engine=ScriptedEngine(echo), cache=cache_file))
    with PageCache(cache_file) as cache:
        assert len(cache) == 3


def test_failed_pages_are_not_cached(tmp_path):
    from deepseek_ocr2_loaders import EngineError

    class Broken(ScriptedEngine):
        def generate(self, images, prompt):
            raise EngineError("GPU fell off")

    pdf = make_pdf(tmp_path / "doc.pdf", 2)
    assert [p.status for p in convert(pdf, engine=Broken(echo))] == [OCRStatus.FAILED] * 2
    engine = ScriptedEngine(echo)
    assert [p.status for p in convert(pdf, engine=engine)] == [OCRStatus.OK] * 2
    assert sum(engine.calls) == 2


CHILD = textwrap.dedent(
    """
    import sys, time
    from deepseek_ocr2_loaders import convert
    from deepseek_ocr2_loaders.testing import ScriptedEngine

    def slow(image, prompt):
        time.sleep(0.15)
        return "page text"

    for page in convert(sys.argv[1], engine=ScriptedEngine(slow, batch_size=1), cache=sys.argv[2]):
        print(page.page, flush=True)
    """
)


def test_a_run_killed_with_sigkill_resumes_with_only_the_unfinished_pages(tmp_path):
    pdf = make_pdf(tmp_path / "long.pdf", 16)
    cache_file = tmp_path / "cache.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(pdf), str(cache_file)], stdout=subprocess.PIPE, text=True, env=env
    )
    done = [int(child.stdout.readline()) for _ in range(5)]
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    assert done == [0, 1, 2, 3, 4] and child.returncode == -signal.SIGKILL
    with PageCache(cache_file) as cache:
        stored = len(cache)
    assert 5 <= stored < 16  # every printed page was stored first; the run did not finish

    engine = ScriptedEngine(lambda image, prompt: "page text", batch_size=1)
    pages = list(convert(pdf, engine=engine, cache=cache_file))
    assert [p.page for p in pages] == list(range(16))
    assert sum(engine.calls) == 16 - stored  # only the pages that were not finished
