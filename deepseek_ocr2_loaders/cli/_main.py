"""``deepseek-ocr2 convert INPUT... -o OUTDIR``: Markdown and JSONL per document.

Only this module configures logging and progress bars; the library never does.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from .._version import __version__
from ..engines._base import OCREngine
from ..errors import DeepSeekOCR2Error, InputError
from ..model import DEFAULT_DPI, DEFAULT_PROMPT
from ..model._prompts import PROMPTS
from ..options import ON_ERROR, RenderPolicy
from ..pipeline._convert import convert
from ..sources import expand_inputs
from ..types import PageResult
from ._engine_args import add_engine_arguments, transformers_engine
from ._ray_cmd import add_ray_parser, run_ray
from ._serve import add_serve_parser, run_serve

__all__ = ["main"]

logger = logging.getLogger("deepseek_ocr2_loaders.cli")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``deepseek-ocr2``."""
    parser = argparse.ArgumentParser(
        prog="deepseek-ocr2", description="Turn PDFs and images into Markdown with DeepSeek-OCR-2."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "convert",
        help="convert PDFs and images to Markdown (OUTDIR/<name>.md) and page records (OUTDIR/<name>.jsonl)",
    )
    run.add_argument("inputs", nargs="+", metavar="INPUT", help="PDF or image files, or folders of them")
    run.add_argument("-o", "--output", required=True, type=Path, metavar="OUTDIR", help="output folder")
    add_engine_arguments(run)
    run.add_argument("--pages", help="1-based pages and ranges, e.g. 1-3,7 (default: all)")
    run.add_argument("--dpi", type=int, default=DEFAULT_DPI, help=f"PDF render resolution (default: {DEFAULT_DPI})")
    run.add_argument(
        "--prompt",
        default=DEFAULT_PROMPT,
        help=f"preset ({', '.join(PROMPTS)}) or a custom instruction (default: markdown)",
    )
    run.add_argument("--password", help="password of encrypted PDFs")
    run.add_argument(
        "--page-timeout",
        type=float,
        default=RenderPolicy.page_timeout,
        metavar="SECONDS",
        help=f"a page still rendering after this fails and the run goes on (default: {RenderPolicy.page_timeout:g})",
    )
    run.add_argument("--render-workers", type=int, metavar="N", help="render processes (default: CPU count, at most 4)")
    run.add_argument(
        "--on-error",
        choices=ON_ERROR,
        default="placeholder",
        help="a file that cannot be opened: stop (raise), leave it out (skip), or write a failed record for it "
        "(placeholder, default); every problem is listed at the end and the exit status is 1",
    )
    cache = run.add_mutually_exclusive_group()
    cache.add_argument("--cache", type=Path, metavar="FILE", help="page cache SQLite file (default: user cache folder)")
    cache.add_argument("--no-cache", action="store_true", help="do not read or write the page cache")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar, errors only")
    add_serve_parser(commands)
    add_ray_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None, *, engine: OCREngine | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 some input or the model failed)."""
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return run_serve(args, engine=engine)
    if args.command == "ray":
        return run_ray(args)
    logging.basicConfig(level=logging.ERROR if args.quiet else logging.WARNING, format="%(levelname)s %(message)s")
    files: list[Path] = []
    failed: list[str] = []
    for item in args.inputs:
        try:
            files.extend(expand_inputs(item))
        except InputError as exc:
            failed.append(f"{item}: {exc.message}")
    if not files:
        print(f"error: no PDF or image files found in {', '.join(args.inputs)}", file=sys.stderr)
        return 1
    if engine is None:
        engine = transformers_engine(args)
    args.output.mkdir(parents=True, exist_ok=True)
    stems: set[str] = set()
    cache: bool | Path = False if args.no_cache else (args.cache or True)
    workers = {} if args.render_workers is None else {"workers": args.render_workers}
    stopped: list[InputError] = []
    try:
        render = RenderPolicy(page_timeout=args.page_timeout, **workers)
        pages = convert(  # one run over every file: pages share batches and render workers
            files,
            engine=engine,
            prompt=args.prompt,
            pages=args.pages,
            dpi=args.dpi,
            password=args.password,
            cache=cache,
            on_error="raise" if args.on_error == "raise" else "placeholder",
            render=render,
        )
        with engine, _Bar(args.quiet) as bar, contextlib.closing(pages):
            by_name = {str(path): path for path in files}
            for _, document in itertools.groupby(_until_input_error(pages, stopped), key=_DocumentStarts()):
                first = next(document)
                path = by_name.get(first.source, Path(first.source))
                if first.total_pages == 0:  # the placeholder of a file that could not be opened
                    failed.append(f"{path}: {first.errors[0].message}")
                    if args.on_error == "skip":
                        continue
                stem = _unique_stem(path, stems)
                pages_of_it = itertools.chain([first], document)  # noqa: B031 - the group is read once, here
                bad = _write_document(pages_of_it, args.output, stem, bar)
                if bad and first.total_pages:
                    failed.append(f"{path}: {bad} page(s) failed (see {stem}.jsonl)")
    except DeepSeekOCR2Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    failed.extend(f"{exc.source}: {exc.message}" for exc in stopped)  # --on-error raise: the file it stopped at
    if failed:
        print(f"{len(failed)} input(s) had problems:", file=sys.stderr)
        for line in failed:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


def _until_input_error(pages: Iterator[PageResult], stopped: list[InputError]) -> Iterator[PageResult]:
    """The pages, ending at an input error (kept in ``stopped``); pages before it all come through."""
    try:
        yield from pages
    except InputError as exc:
        stopped.append(exc)


class _DocumentStarts:
    """``groupby`` key: a new number whenever a page starts another document (source changes or page repeats)."""

    def __init__(self) -> None:
        self.number, self.last = 0, None

    def __call__(self, page: PageResult) -> int:
        last, self.last = self.last, page
        if last is not None and (page.source != last.source or page.page <= last.page):
            self.number += 1
        return self.number


def _unique_stem(path: Path, taken: set[str]) -> str:
    """A file-name-safe stem that cannot escape OUTDIR and does not clash with another input's."""
    base = re.sub(r"[^\w.-]+", "_", path.stem).strip("._") or "document"
    stem, n = base, 1
    while stem in taken:
        n += 1
        stem = f"{base}-{n}"
    taken.add(stem)
    return stem


def _write_document(pages: Iterable[PageResult], outdir: Path, stem: str, bar: _Bar) -> int:
    """Write ``<stem>.md``, ``<stem>.jsonl`` and ``<stem>_figures/``; return the count of failed pages."""
    figures_dir = outdir / f"{stem}_figures"
    failed = 0
    with (
        (outdir / f"{stem}.md").open("w", encoding="utf-8") as md,
        (outdir / f"{stem}.jsonl").open("w", encoding="utf-8") as jsonl,
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
            bar.update(1)
    return failed


class _Bar:
    """A tqdm bar on a terminal; nothing otherwise."""

    def __init__(self, quiet: bool) -> None:
        self._bar = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(unit="page", desc="OCR")

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
