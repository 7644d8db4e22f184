"""The pure half of :class:`~deepseek_ocr2_loaders.engines.openai._engine.OpenAIEngine`.

Request bodies, response parsing, the retry rule and the translation of HTTP failures
into this package's errors live here as plain functions, so the sync and the async
transports share every decision and differ only in how they send a request and sleep.
"""

from __future__ import annotations

import base64
import io
import json
import random
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import httpx

from ...errors import ConfigError, EngineConnectionError, EngineError, EngineResponseError, EngineTimeout
from ...model._prompts import IMAGE_PLACEHOLDER
from ...model._vision_tokens import count_vision_tokens
from .._base import FINISH_REASONS, EngineOutput

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "END_OF_SENTENCE",
    "SERVERS",
    "SGLANG_NGRAM_PROCESSOR",
    "VLLM_NGRAM_XARGS",
    "VLLM_REPETITION_DETECTION",
    "backoff_delay",
    "build_body",
    "encode_image",
    "guard_fields",
    "instruction_of",
    "is_retryable",
    "parse_completion",
    "server_urls",
    "translated_errors",
]

END_OF_SENTENCE = "<｜end▁of▁sentence｜>"

#: Per-request arguments of vLLM's ``NGramPerReqLogitsProcessor`` (``vllm_xargs``): the official
#: PDF script's guard, as ``TransformersEngine`` uses it (no 20-gram twice in 50 generated tokens;
#: 128821/128822 are ``<td>``/``</td>``, which legitimately repeat in tables).
VLLM_NGRAM_XARGS: dict[str, Any] = {"ngram_size": 20, "window_size": 50, "whitelist_token_ids": [128821, 128822]}

#: vLLM's ``repetition_detection`` (v0.17+; ``RepetitionDetectionParams`` in vllm/sampling_params.py:
#: the tail repeating a pattern of ``min_pattern_size..max_pattern_size`` tokens ``min_count`` times
#: ends the request with ``finish_reason="repetition"``). It matches exact token patterns and knows no
#: table structure, so it is kept to what the n-gram guard lets through: periods under ~64 cannot
#: repeat exactly past a 20-in-50 ban except as ``<td></td>`` runs, and six repeats of 64+ tokens
#: (384+) leave blank rows of up to 190 empty cells alone.
VLLM_REPETITION_DETECTION: dict[str, int] = {"min_pattern_size": 64, "max_pattern_size": 256, "min_count": 6}

#: SGLang's ``custom_logit_processor`` is ``CustomLogitProcessor.to_str()``: JSON ``{"callable": hex}``
#: of a dill pickle of the class (python/sglang/srt/sampling/custom_logit_processor.py). A class
#: pickled by reference is the standard two-line GLOBAL opcode, written here without importing
#: sglang; the server only accepts registered classes, and this one ships with it (the server needs
#: ``--enable-custom-logit-processor``). It reads ``ngram_size``, ``window_size`` and
#: ``whitelist_token_ids`` from ``custom_params``.
SGLANG_NGRAM_PROCESSOR = json.dumps(
    {"callable": b"csglang.srt.sampling.custom_logit_processor\nDeepseekOCRNoRepeatNGramLogitProcessor\n.".hex()}
)

SERVERS = ("vllm", "sglang")


def guard_fields(server: str) -> dict[str, Any]:
    """The request fields that carry the n-gram guard and loop stop for this kind of server.

    vLLM ignores fields it does not know, but SGLang refuses a custom logit processor it was not
    started for, so each server gets only its own fields.
    """
    if server == "sglang":
        return {"custom_logit_processor": SGLANG_NGRAM_PROCESSOR, "custom_params": dict(VLLM_NGRAM_XARGS)}
    return {"vllm_xargs": VLLM_NGRAM_XARGS, "repetition_detection": VLLM_REPETITION_DETECTION}


MAX_DELAY = 30.0
_RETRY_STATUSES = frozenset({408, 429})


def server_urls(base_url: str | Sequence[str]) -> tuple[str, ...]:
    """One URL or a list of replicas, checked and without trailing slashes.

    Raises:
        ConfigError: No URL, an empty one, or one that is not ``http(s)://``.
    """
    urls = [base_url] if isinstance(base_url, str) else list(base_url)
    if not urls or not all(isinstance(url, str) and url.strip() for url in urls):
        raise ConfigError("base_url must name at least one server, e.g. 'http://127.0.0.1:8000/v1'")
    urls = [url.strip().rstrip("/") for url in urls]
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url {url!r} must start with http:// or https://")
    return tuple(urls)


def instruction_of(prompt: str) -> str:
    """The prompt without its ``<image>`` placeholder: the server's chat template places the image.

    Examples:
        >>> instruction_of("<image>\\n<|grounding|>Convert the document to markdown.")
        '<|grounding|>Convert the document to markdown.'
    """
    text = prompt.replace(IMAGE_PLACEHOLDER, "", 1)
    return text[1:] if text.startswith("\n") else text


def encode_image(image: Image.Image) -> str:
    """A ``data:image/png;base64,...`` URL of the page.

    PNG, not JPEG: it is lossless, so small print and thin table rules reach the model
    exactly as rendered. Compression level 1 keeps encoding fast; a rendered page is
    mostly flat colour and still compresses well.
    """
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def build_body(
    image_url: str,
    instruction: str,
    *,
    model: str,
    max_tokens: int,
    extra_body: Mapping[str, Any],
    server: str = "vllm",
) -> dict[str, Any]:
    """The chat-completions request for one page; ``extra_body`` keys override the defaults."""
    content = [{"type": "image_url", "image_url": {"url": image_url}}, {"type": "text", "text": instruction}]
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "skip_special_tokens": False,  # keep <|ref|>/<|det|> grounding tags in the text
        **guard_fields(server),
    }
    body.update(extra_body)
    return body


def parse_completion(response: httpx.Response, size: tuple[int, int]) -> EngineOutput:
    """Map a chat-completions response to an :class:`EngineOutput` for a page of ``size`` pixels.

    Raises:
        httpx.HTTPStatusError: The status is not 2xx.
        ValueError: The body is not JSON or lacks ``choices[0].message.content``.
    """
    response.raise_for_status()
    data = response.json()
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"no choices[0].message.content in {str(data)[:200]!r}") from exc
    if not isinstance(text, str):
        raise ValueError(f"choices[0].message.content is {type(text).__name__}, not a string")
    text = text.removesuffix(END_OF_SENTENCE)
    reason = choice.get("finish_reason")
    usage = data.get("usage") or {}
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    return EngineOutput(
        text=text,
        finish_reason=reason if reason in FINISH_REASONS else "stop",
        vision_tokens=count_vision_tokens(*size),
        output_tokens=tokens if isinstance(tokens, int) else 0,
    )


def _status_detail(response: httpx.Response) -> str:
    """The server's own error message when it sent an OpenAI-style one, else the body's start."""
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
    return str(message)


@contextmanager
def translated_errors(url: str) -> Iterator[None]:
    """The one place where HTTP and transport failures become this package's errors."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise EngineTimeout(
            f"the OCR server at {url} did not answer in time ({type(exc).__name__}); "
            "it may be overloaded: lower max_concurrency or raise timeout"
        ) from exc
    except httpx.TransportError as exc:
        raise EngineConnectionError(
            f"the OCR server at {url} is down or unreachable ({type(exc).__name__}: {exc}); "
            "check that `deepseek-ocr2 serve` or `vllm serve` is running there"
        ) from exc
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        raise EngineResponseError(
            f"the OCR server at {url} answered HTTP {status}: {_status_detail(exc.response)}"
        ) from exc
    except ValueError as exc:  # JSON decoding or a response without choices
        raise EngineResponseError(f"the OCR server at {url} sent an unusable response: {exc}") from exc


def is_retryable(error: EngineError) -> bool:
    """Timeouts, connection failures, 408, 429 and 5xx may pass; other answers will not change."""
    if isinstance(error, (EngineTimeout, EngineConnectionError)):
        return True
    cause = error.__cause__
    if isinstance(cause, httpx.HTTPStatusError):
        status = cause.response.status_code
        return status in _RETRY_STATUSES or status >= 500
    return False


def backoff_delay(attempt: int, backoff: float) -> float:
    """Seconds to wait before retry ``attempt + 1``: exponential, with up to 10 % jitter, capped."""
    delay: float = backoff * 2**attempt * (1 + random.random() / 10)  # jitter, not crypto
    return min(delay, MAX_DELAY)
