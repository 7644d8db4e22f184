"""Batch OCR of many documents on a Ray cluster (extra ``ray``): render on CPUs, read on GPUs.

Import it only with Ray installed (``pip install 'deepseek-ocr2-loaders[ray]'``); the
check below fails loudly and early instead of deep inside a Ray worker.

Typical use::

    from functools import partial
    from deepseek_ocr2_loaders import TransformersEngine
    from deepseek_ocr2_loaders.ray import records_from_results, run_ray_pipeline

    summary = run_ray_pipeline("pdfs/", "out/", engine_factory=partial(TransformersEngine, "/models/DeepSeek-OCR-2"))
    for record in records_from_results("out/"):
        ...
"""

from __future__ import annotations

from importlib.util import find_spec


def _installed(name: str) -> bool:
    """Whether ``name`` is a real installed package (a bare folder named ``ray`` on sys.path is not)."""
    spec = find_spec(name)
    return spec is not None and spec.origin not in (None, "namespace")


if not (_installed("ray") and _installed("pyarrow")):  # pragma: no cover - depends on the environment
    raise ImportError("deepseek_ocr2_loaders.ray needs Ray Data: pip install 'deepseek-ocr2-loaders[ray]'", name="ray")

from ._pipeline import EngineFactory, RayRunSummary, run_ray_pipeline  # noqa: E402
from ._results import read_results, records_from_results  # noqa: E402

__all__ = [
    "EngineFactory",
    "RayRunSummary",
    "read_results",
    "records_from_results",
    "run_ray_pipeline",
]
