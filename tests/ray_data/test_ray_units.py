"""The Ray pipeline's pieces without a Ray cluster: input listing, page rows, the CLI parser, the extra check."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path

import pymupdf
import pytest

# "ray.data", not "ray": a bare folder named ray on sys.path would import as a namespace package "ray"
pytest.importorskip("ray.data")

from deepseek_ocr2_loaders.cli._ray_cmd import add_ray_parser, engine_factory_from_args  # noqa: E402
from deepseek_ocr2_loaders.errors import InputError  # noqa: E402
from deepseek_ocr2_loaders.options import RetryPolicy  # noqa: E402
from deepseek_ocr2_loaders.ray._actor import OCRActor, result_schema  # noqa: E402
from deepseek_ocr2_loaders.ray._results import read_results  # noqa: E402
from deepseek_ocr2_loaders.ray._rows import PAGE_COLUMNS, file_rows, list_inputs  # noqa: E402
from deepseek_ocr2_loaders.sources import expand_inputs  # noqa: E402
from deepseek_ocr2_loaders.testing import ScriptedEngine  # noqa: E402
from deepseek_ocr2_loaders.types import PageResult  # noqa: E402


def _pdf(path: Path, pages: int) -> Path:
    doc = pymupdf.open()
    for _ in range(pages):
        doc.new_page(width=120, height=160).insert_text((10, 20), "hello text layer")
    doc.save(path)
    return path


def test_list_inputs_expands_folders_and_globs_and_keeps_missing_paths(tmp_path: Path) -> None:
    a, b = _pdf(tmp_path / "a.pdf", 1), _pdf(tmp_path / "b.pdf", 1)
    (tmp_path / "notes.txt").write_text("not a document")
    assert list_inputs(tmp_path) == [str(a), str(b)]
    assert list_inputs(str(tmp_path / "*.pdf")) == [str(a), str(b)]
    assert list_inputs([a, tmp_path / "gone.pdf"]) == [str(a), str(tmp_path / "gone.pdf")]
    with pytest.raises(InputError, match="matches no file"):
        list_inputs(str(tmp_path / "*.tiff"))


def test_list_inputs_names_files_like_the_loaders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = _pdf(tmp_path / "a.pdf", 1)
    monkeypatch.chdir(tmp_path)
    assert list_inputs("a.pdf") == list_inputs("*.pdf") == [str(a)] == [str(p) for p in expand_inputs("a.pdf")]


def test_file_rows_one_row_per_page_and_an_error_row_per_unreadable_page(
    tmp_path: Path, broken_page_pdf: bytes
) -> None:
    (tmp_path / "broken.pdf").write_bytes(broken_page_pdf)
    rows = list(file_rows({"path": str(tmp_path / "broken.pdf")}, dpi=72))
    assert [tuple(row) for row in rows] == [PAGE_COLUMNS] * 3
    assert [(row["page"], bool(row["image"]), row["error_stage"]) for row in rows] == [
        (0, True, ""),
        (1, False, "render"),
        (2, True, ""),
    ]
    selected = list(file_rows({"path": str(_pdf(tmp_path / "t.pdf", 3))}, pages="2-3"))
    assert [row["page"] for row in selected] == [1, 2]
    assert "hello text layer" in selected[0]["text_layer"]
    (missing,) = file_rows({"path": str(tmp_path / "missing.pdf")})
    assert (missing["error_stage"], missing["total_pages"], missing["file_name"]) == ("open", 0, "missing.pdf")


def test_actor_keeps_row_order_and_round_trips_through_page_result(tmp_path: Path, broken_page_pdf: bytes) -> None:
    import pyarrow
    import pyarrow.parquet

    (tmp_path / "broken.pdf").write_bytes(broken_page_pdf)
    rows = list(file_rows({"path": str(tmp_path / "broken.pdf")}, dpi=72))
    actor = OCRActor(
        lambda: ScriptedEngine(lambda image, prompt: "<|ref|>text<|/ref|><|det|>[[0,0,10,10]]<|/det|>\nhi"),
        "<image>\nx",
        RetryPolicy(),
    )
    table = actor(pyarrow.Table.from_pylist(rows))
    assert table.schema == result_schema()
    out = table.to_pylist()
    assert [(row["page"], row["status"], row["markdown"]) for row in out] == [
        (0, "ok", "hi"),
        (1, "failed", ""),
        (2, "ok", "hi"),
    ]
    pyarrow.parquet.write_table(table, tmp_path / "part.parquet")
    (back,) = [r for r in read_results(tmp_path) if r["page"] == 1]
    page = PageResult.from_dict(back)
    assert page.errors[0].stage == "render" and page.errors[0].page == 1


def test_cli_parser_builds_a_picklable_factory() -> None:
    import pickle

    parser = argparse.ArgumentParser()
    add_ray_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["ray", "in/", "-o", "out", "--server", "http://h:8000/v1", "--actors", "3"])
    factory = pickle.loads(pickle.dumps(engine_factory_from_args(args)))
    engine = factory()
    assert engine.base_urls == ("http://h:8000/v1",) and args.actors == 3 and args.gpus_per_actor is None
    with pytest.raises(SystemExit):
        parser.parse_args(["ray", "in/", "-o", "out", "--server", "http://h/v1", "--model", "m"])


def test_import_names_the_extra_when_ray_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    saved = {name: module for name, module in sys.modules.items() if name.startswith("deepseek_ocr2_loaders.ray")}
    for name in saved:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ImportError, match=r"pip install 'deepseek-ocr2-loaders\[ray\]'"):
        importlib.import_module("deepseek_ocr2_loaders.ray")
