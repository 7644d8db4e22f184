"""The chat-completions wire format: accepted request shapes, 400 reasons, response shape."""

from __future__ import annotations

import base64

import pytest
from PIL import Image
from server.ocr_servers import chat_body, png_url

from deepseek_ocr2_loaders.engines._base import EngineOutput
from deepseek_ocr2_loaders.server._protocol import (
    RequestError,
    completion_body,
    error_body,
    models_body,
    parse_chat_request,
)

IMAGE = Image.new("RGB", (40, 30), "white")


def message(*parts: dict) -> dict:
    return {"messages": [{"role": "user", "content": list(parts)}]}


def image_part(url: str | None = None) -> dict:
    return {"type": "image_url", "image_url": {"url": url or png_url(IMAGE)}}


def text_part(text: str) -> dict:
    return {"type": "text", "text": text}


def test_the_openai_engine_shape_becomes_the_model_prompt():
    request = parse_chat_request(chat_body(IMAGE, "<|grounding|>Convert the document to markdown.", max_tokens=99))
    assert request.prompt == "<image>\n<|grounding|>Convert the document to markdown."
    assert request.image.size == (40, 30) and request.image.mode == "RGB"
    assert request.max_tokens == 99


@pytest.mark.parametrize(
    "parts",
    [
        (text_part("Free OCR."), image_part()),
        (image_part(), text_part("<image>\nFree OCR.")),
        (text_part("<image>\nFree OCR."), image_part()),
    ],
)
def test_parts_in_either_order_and_text_with_the_placeholder(parts):
    assert parse_chat_request(message(*parts)).prompt == "<image>\nFree OCR."


def test_a_jpeg_data_url_and_a_bare_url_string_are_accepted():
    import io

    buffer = io.BytesIO()
    IMAGE.save(buffer, format="JPEG")
    url = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
    request = parse_chat_request(message({"type": "image_url", "image_url": url}, text_part("Free OCR.")))
    assert request.image.size == (40, 30)


def test_system_messages_are_ignored():
    body = message(image_part(), text_part("Free OCR."))
    body["messages"].insert(0, {"role": "system", "content": "You are helpful."})
    assert parse_chat_request(body).prompt == "<image>\nFree OCR."


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([], "JSON object"),
        ({"messages": []}, "non-empty list"),
        ({**message(image_part(), text_part("x")), "stream": True}, "streaming"),
        ({**message(image_part(), text_part("x")), "n": 2}, "n=1"),
        ({**message(image_part(), text_part("x")), "max_tokens": 0}, "max_tokens"),
        ({**message(image_part(), text_part("x")), "max_tokens": "9"}, "max_tokens"),
        (message(text_part("Free OCR.")), "exactly one image"),
        ({"messages": [{"role": "user", "content": "Free OCR."}]}, "exactly one image"),
        (message(image_part(), image_part(), text_part("x")), "exactly one image"),
        (message(image_part("https://example.com/a.png"), text_part("x")), "does not fetch"),
        (message(image_part("data:image/png,abc"), text_part("x")), "base64"),
        (message(image_part("data:image/png;base64,@@@"), text_part("x")), "could not be decoded"),
        (message(image_part("data:image/png;base64,aGVsbG8="), text_part("x")), "could not be decoded"),
        (message(image_part(), text_part("  ")), "no instruction"),
        (message(image_part(), text_part("<image><image>x")), "more than one"),
        (message(image_part(), {"type": "input_audio"}), "unsupported content part"),
    ],
)
def test_bad_requests_say_why(body, reason):
    with pytest.raises(RequestError, match=reason):
        parse_chat_request(body)


def test_completion_body_is_a_standard_chat_completion():
    output = EngineOutput(text="# Hi", finish_reason="repetition", vision_tokens=257, output_tokens=5)
    body = completion_body(output, model="m", prompt="<image>\nFree OCR.")
    assert body["object"] == "chat.completion" and body["model"] == "m" and body["id"].startswith("chatcmpl-")
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "# Hi"}
    assert body["choices"][0]["finish_reason"] == "repetition"
    usage = body["usage"]
    assert usage["completion_tokens"] == 5 and usage["prompt_tokens"] > 257
    assert usage["total_tokens"] == usage["prompt_tokens"] + 5


def test_models_and_error_bodies():
    assert models_body("m")["data"] == [
        {"id": "m", "object": "model", "created": 0, "owned_by": "deepseek-ocr2-loaders"}
    ]
    assert error_body("bad") == {
        "error": {"message": "bad", "type": "invalid_request_error", "param": None, "code": None}
    }
