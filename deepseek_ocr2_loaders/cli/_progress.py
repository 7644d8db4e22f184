"""Progress of a ``convert`` run: pages done of the total, pages/s, ETA, the file, failures.

On a terminal it is a tqdm bar; off one (a log file, CI, ``nohup``) a plain line every
``every`` seconds, from a timer thread, so a run that waits on a long batch is never silent.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from ..types import PageResult

__all__ = ["Progress"]


class Progress:
    """Counts the pages written and shows them; silent when ``quiet``."""

    def __init__(self, total: int, *, quiet: bool, every: float, first_file: str, stream: TextIO | None = None) -> None:
        self.total, self.done, self.failed, self.file = total, 0, 0, first_file
        self._stream = stream or sys.stderr
        self._started = time.monotonic()
        self._bar = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if quiet:
            return
        if self._stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="page", desc="OCR", file=self._stream, dynamic_ncols=True)
            self._bar.set_postfix_str(self._where())
        else:
            self._thread = threading.Thread(target=self._every, args=(every,), name="ocr-progress", daemon=True)
            self._thread.start()

    def page(self, page: PageResult) -> None:
        """One page written."""
        self.done += 1
        self.failed += page.status.value == "failed"
        self.file = page.file_name
        if self._bar is not None:
            self._bar.set_postfix_str(self._where(), refresh=False)
            self._bar.update(1)

    def line(self) -> str:
        """``12/40 pages (30%), 0.41 pages/s, ETA 1m08s, reading a.pdf, 1 failed``."""
        elapsed = time.monotonic() - self._started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        eta = _duration((self.total - self.done) / rate) if rate > 0 and self.total >= self.done else "unknown"
        return f"{self.done}/{self.total} pages{share}, {rate:.2f} pages/s, ETA {eta}, {self._where()}"

    def _where(self) -> str:
        return f"reading {self.file}, {self.failed} failed"

    def _every(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            print(f"progress: {self.line()}", file=self._stream, flush=True)

    def finish(self) -> None:
        """The run is complete: off a terminal, its final count (the bar shows it already)."""
        self.close()
        if self._thread is not None:
            elapsed = _duration(time.monotonic() - self._started)
            print(f"done: {self.done}/{self.total} pages in {elapsed}, {self.failed} failed", file=self._stream)

    def close(self) -> None:
        """Stop the timer (or the bar); twice is fine."""
        self._stop.set()
        if self._bar is not None:
            self._bar.close()
        if self._thread is not None:
            self._thread.join()


def _duration(seconds: float) -> str:
    """``1h02m``, ``3m08s`` or ``12s``."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"
