"""``deepseek-ocr2 ray INPUT... -o OUTDIR``: a batch job over many documents on a Ray cluster.

Rendering runs in Ray CPU tasks and OCR in a pool of GPU actors, each with its own model
(``--model``) or a client of OpenAI-compatible servers (``--server``). Needs the ``ray``
extra; the import is deferred so ``deepseek-ocr2 --help`` works without it.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from ..engines._base import OCREngine
from ..errors import ConfigError, DeepSeekOCR2Error
from ..model import DEFAULT_DPI, DEFAULT_MODEL, DEFAULT_PROMPT, MAX_NEW_TOKENS
from ..model._prompts import PROMPTS
from ..options import TransformersOptions

__all__ = ["add_ray_parser", "engine_factory_from_args", "run_ray"]

logger = logging.getLogger("deepseek_ocr2_loaders.cli")


def add_ray_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``ray`` command to ``deepseek-ocr2``'s subcommands."""
    ray = subparsers.add_parser(
        "ray",
        help="OCR many documents on a Ray cluster; one record per page in OUTDIR (JSONL or Parquet)",
        description="Batch OCR with Ray Data: CPU tasks render pages, a pool of GPU actors reads them, "
        "results stream to OUTDIR. Connects to RAY_ADDRESS or --address, else starts Ray locally.",
    )
    ray.add_argument("inputs", nargs="+", metavar="INPUT", help="PDF or image files, folders, or globs")
    ray.add_argument("-o", "--output", required=True, type=Path, metavar="OUTDIR", help="new or empty output folder")
    engine = ray.add_mutually_exclusive_group()
    engine.add_argument("--model", help=f"hub id or checkpoint folder every actor loads (default: {DEFAULT_MODEL})")
    engine.add_argument(
        "--server", nargs="+", metavar="URL", help="OpenAI-compatible server(s), e.g. http://host:8000/v1"
    )
    ray.add_argument("--actors", type=int, default=1, help="engines reading pages at once (default: 1)")
    ray.add_argument("--gpus-per-actor", type=float, help="GPUs per actor (default: 1 with --model, 0 with --server)")
    ray.add_argument("--cpus-per-actor", type=float, default=1.0, help="CPUs per actor (default: 1)")
    ray.add_argument("--batch-size", type=int, default=16, help="pages per engine call (default: 16)")
    ray.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl", help="output format (default: jsonl)")
    ray.add_argument("--pages", help="1-based pages and ranges, e.g. 1-3,7 (default: all)")
    ray.add_argument("--dpi", type=int, default=DEFAULT_DPI, help=f"PDF render resolution (default: {DEFAULT_DPI})")
    ray.add_argument(
        "--max-new-tokens", type=int, default=MAX_NEW_TOKENS, help=f"token budget per page (default: {MAX_NEW_TOKENS})"
    )
    ray.add_argument(
        "--prompt",
        default=DEFAULT_PROMPT,
        help=f"preset ({', '.join(PROMPTS)}) or a custom instruction (default: markdown)",
    )
    ray.add_argument("--password", help="password of encrypted PDFs")
    ray.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local Ray)")


def engine_factory_from_args(args: argparse.Namespace) -> Callable[[], OCREngine]:
    """The picklable engine factory each actor calls: a TransformersEngine or an OpenAIEngine."""
    if args.server:
        from ..engines.openai._engine import OpenAIEngine

        return functools.partial(OpenAIEngine, list(args.server), max_tokens=args.max_new_tokens)
    from ..engines.transformers import TransformersEngine

    options = TransformersOptions(  # checked here, before any actor starts
        model=args.model or DEFAULT_MODEL, max_batch_size=args.batch_size, max_new_tokens=args.max_new_tokens
    )
    return functools.partial(TransformersEngine.from_options, options)


_LIBRARY_WORDS = {"num_gpus_per_actor=": "--gpus-per-actor ", "concurrency": "--actors", "batch_size": "--batch-size"}


def run_ray(args: argparse.Namespace) -> int:
    """Run the job and print its summary; 1 when a page failed or the job could not start, 2 for a bad flag.

    Ray starts with its own logs kept in its session folder, not on the terminal: what the
    user sees is this command's lines (Ray Data's progress bars stay).
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        import ray

        from ..ray import run_ray_pipeline
    except ImportError as exc:
        print(f"error: {exc}; install the ray extra: pip install -e '.[ray]'", file=sys.stderr)
        return 1
    if not ray.is_initialized():
        ray.init(address=args.address, logging_level=logging.ERROR, log_to_driver=False, include_dashboard=False)
    gpus = args.gpus_per_actor if args.gpus_per_actor is not None else (0.0 if args.server else 1.0)
    try:
        summary = run_ray_pipeline(
            args.inputs,
            args.output,
            engine_factory=engine_factory_from_args(args),
            num_gpus_per_actor=gpus,
            num_cpus_per_actor=args.cpus_per_actor,
            concurrency=args.actors,
            batch_size=args.batch_size,
            pages=args.pages,
            dpi=args.dpi,
            prompt=args.prompt,
            format=args.format,
            password=args.password,
        )
    except ConfigError as exc:
        message = exc.message
        for library, flag in _LIBRARY_WORDS.items():
            message = message.replace(library, flag)
        print(f"error: {message}", file=sys.stderr)
        return 2
    except DeepSeekOCR2Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"{summary.pages} page record(s) from {summary.files} file(s) in {summary.seconds:.1f}s -> "
        f"{summary.output} ({summary.format}); {summary.failed} failed",
        file=sys.stderr,
    )
    return 1 if summary.failed else 0
