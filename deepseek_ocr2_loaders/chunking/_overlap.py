"""Pick the overlap: the end of a chunk's last prose, in whole sentences if possible, else whole words."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ._units import sentence_spans, word_spans

__all__ = ["overlap_tail"]


def overlap_tail(text: str, budget: int, count: Callable[[str], int]) -> str:
    """The longest suffix of ``text`` of at most ``budget`` tokens that starts at a sentence, else a word.

    Args:
        text: The prose the previous chunk ended with.
        budget: Most tokens the suffix may have.
        count: Token counter.

    Returns:
        The suffix (stripped), or ``""`` when not even the last word fits.
    """
    text = text.strip()
    if budget <= 0 or not text:
        return ""
    if count(text) <= budget:
        return text
    for spans in (sentence_spans(text), word_spans(text)):
        tail = _longest_suffix(text, [start for start, _ in spans[1:]], budget, count)
        if tail:
            return tail
    return ""


def _longest_suffix(text: str, starts: Sequence[int], budget: int, count: Callable[[str], int]) -> str:
    """``text[starts[k]:]`` for the smallest ``k`` that fits, by bisection (shorter suffixes count less)."""
    low, high = 0, len(starts)
    while low < high:
        middle = (low + high) // 2
        if count(text[starts[middle] :]) <= budget:
            high = middle
        else:
            low = middle + 1
    return text[starts[low] :].strip() if low < len(starts) else ""
