"""A content-addressed page cache in SQLite, safe to kill and to share between processes.

A run over thousands of PDFs that dies (``kill -9``, OOM) must redo only unfinished pages.
Results are JSON text (never pickle: a cache file must not be able to run code) under
:func:`page_key`; SQLite in WAL mode commits each put atomically and lets processes share a file.

Threads share one connection (``check_same_thread=False``) behind a lock rather than one per
thread: ``asyncio.to_thread`` workers would each leave a connection only they may close, and a
cache call takes milliseconds next to seconds of OCR, so serialising them costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .._version import __version__
from ..errors import CacheError, ConfigError
from ..settings import get_settings

__all__ = ["SCHEMA_VERSION", "PageCache", "default_cache", "open_cache", "page_key"]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
"""Version of the tables; a file written with a newer one is refused rather than misread."""

_KEY_FORMAT = 1  # bump when page_key's payload changes shape, so old entries stop matching
_IN_CHUNK = 500  # SQLite's default limit on host parameters was 999 before 3.32


def page_key(
    *,
    file_sha256: str,
    page: int,
    model: str,
    revision: str | None,
    prompt: str,
    dpi: int,
    options: Mapping[str, object] | None = None,
) -> str:
    """Hash everything that decides a page's OCR output into a 64-hex-digit cache key.

    The package version is in the key, so an upgrade (new parsing, new defaults) never serves
    results of older code. ``file_sha256`` is case-insensitive; ``page`` is 0-based; ``options``
    are the engine options that change the output (``None`` and ``{}`` give one key).

    Raises:
        CacheError: An option value is not a JSON value, so it cannot be hashed stably.
    """
    payload = {
        "key_format": _KEY_FORMAT,
        "version": __version__,
        "file_sha256": file_sha256.lower(),
        "page": page,
        "model": model,
        "revision": revision,
        "prompt": prompt,
        "dpi": dpi,
        "options": dict(options or {}),
    }
    try:
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CacheError(f"cannot build a page cache key: engine options must be JSON values ({exc})") from exc
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class PageCache:
    """JSON page results in one SQLite file, keyed by :func:`page_key`.

    The file and its folder are created on first use, not in the constructor, so building a
    loader never touches the disk. A closed cache reopens on its next use.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._close_conn: weakref.finalize[Any, Any] | None = None
        self._pid = 0
        self._inherited: list[sqlite3.Connection] = []  # from a parent before fork(): never used nor closed

    def __repr__(self) -> str:
        return f"PageCache({str(self.path)!r})"

    def __bool__(self) -> bool:  # an empty cache is still a cache: `if cache:` must not test len()
        return True

    @contextmanager
    def _connection(self, action: str) -> Iterator[sqlite3.Connection]:
        """Yield the open connection; the one place SQLite and OS errors become CacheError."""
        with self._lock:
            try:
                yield self._connect()
            except sqlite3.Error as exc:
                hint = ""
                if type(exc) is sqlite3.DatabaseError:  # "file is not a database", "malformed"
                    hint = "; it is not a usable SQLite database: delete the file or pass another cache path"
                raise CacheError(f"cannot {action} page cache ({exc}){hint}", source=self.path) from exc
            except OSError as exc:
                raise CacheError(f"cannot {action} page cache ({exc})", source=self.path) from exc

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        if self._conn is not None:  # forked: SQLite forbids using or closing the parent's connection
            assert self._close_conn is not None
            self._close_conn.detach()
            self._inherited.append(self._conn)
            self._conn = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout=30000")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":  # e.g. some network filesystems
                logger.warning("page cache %s: WAL mode unavailable (journal_mode=%s)", self.path, mode)
            conn.execute("PRAGMA synchronous=NORMAL")
            _ensure_schema(conn, self.path)
        except BaseException:
            conn.close()
            raise
        self._conn, self._pid = conn, os.getpid()
        self._close_conn = weakref.finalize(self, conn.close)  # an unclosed cache closes when collected
        return conn

    def _decode(self, key: str, text: object) -> dict[str, Any] | None:
        """Parse a stored value; a corrupt one is a miss (logged), never a crash of a long run."""
        try:
            value = json.loads(text)  # type: ignore[arg-type]  # a foreign writer may have stored anything
        except (TypeError, ValueError) as exc:
            problem = str(exc)
        else:
            if isinstance(value, dict):
                return value
            problem = f"a JSON {type(value).__name__}, not an object"
        logger.warning("page cache %s: ignoring unreadable value for key %s (%s)", self.path, key, problem)
        return None

    def get(self, key: str) -> dict[str, Any] | None:
        """Return the value stored under ``key``, or ``None`` on a miss."""
        with self._connection("read") as conn:
            row = conn.execute("SELECT value FROM pages WHERE key = ?", (key,)).fetchone()
        return None if row is None else self._decode(key, row[0])

    def get_many(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Return the hits among ``keys`` (misses are absent) in one query per 500 keys."""
        unique = list(dict.fromkeys(keys))
        rows: list[tuple[str, object]] = []
        with self._connection("read") as conn:
            for start in range(0, len(unique), _IN_CHUNK):
                chunk = unique[start : start + _IN_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows += conn.execute(f"SELECT key, value FROM pages WHERE key IN ({marks})", chunk).fetchall()
        decoded = {key: self._decode(key, text) for key, text in rows}
        return {key: value for key, value in decoded.items() if value is not None}

    def put(self, key: str, value: Mapping[str, Any]) -> None:
        """Store ``value`` under ``key``, replacing any old one; committed when this returns.

        ``synchronous=NORMAL`` in WAL mode: a committed put survives the process being killed;
        only a power loss or OS crash may lose the last few puts (never corrupts the file).

        Raises:
            CacheError: ``value`` is not a JSON object, or the file cannot be written.
        """
        try:
            text = json.dumps(dict(value), ensure_ascii=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise CacheError(f"value for cache key {key} is not JSON-serialisable ({exc})", source=self.path) from exc
        with self._connection("write") as conn:
            conn.execute("INSERT OR REPLACE INTO pages(key, value, created) VALUES (?, ?, ?)", (key, text, time.time()))

    def __len__(self) -> int:
        with self._connection("read") as conn:
            return int(conn.execute("SELECT COUNT(*) FROM pages").fetchone()[0])

    def clear(self) -> None:
        """Delete every stored page (the schema stays)."""
        with self._connection("clear") as conn:
            conn.execute("DELETE FROM pages")

    def close(self) -> None:
        """Close the connection; safe to call twice, and the cache reopens if used again."""
        with self._lock:
            if self._close_conn is not None and self._pid == os.getpid():
                self._close_conn()
            self._conn, self._close_conn = None, None

    def __enter__(self) -> PageCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Create the tables if missing and refuse a newer schema, in one write transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        found = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        if not str(found).isdigit() or int(found) > SCHEMA_VERSION:
            message = f"page cache has schema version {found!r}, newer than {SCHEMA_VERSION}: upgrade the package"
            raise CacheError(f"{message} or pass another cache path", source=path)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS pages(key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def default_cache() -> PageCache:
    """Return the shared cache at ``<cache_dir>/pages.sqlite3`` (see :mod:`.settings`)."""
    return PageCache(get_settings().cache_dir / "pages.sqlite3")


def open_cache(cache: bool | str | os.PathLike[str] | PageCache | None) -> PageCache | None:
    """Turn a loader's ``cache=`` argument into a cache, or ``None`` for no caching.

    ``True``/``None`` -> :func:`default_cache`; ``False`` -> ``None``; a path -> a cache in that
    file; a :class:`PageCache` -> itself.

    Raises:
        ConfigError: ``cache`` is none of those (an int, an empty string...).
    """
    if cache is None or cache is True:
        return default_cache()
    if cache is False:
        return None
    if isinstance(cache, PageCache):
        return cache
    if isinstance(cache, (str, os.PathLike)) and os.fspath(cache):
        return PageCache(cache)
    raise ConfigError(f"cache= must be True, False, None, a file path or a PageCache, not {cache!r}")
