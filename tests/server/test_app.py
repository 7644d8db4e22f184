"""The HTTP server over the tiny real checkpoint: endpoints, a real completion, errors, batching."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image
from server.ocr_servers import Counting, chat_body, running

from deepseek_ocr2_loaders import TransformersEngine
from deepseek_ocr2_loaders.errors import EngineError
from deepseek_ocr2_loaders.model._vision_tokens import count_vision_tokens
from deepseek_ocr2_loaders.testing import ScriptedEngine

PAGE = Image.new("RGB", (300, 400), "white")


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint):
    engine = Counting(TransformersEngine(str(tiny_checkpoint), max_new_tokens=8, max_batch_size=4))
    with running(engine, batch_wait_ms=30, model_name="tiny-ocr") as handle:
        yield handle, engine
    engine.inner.close()


@pytest.fixture(scope="module")
def client(tiny):
    with httpx.Client(base_url=tiny[0].url.removesuffix("/v1"), timeout=60) as http:
        yield http


def test_health_and_models(client):
    assert client.get("/health").json() == {"status": "ok", "model": "tiny-ocr"}
    models = client.get("/v1/models").json()
    assert models["object"] == "list"
    assert models["data"][0]["id"] == "tiny-ocr" and models["data"][0]["owned_by"] == "deepseek-ocr2-loaders"


def test_a_real_chat_completion_reads_the_png(client, tiny):
    response = client.post(
        "/v1/chat/completions", json=chat_body(PAGE, "<|grounding|>Convert the document to markdown.")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion" and body["model"] == "tiny-ocr"
    choice = body["choices"][0]
    assert isinstance(choice["message"]["content"], str) and choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] in ("stop", "length", "repetition")
    usage = body["usage"]
    assert 1 <= usage["completion_tokens"] <= 8
    assert usage["prompt_tokens"] > count_vision_tokens(300, 400)
    direct = tiny[1].inner.generate([PAGE], "<image>\n<|grounding|>Convert the document to markdown.")[0]
    assert choice["message"]["content"] == direct.text  # lossless PNG: the server saw the same pixels


def test_max_tokens_below_the_engine_limit_is_honoured(client):
    body = client.post("/v1/chat/completions", json=chat_body(PAGE, max_tokens=2)).json()
    assert body["usage"]["completion_tokens"] <= 2
    body = client.post("/v1/chat/completions", json=chat_body(PAGE, max_tokens=10_000)).json()
    assert body["usage"]["completion_tokens"] <= 8  # clamped to the engine's max_new_tokens


def test_concurrent_clients_share_engine_batches(tiny):
    handle, engine = tiny
    before = len(engine.calls)
    pages = [Image.new("RGB", (200 + i, 300), "white") for i in range(4)]
    barrier = threading.Barrier(len(pages))

    def post(image):
        with httpx.Client(timeout=60) as http:
            barrier.wait()
            return http.post(f"{handle.url}/chat/completions", json=chat_body(image)).status_code

    with ThreadPoolExecutor(len(pages)) as pool:
        assert list(pool.map(post, pages)) == [200] * 4
    assert sum(engine.calls[before:]) == 4 and len(engine.calls) - before < 4


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"messages": [{"role": "user", "content": "Free OCR."}]}', "exactly one image"),
        (b'{"stream": true, "messages": []}', "streaming"),
    ],
)
def test_bad_requests_get_400_with_an_openai_error(client, content, message):
    response = client.post("/v1/chat/completions", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert message in error["message"] and error["type"] == "invalid_request_error"


def test_an_image_url_to_fetch_is_refused(client):
    body = chat_body(PAGE)
    body["messages"][0]["content"][0]["image_url"]["url"] = "https://example.com/page.png"
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400 and "does not fetch" in response.json()["error"]["message"]


def test_unknown_routes_are_404(client):
    assert client.get("/v1/nothing").status_code == 404
    assert client.post("/v1/completions", json={}).status_code == 404


def test_engine_errors_are_500_and_the_server_keeps_serving():
    def handler(image, prompt):
        if image.width == 13:
            raise EngineError("the GPU ran out of memory")
        return "# fine"

    with running(ScriptedEngine(handler, batch_size=1)) as handle, httpx.Client(timeout=30) as http:
        url = f"{handle.url}/chat/completions"
        failed = http.post(url, json=chat_body(Image.new("RGB", (13, 13))))
        assert failed.status_code == 500
        assert failed.json()["error"] == {
            "message": "EngineError: the GPU ran out of memory",
            "type": "server_error",
            "param": None,
            "code": None,
        }
        assert http.post(url, json=chat_body(PAGE)).json()["choices"][0]["message"]["content"] == "# fine"


def test_a_shut_down_server_answers_503_on_kept_alive_connections():
    with running(ScriptedEngine(lambda i, p: "x")) as handle, httpx.Client(timeout=30) as http:
        url = f"{handle.url}/chat/completions"
        assert http.post(url, json=chat_body(PAGE)).status_code == 200
        handle.server.shutdown()
        response = http.post(url, json=chat_body(PAGE))  # same keep-alive connection, handler still alive
        assert response.status_code == 503 and "shutting down" in response.json()["error"]["message"]
