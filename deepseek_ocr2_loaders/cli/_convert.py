"""``deepseek-ocr2 convert``: one ``convert()`` stream over every input, written as it comes.

Before the run each file is opened once to count its pages: that gives the progress its
total, and lets ``--pages`` read the pages each document has (a 1-page file under
``--pages 1-2`` gives page 1 and a note, not a failure).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

from ..engines._base import OCREngine
from ..errors import ConfigError, InputError, PageRangeError
from ..options import RenderPolicy
from ..pipeline._convert import convert
from ..sources import expand_inputs, open_source, parse_page_spec
from ..types import PageResult
from ._output import OutputNames, write_document
from ._progress import Progress

__all__ = ["run_convert"]

_ANY_LENGTH = 100_000
"""A page count no document reaches: ``--pages`` is checked against it once, before any file."""


class Problems:
    """The summary printed at the end: one line per file, each problem once, in CLI words."""

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {}

    def add(self, path: Path | str, message: str) -> None:
        message = message.removeprefix(f"{path}: ").replace("pass password=", "pass --password")
        self.lines.setdefault(str(path), []).append(message)

    def print(self) -> None:
        files = len(self.lines)
        print(f"{files} input{'s' if files != 1 else ''} had problems:", file=sys.stderr)
        for path, messages in self.lines.items():
            print(f"  {path}: {'; '.join(messages)}", file=sys.stderr)


def run_convert(args: argparse.Namespace, engine: OCREngine) -> int:
    """Convert the inputs; 0 when all went well, 1 when some input or page failed, 130 on Ctrl-C."""
    problems = Problems()
    files: list[Path] = []
    for item in args.inputs:
        try:
            files.extend(expand_inputs(item))
        except InputError as exc:
            problems.add(item, exc.message)
    if not files:
        problems.print()
        return 1
    _make_output_folder(args.output)
    plan = _selections(files, args.pages, args.password, problems)
    placeholder = 0 if args.on_error == "skip" else 1
    total = sum(count or placeholder for _, _, count in plan)
    names = OutputNames(args.output, files)
    first = plan[0][0].name if plan else ""
    progress = Progress(total, quiet=args.quiet, every=args.progress_every, first_file=first)
    stopped: list[InputError] = []
    written = 0
    try:
        with engine, contextlib.closing(progress):
            streams = [_stream(args, engine, group, pages) for pages, group in _groups(plan)]
            for _, document in itertools.groupby(_until_input_error(streams, stopped), key=_DocumentStarts()):
                first = next(document)
                path = Path(first.source)
                if first.total_pages == 0:  # the placeholder of a file that could not be opened
                    problems.add(path, first.errors[0].message if first.errors else "cannot be opened")
                    if args.on_error == "skip":
                        continue
                target = names.target(path)
                bad = write_document(itertools.chain([first], document), target, progress)  # noqa: B031
                written += 1
                if bad and first.total_pages:
                    problems.add(path, f"{bad} page{'s' if bad != 1 else ''} failed (see {names.shown(target)}.jsonl)")
            progress.finish()
    except KeyboardInterrupt:
        cached = "--no-cache: not kept" if args.no_cache else "the page cache keeps them, so the same command resumes"
        print(f"interrupted: {progress.done}/{total} pages done, {written} file(s) written; {cached}", file=sys.stderr)
        return 130
    for exc in stopped:  # --on-error raise: the file it stopped at
        problems.add(exc.source or "?", exc.message)
    if problems.lines:
        problems.print()
        return 1
    return 0


def _make_output_folder(output: Path) -> None:
    """Create ``-o``; a path that cannot be a folder is a usage error."""
    if output.exists() and not output.is_dir():
        raise ConfigError(f"-o {output}: is a file, not a folder; name a new or existing folder")
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = f"cannot create the folder ({exc.strerror}); name a folder you can write"
        raise ConfigError(f"-o {output}: {why}") from exc


def _selections(
    files: list[Path], spec: str | None, password: str | None, problems: Problems
) -> list[tuple[Path, list[int] | None, int]]:
    """``(file, 0-based pages or None for all, page count)``; pages past a file's end are noted.

    A file that cannot be opened has count 0 and gives one placeholder page (none under skip).
    """
    if spec is not None:
        try:
            parse_page_spec(spec, _ANY_LENGTH)
        except PageRangeError as exc:
            why = exc.message.split("; the document")[0].split(": ", 1)[-1]
            raise ConfigError(f"--pages {spec}: {why}; write pages like 1-3,7") from exc
    plan: list[tuple[Path, list[int] | None, int]] = []
    for path in files:
        try:
            with open_source(path, password=password) as document:
                length = document.total_pages
        except InputError:  # convert() reports it, under --on-error (a placeholder page, or none)
            plan.append((path, None, 0))
            continue
        if spec is None:
            plan.append((path, None, length))
            continue
        wanted = parse_page_spec(spec, max(length, _largest_page(spec)))
        pages = [index for index in wanted if index < length]
        if len(pages) < len(wanted):
            has = "1 page" if length == 1 else f"{length} pages"
            done = f"converted {len(pages)}" if pages else "nothing converted"
            problems.add(path, f"--pages {spec}: it has {has}; {done}")
        if pages:
            plan.append((path, pages, len(pages)))
    return plan


def _largest_page(spec: str) -> int:
    """The largest page number written in ``spec`` (``"2-5,9-"`` -> 9)."""
    return max((int(number) for number in "".join(c if c.isdigit() else " " for c in spec).split()), default=1)


def _groups(plan: list[tuple[Path, list[int] | None, int]]) -> Iterator[tuple[list[int] | None, list[Path]]]:
    """Consecutive files with the same selection: one ``convert()`` each (usually one in all)."""
    for pages, items in itertools.groupby(plan, key=lambda item: item[1]):
        yield pages, [path for path, _, _ in items]


def _stream(
    args: argparse.Namespace, engine: OCREngine, files: list[Path], pages: list[int] | None
) -> Iterator[PageResult]:
    """One ``convert()`` over ``files`` with the flags' options."""
    workers = {} if args.render_workers is None else {"workers": args.render_workers}
    return convert(
        files,
        engine=engine,
        prompt=args.prompt,
        pages=pages,
        dpi=args.dpi,
        password=args.password,
        cache=False if args.no_cache else (args.cache or True),
        on_error="raise" if args.on_error == "raise" else "placeholder",
        render=RenderPolicy(page_timeout=args.page_timeout, **workers),
    )


def _until_input_error(streams: list[Iterator[PageResult]], stopped: list[InputError]) -> Iterator[PageResult]:
    """The pages of each stream in turn, ending at an input error (kept in ``stopped``)."""
    try:
        for stream in streams:
            with contextlib.closing(stream):
                yield from stream
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
