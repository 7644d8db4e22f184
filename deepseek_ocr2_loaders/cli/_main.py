"""``deepseek-ocr2``: the parser, and the one place where a failure becomes one line and an exit code.

Exit codes: 0 done, 1 some input, page or the model failed, 2 a usage error (a bad flag
value, an output folder that cannot be made), 130 Ctrl-C. No traceback reaches the user:
every error this package raises is one line naming the flag or file and the fix. Only this
package's CLI configures logging, progress bars and transformers' verbosity; the library never does.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn

from .._version import __version__
from ..engines._base import OCREngine
from ..errors import ConfigError, DeepSeekOCR2Error, ModelLoadError
from ..model import DEFAULT_DPI, DEFAULT_PROMPT
from ..model._prompts import PROMPTS
from ..options import ON_ERROR, RenderPolicy
from ._convert import run_convert
from ._engine_args import add_engine_arguments, in_flag_words, transformers_engine
from ._ray_cmd import add_ray_parser, run_ray
from ._serve import add_serve_parser, run_serve

__all__ = ["main"]

USAGE, FAILED, INTERRUPTED = 2, 1, 130


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (its default prints the whole usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``deepseek-ocr2``."""
    parser = _Parser(prog="deepseek-ocr2", description="Turn PDFs and images into Markdown with DeepSeek-OCR-2.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "convert",
        help="convert PDFs and images to Markdown (OUTDIR/<name>.md) and page records (OUTDIR/<name>.jsonl)",
    )
    run.add_argument("inputs", nargs="+", metavar="INPUT", help="PDF or image files, or folders of them")
    run.add_argument(
        "-o", "--output", required=True, type=Path, metavar="OUTDIR", help="output folder (mirrors the input tree)"
    )
    add_engine_arguments(run)
    run.add_argument("--pages", help="1-based pages and ranges of each document, e.g. 1-3,7 (default: all)")
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
    run.add_argument(
        "--progress-every",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="when stderr is not a terminal, print a progress line this often (default: 30)",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="errors only: no progress, no transformers output")
    add_serve_parser(commands)
    add_ray_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None, *, engine: OCREngine | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 failed, 2 usage error, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    quiet = getattr(args, "quiet", False)
    try:
        with _quiet_transformers(quiet and engine is None):
            if args.command == "serve":
                return run_serve(args, engine=engine)
            if args.command == "ray":
                return run_ray(args)
            _configure_logging(quiet)
            return run_convert(args, engine if engine is not None else transformers_engine(args))
    except ConfigError as exc:
        print(f"error: {in_flag_words(exc.message)}", file=sys.stderr)
        return USAGE
    except ModelLoadError as exc:
        print(f"error: --model {exc.source}: {exc.message}", file=sys.stderr)
        return FAILED
    except DeepSeekOCR2Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED


class _ListedInSummary(logging.Filter):
    """Drops the pipeline's per-file error lines: the summary at the end lists each problem once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "deepseek_ocr2_loaders.pipeline._convert" and record.levelno >= logging.ERROR)


def _configure_logging(quiet: bool) -> None:
    logging.basicConfig(level=logging.ERROR if quiet else logging.WARNING, format="%(levelname)s %(message)s")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _ListedInSummary) for f in handler.filters):
            handler.addFilter(_ListedInSummary())


@contextlib.contextmanager
def _quiet_transformers(quiet: bool) -> Iterator[None]:
    """Under ``-q``: transformers' and the hub's progress bars and warnings off, restored after."""
    if not quiet:
        yield
        return
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), are_progress_bars_disabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    disable_progress_bars()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
        if not bars:
            enable_progress_bars()
