"""Stage 2 of the Ray pipeline: a pool of actors, each holding one engine, reads page batches.

:class:`OCRActor` runs the package's own batch logic (:func:`~deepseek_ocr2_loaders.pipeline._batch.process_batch`:
retries of looping pages, text-layer fallback, parsing, statuses), so a page read on a
Ray cluster gets exactly the result :func:`~deepseek_ocr2_loaders.convert` would give it.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..engines._base import OCREngine
from ..errors import InputError
from ..options import RetryPolicy
from ..pipeline._batch import PendingPage, process_batch, run_batch
from ..pipeline._results import DocumentInfo
from ..sources import SourcePage
from ..types import ErrorRecord, PageResult

if TYPE_CHECKING:
    import pyarrow

__all__ = ["JSON_COLUMNS", "RESULT_COLUMNS", "OCRActor", "result_row", "result_schema"]

RESULT_COLUMNS: dict[str, str] = {
    "source": "string",
    "file_name": "string",
    "sha256": "string",
    "compression": "string",
    "page": "int64",
    "page_number": "int64",
    "page_label": "string",
    "total_pages": "int64",
    "width": "float64",
    "height": "float64",
    "unit": "string",
    "status": "string",
    "finish_reason": "string",
    "vision_tokens": "int64",
    "output_tokens": "int64",
    "model": "string",
    "prompt": "string",
    "markdown": "string",
    "blocks": "string",
    "figures": "string",
    "errors": "string",
    "raw": "string",
}
"""The columns between the actors and the writers: ``PageResult.to_dict()``, nested values as JSON strings.

A fixed schema keeps every output file alike (an all-failed batch would otherwise give
null-typed columns that Parquet readers refuse to merge with the others). Parquet keeps
the strings; JSONL is written with them decoded, as the CLI writes it.
"""

JSON_COLUMNS = ("compression", "blocks", "figures", "errors")


def result_schema() -> pyarrow.Schema:
    """The Arrow schema of :data:`RESULT_COLUMNS`."""
    import pyarrow

    return pyarrow.schema([(name, getattr(pyarrow, kind)()) for name, kind in RESULT_COLUMNS.items()])


def result_row(page: PageResult) -> dict[str, Any]:
    """One result row: ``page.to_dict()`` (figure images are not kept), nested values as JSON strings."""
    row = page.to_dict()
    for key in JSON_COLUMNS:
        row[key] = json.dumps(row[key], ensure_ascii=False)
    return {name: row[name] for name in RESULT_COLUMNS}


class OCRActor:
    """A Ray Data callable class: builds its engine once, then reads one batch of pages per call.

    Args:
        engine_factory: A picklable zero-argument callable returning the engine (a top-level
            function or ``functools.partial(TransformersEngine, path)``): the engine itself
            is built inside the actor, on the actor's GPU, never shipped over the wire.
        prompt: The full prompt (already resolved from a preset).
        retry: What to do with looping pages, as in :func:`convert`.
    """

    def __init__(self, engine_factory: Callable[[], OCREngine], prompt: str, retry: RetryPolicy) -> None:
        self.engine = engine_factory()
        self.prompt = prompt
        self.retry = retry

    def __call__(self, batch: pyarrow.Table) -> pyarrow.Table:
        """Read a batch of stage-1 rows; return one result row per input row, in order."""
        import pyarrow

        rows = batch.to_pylist()
        pending = [_pending(row) for row in rows]
        results = run_batch(process_batch(pending, engine=self.engine, prompt=self.prompt, retry=self.retry))
        out = [result_row(_with_stage1_error(page, row)) for page, row in zip(results, rows, strict=True)]
        return pyarrow.Table.from_pylist(out, schema=result_schema())


def _pending(row: dict[str, Any]) -> PendingPage:
    """A stage-1 row back into the pipeline's :class:`PendingPage` (the PNG decoded to RGB)."""
    from PIL import Image

    info = DocumentInfo(row["source"], row["file_name"], row["total_pages"], row["sha256"])
    if row["error"]:
        error = InputError(row["error"])
        return PendingPage(info, row["page"], None, error, stage=row["error_stage"] or "render")
    with Image.open(io.BytesIO(row["image"])) as decoded:
        image = decoded.convert("RGB")
    page = SourcePage(
        index=row["page"],
        label=row["page_label"],
        image=image,
        width=row["width"],
        height=row["height"],
        unit=row["unit"],
        text=row["text_layer"] or None,
    )
    return PendingPage(info, row["page"], page)


def _with_stage1_error(page: PageResult, row: dict[str, Any]) -> PageResult:
    """Keep the original error class and message of a page that stage 1 could not read."""
    if not row["error"]:
        return page
    stage = row["error_stage"] or "render"
    record = ErrorRecord(stage, row["error"], row["error_category"], None if stage == "open" else row["page"])
    return dataclasses.replace(page, errors=(record,))
