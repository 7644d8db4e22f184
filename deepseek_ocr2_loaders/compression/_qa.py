"""Reading page citations back out of an answer."""

from __future__ import annotations

import re

__all__ = ["answer_pages"]

_CITATION = re.compile(r"\[pp?\.\s*(\d+(?:\s*[,;]\s*(?:pp?\.\s*)?\d+)*)\]", re.IGNORECASE)


def answer_pages(answer_text: str) -> tuple[int, ...]:
    """1-based pages cited in ``answer_text`` as ``[p. N]`` (or ``[pp. N, M]``), first citation first.

    The context asks the model to cite this way, so the cited pages are the evidence a
    caller can show or check; duplicates are dropped.

    Examples:
        >>> answer_pages("It was 7 L [p. 41], see also [p. 3] and [pp. 41, 42].")
        (41, 3, 42)
    """
    pages: dict[int, None] = {}
    for match in _CITATION.finditer(answer_text):
        for number in re.findall(r"\d+", match.group(1)):
            pages.setdefault(int(number), None)
    return tuple(pages)
