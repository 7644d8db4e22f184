"""``deepseek-ocr2 serve``'s parser and run function (the lead wires them into the CLI)."""

from __future__ import annotations

import argparse
import socket

from deepseek_ocr2_loaders.cli._serve import add_serve_parser, run_serve
from deepseek_ocr2_loaders.server import OCRServer
from deepseek_ocr2_loaders.testing import ScriptedEngine


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="deepseek-ocr2")
    add_serve_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["serve", *argv])


class Closing(ScriptedEngine):
    closed = False

    def close(self) -> None:
        self.closed = True


def test_defaults():
    args = parse()
    assert (args.command, args.host, args.port, args.batch_size, args.max_new_tokens, args.batch_wait_ms) == (
        "serve",
        "127.0.0.1",
        8000,
        None,  # the engine's default: 128 on a GPU, 16 on a CPU
        8192,
        10.0,
    )
    assert args.model == "deepseek-community/DeepSeek-OCR-2" and args.device is None and args.dtype is None


def test_run_serve_warms_up_prints_the_url_serves_and_closes_the_engine(monkeypatch, capsys):
    served = []

    def serve_forever(self, poll_interval=0.5):
        served.append(self.url)
        raise KeyboardInterrupt

    monkeypatch.setattr(OCRServer, "serve_forever", serve_forever)
    engine = Closing(lambda image, prompt: "ok")
    assert run_serve(parse("--port", "0", "--served-model-name", "ocr", "-q"), engine=engine) == 0
    assert engine.calls == [1]  # the warm-up page, before the URL is announced
    assert engine.closed
    err = capsys.readouterr().err
    assert f"serving ocr at {served[0]}" in err and served[0].startswith("http://127.0.0.1:")


def test_a_busy_port_is_a_clear_error(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        engine = Closing(lambda image, prompt: "ok")
        assert run_serve(parse("--port", str(port), "-q"), engine=engine) == 1
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err and engine.closed


def test_a_failing_warm_up_is_reported_before_serving(capsys):
    from deepseek_ocr2_loaders.errors import ModelLoadError

    def broken(image, prompt):
        raise ModelLoadError("no such model")

    assert run_serve(parse("--port", "0", "-q"), engine=Closing(broken)) == 1
    assert "error: no such model" in capsys.readouterr().err
