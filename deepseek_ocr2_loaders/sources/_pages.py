"""Page selections: ``"1-3,7"`` as a print dialog reads it, or 0-based indices from code.

Strings are what people type (CLI flags, config files), so they are 1-based and inclusive;
integers come from code, so they are 0-based like every other index in the package.
"""

from __future__ import annotations

import logging
import operator
import re
import reprlib
from collections.abc import Iterable

from ..errors import PageRangeError

__all__ = ["parse_page_spec"]

logger = logging.getLogger(__name__)

_PART = re.compile(r"\s*([0-9]*)\s*(-?)\s*([0-9]*)\s*")


def parse_page_spec(
    spec: str | Iterable[int] | None, total_pages: int, *, source: str | None = None
) -> list[int] | None:
    """Turn a page selection into sorted, unique 0-based page indices.

    Args:
        spec: ``None`` for all pages; a string of 1-based inclusive pages and ranges
            separated by commas (``"1-3, 7"``, ``"5-"`` to the end, ``"-2"`` from the
            start); or an iterable of 0-based indices.
        total_pages: The page count of the document the selection applies to.
        source: The document name, for the error.

    Returns:
        ``None`` when ``spec`` is ``None``, else a sorted list of distinct 0-based indices.

    Raises:
        PageRangeError: The spec is malformed, empty, has a zero, a reversed range, or a page
            the document lacks. The message names the spec and the page count.

    Examples:
        >>> parse_page_spec("1-3, 7", 10)
        [0, 1, 2, 6]
        >>> parse_page_spec("9-", 10)
        [8, 9]
        >>> parse_page_spec([4, 0, 4], 10)
        [0, 4]
    """
    if spec is None:
        return None
    if isinstance(spec, str):
        indices = _parse_string(spec, total_pages, source)
    elif isinstance(spec, (bytes, bytearray)) or not isinstance(spec, Iterable):
        raise _error(spec, total_pages, f"expected a string or 0-based ints, got {type(spec).__name__}", source)
    else:
        indices = _check_indices(spec, total_pages, source)
    if not indices:
        raise _error(spec, total_pages, "it selects no pages", source)
    return sorted(set(indices))


def _parse_string(spec: str, total: int, source: str | None) -> list[int]:
    """Parse ``"1-3,7,9-"`` (1-based, inclusive) into 0-based indices."""
    indices: list[int] = []
    for part in spec.split(","):
        match = _PART.fullmatch(part)
        if match is None or not (match[1] or match[3]):
            raise _error(spec, total, f"cannot read {part.strip()!r} as a page or a range like 2-5", source)
        first = int(match[1]) if match[1] else 1
        last = (int(match[3]) if match[3] else total) if match[2] else first
        if first == 0 or last == 0:
            raise _error(spec, total, "pages are numbered from 1", source)
        if max(first, last) > total:
            raise _error(spec, total, f"page {max(first, last)} is past the last page", source)
        if first > last:
            raise _error(spec, total, f"the range {part.strip()!r} is reversed", source)
        indices.extend(range(first - 1, last))
    return indices


def _check_indices(spec: Iterable[int], total: int, source: str | None) -> list[int]:
    """Check 0-based indices: ints (not bools) in ``range(total)``."""
    indices: list[int] = []
    for item in spec:
        if isinstance(item, bool):
            raise _error(spec, total, f"{item!r} is not a page index", source)
        try:
            index = operator.index(item)
        except TypeError:
            raise _error(spec, total, f"{item!r} is not an integer page index", source) from None
        if not 0 <= index < total:
            raise _error(spec, total, f"index {index} is out of range (indices are 0-based)", source)
        indices.append(index)
    return indices


def _error(spec: object, total: int, why: str, source: str | None) -> PageRangeError:
    shown = repr(spec) if isinstance(spec, str) else reprlib.repr(spec)
    pages = "1 page" if total == 1 else f"{total} pages"
    return PageRangeError(f"invalid page selection {shown}: {why}; the document has {pages}", source=source)
