"""Messages between the render pool and its workers: a JSON header plus raw bytes, no pickle.

A frame is two little-endian uint32 lengths, the UTF-8 JSON header and the payload (the
document bytes going out, the page's RGB pixels coming back). Errors cross as class name,
message, source and page and are rebuilt as the same typed error on the parent's side.
"""

from __future__ import annotations

import json
import struct
from typing import IO, Any

from ..errors import (
    CorruptInputError,
    DeepSeekOCR2Error,
    EmptyInputError,
    EncryptedPDFError,
    InputError,
    PageRangeError,
    RenderCrashError,
    UnsupportedInputError,
)

__all__ = ["decode_error", "encode_error", "receive", "send"]

_LENGTHS = struct.Struct("<II")
_ERRORS: dict[str, type[InputError]] = {
    cls.__name__: cls
    for cls in (
        InputError,
        UnsupportedInputError,
        EmptyInputError,
        CorruptInputError,
        EncryptedPDFError,
        PageRangeError,
        RenderCrashError,
    )
}


def send(stream: IO[bytes], header: dict[str, Any], payload: bytes = b"") -> None:
    """Write one frame and flush it."""
    data = json.dumps(header).encode()
    stream.write(_LENGTHS.pack(len(data), len(payload)) + data)
    stream.write(payload)
    stream.flush()


def receive(stream: IO[bytes]) -> tuple[dict[str, Any], bytes] | None:
    """Read one frame; ``None`` when the other side has closed the pipe (or died)."""
    lengths = _read(stream, _LENGTHS.size)
    if lengths is None:
        return None
    header_size, payload_size = _LENGTHS.unpack(lengths)
    header, payload = _read(stream, header_size), _read(stream, payload_size)
    if header is None or payload is None:
        return None
    return json.loads(header), payload


def _read(stream: IO[bytes], size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def encode_error(exc: Exception) -> dict[str, Any]:
    """An exception as a header: ours keep their class, anything else is a worker failure."""
    if isinstance(exc, DeepSeekOCR2Error):
        return {"error": type(exc).__name__, "message": exc.message, "source": exc.source, "page": exc.page}
    return {"error": "RenderCrashError", "message": f"the render worker failed ({type(exc).__name__}: {exc})"}


def decode_error(header: dict[str, Any], *, source: str, page: int) -> InputError:
    """The typed error a header describes (an unknown class becomes a :class:`RenderCrashError`)."""
    cls = _ERRORS.get(header["error"], RenderCrashError)
    return cls(header["message"], source=header.get("source") or source, page=page)
