"""What a user names as input (files, folders) -> the files to read."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..errors import InputError

__all__ = ["SUFFIXES", "expand_inputs"]

SUFFIXES = frozenset({".pdf", ".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"})
"""File suffixes a folder is searched for."""


def expand_inputs(inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Absolute paths (``~`` expanded); folders expanded to the PDFs and images inside them, sorted.

    Absolute, resolved paths are what a document is known by (its ``source`` and the root of
    its ids), so the same file gives the same ids whatever the working directory or spelling.

    Raises:
        InputError: A path does not exist, or a folder holds no PDF or image.
    """
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    paths: list[Path] = []
    for item in items:
        path = Path(item).expanduser().resolve()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
            if not found:
                raise InputError("the folder holds no PDF or image files", source=path)
            paths.extend(found)
        elif path.exists():
            paths.append(path)
        else:
            raise InputError("file not found", source=path)
    return paths
