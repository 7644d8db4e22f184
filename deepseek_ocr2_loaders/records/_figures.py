"""Figure links in the loaders' text: files written under ``figures_dir``, or no link at all.

:func:`~deepseek_ocr2_loaders.convert` links each figure by a bare name
(``![Figure 1](page-0004-figure-1.png)``) and hands its caller the crop to save. A loader's
Documents leave the process without the crops, so a link there must name a file that
exists: with ``figures_dir`` the crops are written there and linked by ``file:`` URI;
without it the links are left out (captions keep their text).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from ..parsing import is_figure, join_blocks
from ..types import Figure, PageResult

__all__ = ["place_figures"]

_UNSAFE = re.compile(r"[^\w.-]+")


def place_figures(page: PageResult, figures_dir: Path | None) -> PageResult:
    """The page with its figures written to ``figures_dir`` and linked there, or unlinked.

    Files are named ``<file stem>-<sha256[:12]>-page-NNNN-figure-K.png``: two files never
    overwrite each other's figures, and reading a file again rewrites the same files.
    """
    if not any(is_figure(block) for block in page.blocks):
        return page
    figures = _write(page, figures_dir) if figures_dir is not None else ()
    markdown = join_blocks(page.blocks, lambda k: f"![Figure {k + 1}]({figures[k].name})" if k < len(figures) else "")
    return replace(page, markdown=markdown, figures=figures)


def _write(page: PageResult, folder: Path) -> tuple[Figure, ...]:
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{_UNSAFE.sub('_', Path(page.file_name).stem)}-{page.sha256[:12]}"
    written = []
    for figure in page.figures:
        path = folder / f"{stem}-{figure.name}"
        figure.image.save(path)
        written.append(replace(figure, name=path.as_uri()))
    return tuple(written)
