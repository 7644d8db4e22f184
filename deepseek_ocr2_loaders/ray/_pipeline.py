"""``run_ray_pipeline``: many documents through Ray Data, CPU rendering feeding a GPU actor pool.

Three streaming stages, so no stage waits for the previous one to finish:

1. CPU tasks open each file and emit one row per page, rendered to PNG (:mod:`._rows`);
2. ``concurrency`` actors, each with ``num_gpus_per_actor`` GPUs and its own engine, read
   ``batch_size`` pages per call (:class:`._actor.OCRActor`);
3. results are written to ``output`` as they finish (JSONL or Parquet; no images).

There is no page cache here: a batch job writes each page once, to its output folder.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

from ..engines._base import OCREngine
from ..errors import ConfigError
from ..model import DEFAULT_DPI, DEFAULT_PROMPT
from ..model._prompts import resolve_prompt
from ..options import RetryPolicy
from ._actor import OCRActor
from ._results import read_results
from ._rows import file_rows, list_inputs
from ._writers import check_gpus, write_jsonl

__all__ = ["EngineFactory", "RayRunSummary", "run_ray_pipeline"]

EngineFactory = Callable[[], OCREngine]
"""A picklable callable building the engine inside each actor."""

Format = Literal["jsonl", "parquet"]


@dataclass(frozen=True)
class RayRunSummary:
    """What a finished run wrote.

    Attributes:
        output: The results folder.
        format: ``jsonl`` or ``parquet``.
        files: Input files listed.
        pages: Page records written (a file that could not be opened counts one).
        failed: Records with ``status="failed"``.
        seconds: Wall time of the run.
    """

    output: Path
    format: str
    files: int
    pages: int
    failed: int
    seconds: float


def run_ray_pipeline(
    inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    engine_factory: EngineFactory,
    num_gpus_per_actor: float = 1.0,
    num_cpus_per_actor: float = 1.0,
    concurrency: int = 1,
    batch_size: int = 16,
    pages: str | list[int] | None = None,
    dpi: int = DEFAULT_DPI,
    prompt: str = DEFAULT_PROMPT,
    format: Format = "jsonl",
    password: str | None = None,
    retry: RetryPolicy | None = None,
) -> RayRunSummary:
    """OCR every page of ``inputs`` on the current Ray cluster; write one record per page to ``output``.

    Ray is started locally when no cluster is connected (``ray.init(address=...)`` first to
    use one). No page is dropped: unreadable files and pages, and pages of a batch the
    engine failed on, are written with ``status="failed"`` and their errors.

    Args:
        inputs: A folder (its PDFs and images), a glob, a path, or a list of them.
        output: A new or empty folder; read it back with :func:`read_results` or
            :func:`records_from_results`.
        engine_factory: Builds the engine in each actor; must be picklable, e.g.
            ``functools.partial(TransformersEngine, "/models/DeepSeek-OCR-2")``.
        num_gpus_per_actor: GPUs reserved per actor (``0`` for CPU engines or remote servers).
        num_cpus_per_actor: CPUs reserved per actor. Leave some CPUs to the rendering tasks:
            actors holding every CPU of a node starve stage 1 and the job stalls.
        concurrency: Number of actors (engines) reading pages at once.
        batch_size: Pages handed to one engine call.
        pages: Page selection for every file (``"1-3,7"`` or 0-based indices).
        dpi: PDF render resolution.
        prompt: A preset or a custom instruction.
        format: ``jsonl`` (``part-NNNNN.jsonl``, the CLI's records) or ``parquet`` (nested values as JSON strings).
        password: Password of encrypted PDFs.
        retry: What to do with looping pages (default as in :func:`convert`).

    Returns:
        A :class:`RayRunSummary` counted from the written files.

    Raises:
        ConfigError: An option is out of bounds, ``output`` holds files already, or the cluster
            has fewer GPUs than ``num_gpus_per_actor`` (checked before any work starts).
        InputError: A folder holds no PDF or image, or a glob matches nothing.
    """
    import ray.data

    if format not in ("jsonl", "parquet"):
        raise ConfigError(f"format must be 'jsonl' or 'parquet', got {format!r}")
    if not 36 <= dpi <= 600:
        raise ConfigError(f"dpi must be between 36 and 600, got {dpi}")
    if concurrency < 1 or batch_size < 1 or num_gpus_per_actor < 0 or num_cpus_per_actor < 0:
        raise ConfigError("concurrency and batch_size must be >= 1, GPUs and CPUs per actor >= 0")
    folder = Path(output)
    if folder.exists() and any(folder.iterdir()):
        raise ConfigError(f"the output folder {folder} is not empty; results of two runs would mix")
    files = list_inputs(inputs)
    check_gpus(num_gpus_per_actor)
    started = time.monotonic()
    paths = ray.data.from_items([{"path": path} for path in files], override_num_blocks=len(files))
    rendered = paths.flat_map(partial(file_rows, pages=pages, dpi=dpi, password=password))
    results = rendered.map_batches(
        OCRActor,
        fn_constructor_args=(engine_factory, resolve_prompt(prompt), retry or RetryPolicy()),
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_gpus=num_gpus_per_actor,
        num_cpus=num_cpus_per_actor,
        batch_size=batch_size,
        batch_format="pyarrow",
    )
    if format == "jsonl":
        write_jsonl(results, folder)
    else:
        results.write_parquet(str(folder.resolve()))
    statuses = [row["status"] for row in read_results(folder)]
    return RayRunSummary(
        output=folder,
        format=format,
        files=len(files),
        pages=len(statuses),
        failed=statuses.count("failed"),
        seconds=time.monotonic() - started,
    )
