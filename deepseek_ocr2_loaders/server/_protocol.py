"""The OpenAI chat-completions wire format, as far as an OCR server needs it.

Pure functions from JSON to a :class:`ChatRequest` and from an :class:`EngineOutput` to
JSON, kept apart from the HTTP plumbing so that the accepted request shapes are tested
without a socket. The request shape is what vLLM's DeepSeek-OCR recipe sends: one user
message with an ``image_url`` part (a base64 data URL) and a ``text`` part.
"""

from __future__ import annotations

import base64
import binascii
import io
import time
import uuid
from dataclasses import dataclass
from typing import Any

from PIL import Image

from ..engines._base import EngineOutput
from ..model._prompts import IMAGE_PLACEHOLDER

__all__ = ["ChatRequest", "RequestError", "completion_body", "error_body", "models_body", "parse_chat_request"]

OWNER = "deepseek-ocr2-loaders"


class RequestError(ValueError):
    """The request cannot be served as sent; answered with HTTP 400 and this message."""


@dataclass(frozen=True)
class ChatRequest:
    """One page to read: the decoded image, the full model prompt and an optional token limit."""

    image: Image.Image
    prompt: str
    max_tokens: int | None


def parse_chat_request(payload: Any) -> ChatRequest:
    """Validate a chat-completions body and extract the page image and prompt.

    Text parts are joined; if they hold no ``<image>`` placeholder it is put first, as the
    model expects. ``temperature`` and other sampling fields are ignored: decoding is greedy.

    Raises:
        RequestError: Streaming, several or no images, an image URL to fetch, bad base64...
    """
    if not isinstance(payload, dict):
        raise RequestError("the request body must be a JSON object")
    if payload.get("stream"):
        raise RequestError("streaming is not supported; send 'stream': false")
    if payload.get("n", 1) not in (1, None):
        raise RequestError("only n=1 is supported")
    max_tokens = payload.get("max_completion_tokens", payload.get("max_tokens"))
    if max_tokens is not None and (type(max_tokens) is not int or max_tokens < 1):
        raise RequestError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list")
    images: list[Image.Image] = []
    texts: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            raise RequestError("every message must be an object")
        if message.get("role", "user") != "user":
            continue
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(parts, list):
            raise RequestError("message content must be a string or a list of parts")
        for part in parts:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                texts.append(str(part.get("text") or ""))
            elif kind == "image_url":
                images.append(decode_image_url(part.get("image_url")))
            else:
                raise RequestError(f"unsupported content part {kind!r}; send 'image_url' and 'text' parts")
    if len(images) != 1:
        raise RequestError(f"send exactly one image per request (got {len(images)}) as an image_url part")
    text = "\n".join(texts)
    if not text.replace(IMAGE_PLACEHOLDER, "").strip():
        raise RequestError("no instruction: add a text part such as 'Free OCR.'")
    if text.count(IMAGE_PLACEHOLDER) > 1:
        raise RequestError("the text holds more than one <image> placeholder")
    prompt = text if IMAGE_PLACEHOLDER in text else f"{IMAGE_PLACEHOLDER}\n{text}"
    return ChatRequest(images[0], prompt, max_tokens)


def decode_image_url(value: Any) -> Image.Image:
    """Decode a ``data:image/...;base64,`` URL (or an ``{"url": ...}`` object) to an RGB image.

    Raises:
        RequestError: Not a base64 image data URL (the server never fetches http(s) URLs),
            or the bytes are not an image Pillow reads.
    """
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str):
        raise RequestError("image_url must be an object with a 'url' string")
    if url.startswith(("http://", "https://")):
        raise RequestError("this server does not fetch image URLs; send the image as a data:image/png;base64 URL")
    header, comma, data = url.partition(",")
    if not (header.startswith("data:image/") and header.endswith(";base64") and comma):
        raise RequestError("image_url must be a data:image/...;base64,... URL")
    try:
        raw = base64.b64decode(data, validate=True)
        with Image.open(io.BytesIO(raw)) as image:
            return image.convert("RGB")
    except (binascii.Error, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise RequestError(f"the image could not be decoded: {exc}") from exc


def completion_body(output: EngineOutput, *, model: str, prompt: str) -> dict[str, Any]:
    """A ``chat.completion`` object; ``finish_reason`` may be ``repetition`` (the loop guard stopped it)."""
    instruction = prompt.replace(IMAGE_PLACEHOLDER, "")
    prompt_tokens = output.vision_tokens + 1 + max(1, len(instruction) // 4)  # BOS + a rough text count
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": output.text},
                "finish_reason": output.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": output.output_tokens,
            "total_tokens": prompt_tokens + output.output_tokens,
        },
    }


def models_body(model: str) -> dict[str, Any]:
    """The ``/v1/models`` list: the one model this server serves."""
    return {
        "object": "list",
        "data": [{"id": model, "object": "model", "created": 0, "owned_by": OWNER}],
    }


def error_body(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    """An OpenAI-style error object, which OpenAI clients turn into their own exceptions."""
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}
