"""Stage 1 of the Ray pipeline: input files -> one row per page, with the page rendered as PNG.

These functions run in Ray CPU tasks and import nothing from Ray, so they are tested as
plain functions too. A file or page that cannot be read still gives a row (with ``error``
set): the OCR stage turns it into a failed page result, so nothing is lost on the way.
"""

from __future__ import annotations

import glob
import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..model import DEFAULT_DPI
from ..pipeline._results import unopened_document
from ..sources import SourcePage, expand_inputs, open_source, parse_page_spec

__all__ = ["PAGE_COLUMNS", "file_rows", "list_inputs"]

PAGE_COLUMNS = (
    "source",
    "file_name",
    "sha256",
    "total_pages",
    "page",
    "page_label",
    "width",
    "height",
    "unit",
    "image",
    "text_layer",
    "error",
    "error_category",
    "error_stage",
)
"""Every stage-1 row has exactly these keys, so Ray sees one schema for good and bad pages."""

_GLOB_CHARS = frozenset("*?[")


def list_inputs(inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[str]:
    """The files to read: folders expanded (PDFs and images), globs matched, other paths kept.

    Files are resolved absolute paths, as the loaders name them, so a Ray run and a loader
    give the same ``source`` and ids for one file.

    A listed path that does not exist is kept on purpose: stage 1 turns it into a failed
    row, so a batch job reports it next to the others instead of stopping before it starts.

    Raises:
        InputError: A glob matches nothing, a folder holds no PDF or image, or nothing is given.
    """
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    files: list[str] = []
    for item in items:
        text = os.fspath(item)
        if Path(text).is_dir():
            files.extend(str(path) for path in expand_inputs(text))
        elif not Path(text).exists() and _GLOB_CHARS & set(text):
            matches = sorted(str(Path(p).resolve()) for p in glob.glob(text, recursive=True) if Path(p).is_file())
            if not matches:
                raise InputError("the pattern matches no file", source=text)
            files.extend(matches)
        else:
            files.append(text if "://" in text else str(Path(text).resolve()))  # a URI stays as given
    if not files:
        raise InputError("no input files given")
    return files


def file_rows(
    item: dict[str, Any], *, pages: str | list[int] | None = None, dpi: int = DEFAULT_DPI, password: str | None = None
) -> Iterator[dict[str, Any]]:
    """Open one file (``item["path"]``) and yield one row per selected page (Ray ``flat_map``).

    Pages are rendered one at a time, so a long PDF never holds more than one page image
    in this task's memory before Ray takes the row.
    """
    path = str(item["path"])
    try:
        document = open_source(path, password=password, dpi=dpi)
        selected = parse_page_spec(pages, document.total_pages, source=document.name)
    except InputError as exc:
        info = unopened_document(exc)
        yield _row(info.name, info.file_name, "", 0, 0, None, error=exc, stage="open")
        return
    with document:
        sha256, name, file_name, total = document.sha256, document.name, document.file_name, document.total_pages
        for index in range(total) if selected is None else selected:
            try:
                page = document.load_page(index)
            except InputError as exc:  # one unreadable page never costs the others
                yield _row(name, file_name, sha256, total, index, None, error=exc, stage="render")
            else:
                yield _row(name, file_name, sha256, total, index, page)


def _row(
    source: str,
    file_name: str,
    sha256: str,
    total_pages: int,
    index: int,
    page: SourcePage | None,
    *,
    error: InputError | None = None,
    stage: str = "",
) -> dict[str, Any]:
    image = b""
    if page is not None:
        buffer = io.BytesIO()
        page.image.save(buffer, format="PNG", compress_level=1)  # lossless: the model sees exact pixels
        image = buffer.getvalue()
    return {
        "source": source,
        "file_name": file_name,
        "sha256": sha256,
        "total_pages": total_pages,
        "page": index,
        "page_label": page.label if page else str(index + 1),
        "width": float(page.width) if page else 0.0,
        "height": float(page.height) if page else 0.0,
        "unit": page.unit if page else "",
        "image": image,
        "text_layer": (page.text or "") if page else "",
        "error": "" if error is None else str(error),
        "error_category": "" if error is None else type(error).__name__,
        "error_stage": stage,
    }
