"""Find the loop at the end of a model output that ran out of tokens, from its text alone.

Engines differ in what loop defence they have (a remote server may have none, and an
n-gram ban turns exact loops into perturbed ones), so the pipeline also judges every
output that hit the token limit by its text: a page whose tail loops gets the same retry
and text-layer fallback as one the engine stopped. The text is read as units (words,
numbers, punctuation, grounding tags); table tags, pipes and box lists are not content, so
blank forms never look like loops and blocks repeating while their coordinates advance
repeat exactly. Numbers stay content: a long numeric table is not a loop. A tail loops when:

* exact: its last units repeat with a period ``p <= max_period`` over ``max(min_span, 2p)``;
* stale: fewer than ``min_distinct`` of the 4-grams of its last ``window`` units are distinct;
* overrun: a ``<|det|>`` box list is still open after ``max_box_list`` characters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["TextLoopRule", "find_loop"]

_UNIT_RE = re.compile(r"</?(?:table|thead|tbody|tr|td|th)\b[^<>]*>|<\|/?(?:ref|det)\|>|\d+|[^\W\d]+|[^\w\s]")
_STRUCTURE_RE = re.compile(r"</?(?:table|thead|tbody|tr|td|th)\b[^<>]*>|\|")


@dataclass(frozen=True)
class TextLoopRule:
    """Thresholds of :func:`find_loop`, in units (about one model token each)."""

    min_span: int = 192
    max_period: int = 256
    window: int = 384
    min_distinct: float = 0.25
    max_box_list: int = 2000


def find_loop(text: str, rule: TextLoopRule | None = None) -> int | None:
    """Where the looping tail of ``text`` begins (a character offset), or None when it does not loop.

    Examples:
        >>> find_loop("Intro. " + "Stuck again and again. " * 100) is not None
        True
        >>> find_loop("<table>" + "<tr><td></td><td></td></tr>" * 300 + "</table>") is None
        True
    """
    rule = rule or TextLoopRule()
    units = _content_units(text)
    words = [unit for unit, _ in units]
    tail = _periodic_tail(words, rule.min_span, rule.max_period) or _stale_tail(words, rule.window, rule.min_distinct)
    if tail:
        return units[len(units) - tail][1]
    opened = text.rfind("<|det|>")
    if opened > text.rfind("<|/det|>") and len(text) - opened > rule.max_box_list:
        return opened
    return None


def _content_units(text: str) -> list[tuple[str, int]]:
    """The content units of ``text`` with their offsets: no table tags, pipes or box lists."""
    units: list[tuple[str, int]] = []
    in_box = False
    for match in _UNIT_RE.finditer(text):
        unit = match.group(0)
        if unit in ("<|det|>", "<|/det|>"):
            in_box = unit == "<|det|>"
        elif not in_box and not _STRUCTURE_RE.fullmatch(unit):
            units.append((unit, match.start()))
    return units


def _periodic_tail(values: Sequence[str], min_span: int, max_period: int) -> int:
    """Units in the repeated tail, back to where the repetition began; 0 if there is none."""
    for period in range(1, max_period + 1):
        span = max(min_span, 2 * period)
        if span + period > len(values):
            return 0
        if values[-span:] == values[-span - period : -period]:
            start = len(values) - span - period
            while start > 0 and values[start - 1] == values[start - 1 + period]:
                start -= 1
            return len(values) - start
    return 0


def _stale_tail(values: Sequence[str], window: int, min_distinct: float) -> int:
    """Units in the stale tail, from the first 4-gram that recurs in the last ``window``; 0 if not stale."""
    if len(values) < window:
        return 0
    grams = [tuple(values[i : i + 4]) for i in range(len(values) - 3)]
    recent = grams[len(values) - window :]
    if len(set(recent)) >= min_distinct * len(recent):
        return 0
    counts: dict[tuple[str, ...], int] = {}
    for gram in recent:
        counts[gram] = counts.get(gram, 0) + 1
    looping = {gram for gram, count in counts.items() if count > 1}
    return len(values) - next(i for i, gram in enumerate(grams) if gram in looping)
