"""Decoding guards against the repetition loops the DeepSeek-OCR family falls into.

* :class:`WindowedNoRepeatNGram` is the official scripts' guard: inside the last
  ``window`` generated tokens, an n-gram may not repeat, except n-grams ending in
  whitelisted tokens (``<td>``/``</td>``) or made of table structure only, which
  legitimately repeat in tables.
* :class:`LoopStopper` catches the loops the guard cannot stop (judged by
  :class:`~._loops.TokenLoops`): that sequence is stopped early instead of burning the
  whole ``max_new_tokens`` budget, and the place where the loop began is recorded so the
  repeated tail can be cut.

Both are vectorised over the batch; neither moves data to the host per step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from transformers import LogitsProcessor, StoppingCriteria

__all__ = ["LoopCheck", "LoopStopper", "WindowedNoRepeatNGram", "detect_loops", "finish_sequence"]


class WindowedNoRepeatNGram(LogitsProcessor):
    """Ban the next token of any ``ngram_size``-gram already seen in the last ``window`` generated tokens.

    As in the official scripts, an n-gram ending in a ``whitelist`` token (``<td>``/``</td>``)
    is never banned. Beyond them, an n-gram made only of ``structure`` tokens (table tags,
    whitespace) is not either, so identical empty table rows are written whole. Tokens before
    ``prompt_length`` (the prompt, for ``model.generate``) are never looked at.
    """

    def __init__(
        self,
        ngram_size: int,
        window: int,
        whitelist: Iterable[int] = (),
        *,
        structure: Iterable[int] = (),
        prompt_length: int = 0,
    ) -> None:
        if ngram_size < 2 or window < ngram_size:
            raise ValueError("need 2 <= ngram_size <= window")
        self.ngram_size = ngram_size
        self.window = window
        self.whitelist = sorted(set(whitelist))
        self.structure = sorted(set(structure))
        self.prompt_length = prompt_length
        # made once per device and vocabulary size: no host copy inside a CUDA graph
        self._tables: dict[tuple[torch.device, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def _tables_for(self, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (scores.device, scores.shape[1])
        tables = self._tables.get(key)
        if tables is None:
            allowed = torch.tensor(self.whitelist, dtype=torch.long, device=scores.device)
            structural = torch.zeros(scores.shape[1], dtype=torch.bool, device=scores.device)
            structural[[i for i in self.structure if i < scores.shape[1]]] = True
            tables = self._tables[key] = (allowed, structural)
        return tables

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        recent = input_ids[:, self.prompt_length :][:, -self.window :]
        if recent.shape[1] < self.ngram_size:
            return scores
        grams = recent.unfold(1, self.ngram_size, 1)  # (batch, positions, n)
        prefix = recent[:, -(self.ngram_size - 1) :]
        match = (grams[:, :, :-1] == prefix[:, None, :]).all(-1)
        hits = torch.zeros_like(scores)
        hits.scatter_add_(1, grams[:, :, -1].clamp(min=0), match.to(scores.dtype))  # fillers (< 0) never match
        banned = hits > 0
        allowed, structural = self._tables_for(scores)
        if self.whitelist:
            banned.index_fill_(1, allowed, False)  # a scalar fill: no host tensor, so graph-safe
        if self.structure:
            plain = structural[prefix.clamp(0, scores.shape[1] - 1)].all(1) & (prefix >= 0).all(1)
            banned &= ~(plain[:, None] & structural[None, :])
        return scores.masked_fill(banned, float("-inf"))


def detect_loops(
    tokens: torch.Tensor, counts: torch.Tensor | None = None, *, min_span: int = 192, max_period: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """Which rows end in a loop, and how many of their last tokens are the repeated tail.

    ``tokens`` is right-aligned (the newest token last in every row); positions before a
    row's start must hold values that never match (the slot decoder uses unique
    negatives). A row loops when its last ``span`` tokens equal the ``span`` tokens one
    period earlier, for a period ``p <= max_period``, with ``span = max(min_span, 2p)``:
    short units must repeat over ``min_span`` tokens, long ones at least three times.
    Vectorised over rows; no host sync.
    """
    rows, width = tokens.shape
    looped = torch.zeros(rows, dtype=torch.bool, device=tokens.device)
    tail = torch.zeros(rows, dtype=torch.long, device=tokens.device)
    for period in range(1, max_period + 1):
        span = max(min_span, 2 * period)
        if span + period > width:
            break
        repeats = (tokens[:, -span:] == tokens[:, -span - period : -period]).all(1)
        if counts is not None:
            repeats &= counts >= span + period
        new = repeats & ~looped
        tail = torch.where(new, span, tail)
        looped = looped | new
    return looped, tail


LoopCheck = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""``(tokens, counts) -> (looped, tail)`` over right-aligned rows, as :class:`~._loops.TokenLoops`."""


class LoopStopper(StoppingCriteria):
    """Stop a sequence of ``model.generate`` whose newest tokens loop, as judged by ``check``.

    Remembers where each loop began, so the repeated tail can be cut from the text. Only
    generated tokens are judged, the last ``history`` of them, every ``check_every`` steps.
    """

    def __init__(
        self,
        prompt_length: int,
        end_token_ids: Iterable[int],
        check: LoopCheck,
        *,
        check_every: int = 16,
        history: int = 2048,
    ) -> None:
        self.prompt_length = prompt_length
        self.end_token_ids = sorted(set(end_token_ids))
        self.check = check
        self.check_every = check_every
        self.history = history
        self.looped: torch.Tensor | None = None
        self.loop_start: torch.Tensor | None = None  # generated-token index where the repeated tail starts

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: object) -> torch.Tensor:
        batch = input_ids.shape[0]
        if self.looped is None or self.loop_start is None:
            self.looped = torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
            self.loop_start = torch.full((batch,), -1, dtype=torch.long, device=input_ids.device)
        generated = input_ids[:, self.prompt_length :]
        length = generated.shape[1]
        if length % self.check_every:
            return self.looped.clone()
        ended = torch.isin(generated, torch.tensor(self.end_token_ids, device=generated.device)).any(1)
        recent = generated[:, -self.history :]
        looped, tail = self.check(recent, torch.full((batch,), recent.shape[1], device=recent.device))
        new = looped & ~ended & ~self.looped
        self.loop_start = torch.where(new, length - tail, self.loop_start)
        self.looped = self.looped | new
        return self.looped.clone()


def finish_sequence(
    tokens: list[int], eos_id: int | None, pad_id: int | None, looped: bool, loop_start: int
) -> tuple[int, str, int]:
    """Where a generated row's text ends, why, and how many tokens it cost.

    Returns ``(keep, finish_reason, output_tokens)``: decode ``tokens[:keep]``. A row is
    only flagged as looped while it has not ended, so the flag is checked first (what
    follows a stopped row is padding, which may be the EOS id). A looped row keeps the
    text before its repeated tail.
    """
    if looped:
        spent = next((i for i, token in enumerate(tokens) if token in (eos_id, pad_id)), len(tokens))
        return (loop_start if 0 <= loop_start <= spent else spent), "repetition", spent
    if eos_id is not None and eos_id in tokens:
        end = tokens.index(eos_id)
        return end, "stop", end + 1
    spent = next((i for i, token in enumerate(tokens) if token == pad_id), len(tokens))
    return spent, "length", spent
