"""Options, defined once: the engine's (:class:`TransformersOptions`) and the pipeline's policies.

Every entry point that builds a default engine (``convert``, both loaders, the blob parser,
the CLI, Ray, ``serve``) checks and builds it through :class:`TransformersOptions`, so an
option accepted by one is accepted by all, and a default lives in one place.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from .errors import ConfigError
from .model import DEFAULT_MODEL, DEFAULT_NGRAM_SIZE, DEFAULT_NGRAM_WINDOW, MAX_NEW_TOKENS

__all__ = ["DTYPES", "ON_ERROR", "OnError", "RenderPolicy", "RetryPolicy", "TransformersOptions", "check_on_error"]

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


DTYPES = ("bfloat16", "float16", "float32")
ATTENTION = ("sdpa", "eager", "flash_attention_2")
DECODE = ("slots", "generate")


def _option(default: Any, description: str, *, output: bool = False, flag: str | None = None) -> Any:
    """A dataclass field with its one-line description; ``output``: it changes the text the model writes."""
    return field(default=default, metadata={"description": description, "output": output, "flag": flag})


@dataclass(frozen=True)
class TransformersOptions:
    """Every option of :class:`~deepseek_ocr2_loaders.TransformersEngine`, checked at construction.

    Fields marked ``output`` change the text the model writes, so they make up the engine's
    cache fingerprint; the others (device, batch sizes, graphs) only change how fast it runs.
    """

    model: str = _option(DEFAULT_MODEL, "hub id or local checkpoint folder", output=True, flag="--model")
    device: str | tuple[str, ...] | None = _option(
        None,
        "cuda, cuda:1, cpu; auto or cuda:all for every GPU, or a list (default: cuda when available)",
        flag="--device",
    )
    dtype: str | None = _option(
        None, "bfloat16, float16 or float32 (default: bf16 on CUDA, fp32 on CPU)", output=True, flag="--dtype"
    )
    attn_implementation: str = _option(
        "sdpa", "sdpa or eager; flash_attention_2 needs decode='generate' and the flash extra", output=True
    )
    max_batch_size: int | None = _option(
        None, "pages decoded together (default: 128 on a GPU with slot decoding, else 16)", flag="--batch-size"
    )
    vision_batch_size: int | None = _option(None, "pages through the vision towers together (GPU 16, CPU 2)")
    max_new_tokens: int = _option(MAX_NEW_TOKENS, "token budget per page", output=True, flag="--max-new-tokens")
    ngram_size: int = _option(DEFAULT_NGRAM_SIZE, "length of the n-grams that may not repeat...", output=True)
    ngram_window: int = _option(DEFAULT_NGRAM_WINDOW, "...inside this many recent generated tokens", output=True)
    revision: str | None = _option(None, "hub revision (branch, tag or commit)", output=True)
    local_files_only: bool = _option(False, "never touch the network")
    decode: str = _option("slots", "slots (continuous batching) or generate (model.generate)")
    ignore_eos: bool = _option(False, "never stop at EOS: every page gets max_new_tokens (benchmarks)", output=True)
    stop_loops: bool = _option(True, "stop a page early when its newest tokens loop", output=True)
    cuda_graphs: bool = _option(True, "capture the slot decode step in a CUDA graph (GPU only)")
    compile_decode: bool = _option(
        False, "run the slot decode step through torch.compile (bf16 on a GPU; large jobs)", flag="--compile-decode"
    )

    def __post_init__(self) -> None:
        if isinstance(self.device, list):  # hashable and frozen, as every other field
            object.__setattr__(self, "device", tuple(self.device))
        for name, low in (("max_batch_size", 1), ("vision_batch_size", 1), ("max_new_tokens", 1), ("ngram_size", 2)):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
                raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.ngram_window < self.ngram_size:
            raise ConfigError(f"ngram_window ({self.ngram_window}) must be >= ngram_size ({self.ngram_size})")
        for name, allowed in (("dtype", DTYPES), ("attn_implementation", ATTENTION), ("decode", DECODE)):
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
        if self.attn_implementation == "flash_attention_2" and self.decode == "slots":
            raise ConfigError(
                "attn_implementation='flash_attention_2' works with decode='generate' only; "
                "the slot decoder runs with 'sdpa' (default) or 'eager'"
            )

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, in declaration order."""
        return tuple(item.name for item in fields(cls))

    @classmethod
    def from_kwargs(cls, options: Mapping[str, Any]) -> TransformersOptions:
        """Options from keyword arguments; an unknown name is a :class:`ConfigError` listing the known ones."""
        unknown = sorted(set(options) - set(cls.names()))
        if unknown:
            raise ConfigError(f"unknown engine option(s) {unknown}; known: {sorted(cls.names())}")
        return cls(**options)

    def batch_sizes(self, *, gpu: bool) -> tuple[int, int]:
        """``(max_batch_size, vision_batch_size)``, the unset ones by device.

        ``model.generate`` pads each batch and grows its cache, so it keeps batches small.
        """
        decode = self.max_batch_size or (128 if gpu and self.decode == "slots" else 16)
        return decode, self.vision_batch_size or (16 if gpu else 2)

    def fingerprint(self) -> dict[str, object]:
        """What changes the model's text: the ``output`` fields and the image preprocessing."""
        chosen = {item.name: getattr(self, item.name) for item in fields(self) if item.metadata["output"]}
        return {"engine": "TransformersEngine", **chosen, "image_backend": "pil"}

    def stricter(self) -> TransformersOptions:
        """The same options with a stronger n-gram guard: the same n-gram length in twice the window."""
        return replace(self, ngram_window=2 * self.ngram_window)


def _default_render_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class RenderPolicy:
    """How pages are rendered: in worker processes, each page under a deadline.

    A hostile page can make MuPDF loop for ever (holding the GIL) or crash a native decoder;
    in a worker process it costs only that page (``RenderTimeout`` / ``RenderCrashError``), the
    worker is replaced and the run goes on. The workers also render pages in parallel, which
    threads cannot: PyMuPDF holds the GIL while it renders.

    Attributes:
        workers: Render processes, started as pages need them (default: CPU count, at most 4).
        page_timeout: Seconds one page may take in its worker (opening the file included).
    """

    workers: int = field(default_factory=_default_render_workers)
    page_timeout: float = 60.0

    def __post_init__(self) -> None:
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or not 1 <= self.workers <= 64:
            raise ConfigError(f"workers must be an int between 1 and 64, got {self.workers!r}")
        timeout = self.page_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
            raise ConfigError(f"page_timeout must be seconds in (0, 3600], got {timeout!r}")
        if math.isnan(timeout):
            raise ConfigError("page_timeout must be a number, got nan")
