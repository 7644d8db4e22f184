"""OpenAIEngine against real servers on 127.0.0.1: ours over the tiny checkpoint and scripted engines,
and stub servers that fail on cue (retries, 4xx, refused connections, timeouts)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from PIL import Image
from scripted_paper import PAGES, paper_engine, write_paper
from server.ocr_servers import Counting, closed_port, completion, running, stub

from deepseek_ocr2_loaders import TransformersEngine
from deepseek_ocr2_loaders.engines.openai._engine import OpenAIEngine
from deepseek_ocr2_loaders.engines.openai._http import END_OF_SENTENCE, build_body, instruction_of
from deepseek_ocr2_loaders.errors import (
    ConfigError,
    EngineConnectionError,
    EngineResponseError,
    EngineTimeout,
)
from deepseek_ocr2_loaders.langchain import DeepSeekOCR2Loader
from deepseek_ocr2_loaders.llama_index import DeepSeekOCR2Reader
from deepseek_ocr2_loaders.model._vision_tokens import count_vision_tokens

MARKDOWN = "<image>\n<|grounding|>Convert the document to markdown."
PAGE = Image.new("RGB", (300, 400), "white")
FAST = {"backoff": 0.001, "timeout": 10}


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint):
    engine = TransformersEngine(str(tiny_checkpoint), max_new_tokens=8, max_batch_size=4)
    with running(engine) as handle:
        yield handle, engine
    engine.close()


@pytest.fixture(scope="module")
def paper_server():
    engine = Counting(paper_engine())
    with running(engine) as handle:
        yield handle, engine


@pytest.fixture
def paper(tmp_path):
    return write_paper(tmp_path / "paper.pdf")


def contents(docs):
    return [(d.page_content, d.metadata) for d in docs]


# -- the real model path -----------------------------------------------------------------


@pytest.mark.compat
def test_generate_matches_the_engine_behind_the_server(tiny):
    handle, engine = tiny
    with OpenAIEngine(handle.url, max_concurrency=1, **FAST) as remote:
        (output,) = remote.generate([PAGE], MARKDOWN)
    (direct,) = engine.generate([PAGE], MARKDOWN)
    assert output.text == direct.text
    assert output.finish_reason == direct.finish_reason
    assert output.output_tokens == direct.output_tokens
    assert output.vision_tokens == count_vision_tokens(300, 400) == direct.vision_tokens


def test_agenerate_is_native_async_and_keeps_page_order(tiny):
    handle, _ = tiny
    pages = [Image.new("RGB", (200 + 10 * i, 300), "white") for i in range(3)]
    remote = OpenAIEngine(handle.url, **FAST)
    sync = remote.generate(pages, MARKDOWN)
    assert asyncio.run(remote.agenerate(pages, MARKDOWN)) == sync
    assert [o.vision_tokens for o in sync] == [count_vision_tokens(*p.size) for p in pages]
    remote.close()
    remote.close()


# -- through the loaders (scripted model text behind a real server) --------------------------


def test_langchain_loader_sync_and_async_equal_the_in_process_engine(paper_server, paper):
    handle, counting = paper_server
    expected = contents(DeepSeekOCR2Loader(paper, engine=paper_engine()).load())
    engine = OpenAIEngine(handle.url, model="scripted-deepseek-ocr2", max_concurrency=2, **FAST)
    before = counting.pages
    assert contents(DeepSeekOCR2Loader(paper, engine=engine).load()) == expected
    assert counting.pages - before == len(PAGES)

    async def aload():
        return [d async for d in DeepSeekOCR2Loader(paper, engine=engine).alazy_load()]

    assert contents(asyncio.run(aload())) == expected
    assert [metadata["ocr_status"] for _, metadata in expected] == ["ok"] * 4
    engine.close()


def test_llama_index_reader_sync_and_async(paper_server, paper):
    handle, _ = paper_server
    expected = [(d.text, d.metadata) for d in DeepSeekOCR2Reader(engine=paper_engine()).load_data(paper)]
    reader = DeepSeekOCR2Reader(engine=OpenAIEngine(handle.url, model="scripted-deepseek-ocr2", **FAST))
    assert [(d.text, d.metadata) for d in reader.load_data(paper)] == expected
    assert [(d.text, d.metadata) for d in asyncio.run(reader.aload_data(paper))] == expected


def test_pages_are_spread_over_two_servers(paper):
    lock = threading.Lock()  # one scripted model, two servers
    first, second = Counting(paper_engine(), lock), Counting(paper_engine(), lock)
    with running(first) as a, running(second) as b:
        engine = OpenAIEngine([a.url, b.url + "/"], model="scripted-deepseek-ocr2", max_concurrency=1, **FAST)
        assert engine.batch_size == 2
        docs = DeepSeekOCR2Loader(paper, engine=engine).load()
        adocs = asyncio.run(engine.agenerate([Image.new("RGB", (1200, 1584))] * 2, MARKDOWN))
    assert [d.page_content for d in docs] == [
        d.page_content for d in DeepSeekOCR2Loader(paper, engine=paper_engine()).load()
    ]
    assert first.pages == second.pages == 3  # 4 pages round-robin, then 2 async pages
    assert [o.text for o in adocs] == [PAGES[0]] * 2


def test_a_server_stopped_mid_run_fails_only_the_later_pages(paper):
    counting = Counting(paper_engine(batch_size=1))
    with running(counting) as handle:

        def stop_after_first(calls: int) -> None:
            if calls == 1:

                def stop() -> None:
                    handle.server.shutdown()
                    handle.server.server_close()

                threading.Thread(target=stop).start()
                handle.stopped.wait(5)  # the server takes no new connection before this page is answered

        counting.after_call = stop_after_first
        engine = OpenAIEngine(handle.url, model="scripted-deepseek-ocr2", max_concurrency=1, retries=1, **FAST)
        docs = list(DeepSeekOCR2Loader(paper, engine=engine).lazy_load())
    assert [d.metadata["ocr_status"] for d in docs] == ["ok", "failed", "failed", "failed"]
    assert docs[0].page_content and counting.calls == [1]
    for doc in docs[1:]:
        assert handle.url in doc.metadata["errors"] and doc.page_content == ""


# -- retries and errors, against stub servers ------------------------------------------------


@pytest.mark.parametrize("status", [503, 429, 500])
def test_retryable_statuses_are_retried_until_success(status):
    with stub([(status, {"error": {"message": "busy"}}), (status, "busy"), (200, completion())]) as server:
        (output,) = OpenAIEngine(server.url, retries=3, **FAST).generate([PAGE], MARKDOWN)
    assert server.requests == 3
    assert (output.text, output.finish_reason, output.output_tokens) == ("# Title", "stop", 3)


def test_retries_run_out():
    with stub([(503, {"error": {"message": "overloaded"}})]) as server:
        with pytest.raises(EngineResponseError, match="answered HTTP 503: overloaded") as caught:
            OpenAIEngine(server.url, retries=2, **FAST).generate([PAGE], MARKDOWN)
    assert server.requests == 3 and caught.value.__cause__ is not None


def test_a_4xx_fails_at_once():
    with stub([(400, {"error": {"message": "bad model"}}), (200, completion())]) as server:
        with pytest.raises(EngineResponseError, match=r"answered HTTP 400: bad model"):
            OpenAIEngine(server.url, retries=3, **FAST).generate([PAGE], MARKDOWN)
    assert server.requests == 1


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        ("not json", "unusable response"),
        ({"choices": []}, "no choices"),
        ({"choices": [{"message": {}}]}, "no choices"),
    ],
)
def test_unusable_answers_are_response_errors(answer, match):
    with stub([(200, answer)]) as server:
        with pytest.raises(EngineResponseError, match=match):
            OpenAIEngine(server.url, **FAST).generate([PAGE], MARKDOWN)
    assert server.requests == 1


def test_a_refused_connection_is_a_connection_error_after_the_retries():
    url = f"http://127.0.0.1:{closed_port()}/v1"
    with pytest.raises(EngineConnectionError, match="is down or unreachable") as caught:
        OpenAIEngine(url, retries=2, **FAST).generate([PAGE], MARKDOWN)
    assert url in str(caught.value) and "deepseek-ocr2 serve" in str(caught.value)


def test_a_refused_connection_async():
    url = f"http://127.0.0.1:{closed_port()}/v1"
    with pytest.raises(EngineConnectionError, match=url):
        asyncio.run(OpenAIEngine(url, retries=1, **FAST).agenerate([PAGE], MARKDOWN))


def test_a_slow_server_is_a_timeout():
    with stub([(200, completion())], delay=0.5) as server:
        with pytest.raises(EngineTimeout, match="did not answer in time"):
            OpenAIEngine(server.url, retries=0, timeout=0.1).generate([PAGE], MARKDOWN)


def test_response_mapping():
    answers = [
        (200, completion(f"# A{END_OF_SENTENCE}", "length", 7)),
        (200, completion("b", "abort")),
        (200, {"choices": [{"message": {"content": "c"}, "finish_reason": "repetition"}]}),
    ]
    outputs = []
    with stub(answers) as server:
        engine = OpenAIEngine(server.url, max_concurrency=1, **FAST)
        for _ in answers:
            outputs.extend(engine.generate([PAGE], MARKDOWN))
    assert [(o.text, o.finish_reason, o.output_tokens) for o in outputs] == [
        ("# A", "length", 7),
        ("b", "stop", 3),
        ("c", "repetition", 0),
    ]


def test_request_shape():
    body = build_body(
        "data:image/png;base64,AA",
        instruction_of(MARKDOWN),
        model="m",
        max_tokens=5,
        extra_body={"top_k": 1, "vllm_xargs": None},
    )
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
                {"type": "text", "text": "<|grounding|>Convert the document to markdown."},
            ],
        }
    ]
    assert (body["model"], body["max_tokens"], body["temperature"], body["skip_special_tokens"]) == ("m", 5, 0, False)
    assert body["top_k"] == 1 and body["vllm_xargs"] is None
    assert instruction_of("<image>\nFree OCR.") == "Free OCR." and instruction_of("Free OCR.") == "Free OCR."


@pytest.mark.parametrize(
    "options",
    [
        {"base_url": ""},
        {"base_url": []},
        {"base_url": "127.0.0.1:8000/v1"},
        {"base_url": "http://x/v1", "max_concurrency": 0},
        {"base_url": "http://x/v1", "retries": -1},
        {"base_url": "http://x/v1", "timeout": 0},
        {"base_url": "http://x/v1", "max_tokens": 0},
    ],
)
def test_bad_options_are_config_errors(options):
    with pytest.raises(ConfigError):
        OpenAIEngine(**options)


def test_name_and_batch_size():
    engine = OpenAIEngine(["http://a/v1", "http://b/v1"], "my-ocr", max_concurrency=3)
    assert engine.name == "my-ocr" and engine.batch_size == 6 and engine.generate([], MARKDOWN) == []


# -- loop defence on remote servers ------------------------------------------------------------


def test_vllm_gets_the_ngram_guard_and_repetition_detection():
    with stub([(200, completion("# A", "repetition"))]) as server:
        (output,) = OpenAIEngine(server.url, **FAST).generate([PAGE], MARKDOWN)
    (body,) = server.bodies
    assert body["vllm_xargs"] == {"ngram_size": 20, "window_size": 50, "whitelist_token_ids": [128821, 128822]}
    assert body["repetition_detection"] == {"min_pattern_size": 64, "max_pattern_size": 256, "min_count": 6}
    assert "custom_logit_processor" not in body and output.finish_reason == "repetition"


def test_sglang_gets_its_custom_logit_processor_and_nothing_of_vllm():
    import io
    import json
    import pickle

    with stub([(200, completion())]) as server:
        asyncio.run(OpenAIEngine(server.url, server="sglang", **FAST).agenerate([PAGE], MARKDOWN))
    (body,) = server.bodies
    assert "vllm_xargs" not in body and "repetition_detection" not in body
    assert body["custom_params"] == {"ngram_size": 20, "window_size": 50, "whitelist_token_ids": [128821, 128822]}

    class Names(pickle.Unpickler):  # read which class the payload names, without importing anything
        def find_class(self, module, name):
            return module, name

    payload = bytes.fromhex(json.loads(body["custom_logit_processor"])["callable"])
    named = Names(io.BytesIO(payload)).load()
    assert named == ("sglang.srt.sampling.custom_logit_processor", "DeepseekOCRNoRepeatNGramLogitProcessor")
    with pytest.raises(ConfigError, match="server must be one of"):
        OpenAIEngine(server.url, server="tgi")


def test_a_remote_page_cut_off_in_a_loop_is_retried_then_falls_back_to_the_text_layer(real_pdfs):
    import pymupdf

    from deepseek_ocr2_loaders import OCRStatus, convert

    looping = "# Notes\n\n" + "".join("[\\underline" + "[\\line" * (i % 3) for i in range(900))
    with stub([(200, completion(looping, "length", 8192))]) as server:
        (page,) = convert(real_pdfs / "load_v_error.pdf", engine=OpenAIEngine(server.url, **FAST), pages="1")
    assert server.requests == 2  # the loop was seen in the text and the page retried once
    assert page.status is OCRStatus.FALLBACK_TEXT and page.finish_reason.value == "repetition"
    with pymupdf.open(real_pdfs / "load_v_error.pdf") as doc:
        assert page.markdown == doc[0].get_text().strip()
    assert page.raw.startswith("# Notes") and len(page.raw) < len(looping) / 10  # the looping tail is cut


def test_a_remote_page_that_is_only_long_is_not_a_loop(real_pdfs):
    from deepseek_ocr2_loaders import OCRStatus, convert

    long_table = "<table>" + "".join(f"<tr><td>{i}</td><td>{i * i % 97} units</td></tr>" for i in range(400))
    with stub([(200, completion(long_table, "length", 8192))]) as server:
        (page,) = convert(real_pdfs / "load_v_error.pdf", engine=OpenAIEngine(server.url, **FAST), pages="1")
    assert server.requests == 1 and page.status is OCRStatus.TRUNCATED and page.finish_reason.value == "length"


def test_pickles_to_its_configuration():
    import pickle

    engine = OpenAIEngine(["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"], "m", api_key="k", max_tokens=5, retries=1)
    again = pickle.loads(pickle.dumps(engine))
    assert again._arguments() == engine._arguments() and again.stricter()._arguments() == engine.stricter()._arguments()
