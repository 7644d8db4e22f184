"""A question-answering prompt for a long document that always fits a token budget.

Two levels of detail: a map of the whole document (every page's compact-view summary,
tagged ``[p. N]``, so the model knows what is where and can cite it), then the full text of
the pages most relevant to the question, ranked by BM25, until the budget is spent. The
map is kept to about 40% of the budget by shortening every summary evenly, so no page
disappears from it while one line per page still fits. For a vision-capable downstream
model the selected pages can go as page images instead, each counted at its token estimate.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from ..chunking._tokens import count_tokens
from ..errors import ConfigError
from ._page_images import PageImage
from ._summaries import PageSummary

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
        prompt: Instruction, document map, selected full pages, then the question (as text:
            an image page shows only its heading ``Page N (image)``).
        pages_used: 1-based pages whose full text (possibly cut) or image is in the prompt,
            by relevance.
        summary_pages: 1-based pages listed in the document map.
        token_count: ``count`` of each text run plus the token estimate of each image (just
            ``count(prompt)`` without images); never more than the budget.
        parts: What to send, in order: text runs and :class:`PageImage` s. Without images it
            is ``(prompt,)``; with them the text runs joined are exactly ``prompt``.
    """

    prompt: str
    pages_used: tuple[int, ...]
    summary_pages: tuple[int, ...]
    token_count: int
    parts: tuple[str | PageImage, ...]

    @property
    def images(self) -> tuple[PageImage, ...]:
        """The page images in the prompt, in order."""
        return tuple(part for part in self.parts if isinstance(part, PageImage))


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
    page_images: Callable[[int], PageImage] | None = None,
) -> QAContext:
    """Pack a map of every page and the most relevant full pages under ``token_budget``.

    Args:
        question: The user's question.
        pages: Summaries of the document's pages (from :func:`summarize_pages`).
        token_budget: Most tokens the prompt may have: ``count`` of its text plus the
            token estimate of each page image.
        full_texts: Full text per 1-based page number, overriding ``PageSummary.full_text``
            (for example OCR Markdown of scanned pages).
        count: The token counter of the downstream model (default tiktoken ``cl100k_base``).
        rank: How pages are ranked for the question (default :func:`rank_pages`, BM25;
            :func:`embedding_ranker` builds one from an embedding model).
        page_images: For a vision-capable downstream model: renders a 1-based page as a
            :class:`PageImage` (usually a :class:`PageImages`). The selected pages then go
            as images instead of text, any page can be chosen (scans too), and each image's
            ``tokens`` estimate is counted against the budget.

    Returns:
        The prompt and the pages it includes; ``token_count <= token_budget``.

    Raises:
        ConfigError: The budget cannot hold even the instruction and the question.
    """
    fulls = {p.page_number: p.full_text for p in pages if p.full_text}
    fulls.update(full_texts or {})

    def cost(map_lines: Sequence[str], sections: Sequence[_Section]) -> int:
        return _cost(_parts(question, map_lines, sections), count)

    if cost([], []) > token_budget:
        raise ConfigError(f"token_budget={token_budget} cannot hold the instruction and the question")
    ranked = (rank or rank_pages)(
        question, {p.page_number: f"{fulls.get(p.page_number, '')}\n{p.summary}" for p in pages}
    )
    map_lines = _document_map(pages, ranked, token_budget, lambda lines: cost(lines, []))
    if page_images is None:
        sections = _text_sections(ranked, fulls, token_budget, lambda done: cost(map_lines, done))
    else:
        sections = _image_sections(ranked, page_images, token_budget, lambda done: cost(map_lines, done))
    return QAContext(
        prompt=_text(question, map_lines, sections),
        pages_used=tuple(section.page_number for section in sections),
        summary_pages=tuple(int(line[4 : line.index("]")]) for line in map_lines),
        token_count=cost(map_lines, sections),
        parts=_parts(question, map_lines, sections),
    )


def _cost(parts: Sequence[str | PageImage], count: Callable[[str], int]) -> int:
    """Tokens as sent: each text run counted on its own, each image at its estimate."""
    return sum(part.tokens if isinstance(part, PageImage) else count(part) for part in parts)


@dataclass(frozen=True)
class _Section:
    """One selected page in the prompt: a heading, then its text or its image."""

    page_number: int
    head: str
    body: str = ""
    image: PageImage | None = None


def _blocks(question: str, map_lines: Sequence[str], sections: Sequence[_Section]) -> list[str | PageImage]:
    """The prompt in order: text blocks (joined by blank lines) and the images between them."""
    blocks: list[str | PageImage] = [INSTRUCTION]
    if map_lines:
        blocks.append("Document map:\n" + "\n".join(map_lines))
    for section in sections:
        blocks.append(section.head + section.body)
        if section.image:
            blocks.append(section.image)
    blocks.append(f"Question: {question}")
    return blocks


def _text(question: str, map_lines: Sequence[str], sections: Sequence[_Section]) -> str:
    return "\n\n".join(b for b in _blocks(question, map_lines, sections) if isinstance(b, str))


def _parts(question: str, map_lines: Sequence[str], sections: Sequence[_Section]) -> tuple[str | PageImage, ...]:
    """Text runs and images in order; the text runs joined give exactly the prompt text."""
    parts: list[str | PageImage] = []
    text = ""
    for block in _blocks(question, map_lines, sections):
        if isinstance(block, str):
            text += ("\n\n" if parts or text else "") + block
        else:
            parts.extend([text, block])
            text = ""
    return (*parts, text)


def _text_sections(
    ranked: Sequence[tuple[int, float]], fulls: Mapping[int, str], budget: int, cost: Callable[[list[_Section]], int]
) -> list[_Section]:
    """Full texts of the best pages that fit; the last one cut at a word if need be."""
    sections: list[_Section] = []
    for number, _score in ranked:
        text = fulls.get(number)
        if not text:
            continue
        section = _Section(number, f"Page {number} (full text)\n", text)
        if cost([*sections, section]) <= budget:
            sections.append(section)
            continue
        if budget - cost([*sections, _Section(number, section.head)]) < MIN_PARTIAL_TOKENS:
            continue  # a shorter page further down may still fit

        def fits(prefix: str, whole: _Section = section, done: tuple[_Section, ...] = tuple(sections)) -> bool:
            return cost([*done, replace(whole, body=prefix)]) <= budget

        cut = _longest_prefix(text, fits)
        if cut:
            sections.append(replace(section, body=cut))
        break  # the budget is full
    return sections


def _image_sections(
    ranked: Sequence[tuple[int, float]],
    page_images: Callable[[int], PageImage],
    budget: int,
    cost: Callable[[list[_Section]], int],
) -> list[_Section]:
    """Images of the best pages that fit; an image is never cut, so a page fits whole or not.

    Pages are rendered in rank order, and only while the room left could still hold the
    cheapest image seen so far.
    """
    sections: list[_Section] = []
    cheapest: int | None = None
    for number, _score in ranked:
        if cheapest is not None and budget - cost(sections) < cheapest:
            break
        image = page_images(number)
        cheapest = image.tokens if cheapest is None else min(cheapest, image.tokens)
        section = _Section(number, f"Page {number} (image)", image=image)
        if cost([*sections, section]) <= budget:
            sections.append(section)
    return sections


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
