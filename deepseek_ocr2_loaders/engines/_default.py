"""The engine an entry point uses: the caller's, or a TransformersEngine built from its options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..options import TransformersOptions
from ._base import OCREngine

__all__ = ["resolve_engine"]


def resolve_engine(engine: OCREngine | None, options: Mapping[str, Any]) -> tuple[OCREngine, bool]:
    """``(engine, owned)``: the engine given (then ``options`` must be empty), else a new default one.

    ``owned`` says the caller built it and must close it. Every entry point (``convert``, the
    loaders, the parser, the reader) goes through here, so they accept exactly the options of
    :class:`TransformersOptions`.

    Raises:
        ConfigError: Options given with an engine, or an unknown or invalid option.
    """
    if engine is not None:
        if options:
            TransformersOptions.from_kwargs(options)  # an unknown argument is named as unknown first
            raise ConfigError(f"options {sorted(options)} configure the default engine; set them on your engine")
        return engine, False
    checked = TransformersOptions.from_kwargs(options)  # before torch is imported
    from .transformers import TransformersEngine

    return TransformersEngine.from_options(checked), True
