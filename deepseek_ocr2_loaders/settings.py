"""Settings read from the environment: the one place ``DEEPSEEK_OCR2_*`` variables are read.

Keeping every ``os.environ`` lookup here means a user can see in one file what the package
reacts to, and tests can ``monkeypatch`` the environment and call :func:`get_settings` again:
nothing is read at import time and nothing is cached.

Variables (``DEEPSEEK_OCR2_`` prefix; any other variable with that prefix is ignored):

``DEEPSEEK_OCR2_CACHE_DIR``
    Folder of the page cache. Default: ``$XDG_CACHE_HOME/deepseek-ocr2-loaders``, else
    ``~/.cache/deepseek-ocr2-loaders``.
``DEEPSEEK_OCR2_TEST_RENDER_FAULTS``
    Tests only: pages on which the render workers hang or crash (see :func:`render_faults`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

__all__ = ["ENV_PREFIX", "KNOWN_VARIABLES", "Settings", "get_settings", "render_faults"]

logger = logging.getLogger(__name__)

ENV_PREFIX = "DEEPSEEK_OCR2_"
"""Prefix of every environment variable this package reads."""

APP_DIR_NAME = "deepseek-ocr2-loaders"
"""Folder name used under the user's cache directory."""

KNOWN_VARIABLES = (f"{ENV_PREFIX}CACHE_DIR", f"{ENV_PREFIX}TEST_RENDER_FAULTS")
"""The ``DEEPSEEK_OCR2_*`` variables that have a meaning; others are ignored."""


@dataclass(frozen=True)
class Settings:
    """Process-wide settings, resolved from the environment when :func:`get_settings` runs.

    Frozen so that a settings object handed to a long run cannot drift underneath it.

    Attributes:
        cache_dir: Folder holding the page cache (``DEEPSEEK_OCR2_CACHE_DIR``, else the XDG cache folder).
    """

    cache_dir: Path


def _non_empty(environ: Mapping[str, str], name: str) -> str | None:
    """Return a variable's value, treating an empty string as unset (as shells often export it)."""
    value = environ.get(name, "").strip()
    return value or None


def _default_cache_dir(environ: Mapping[str, str]) -> Path:
    """Follow the XDG base-directory spec: a relative ``XDG_CACHE_HOME`` is invalid and ignored."""
    xdg = _non_empty(environ, "XDG_CACHE_HOME")
    if xdg is not None and Path(xdg).is_absolute():
        return Path(xdg) / APP_DIR_NAME
    try:
        return Path("~/.cache").expanduser() / APP_DIR_NAME
    except RuntimeError as exc:  # no HOME and no passwd entry: say how to get out of it
        raise ConfigError(
            f"cannot find a home directory for the page cache; set {ENV_PREFIX}CACHE_DIR or XDG_CACHE_HOME"
        ) from exc


def get_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from the environment now.

    Not cached on purpose: the environment is read on every call, so a test (or a notebook)
    that changes a variable sees the change on the next call.

    Args:
        environ: The mapping to read instead of ``os.environ`` (for tests and embedding).

    Returns:
        A frozen :class:`Settings`.

    Raises:
        ConfigError: No cache folder can be derived (no variable set and no home directory).
    """
    env = os.environ if environ is None else environ
    unknown = sorted(k for k in env if k.startswith(ENV_PREFIX) and k not in KNOWN_VARIABLES)
    if unknown:
        logger.debug("ignoring unknown environment variables: %s", ", ".join(unknown))

    explicit = _non_empty(env, f"{ENV_PREFIX}CACHE_DIR")
    if explicit is not None:
        try:
            cache_dir = Path(explicit).expanduser()
        except RuntimeError as exc:
            raise ConfigError(f"{ENV_PREFIX}CACHE_DIR={explicit!r}: cannot expand '~'") from exc
    else:
        cache_dir = _default_cache_dir(env)
    return Settings(cache_dir=cache_dir)


def render_faults(environ: Mapping[str, str] | None = None) -> str | None:
    """The render workers' fault-injection list, for tests of the pool's deadline and crash handling.

    A JSON list of ``[fault, file_name, page]``, ``fault`` being ``"hang"`` (sleep past the
    deadline) or ``"segfault"`` (a real SIGSEGV), ``page`` 0-based. Kept apart from
    :class:`Settings` so a worker reads it without resolving the cache folder.
    """
    return _non_empty(os.environ if environ is None else environ, f"{ENV_PREFIX}TEST_RENDER_FAULTS")
