"""The model flags of the commands that run a TransformersEngine, generated from its options.

Each flag's default and help come from :class:`~deepseek_ocr2_loaders.options.TransformersOptions`
(the fields that name a ``flag``), so the CLI cannot drift from the library.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, fields
from typing import TYPE_CHECKING, Any

from ..options import TransformersOptions

if TYPE_CHECKING:
    from ..engines.transformers import TransformersEngine

__all__ = ["add_engine_arguments", "engine_options", "in_flag_words", "transformers_engine"]

_TYPES = {"int": int, "int | None": int}


def _flagged() -> list[tuple[str, Any]]:
    """``(argparse dest, field)`` of each option with a flag: ``--batch-size`` -> ``batch_size``."""
    items = [item for item in fields(TransformersOptions) if item.metadata["flag"]]
    return [(item.metadata["flag"].lstrip("-").replace("-", "_"), item) for item in items]


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model --device --dtype --batch-size --max-new-tokens --compile-decode``, with the library's defaults."""
    for dest, item in _flagged():
        flag, description = item.metadata["flag"], item.metadata["description"]
        if str(item.type) == "bool":  # a switch: the flag turns the option on
            parser.add_argument(flag, dest=dest, action="store_true", help=description)
            continue
        default = None if item.default is MISSING else item.default
        shown = f" (default: {default})" if default is not None else ""
        parser.add_argument(
            flag,
            dest=dest,
            type=_TYPES.get(str(item.type), str),
            default=default,
            help=description + shown,
        )


def engine_options(args: argparse.Namespace) -> TransformersOptions:
    """The checked engine options the flags describe (a bad value is a ``ConfigError``)."""
    return TransformersOptions(**{item.name: getattr(args, dest) for dest, item in _flagged()})


def in_flag_words(message: str) -> str:
    """An option's message as the CLI user knows it: ``max_batch_size must...`` -> ``--batch-size must...``.

    Also ``use device='cpu'`` -> ``use --device 'cpu'``: the advice names the flag too.
    """
    for _, item in _flagged():
        flag = item.metadata["flag"]
        if message.startswith(f"{item.name} "):
            message = flag + message[len(item.name) :]
        message = message.replace(f" {item.name}=", f" {flag} ")
    return message


def transformers_engine(args: argparse.Namespace) -> TransformersEngine:
    """The engine those flags describe (the model loads on first use)."""
    from ..engines.transformers import TransformersEngine

    return TransformersEngine.from_options(engine_options(args))
