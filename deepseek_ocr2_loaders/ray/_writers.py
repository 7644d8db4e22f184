"""Where a Ray run's results go: JSONL records exactly as the CLI writes them, or Parquet.

Parquet keeps the nested values (``blocks``, ``figures``, ``errors``, ``compression``) as
JSON strings under one fixed schema; JSONL decodes them, so a ``*.jsonl`` line of a Ray run
reads like a line of ``deepseek-ocr2 convert`` (one record format for every writer).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ._actor import JSON_COLUMNS

__all__ = ["check_gpus", "write_jsonl"]


def write_jsonl(results: Any, folder: Path) -> None:
    """Stream the dataset ``results`` into ``folder/part-NNNNN.jsonl``, one file per block.

    Written by the driver as blocks finish: the folder need only be local to it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for number, batch in enumerate(results.iter_batches(batch_format="pyarrow", batch_size=None)):
        with (folder / f"part-{number:05d}.jsonl").open("w", encoding="utf-8") as out:
            for row in batch.to_pylist():
                for key in JSON_COLUMNS:
                    row[key] = json.loads(row[key])
                out.write(json.dumps(row, ensure_ascii=False) + "\n")


def check_gpus(per_actor: float) -> None:
    """Refuse at once an actor the cluster can never schedule (Ray would wait for it forever).

    Raises:
        ConfigError: ``per_actor`` GPUs are more than the cluster has.
    """
    import ray

    if per_actor <= 0:
        return
    if not ray.is_initialized():
        ray.init()
    gpus = ray.cluster_resources().get("GPU", 0.0)
    if gpus < per_actor:
        raise ConfigError(
            f"num_gpus_per_actor={per_actor:g} but the Ray cluster has {gpus:g} GPUs, so no actor could "
            "ever start; pass num_gpus_per_actor=0 to read on CPUs (or connect to a cluster with GPUs)"
        )
