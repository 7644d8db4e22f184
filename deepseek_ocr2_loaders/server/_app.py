"""An OpenAI-compatible HTTP server over any :class:`OCREngine`, on the standard library only.

Each connection gets a thread (``ThreadingHTTPServer``) that parses its request and waits
on the :class:`Batcher`; the batcher's single worker turns concurrent requests into GPU
batches. Endpoints: ``GET /health``, ``GET /v1/models``, ``POST /v1/chat/completions``.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from ..engines._base import OCREngine
from ._batcher import Batcher, BatcherClosed
from ._protocol import RequestError, completion_body, error_body, models_body, parse_chat_request

__all__ = ["MAX_BODY_BYTES", "OCRServer", "make_server"]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024 * 1024


class OCRServer(ThreadingHTTPServer):
    """The HTTP server plus its batcher; :meth:`shutdown` and :meth:`server_close` stop both.

    Attributes:
        engine: The engine every request is read with (not closed by the server).
        model_name: The model id reported in responses and ``/v1/models``.
        batcher: Groups concurrent requests into ``engine.generate`` calls.
    """

    daemon_threads = True  # a client that never hangs up must not keep the process alive

    def __init__(self, address: tuple[str, int], engine: OCREngine, *, batch_wait_ms: float, model_name: str) -> None:
        super().__init__(address, _Handler)
        self.engine = engine
        self.model_name = model_name
        self.batcher = Batcher(engine, wait_ms=batch_wait_ms)

    @property
    def url(self) -> str:
        """The API root clients pass as ``base_url``, e.g. ``http://127.0.0.1:8000/v1``."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def shutdown(self) -> None:
        """Refuse new pages (503), stop ``serve_forever``, then let the batcher finish what it holds.

        Call it from another thread than the one in ``serve_forever``, which it waits for.
        """
        self.batcher.close(wait=False)
        super().shutdown()
        self.batcher.close()

    def server_close(self) -> None:
        """Close the listening socket and stop the batcher."""
        super().server_close()
        if hasattr(self, "batcher"):  # absent when binding failed inside __init__
            self.batcher.close()


def make_server(
    engine: OCREngine,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    batch_wait_ms: float = 10.0,
    model_name: str | None = None,
) -> OCRServer:
    """Bind a server for ``engine``; run it with ``serve_forever()`` (e.g. in a thread).

    Args:
        engine: Any OCR engine; its ``batch_size`` bounds each batch.
        host: Interface to listen on; ``0.0.0.0`` exposes the server to the network.
        port: TCP port; 0 picks a free one (read it back from ``server.url``).
        batch_wait_ms: How long a batch waits for more requests after its first.
        model_name: Reported model id; default ``engine.name``.

    Raises:
        OSError: The address is in use or cannot be bound.

    Examples:
        >>> server = make_server(engine, port=8000)  # doctest: +SKIP
        >>> threading.Thread(target=server.serve_forever, daemon=True).start()  # doctest: +SKIP
    """
    return OCRServer((host, port), engine, batch_wait_ms=batch_wait_ms, model_name=model_name or engine.name)


class _Handler(BaseHTTPRequestHandler):
    server: OCRServer
    protocol_version = "HTTP/1.1"  # keep-alive, so clients reuse connections
    server_version = "deepseek-ocr2-serve"

    def do_GET(self) -> None:  # http.server dispatches on this name
        path = urlsplit(self.path).path.rstrip("/")
        if path in ("/health", "/v1/health"):
            self._send(HTTPStatus.OK, {"status": "ok", "model": self.server.model_name})
        elif path in ("/v1/models", "/models"):
            self._send(HTTPStatus.OK, models_body(self.server.model_name))
        else:
            self._send(HTTPStatus.NOT_FOUND, error_body(f"no route GET {path}; try /v1/chat/completions"))

    def do_POST(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        if path not in ("/v1/chat/completions", "/chat/completions"):
            self.close_connection = True  # the body is left unread
            self._send(HTTPStatus.NOT_FOUND, error_body(f"no route POST {path}; use /v1/chat/completions"))
            return
        try:
            request = parse_chat_request(self._read_json())
        except RequestError as exc:
            self._send(HTTPStatus.BAD_REQUEST, error_body(str(exc)))
            return
        try:
            output = self.server.batcher.submit(request.image, request.prompt, request.max_tokens).result()
        except BatcherClosed as exc:
            self.close_connection = True  # a retry must reach a live server, not this kept-alive socket
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, error_body(str(exc), "server_error"))
            return
        except Exception as exc:  # the engine's failure goes back to the client, never kills the server
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, error_body(f"{type(exc).__name__}: {exc}", "server_error"))
            return
        self._send(HTTPStatus.OK, completion_body(output, model=self.server.model_name, prompt=request.prompt))

    def _read_json(self) -> Any:
        """The request body as JSON; a missing, oversized or non-JSON body is a :class:`RequestError`."""
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            raise RequestError("a Content-Length header is required") from None
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            raise RequestError(f"the body must be at most {MAX_BODY_BYTES} bytes")
        raw = self.rfile.read(length)
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise RequestError(f"the body is not valid JSON: {exc}") from exc

    def _send(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("the client of %s hung up before the answer", self.path)

    def log_message(self, format: str, *args: Any) -> None:
        """Route access logs to logging instead of stderr."""
        logger.info("%s - %s", self.address_string(), format % args)
