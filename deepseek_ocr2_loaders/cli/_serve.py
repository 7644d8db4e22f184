"""``deepseek-ocr2 serve``: DeepSeek-OCR-2 on this machine's GPU behind an OpenAI-compatible API.

For a fleet of clients (loaders in many processes, other languages, ``curl``) one server
holds the model once and batches their pages; clients use ``OpenAIEngine(base_url)``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..engines._base import OCREngine
from ..errors import ConfigError, DeepSeekOCR2Error
from ..model._prompts import PROMPTS
from ._engine_args import add_engine_arguments, transformers_engine

__all__ = ["add_serve_parser", "run_serve"]

logger = logging.getLogger("deepseek_ocr2_loaders.cli")


def add_serve_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` command to ``deepseek-ocr2``'s subcommands."""
    serve = subparsers.add_parser(
        "serve",
        help="serve DeepSeek-OCR-2 over an OpenAI-compatible API (POST /v1/chat/completions)",
        description="Serve DeepSeek-OCR-2 over an OpenAI-compatible chat-completions API; "
        "concurrent requests are batched on the GPU. Clients: OpenAIEngine('http://HOST:PORT/v1').",
    )
    add_engine_arguments(serve)
    serve.add_argument("--served-model-name", help="model id reported to clients (default: --model)")
    serve.add_argument("--host", default="127.0.0.1", help="interface (default: 127.0.0.1; 0.0.0.0 for all)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000)")
    serve.add_argument(
        "--batch-wait-ms",
        type=float,
        default=10.0,
        help="how long a batch waits for more requests after its first (default: 10)",
    )
    serve.add_argument("-q", "--quiet", action="store_true", help="errors only, no access log")


def run_serve(args: argparse.Namespace, *, engine: OCREngine | None = None) -> int:
    """Load the model, serve until Ctrl-C, close the engine; returns the exit status.

    The model is loaded (and run once on a blank page) before the URL is printed, so a
    client never meets a half-started server and a bad ``--model`` fails here, not on the
    first request.
    """
    from PIL import Image

    from ..server import make_server

    logging.basicConfig(level=logging.ERROR if args.quiet else logging.INFO, format="%(levelname)s %(message)s")
    try:
        if engine is None:
            engine = transformers_engine(args)
    except ConfigError:
        raise  # main() names the flag and exits 2
    except DeepSeekOCR2Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with engine:
        try:
            server = make_server(
                engine,
                host=args.host,
                port=args.port,
                batch_wait_ms=args.batch_wait_ms,
                model_name=args.served_model_name or args.model,
            )
        except OSError as exc:
            print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 1
        try:
            print(f"loading {engine.name} ...", file=sys.stderr)
            server.batcher.submit(Image.new("RGB", (64, 64), "white"), PROMPTS["free"], max_tokens=1).result()
        except DeepSeekOCR2Error as exc:
            server.server_close()
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"serving {server.model_name} at {server.url} (OpenAI-compatible; Ctrl-C stops)", file=sys.stderr)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopping", file=sys.stderr)
        finally:
            server.server_close()
    return 0
