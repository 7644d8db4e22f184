"""The Ray pipeline on a real local Ray cluster (CPU actors), against a direct ``convert()``."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pymupdf
import pytest

# "ray.data", not "ray": a bare folder named ray on sys.path would import as a namespace package "ray"
pytest.importorskip("ray.data")
ray = pytest.importorskip("ray")
cloudpickle = pytest.importorskip("ray.cloudpickle")

from deepseek_ocr2_loaders import TransformersEngine, convert  # noqa: E402
from deepseek_ocr2_loaders.engines._base import EngineOutput, OCREngine  # noqa: E402
from deepseek_ocr2_loaders.errors import ConfigError, EngineError  # noqa: E402
from deepseek_ocr2_loaders.ray import read_results, records_from_results, run_ray_pipeline  # noqa: E402
from deepseek_ocr2_loaders.records._modes import records  # noqa: E402
from deepseek_ocr2_loaders.testing import ScriptedEngine  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    # Ray Data's DataContext assigns its own deprecated fields (use_push_based_shuffle,
    # use_polars...) while it is built: Ray's warnings about Ray's defaults, not our calls
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context"),
]

# Test workers cannot import this module by name (tests/ray_data is not on their sys.path), so
# its functions travel by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def answer(image: object, prompt: str) -> str:
    """Grounded Markdown naming the page size, so every page's text is distinct."""
    width, height = image.size  # type: ignore[attr-defined]
    return (
        f"<|ref|>title<|/ref|><|det|>[[100, 50, 900, 90]]<|/det|>\n# Page {width}x{height}\n\n"
        f"<|ref|>text<|/ref|><|det|>[[100, 120, 900, 300]]<|/det|>\nBody of a {width} wide page.\n"
    )


def scripted_engine() -> OCREngine:
    return ScriptedEngine(answer, batch_size=3)


class FailingEngine(OCREngine):
    def generate(self, images: list[object], prompt: str) -> list[EngineOutput]:  # type: ignore[override]
        raise EngineError("backend down")


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=300 * 1024 * 1024,
        log_to_driver=False,
        configure_logging=False,
    )
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """Four PDFs of 1-4 pages (each page a different width) and one file that is not a PDF."""
    folder = tmp_path_factory.mktemp("corpus")
    expected: dict[str, int] = {}
    for n in range(1, 5):
        doc = pymupdf.open()
        for p in range(n):
            page = doc.new_page(width=200 + 10 * p + n, height=300)
            page.insert_text((20, 40), f"file {n} page {p + 1}")
        doc.save(folder / f"doc{n}.pdf")
        expected[f"doc{n}.pdf"] = n
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\nthis is not a pdf at all")
    return folder, expected


def test_every_page_arrives_once_and_matches_convert(
    ray_cluster: None, corpus: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    folder, expected = corpus
    summary = run_ray_pipeline(
        folder,
        tmp_path / "out",
        engine_factory=scripted_engine,
        num_gpus_per_actor=0,
        num_cpus_per_actor=0.5,
        concurrency=2,
        batch_size=3,
    )
    rows = list(read_results(tmp_path / "out"))
    good = [row for row in rows if row["file_name"] != "broken.pdf"]
    pairs = [(row["file_name"], row["page"]) for row in good]
    assert sorted(pairs) == sorted((name, p) for name, n in expected.items() for p in range(n))
    assert len(set(pairs)) == len(pairs)
    assert all(row["status"] == "ok" and "<|ref|>" not in row["markdown"] for row in good)
    assert all(row["blocks"][0]["label"] == "title" and row["model"] == "scripted" for row in good)
    (broken,) = [row for row in rows if row["file_name"] == "broken.pdf"]
    assert broken["status"] == "failed" and broken["errors"][0]["stage"] == "open"
    assert broken["errors"][0]["category"] == "CorruptInputError"
    assert (summary.files, summary.pages, summary.failed) == (5, 11, 1)

    direct_pages = list(convert(sorted(folder.glob("doc*.pdf")), engine=scripted_engine(), cache=False))
    want = [(r.id, r.text, r.metadata) for r in records(direct_pages, "page")]
    got = [(r.id, r.text, r.metadata) for r in records_from_results(tmp_path / "out")]
    got = [item for item in got if item[2]["file_name"] != "broken.pdf"]
    assert got == want
    # one record format for every writer: the CLI's JSONL lines, nested values as objects
    out = sorted((tmp_path / "out").iterdir())
    lines = [json.loads(line) for path in out for line in path.read_text().splitlines()]
    assert {path.suffix for path in (tmp_path / "out").iterdir()} == {".jsonl"}
    by_page = {(line["file_name"], line["page"]): line for line in lines}
    for page in direct_pages:
        assert by_page[page.file_name, page.page] == page.to_dict()

    from deepseek_ocr2_loaders.langchain import DeepSeekOCR2Loader
    from deepseek_ocr2_loaders.langchain import load_ray_results as langchain_results
    from deepseek_ocr2_loaders.llama_index import load_ray_results as llama_index_results

    loaded = DeepSeekOCR2Loader(sorted(folder.glob("doc*.pdf")), engine=scripted_engine(), cache=False).load()
    from_run = [d for d in langchain_results(tmp_path / "out") if d.metadata["file_name"] != "broken.pdf"]
    assert [(d.id, d.page_content, d.metadata) for d in from_run] == [
        (d.id, d.page_content, d.metadata) for d in loaded
    ]
    nodes = [d for d in llama_index_results(tmp_path / "out") if d.metadata["file_name"] != "broken.pdf"]
    assert [(d.id_, d.text, d.metadata) for d in nodes] == [(d.id, d.page_content, d.metadata) for d in loaded]
    for read in (records_from_results, langchain_results, llama_index_results):
        with pytest.raises(ConfigError, match="mode must be one of"):
            read(tmp_path / "out", mode="pages")


def test_parquet_output_and_engine_errors_fail_pages(
    ray_cluster: None, corpus: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    folder, _ = corpus
    summary = run_ray_pipeline(
        [folder / "doc2.pdf", folder / "missing.pdf"],
        tmp_path / "out",
        engine_factory=FailingEngine,
        num_cpus_per_actor=0.5,
        num_gpus_per_actor=0,
        format="parquet",
    )
    rows = sorted(read_results(tmp_path / "out"), key=lambda row: (row["file_name"], row["page"]))
    assert [(row["file_name"], row["page"], row["status"]) for row in rows] == [
        ("doc2.pdf", 0, "failed"),
        ("doc2.pdf", 1, "failed"),
        ("missing.pdf", 0, "failed"),
    ]
    assert "backend down" in rows[0]["errors"][0]["message"]
    assert rows[2]["errors"][0]["message"].endswith("file not found")
    assert summary.failed == 3 and list((tmp_path / "out").glob("*.parquet"))


def test_tiny_checkpoint_on_cpu_actor(ray_cluster: None, tiny_checkpoint: Path, tmp_path: Path) -> None:
    doc = pymupdf.open()
    for _ in range(2):
        doc.new_page(width=200, height=260).insert_text((20, 40), "tiny")
    doc.save(tmp_path / "two.pdf")
    factory = functools.partial(TransformersEngine, str(tiny_checkpoint), max_new_tokens=4)
    run_ray_pipeline(
        tmp_path / "two.pdf", tmp_path / "out", engine_factory=factory, num_gpus_per_actor=0, num_cpus_per_actor=0.5
    )
    rows = sorted(read_results(tmp_path / "out"), key=lambda row: row["page"])
    assert [row["page"] for row in rows] == [0, 1]
    assert all(row["status"] != "failed" for row in rows), json.dumps(rows[0]["errors"])
    assert all(0 < row["output_tokens"] <= 4 and row["vision_tokens"] > 256 for row in rows)


def test_cli_runs_a_job_with_a_local_checkpoint(ray_cluster: None, tiny_checkpoint: Path, tmp_path: Path) -> None:
    import argparse

    from deepseek_ocr2_loaders.cli._ray_cmd import add_ray_parser, run_ray

    doc = pymupdf.open()
    doc.new_page(width=200, height=260)
    doc.save(tmp_path / "one.pdf")
    parser = argparse.ArgumentParser()
    add_ray_parser(parser.add_subparsers(dest="command"))
    argv = ["ray", str(tmp_path / "one.pdf"), "-o", str(tmp_path / "out"), "--model", str(tiny_checkpoint)]
    argv += ["--gpus-per-actor", "0", "--cpus-per-actor", "0.5", "--max-new-tokens", "2", "--format", "parquet"]
    assert run_ray(parser.parse_args(argv)) == 0
    (row,) = read_results(tmp_path / "out")
    assert row["status"] == "truncated" and row["output_tokens"] <= 2
