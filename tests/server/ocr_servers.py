"""Real servers on 127.0.0.1 for the server and OpenAIEngine tests.

``running(engine)`` serves an engine through ``make_server`` in a thread; ``Counting`` wraps
an engine to count the pages and calls each server saw; ``StubServer`` answers with scripted
HTTP statuses to test retries; ``closed_port()`` gives a port nobody listens on.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

from deepseek_ocr2_loaders.engines._base import EngineOutput, OCREngine
from deepseek_ocr2_loaders.server import OCRServer, make_server


@dataclass
class Running:
    server: OCRServer
    thread: threading.Thread
    stopped: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return self.server.url


@contextmanager
def running(engine: OCREngine, **options: Any) -> Iterator[Running]:
    server = make_server(engine, **options)
    handle = Running(server, threading.Thread(target=lambda: None))

    def serve() -> None:
        try:
            server.serve_forever(poll_interval=0.05)
        finally:
            handle.stopped.set()

    handle.thread = threading.Thread(target=serve, daemon=True)
    handle.thread.start()
    try:
        yield handle
    finally:
        if not handle.stopped.is_set():
            server.shutdown()
        server.server_close()
        handle.thread.join(5)


class Counting(OCREngine):
    """Delegates to ``inner``; records the size of every generate call. ``after_call`` runs after each."""

    def __init__(self, inner: OCREngine, lock: threading.Lock | None = None) -> None:
        self.inner = inner
        self.batch_size = inner.batch_size
        self.calls: list[int] = []
        self.lock = lock or threading.Lock()
        self.after_call: Callable[[int], None] | None = None

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def max_new_tokens(self) -> int:
        return int(self.inner.max_new_tokens)  # type: ignore[attr-defined]  # AttributeError if it has none

    @max_new_tokens.setter
    def max_new_tokens(self, value: int) -> None:
        self.inner.max_new_tokens = value  # type: ignore[attr-defined]

    @property
    def pages(self) -> int:
        return sum(self.calls)

    def generate(self, images: list[Image.Image], prompt: str) -> list[EngineOutput]:
        with self.lock:  # engines sharing one model take turns
            outputs = self.inner.generate(images, prompt)
            self.calls.append(len(images))
        if self.after_call is not None:
            self.after_call(len(self.calls))
        return outputs


def png_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def chat_body(image: Image.Image, text: str = "Free OCR.", **extra: Any) -> dict[str, Any]:
    content = [{"type": "image_url", "image_url": {"url": png_url(image)}}, {"type": "text", "text": text}]
    return {"model": "any", "messages": [{"role": "user", "content": content}], **extra}


class StubServer(ThreadingHTTPServer):
    """Answers POSTs with ``answers`` in turn (the last one repeats); counts the requests, keeps their JSON bodies."""

    daemon_threads = True

    def __init__(self, answers: list[tuple[int, Any]], delay: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _StubHandler)
        self.answers = answers
        self.delay = delay
        self.requests = 0
        self.bodies: list[Any] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def next_answer(self) -> tuple[int, Any]:
        with self.lock:
            self.requests += 1
            return self.answers[min(self.requests, len(self.answers)) - 1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout tests) is expected; keep stderr quiet."""


class _StubHandler(BaseHTTPRequestHandler):
    server: StubServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        sent = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.bodies.append(json.loads(sent) if sent else None)
        status, body = self.server.next_answer()
        time.sleep(self.server.delay)
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def stub(answers: list[tuple[int, Any]], delay: float = 0.0) -> Iterator[StubServer]:
    server = StubServer(answers, delay)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def completion(text: str = "# Title", finish_reason: str = "stop", tokens: int = 3) -> dict[str, Any]:
    return {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 300, "completion_tokens": tokens, "total_tokens": 300 + tokens},
    }


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
