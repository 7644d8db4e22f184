"""Settings from the environment, and open_cache's accepted forms."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from deepseek_ocr2_loaders.errors import ConfigError
from deepseek_ocr2_loaders.pipeline._cache import PageCache, default_cache, open_cache
from deepseek_ocr2_loaders.settings import Settings, get_settings


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("DEEPSEEK_OCR2_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def test_default_is_under_home_dot_cache(clean_env, tmp_path):
    assert get_settings().cache_dir == tmp_path / "home" / ".cache" / "deepseek-ocr2-loaders"


def test_xdg_cache_home_is_used_when_absolute(clean_env, tmp_path):
    clean_env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert get_settings().cache_dir == tmp_path / "xdg" / "deepseek-ocr2-loaders"
    clean_env.setenv("XDG_CACHE_HOME", "relative/xdg")  # invalid per the XDG spec: ignored
    assert get_settings().cache_dir == tmp_path / "home" / ".cache" / "deepseek-ocr2-loaders"
    clean_env.setenv("XDG_CACHE_HOME", "")
    assert get_settings().cache_dir == tmp_path / "home" / ".cache" / "deepseek-ocr2-loaders"


def test_explicit_variable_wins_and_is_read_at_call_time(clean_env, tmp_path):
    clean_env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    clean_env.setenv("DEEPSEEK_OCR2_CACHE_DIR", str(tmp_path / "mine"))
    assert get_settings().cache_dir == tmp_path / "mine"
    clean_env.setenv("DEEPSEEK_OCR2_CACHE_DIR", "~/ocr")
    assert get_settings().cache_dir == tmp_path / "home" / "ocr"
    clean_env.setenv("DEEPSEEK_OCR2_CACHE_DIR", "")  # empty means unset
    assert get_settings().cache_dir == tmp_path / "xdg" / "deepseek-ocr2-loaders"


def test_unknown_prefixed_variables_are_ignored_and_settings_are_frozen(clean_env, tmp_path):
    clean_env.setenv("DEEPSEEK_OCR2_CACH_DIR", "/typo")
    settings = get_settings()
    assert settings == Settings(cache_dir=tmp_path / "home" / ".cache" / "deepseek-ocr2-loaders")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.cache_dir = Path("/elsewhere")  # type: ignore[misc]
    assert get_settings({"DEEPSEEK_OCR2_CACHE_DIR": "/given"}).cache_dir == Path("/given")


def test_default_cache_and_open_cache(clean_env, tmp_path):
    clean_env.setenv("DEEPSEEK_OCR2_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache().path == tmp_path / "c" / "pages.sqlite3"
    for flag in (True, None):
        cache = open_cache(flag)
        assert isinstance(cache, PageCache) and cache.path == tmp_path / "c" / "pages.sqlite3"
    assert not (tmp_path / "c").exists()  # opening is lazy
    assert open_cache(False) is None
    assert open_cache(str(tmp_path / "x.db")).path == tmp_path / "x.db"  # type: ignore[union-attr]
    assert open_cache(tmp_path / "y.db").path == tmp_path / "y.db"  # type: ignore[union-attr]
    mine = PageCache(tmp_path / "z.db")
    assert open_cache(mine) is mine


@pytest.mark.parametrize("bad", [0, 1, "", 3.5, b"/bytes/path", ["a"]])
def test_open_cache_rejects_anything_else(bad):
    with pytest.raises(ConfigError, match="cache="):
        open_cache(bad)
