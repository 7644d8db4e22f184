"""DeepSeek-OCR-2 behind any OpenAI-compatible server: vLLM, SGLang or ``deepseek-ocr2 serve``.

Each page is one chat-completions request; pages of a batch are sent concurrently and
spread round-robin over the given server replicas. The GPU work happens on the server,
so this engine needs neither torch nor a GPU, and many client processes can share one
server's batching.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import httpx

from ...errors import ConfigError, EngineError
from ...model import MAX_NEW_TOKENS
from .._base import EngineOutput, OCREngine
from ._http import (
    SERVERS,
    backoff_delay,
    build_body,
    encode_image,
    instruction_of,
    is_retryable,
    parse_completion,
    server_urls,
    translated_errors,
)

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["DEFAULT_SERVED_MODEL", "OpenAIEngine"]

logger = logging.getLogger(__name__)

DEFAULT_SERVED_MODEL = "deepseek-ai/DeepSeek-OCR-2"
CONNECT_TIMEOUT = 10.0


class OpenAIEngine(OCREngine):
    """Read pages through an OpenAI-compatible chat-completions server.

    Args:
        base_url: The server's API root, ``/v1`` included (``http://127.0.0.1:8000/v1``), or a
            list of replicas; pages are spread over them round-robin and a retry moves on to
            the next replica.
        model: The model name the server serves (vLLM: the ``vllm serve`` argument or
            ``--served-model-name``); also recorded as ``model`` in page metadata.
        api_key: Sent as a bearer token (``vllm serve --api-key``); none by default.
        max_concurrency: Requests in flight per replica; ``batch_size`` is this times the
            number of replicas, so the pipeline hands over enough pages to keep all busy.
        timeout: Seconds to wait for one page (a dense page can take a minute on a busy server).
        retries: Extra attempts after a timeout, a connection failure, HTTP 408, 429 or 5xx.
        backoff: First retry delay in seconds; it doubles per attempt (plus a little jitter).
        max_tokens: Token budget per page.
        extra_body: Extra request fields, merged over the defaults (e.g. ``{"vllm_xargs": {...}}``
            to tune vLLM's n-gram guard).
        server: ``"vllm"`` (default; also ``deepseek-ocr2 serve``): the n-gram guard as
            ``vllm_xargs`` and ``repetition_detection``, so a loop ends ``finish_reason="repetition"``;
            ``"sglang"``: the guard as SGLang's ``custom_logit_processor`` (start the server with
            ``--enable-custom-logit-processor``). Whatever the server, the pipeline also reads every
            output cut at ``max_tokens`` for loops.

    Raises:
        ConfigError: An option is out of bounds or a URL is not ``http(s)://``.

    Examples:
        >>> engine = OpenAIEngine("http://127.0.0.1:8000/v1")
        >>> engine.batch_size
        8
        >>> docs = DeepSeekOCR2Loader("paper.pdf", engine=engine).load()  # doctest: +SKIP
    """

    def __init__(
        self,
        base_url: str | Sequence[str],
        model: str = DEFAULT_SERVED_MODEL,
        *,
        api_key: str | None = None,
        max_concurrency: int = 8,
        timeout: float = 300.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_tokens: int = MAX_NEW_TOKENS,
        extra_body: Mapping[str, Any] | None = None,
        server: str = "vllm",
    ) -> None:
        urls = server_urls(base_url)
        for label, value, low in (
            ("max_concurrency", max_concurrency, 1),
            ("retries", retries, 0),
            ("max_tokens", max_tokens, 1),
        ):
            if value < low:
                raise ConfigError(f"{label} must be >= {low}, got {value}")
        if server not in SERVERS:
            raise ConfigError(f"server must be one of {SERVERS}, got {server!r}")
        if timeout <= 0 or backoff < 0:
            raise ConfigError(f"timeout must be > 0 and backoff >= 0, got {timeout} and {backoff}")
        self.base_urls = urls
        self.model = model
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_tokens = max_tokens
        self.extra_body = dict(extra_body or {})
        self.server = server
        self.batch_size = max_concurrency * len(urls)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._lock = threading.Lock()
        self._cursor = 0
        self._client: httpx.Client | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._finalizer: weakref.finalize[[httpx.Client, ThreadPoolExecutor], OpenAIEngine] | None = None
        self._stricter: OpenAIEngine | None = None

    @property
    def name(self) -> str:
        """The served model name, as recorded in page metadata."""
        return self.model

    @property
    def fingerprint(self) -> dict[str, object]:
        """Served model, token budget and every request field (the server's loop guard included)."""
        return {"engine": "OpenAIEngine", **self._request_fields()}

    def stricter(self) -> OpenAIEngine:
        """A client asking the server for a stronger n-gram guard: the same n-gram in twice the window.

        Built once and closed with this engine.
        """
        if self._stricter is None:
            key = "custom_params" if self.server == "sglang" else "vllm_xargs"
            guard = dict(self._request_fields()[key])
            guard["window_size"] = 2 * int(guard["window_size"])
            self._stricter = OpenAIEngine(**{**self._arguments(), "extra_body": {**self.extra_body, key: guard}})
        return self._stricter

    def _request_fields(self) -> dict[str, Any]:
        """Every field of a page request but the page itself."""
        body = build_body(
            "", "", model=self.model, max_tokens=self.max_tokens, extra_body=self.extra_body, server=self.server
        )
        del body["messages"]
        return body

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle to the configuration, not the connections: a worker process opens its own."""
        return (functools.partial(OpenAIEngine, **self._arguments()), ())

    def _arguments(self) -> dict[str, Any]:
        """The constructor arguments this engine was built with."""
        return {
            "base_url": list(self.base_urls),
            "model": self.model,
            "api_key": self._headers.get("Authorization", "").removeprefix("Bearer ") or None,
            "max_concurrency": self.max_concurrency,
            "timeout": self.timeout,
            "retries": self.retries,
            "backoff": self.backoff,
            "max_tokens": self.max_tokens,
            "extra_body": self.extra_body,
            "server": self.server,
        }

    def __repr__(self) -> str:
        return f"OpenAIEngine({list(self.base_urls)!r}, model={self.model!r})"

    # -- shared by both transports ---------------------------------------------------

    def _client_options(self) -> dict[str, Any]:
        return {
            "headers": self._headers,
            "timeout": httpx.Timeout(self.timeout, connect=min(self.timeout, CONNECT_TIMEOUT)),
            "limits": httpx.Limits(max_connections=self.batch_size, max_keepalive_connections=self.batch_size),
        }

    def _claim(self, count: int) -> int:
        """The first round-robin slot of ``count`` pages, so successive batches keep rotating."""
        with self._lock:
            first, self._cursor = self._cursor, self._cursor + count
        return first

    def _url(self, slot: int) -> str:
        return self.base_urls[slot % len(self.base_urls)]

    def _body(self, image: Image.Image, instruction: str) -> dict[str, Any]:
        return build_body(
            encode_image(image),
            instruction,
            model=self.model,
            max_tokens=self.max_tokens,
            extra_body=self.extra_body,
            server=self.server,
        )

    def _should_retry(self, error: EngineError, attempt: int) -> bool:
        if attempt >= self.retries or not is_retryable(error):
            return False
        logger.warning("retrying a page (attempt %d of %d) after: %s", attempt + 2, self.retries + 1, error)
        return True

    # -- sync ------------------------------------------------------------------------

    def _sync_transport(self) -> tuple[httpx.Client, ThreadPoolExecutor]:
        """The shared client and threads, opened on first use.

        Loaders never close an engine they were given, so the transport is also closed
        when the engine is garbage-collected, rather than leaking sockets.
        """
        with self._lock:
            if self._client is None or self._pool is None:
                self._client = httpx.Client(**self._client_options())
                self._pool = ThreadPoolExecutor(self.batch_size, thread_name_prefix="deepseek-ocr2-http")
                self._finalizer = weakref.finalize(self, _close_transport, self._client, self._pool)
            return self._client, self._pool

    def generate(self, images: list[Image.Image], prompt: str) -> list[EngineOutput]:
        """Read the pages concurrently; raise the first page's error if any page fails.

        Raises:
            EngineTimeout: A page got no answer in ``timeout`` seconds, on every attempt.
            EngineConnectionError: The server could not be reached, on every attempt.
            EngineResponseError: The server refused the request or answered nonsense.
        """
        if not images:
            return []
        instruction = instruction_of(prompt)
        first = self._claim(len(images))
        client, pool = self._sync_transport()
        futures = [
            pool.submit(self._read_page, client, image, instruction, first + i) for i, image in enumerate(images)
        ]
        try:
            return [future.result() for future in futures]
        finally:
            for future in futures:  # after a failure, pages not yet sent are not sent
                future.cancel()

    def _read_page(self, client: httpx.Client, image: Image.Image, instruction: str, slot: int) -> EngineOutput:
        body = self._body(image, instruction)
        attempt = 0
        while True:
            url = self._url(slot + attempt)
            try:
                with translated_errors(url):
                    return parse_completion(client.post(f"{url}/chat/completions", json=body), image.size)
            except EngineError as exc:
                if not self._should_retry(exc, attempt):
                    raise
            time.sleep(backoff_delay(attempt, self.backoff))
            attempt += 1

    # -- async -----------------------------------------------------------------------

    async def agenerate(self, images: list[Image.Image], prompt: str) -> list[EngineOutput]:
        """Native async :meth:`generate`: one ``httpx.AsyncClient``, at most ``batch_size`` requests at once.

        The client lives for one call because an async client is tied to the event loop
        that opened its connections, and loaders may be driven by several ``asyncio.run``
        loops. PNG encoding, which is CPU work, runs in a worker thread.
        """
        if not images:
            return []
        instruction = instruction_of(prompt)
        first = self._claim(len(images))
        gate = asyncio.Semaphore(self.batch_size)
        async with httpx.AsyncClient(**self._client_options()) as client:
            tasks = [
                asyncio.ensure_future(self._aread_page(client, gate, image, instruction, first + i))
                for i, image in enumerate(images)
            ]
            try:
                return list(await asyncio.gather(*tasks))
            except BaseException:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise

    async def _aread_page(
        self, client: httpx.AsyncClient, gate: asyncio.Semaphore, image: Image.Image, instruction: str, slot: int
    ) -> EngineOutput:
        async with gate:
            body = await asyncio.to_thread(self._body, image, instruction)
            attempt = 0
            while True:
                url = self._url(slot + attempt)
                try:
                    with translated_errors(url):
                        response = await client.post(f"{url}/chat/completions", json=body)
                        return parse_completion(response, image.size)
                except EngineError as exc:
                    if not self._should_retry(exc, attempt):
                        raise
                await asyncio.sleep(backoff_delay(attempt, self.backoff))
                attempt += 1

    # -- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP connections and worker threads; the engine reopens them if used again."""
        with self._lock:
            finalizer, self._finalizer, self._client, self._pool = self._finalizer, None, None, None
        if finalizer is not None:
            finalizer()
        if self._stricter is not None:
            self._stricter.close()


def _close_transport(client: httpx.Client, pool: ThreadPoolExecutor) -> None:
    pool.shutdown(wait=False, cancel_futures=True)
    client.close()
