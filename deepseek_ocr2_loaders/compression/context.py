"""A question-answering prompt for a long document that always fits a token budget.

Two levels of detail: a map of the whole document (every page's compact-view summary,
tagged ``[p. N]``, so the model knows what is where and can cite it), then the full text of
the pages most relevant to the question, ranked by BM25, until the budget is spent. The
map is kept to about 40% of the budget by shortening every summary evenly, so no page
disappears from it while one line per page still fits.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..chunking.tokens import count_tokens
from ..errors import ConfigError
from .summaries import PageSummary

__all__ = [
    "INSTRUCTION",
    "MAP_SHARE",
    "MIN_PARTIAL_TOKENS",
    "QAContext",
    "Ranker",
    "build_context",
    "embedding_ranker",
    "rank_pages",
]

INSTRUCTION = "Answer the question from the document. Cite pages as [p. N]."
MAP_SHARE = 0.4
"""Share of the budget the document map may use before its summaries are shortened."""
MIN_PARTIAL_TOKENS = 50
"""A page's full text is cut to fit only when at least this many tokens remain."""

_WORD = re.compile(r"[a-z0-9]+")
_ELLIPSIS = " …"


@dataclass(frozen=True)
class QAContext:
    """The prompt for the downstream model and what went into it.

    Attributes:
        prompt: Instruction, document map, selected full pages, then the question.
        pages_used: 1-based pages whose full text (possibly cut) is in the prompt, by relevance.
        summary_pages: 1-based pages listed in the document map.
        token_count: ``count(prompt)``; never more than the budget.
    """

    prompt: str
    pages_used: tuple[int, ...]
    summary_pages: tuple[int, ...]
    token_count: int


def rank_pages(question: str, texts: Mapping[int, str], *, k1: float = 1.5, b: float = 0.75) -> list[tuple[int, float]]:
    """BM25 scores of each page's text for ``question``, best first, zero scores left out.

    Lexical retrieval needs no embedding model and finds exact figures and names (the
    usual targets of a question about a long document) reliably.
    """
    docs = {page: _WORD.findall(text.lower()) for page, text in texts.items()}
    if not docs:
        return []
    average = sum(len(words) for words in docs.values()) / len(docs) or 1.0
    frequency: Counter[str] = Counter()
    for words in docs.values():
        frequency.update(set(words))
    terms = set(_WORD.findall(question.lower()))
    scores = []
    for page, words in docs.items():
        counts = Counter(words)
        score = 0.0
        for term in terms & counts.keys():
            idf = math.log(1 + (len(docs) - frequency[term] + 0.5) / (frequency[term] + 0.5))
            tf = counts[term]
            score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(words) / average))
        if score > 0:
            scores.append((page, score))
    return sorted(scores, key=lambda item: (-item[1], item[0]))


Ranker = Callable[[str, Mapping[int, str]], list[tuple[int, float]]]
"""``(question, {page number: text}) -> [(page number, score)]``, best first."""


def embedding_ranker(
    embed_query: Callable[[str], Sequence[float]], embed_documents: Callable[[list[str]], Sequence[Sequence[float]]]
) -> Ranker:
    """A ranker by cosine similarity under the user's embedding model (any framework's)."""

    def rank(question: str, texts: Mapping[int, str]) -> list[tuple[int, float]]:
        numbers = list(texts)
        query = list(embed_query(question))
        vectors = embed_documents([texts[n] for n in numbers])
        scores = [(n, _cosine(query, list(vector))) for n, vector in zip(numbers, vectors, strict=True)]
        return sorted(scores, key=lambda item: (-item[1], item[0]))

    return rank


def _cosine(a: list[float], b: list[float]) -> float:
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / norm if norm else 0.0


def build_context(
    question: str,
    pages: Sequence[PageSummary],
    *,
    token_budget: int,
    full_texts: Mapping[int, str] | None = None,
    count: Callable[[str], int] = count_tokens,
    rank: Ranker | None = None,
) -> QAContext:
    """Pack a map of every page and the most relevant full pages under ``token_budget``.

    Args:
        question: The user's question.
        pages: Summaries of the document's pages (from :func:`summarize_pages`).
        token_budget: Most tokens the prompt may have under ``count``.
        full_texts: Full text per 1-based page number, overriding ``PageSummary.full_text``
            (for example OCR Markdown of scanned pages).
        count: The token counter of the downstream model (default tiktoken ``cl100k_base``).
        rank: How pages are ranked for the question (default :func:`rank_pages`, BM25;
            :func:`embedding_ranker` builds one from an embedding model).

    Returns:
        The prompt and the pages it includes; ``count(prompt) <= token_budget``.

    Raises:
        ConfigError: The budget cannot hold even the instruction and the question.
    """
    fulls = {p.page_number: p.full_text for p in pages if p.full_text}
    fulls.update(full_texts or {})

    def assemble(map_lines: Sequence[str], sections: Sequence[str]) -> str:
        parts = [INSTRUCTION]
        if map_lines:
            parts.append("Document map:\n" + "\n".join(map_lines))
        parts.extend(sections)
        parts.append(f"Question: {question}")
        return "\n\n".join(parts)

    if count(assemble([], [])) > token_budget:
        raise ConfigError(f"token_budget={token_budget} cannot hold the instruction and the question")
    ranked = (rank or rank_pages)(
        question, {p.page_number: f"{fulls.get(p.page_number, '')}\n{p.summary}" for p in pages}
    )
    map_lines = _document_map(pages, ranked, token_budget, lambda lines: count(assemble(lines, [])))

    sections: list[str] = []
    used: list[int] = []
    for number, _score in ranked:
        text = fulls.get(number)
        if not text:
            continue
        head = f"Page {number} (full text)\n"
        if count(assemble(map_lines, [*sections, head + text])) <= token_budget:
            sections.append(head + text)
            used.append(number)
            continue
        remaining = token_budget - count(assemble(map_lines, [*sections, head]))
        if remaining < MIN_PARTIAL_TOKENS:
            continue  # a shorter page further down may still fit

        def fits(prefix: str, head: str = head, done: tuple[str, ...] = tuple(sections)) -> bool:
            return count(assemble(map_lines, [*done, head + prefix])) <= token_budget

        cut = _longest_prefix(text, fits)
        if cut:
            sections.append(head + cut)
            used.append(number)
        break  # the budget is full
    prompt = assemble(map_lines, sections)
    return QAContext(
        prompt=prompt,
        pages_used=tuple(used),
        summary_pages=tuple(int(line[4 : line.index("]")]) for line in map_lines),
        token_count=count(prompt),
    )


def _document_map(
    pages: Sequence[PageSummary],
    ranked: Sequence[tuple[int, float]],
    budget: int,
    cost: Callable[[Sequence[str]], int],
) -> list[str]:
    """``[p. N] summary`` lines, shortened evenly to fit ``MAP_SHARE`` of the budget.

    Every summary is cut to the same number of words, the largest that fits. If even bare
    ``[p. N]`` lines exceed the share, the map may take the whole remaining budget; only if
    that fails are pages dropped, least relevant first.
    """
    words = {p.page_number: p.summary.split() for p in pages}

    def lines(limit: int, keep: Sequence[int]) -> list[str]:
        out = []
        for number in keep:
            kept = words[number][:limit]
            tail = _ELLIPSIS if len(words[number]) > limit and limit else ""
            out.append(f"[p. {number}] {' '.join(kept)}{tail}".rstrip())
        return out

    numbers = [p.page_number for p in pages]
    base = cost([])
    share = max(int(budget * MAP_SHARE), 0)
    longest = max((len(w) for w in words.values()), default=0)
    for limit_tokens in (share, budget):

        def fits(limit: int, limit_tokens: int = limit_tokens) -> bool:
            total = cost(lines(limit, numbers))
            return total - base <= limit_tokens and total <= budget

        if fits(0):
            low, high = 0, longest  # the largest word limit that fits
            while low < high:
                middle = (low + high + 1) // 2
                low, high = (middle, high) if fits(middle) else (low, middle - 1)
            return lines(low, numbers)
    order = {number: rank for rank, (number, _score) in enumerate(ranked)}
    by_relevance = sorted(numbers, key=lambda n: (order.get(n, len(order)), n))
    keep: list[int] = []
    for number in by_relevance:
        trial = sorted([*keep, number])
        if cost(lines(0, trial)) <= budget:
            keep = trial
    return lines(0, keep)


def _longest_prefix(text: str, fits: Callable[[str], bool]) -> str:
    """The longest word-boundary prefix of ``text`` (marked with an ellipsis) that ``fits``."""
    ends = [match.end() for match in re.finditer(r"\S+", text)]
    low, high = 0, len(ends)
    while low < high:
        middle = (low + high + 1) // 2
        if fits(text[: ends[middle - 1]] + _ELLIPSIS):
            low = middle
        else:
            high = middle - 1
    return text[: ends[low - 1]] + _ELLIPSIS if low else ""
