"""Read a Ray pipeline's output folder back: result dicts, :class:`PageResult` objects, records.

Loaders and indexers use this to turn a finished batch job into Documents without running
the model again. Figure images are not written by the pipeline, so rebuilt pages carry no
figures (the Markdown still names them).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..records._modes import DocumentRecord, Mode, check_mode, records
from ..types import PageResult
from ._actor import JSON_COLUMNS

__all__ = ["read_results", "records_from_results", "result_files"]


def result_files(output: str | os.PathLike[str]) -> list[Path]:
    """The JSONL (``*.json``/``*.jsonl``) and Parquet files in ``output``, sorted by name."""
    folder = Path(output)
    if not folder.is_dir():
        raise InputError("the results folder does not exist", source=folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".json", ".jsonl", ".parquet"))


def read_results(output: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield every page record of ``output`` in ``PageResult.to_dict()`` form (plus ``prompt``).

    Records come in file order, not page order: Ray writes pages as batches finish.
    """
    for path in result_files(output):
        for row in _rows(path):
            for key in JSON_COLUMNS:
                if isinstance(row.get(key), str):
                    row[key] = json.loads(row[key])
            yield row


def records_from_results(output: str | os.PathLike[str], mode: Mode = "page") -> Iterator[DocumentRecord]:
    """The loaders' :class:`DocumentRecord` objects of a finished run: same texts, metadata and ids.

    Pages are sorted by document and page first (every mode but ``page`` needs a file's
    pages together), so the whole run's text is held in memory once.

    Raises:
        ConfigError: ``mode`` is not a loader mode (raised at the call; the files are read
            when the records are).
    """
    return _sorted_records(output, check_mode(mode))


def _sorted_records(output: str | os.PathLike[str], mode: Mode) -> Iterator[DocumentRecord]:
    pages = sorted(map(PageResult.from_dict, read_results(output)), key=lambda p: (p.source, p.sha256, p.page))
    yield from records(pages, mode)


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet

        yield from pyarrow.parquet.read_table(path).to_pylist()
        return
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)
