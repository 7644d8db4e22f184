"""Read-ahead for callers that ask for one file at a time, in folder order.

``SimpleDirectoryReader`` asks its reader file by file in name order, LangChain's ``GenericLoader``
hands its parser one blob at a time in the order ``FileSystemBlobLoader`` globs them (the
directory's own order). Such a caller waits for each file before it names the next, so the GPU
would see one page at a time. After two calls on neighbouring files of one folder (neighbours in
that order), the next files of that folder are read together in the background, and a later call
for one of them takes its records instead of reading it again. They are read in chunks of a quarter
of the engine's batch, up to twice the batch ahead of the caller: a chunk's records come when its
longest page is done, and the chunks after it keep the engine's slots full meanwhile (one chunk of
a whole batch would leave them emptying while its longest page finishes). A file changed since
(size or modification time) is read again; a read-ahead that fails costs nothing but the time: the
file is then read as if it had not been read ahead. A caller that stops early leaves at most
``2 * files`` files read for nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from itertools import islice
from pathlib import Path
from typing import Any, Literal

from ..sources._inputs import SUFFIXES
from ._modes import DocumentRecord

__all__ = ["ReadAhead"]

logger = logging.getLogger(__name__)

Stamp = tuple[int, int]  # (size, mtime_ns)
FolderOrder = Literal["name", "directory"]
"""The order a caller walks a folder in: by name, or as the directory lists it (``os.scandir``, pathlib's glob)."""


class ReadAhead:
    """One file's records on request, the folder's next files read meanwhile in one batch.

    Args:
        load: Records of a list of files, in order (the loader's own reading, options included).
        files: The engine's batch size; twice as many files are read ahead at most.
        order: The order the caller asks for a folder's files in; the files after the one asked
            for in this order are read ahead.
    """

    def __init__(
        self, load: Callable[[list[Path]], Iterator[DocumentRecord]], files: int, order: FolderOrder = "name"
    ) -> None:
        self._load = load
        self._files = max(1, files)
        self._order = order
        self._ahead: dict[Path, tuple[Stamp, Future[list[DocumentRecord]]]] = {}
        self._last: Path | None = None
        self._folder: Path | None = None  # the folder listed in _listing and _position
        self._listing: list[Path] = []
        self._position: dict[Path, int] = {}
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle to an empty read-ahead (a worker process reads its own files)."""
        return (ReadAhead, (self._load, self._files, self._order))

    def records(self, path: Path) -> Iterator[DocumentRecord]:
        """The records of ``path``: read ahead already, or read now (and the next files started)."""
        with self._lock:
            ahead = self._ahead.pop(path, None)
            here = self._rank(path)  # lists path's folder: the files ahead in it rank in that listing
            for file in [f for f in self._ahead if f.parent != path.parent or self._position.get(f, -1) < here]:
                del self._ahead[file]  # the caller went elsewhere, or skipped it: not asked for any more
            sequential = self._last is not None and self._after(self._last, 1) == [path]
            self._last = path
            if sequential or ahead is not None:
                self._extend(path)
        if ahead is not None and ahead[0] == _stamp(path):
            try:
                yield from ahead[1].result()
                return
            except Exception as exc:  # noqa: BLE001 - read it again below, where its error belongs
                logger.debug("read-ahead of %s failed (%s): reading it now", path, exc)
        yield from self._load([path])

    def _extend(self, path: Path) -> None:
        """Start reading the files after ``path`` (and after those already ahead), a chunk per thread."""
        chunk = max(1, self._files // 4)
        while 2 * self._files - len(self._ahead) >= chunk:
            upcoming = self._after(max([path, *self._ahead], key=self._rank), chunk)
            if not upcoming:
                return
            futures: dict[Path, Future[list[DocumentRecord]]] = {file: Future() for file in upcoming}
            for file, future in futures.items():
                self._ahead[file] = (_stamp(file), future)
            # a daemon: a caller that stops early (or exits) never waits for pages it did not ask for
            threading.Thread(target=self._read, args=(futures,), name="ocr-read-ahead", daemon=True).start()

    def _after(self, path: Path, count: int) -> list[Path]:
        """The ``count`` files after ``path`` in its folder with its suffix, in the caller's order."""
        index = self._rank(path)
        if index < 0 or count <= 0:
            return []
        suffix = path.suffix.lower()
        later = (self._listing[i] for i in range(index + 1, len(self._listing)))
        return list(islice((file for file in later if file.suffix.lower() == suffix), count))

    def _rank(self, path: Path) -> int:
        """Where ``path`` stands among its folder's readable files (-1: not one of them).

        The folder is listed once, and again only when it is another folder or lacks ``path``,
        so a caller going through a large folder file by file does not list it per file.
        """
        if self._folder != path.parent or path not in self._position:
            try:
                entries = list(path.parent.iterdir())  # the directory's order, as os.scandir and glob
            except OSError:
                entries = []
            if self._order == "name":
                entries.sort()
            self._listing = [p for p in entries if p.suffix.lower() in SUFFIXES and p.is_file()]
            self._position = {file: index for index, file in enumerate(self._listing)}
            self._folder = path.parent
        return self._position.get(path, -1)

    def _read(self, futures: dict[Path, Future[list[DocumentRecord]]]) -> None:
        """One batch over the files; each file's future is set when its last record is in."""
        by_file: dict[Path, list[DocumentRecord]] = {file: [] for file in futures}
        current: Path | None = None
        try:
            for record in self._load(list(futures)):
                file = Path(str(record.metadata.get("source", "")))
                if file != current and current in futures:
                    futures[current].set_result(by_file[current])
                current = file
                by_file.setdefault(file, []).append(record)
            if current in futures:
                futures[current].set_result(by_file[current])
        except Exception as exc:  # noqa: BLE001 - the files not finished are read again on request
            for future in futures.values():
                if not future.done():
                    future.set_exception(exc)
        for future in futures.values():  # a file that gave no record (skipped): read it on request
            if not future.done():
                future.set_exception(LookupError("no records read ahead"))


def _stamp(path: Path) -> Stamp:
    try:
        info = path.stat()
    except OSError:
        return (-1, -1)
    return (info.st_size, info.st_mtime_ns)
