"""Policies the pipeline follows when a document or a page goes wrong: data, not globals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import ConfigError
from .sources.render_policy import RenderPolicy  # defined with the pool it configures (sources sits below)

__all__ = ["ON_ERROR", "OnError", "RenderPolicy", "RetryPolicy", "check_on_error"]

OnError = Literal["raise", "skip", "placeholder"]
ON_ERROR: tuple[str, ...] = ("raise", "skip", "placeholder")


def check_on_error(on_error: str) -> OnError:
    """Validate an ``on_error`` value.

    ``raise``: a document that cannot be opened raises (pages already yielded stay yours);
    ``skip``: it is logged and left out; ``placeholder``: it gives one failed page result
    naming the problem, so it shows up in the output.
    """
    if on_error not in ON_ERROR:
        raise ConfigError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    return on_error  # type: ignore[return-value]


@dataclass(frozen=True)
class RetryPolicy:
    """What to do with a page the model looped on (``finish_reason="repetition"``).

    Attributes:
        retries: Extra attempts with the engine's stronger guard (``OCREngine.stricter``).
        fallback_to_text_layer: Use the PDF's own text layer when every attempt looped.
    """

    retries: int = 1
    fallback_to_text_layer: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.retries <= 5:
            raise ConfigError(f"retries must be between 0 and 5, got {self.retries}")
