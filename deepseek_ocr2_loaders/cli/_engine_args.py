"""The model flags shared by the commands that run a TransformersEngine, defined once."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..engines.base import DEFAULT_MODEL

if TYPE_CHECKING:
    from ..engines.transformers import TransformersEngine

__all__ = ["add_engine_arguments", "transformers_engine"]


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model --device --dtype --batch-size --max-new-tokens``."""
    parser.add_argument("--model", default=DEFAULT_MODEL, help="hub id or local checkpoint folder")
    parser.add_argument("--device", help="cuda, cuda:1, cpu... (default: cuda when available)")
    parser.add_argument("--dtype", help="bfloat16, float16 or float32 (default: bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--batch-size", type=int, help="pages decoded together (default: 128 on a GPU, 16 on a CPU)")
    parser.add_argument("--max-new-tokens", type=int, default=8192, help="token budget per page (default: 8192)")


def transformers_engine(args: argparse.Namespace) -> TransformersEngine:
    """The engine those flags describe (the model loads on first use)."""
    from ..engines.transformers import TransformersEngine

    return TransformersEngine(
        args.model,
        device=args.device,
        dtype=args.dtype,
        max_batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
    )
