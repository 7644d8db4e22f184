"""PageCache on real SQLite files: round trips, JSON-only storage, WAL, errors, threads."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path

import pytest

from deepseek_ocr2_loaders.errors import CacheError
from deepseek_ocr2_loaders.pipeline._cache import SCHEMA_VERSION, PageCache

VALUE = {"text": "Größe — 東京 ∑ 🙂", "status": "ok", "blocks": [{"bbox": [0.5, 1, 2, 3]}], "n": None}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "dir" / "pages.sqlite3"


def raw_rows(path: Path) -> list[tuple[str, object, float]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT key, value, created FROM pages ORDER BY key").fetchall()
    finally:
        conn.close()


def test_nothing_is_created_until_first_use(db):
    cache = PageCache(db)
    assert cache.path == db and not db.parent.exists()
    assert cache.get("missing") is None
    assert db.exists()
    cache.close()


def test_round_trip_len_clear_and_reopen(db):
    with PageCache(db) as cache:
        assert len(cache) == 0 and bool(cache)  # an empty cache is still truthy
        cache.put("a", VALUE)
        cache.put("b", {"text": "b"})
        cache.put("b", {"text": "b2"})  # replaces
        assert cache.get("a") == VALUE
        assert cache.get("b") == {"text": "b2"}
        assert cache.get("zzz") is None
        assert len(cache) == 2
    with PageCache(db) as again:
        assert again.get("a") == VALUE
        assert again.get_many(["a", "zzz", "b", "a"]) == {"a": VALUE, "b": {"text": "b2"}}
        again.clear()
        assert len(again) == 0 and again.get("a") is None


def test_get_many_chunks_past_the_parameter_limit(db):
    with PageCache(db) as cache:
        for i in range(1203):
            cache.put(f"k{i}", {"i": i})
        keys = [f"k{i}" for i in range(1300)]
        found = cache.get_many(keys)
        assert len(found) == 1203 and found["k1202"] == {"i": 1202}
        assert cache.get_many([]) == {}


def test_a_closed_cache_reopens_on_use(db):
    cache = PageCache(db)
    cache.put("a", {"x": 1})
    cache.close()
    cache.close()
    assert cache.get("a") == {"x": 1}
    cache.close()


def test_values_are_stored_as_json_text_never_pickle(db):
    with PageCache(db) as cache:
        cache.put("k", VALUE)
    [(key, value, created)] = raw_rows(db)
    assert key == "k" and isinstance(value, str) and isinstance(created, float)
    assert json.loads(value) == VALUE
    assert "東京" in value  # readable UTF-8, not escapes
    raw = db.read_bytes() + (
        db.with_name(db.name + "-wal").read_bytes() if db.with_name(db.name + "-wal").exists() else b""
    )
    assert b"\x80\x04\x95" not in raw and b"\x80\x05\x95" not in raw  # pickle protocol 4/5 headers


@pytest.mark.parametrize("bad", [{"when": object()}, {"path": Path("/x")}, {"s": {1, 2}}])
def test_non_json_value_raises_cache_error_naming_the_key(db, bad):
    with PageCache(db) as cache:
        with pytest.raises(CacheError, match="key-42") as info:
            cache.put("key-42", bad)
        assert str(db) in str(info.value)
        assert len(cache) == 0


def test_wal_mode_and_schema(db):
    with PageCache(db) as cache:
        cache.put("a", {"x": 1})
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            assert meta == {"schema_version": str(SCHEMA_VERSION)}
        finally:
            conn.close()


def test_a_file_that_is_not_a_database_raises_cache_error(tmp_path):
    path = tmp_path / "pages.sqlite3"
    path.write_bytes(bytes(range(256)) * 64)
    cache = PageCache(path)
    with pytest.raises(CacheError, match="delete the file or pass another cache path") as info:
        cache.get("a")
    assert str(path) in str(info.value)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)
    cache.close()


def test_a_folder_as_path_raises_cache_error(tmp_path):
    with PageCache(tmp_path) as cache, pytest.raises(CacheError, match=str(tmp_path)):
        cache.put("a", {})


def test_a_newer_schema_is_refused(db):
    with PageCache(db) as cache:
        cache.put("a", {"x": 1})
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    conn.commit()
    conn.close()
    with PageCache(db) as newer, pytest.raises(CacheError, match="schema version"):
        newer.get("a")


def test_a_corrupt_json_value_is_a_miss_with_a_warning(db, caplog):
    with PageCache(db) as cache:
        cache.put("good", {"x": 1})
        cache.put("bad", {"x": 2})
        cache.put("list", {"x": 3})
    conn = sqlite3.connect(db)
    conn.execute("UPDATE pages SET value = '{\"x\": 2' WHERE key = 'bad'")
    conn.execute("UPDATE pages SET value = '[1, 2]' WHERE key = 'list'")
    conn.commit()
    conn.close()
    with PageCache(db) as cache, caplog.at_level(logging.WARNING, logger="deepseek_ocr2_loaders.pipeline._cache"):
        assert cache.get("bad") is None
        assert cache.get_many(["good", "bad", "list"]) == {"good": {"x": 1}}
        cache.put("bad", {"x": 2})  # recomputed result overwrites it
        assert cache.get("bad") == {"x": 2}
    messages = [r.getMessage() for r in caplog.records]
    assert sum("bad" in m for m in messages) == 2 and any("list" in m for m in messages)


def test_eight_threads_share_one_cache(db):
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    with PageCache(db) as cache:

        def work(t: int) -> None:
            try:
                barrier.wait()
                for i in range(50):
                    cache.put(f"t{t}-{i}", {"t": t, "i": i})
                    assert cache.get(f"t{t}-{i}") == {"t": t, "i": i}
                    cache.get_many([f"t{(t + 1) % 8}-{j}" for j in range(i)])
                    len(cache)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(cache) == 400
        assert cache.get_many([f"t{t}-{i}" for t in range(8) for i in range(50)]).keys() == {
            f"t{t}-{i}" for t in range(8) for i in range(50)
        }
