"""Decoding guards against the repetition loops the DeepSeek-OCR family falls into.

* :class:`WindowedNoRepeatNGram` is the official scripts' guard: inside the last
  ``window`` tokens, an n-gram may not repeat, except n-grams ending in whitelisted
  tokens (``<td>``/``</td>``, which legitimately repeat in tables).
* :class:`LoopStopper` catches longer loops the guard cannot see: when the newest
  tokens repeat with a period of up to ``max_period``, that sequence is stopped early
  instead of burning the whole ``max_new_tokens`` budget, and the place where the loop
  began is recorded so the repeated tail can be cut.

Both are vectorised over the batch; neither moves data to the host per step.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from transformers import LogitsProcessor, StoppingCriteria

__all__ = ["LoopStopper", "WindowedNoRepeatNGram", "finish_sequence"]


class WindowedNoRepeatNGram(LogitsProcessor):
    """Ban the next token of any ``ngram_size``-gram already seen in the last ``window`` tokens."""

    def __init__(self, ngram_size: int, window: int, whitelist: Iterable[int] = ()) -> None:
        if ngram_size < 2 or window < ngram_size:
            raise ValueError("need 2 <= ngram_size <= window")
        self.ngram_size = ngram_size
        self.window = window
        self.whitelist = sorted(set(whitelist))

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        recent = input_ids[:, -self.window :]
        if recent.shape[1] < self.ngram_size:
            return scores
        grams = recent.unfold(1, self.ngram_size, 1)  # (batch, positions, n)
        prefix = recent[:, -(self.ngram_size - 1) :]
        match = (grams[:, :, :-1] == prefix[:, None, :]).all(-1)
        hits = torch.zeros_like(scores)
        hits.scatter_add_(1, grams[:, :, -1], match.to(scores.dtype))
        banned = hits > 0
        if self.whitelist:
            banned[:, self.whitelist] = False
        return scores.masked_fill(banned, float("-inf"))


class LoopStopper(StoppingCriteria):
    """Stop a sequence whose newest tokens are a loop; remember where the loop began.

    A sequence loops when its last ``span`` generated tokens equal the ``span`` tokens one
    period earlier, for some period ``p <= max_period``, where ``span = max(min_span, 2p)``:
    short units must repeat over ``min_span`` tokens, long ones at least three times.
    """

    def __init__(
        self,
        prompt_length: int,
        end_token_ids: Iterable[int],
        *,
        min_span: int = 192,
        max_period: int = 256,
        check_every: int = 16,
    ) -> None:
        self.prompt_length = prompt_length
        self.end_token_ids = sorted(set(end_token_ids))
        self.min_span = min_span
        self.max_period = max_period
        self.check_every = check_every
        self.looped: torch.Tensor | None = None
        self.loop_start: torch.Tensor | None = None  # generated-token index where the repeated tail starts

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: object) -> torch.Tensor:
        batch = input_ids.shape[0]
        if self.looped is None or self.loop_start is None:
            self.looped = torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
            self.loop_start = torch.full((batch,), -1, dtype=torch.long, device=input_ids.device)
        loop_start = self.loop_start
        generated = input_ids[:, self.prompt_length :]
        length = generated.shape[1]
        if length < self.min_span + 1 or length % self.check_every:
            return self.looped.clone()
        ended = torch.isin(generated, torch.tensor(self.end_token_ids, device=generated.device)).any(1)
        for period in range(1, min(self.max_period, length // 3) + 1):
            span = max(self.min_span, 2 * period)
            if span + period > length:
                break
            repeats = (generated[:, -span:] == generated[:, -span - period : -period]).all(1)
            new = repeats & ~ended & ~self.looped
            loop_start = torch.where(new, length - span, loop_start)
            self.looped = self.looped | new
        self.loop_start = loop_start
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
