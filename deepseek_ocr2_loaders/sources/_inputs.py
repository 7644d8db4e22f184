"""What a user names as input (files, folders) -> the files to read."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from ..errors import InputError

__all__ = ["SUFFIXES", "expand_inputs"]

SUFFIXES = frozenset({".pdf", ".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"})
"""File suffixes a folder is searched for."""

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]+://")


def expand_inputs(inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Absolute paths (``~`` expanded); folders expanded to the PDFs and images inside them, sorted.

    Absolute, resolved paths are what a document is known by (its ``source`` and the root of
    its ids), so the same file gives the same ids whatever the working directory or spelling.

    Raises:
        InputError: A path does not exist, a folder holds no PDF or image, or an input is a
            URL (fetching is left to the caller, who knows its authentication and limits).
    """
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    paths: list[Path] = []
    for item in items:
        if isinstance(item, str) and _URL.match(item):
            raise InputError(
                "is a URL: download it first, or parse its bytes with DeepSeekOCR2Parser "
                "(Blob.from_data(data, path=url)) so the URL stays its source",
                source=item,
            )
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
