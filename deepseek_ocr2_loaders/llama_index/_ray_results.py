"""LlamaIndex Documents from a finished Ray run, without running the model again."""

from __future__ import annotations

import os

from llama_index.core.schema import Document

from ._documents import to_document

__all__ = ["load_ray_results"]


def load_ray_results(output: str | os.PathLike[str], *, mode: str = "page") -> list[Document]:
    """The Documents :class:`DeepSeekOCR2Reader` would give, read from ``run_ray_pipeline`` output.

    Needs the ``ray`` extra (``pip install 'deepseek-ocr2-loaders[ray]'``).
    """
    from ..ray._results import records_from_results

    return [to_document(record) for record in records_from_results(output, mode)]  # type: ignore[arg-type]
