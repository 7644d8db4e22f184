"""Where ``convert`` writes a document, and the writing: ``<stem>.md``, ``<stem>.jsonl``, figures.

The output tree mirrors the input tree below the inputs' common folder, so ``a/x.pdf`` and
``b/x.pdf`` become ``OUTDIR/a/x.*`` and ``OUTDIR/b/x.*``; names are sanitised and never leave OUTDIR.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..types import PageResult
from ._progress import Progress

__all__ = ["OutputNames", "write_document"]


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "document"


class OutputNames:
    """``OUTDIR/<subfolders>/<stem>`` for each input file, mirroring the inputs' tree."""

    def __init__(self, outdir: Path, files: Sequence[Path]) -> None:
        self.outdir = outdir
        self._base = Path(os.path.commonpath([path.parent for path in files])) if files else Path()
        self._taken: set[Path] = set()

    def target(self, path: Path) -> Path:
        """Output path without suffix; ``x.pdf`` next to ``x.png`` gives ``x`` and ``x_png``."""
        try:
            folders = path.parent.relative_to(self._base).parts
        except ValueError:  # not below the common folder (cannot happen for expanded inputs)
            folders = ()
        folder = self.outdir.joinpath(*(_safe(part) for part in folders))
        target = folder / _safe(path.stem)
        if target in self._taken:
            target = folder / _safe(f"{path.stem}_{path.suffix.lstrip('.')}")
        self._taken.add(target)
        return target

    def shown(self, target: Path) -> str:
        """``target`` relative to OUTDIR, for messages."""
        return str(target.relative_to(self.outdir))


def write_document(pages: Iterable[PageResult], target: Path, progress: Progress) -> int:
    """Write ``<target>.md``, ``<target>.jsonl`` and ``<target>_figures/``; return the count of failed pages."""
    target.parent.mkdir(parents=True, exist_ok=True)
    figures_dir = target.with_name(f"{target.name}_figures")
    failed = 0
    with (
        target.with_name(f"{target.name}.md").open("w", encoding="utf-8") as md,
        target.with_name(f"{target.name}.jsonl").open("w", encoding="utf-8") as jsonl,
    ):
        for number, page in enumerate(pages):
            markdown = page.markdown
            for figure in page.figures:
                figures_dir.mkdir(exist_ok=True)
                figure.image.save(figures_dir / figure.name)
                markdown = markdown.replace(f"]({figure.name})", f"]({figures_dir.name}/{figure.name})")
            if number:
                md.write("\n\n---\n\n")
            md.write(f"<!-- page {page.page_number} (label {page.page_label}), status {page.status.value} -->\n\n")
            md.write(markdown.rstrip() + "\n")
            record = page.to_dict()
            record["figures"] = [dict(f, path=f"{figures_dir.name}/{f['name']}") for f in record["figures"]]
            jsonl.write(json.dumps(record, ensure_ascii=False) + "\n")
            failed += page.status.value == "failed"
            progress.page(page)
    return failed
