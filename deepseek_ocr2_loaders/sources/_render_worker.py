"""The render worker: a child process that opens documents and renders the pages it is sent.

Started by :class:`~deepseek_ocr2_loaders.sources._render_pool.RenderPool` with
``python -c``, never by ``multiprocessing``, so the caller's ``__main__`` is not re-imported
and no torch/CUDA state is forked. It keeps the last document open, so a run of pages of
one file opens it once. Ctrl-C is left to the parent, which stops the workers itself.

Test hook: ``DEEPSEEK_OCR2_TEST_RENDER_FAULTS`` (JSON ``[["hang" | "segfault", file_name,
page], ...]``, see :func:`~deepseek_ocr2_loaders.settings.render_faults`) makes the worker
sleep for ever or crash with a real SIGSEGV on that page, so tests drive the real pool.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import IO, Any

from ..settings import render_faults
from . import open_source
from ._base import DocumentSource, SourcePage
from ._render_wire import encode_error, receive, send

__all__ = ["main"]


def main() -> None:
    """Serve render requests from stdin until the parent closes it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints from native code go to stderr, never into the channel
    faults = {(name, page): fault for fault, name, page in json.loads(render_faults() or "[]")}
    inbox: IO[bytes] = sys.stdin.buffer
    opened: tuple[int, DocumentSource] | None = None
    send(channel, {"ready": os.getpid()})
    while (message := receive(inbox)) is not None:
        task, data = message
        try:
            if opened is None or opened[0] != task["key"]:
                if opened is not None:
                    opened[1].close()
                opened = None
                opened = (task["key"], _open(task, data))
            _inject(faults.get((Path(task["name"]).name, task["index"])))
            page = opened[1].load_page(task["index"])
        except Exception as exc:  # reported as that page's typed error; the worker goes on
            send(channel, encode_error(exc))
        else:
            send(channel, _page_header(page), page.image.tobytes())


def _open(task: dict[str, Any], data: bytes) -> DocumentSource:
    source = Path(task["path"]) if task["path"] is not None else data
    return open_source(source, password=task["password"], dpi=task["dpi"], name=task["name"])


def _page_header(page: SourcePage) -> dict[str, Any]:
    return {
        "label": page.label,
        "size": page.image.size,
        "width": page.width,
        "height": page.height,
        "unit": page.unit,
        "text": page.text,
        "recovered": page.recovered,
    }


def _inject(fault: str | None) -> None:
    if fault == "hang":
        while True:
            time.sleep(3600)
    if fault == "segfault":
        ctypes.string_at(0)  # a real SIGSEGV in native code, as a crashing decoder would


if __name__ == "__main__":
    main()
