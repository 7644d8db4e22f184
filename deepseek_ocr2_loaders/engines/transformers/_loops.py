"""Which decoding rows loop, judged on token ids, with table structure left out.

The n-gram guard forbids exact repeats, so a guarded model that loops comes out perturbed:
counting (``0 0 0 1 0 0 2``), coordinates that advance block after block, a word swapped
now and then. Meanwhile blank forms legitimately repeat: ``<td></td>`` runs and identical
empty rows. So loops are judged on the *content* tokens only: table tags, whitespace and
box lists (``<|det|>...<|/det|>``, so blocks that repeat while their coordinates advance
repeat exactly) removed. Numbers stay content: a long numeric table is not a loop.

* exact: the newest content tokens repeat with a period ``p <= max_period`` over
  ``max(min_span, 2p)`` tokens;
* stale: among the last ``window`` content tokens, fewer than ``min_distinct`` of the
  4-grams are distinct (a loop that wanders between a few variants);
* overrun: a ``<|det|>`` box list still open after ``max_box_list`` tokens (a real one
  holds a few boxes of about 20 tokens each; a counting loop inside it never ends).

Vectorised over rows, no host sync: the slot decoder calls it on the device every few
steps, ``model.generate`` through :class:`~._guards.LoopStopper`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from ._guards import detect_loops

__all__ = ["STRUCTURE_TEXTS", "LoopRule", "TokenLoops"]

STRUCTURE_TEXTS = (
    "<table><thead><tbody><tr><td></td><th></th></tr></tbody></thead></table>",
    "</tr>\n<tr>",
    "\n",
    "\n\n",
    " ",
    "  ",
    "\t",
)
"""Texts whose tokens are structure, not content: table tags (as the tokenizer splits them) and whitespace."""


@dataclass(frozen=True)
class LoopRule:
    """Thresholds of :class:`TokenLoops` (see the module docstring), in content tokens."""

    min_span: int = 192
    max_period: int = 256
    window: int = 512
    min_distinct: float = 0.25
    max_box_list: int = 512


class TokenLoops:
    """Loop detection for one vocabulary; call it on right-aligned token rows.

    Args:
        vocab_size: Size of the logits (ids at or above it never occur).
        structure_ids: Ids that are table structure or whitespace.
        box_tags: The ids of ``<|det|>`` and ``<|/det|>``.
        device: Where the lookup tables live.
        rule: The thresholds.
    """

    def __init__(
        self,
        vocab_size: int,
        structure_ids: Iterable[int],
        box_tags: tuple[int, int],
        device: torch.device,
        rule: LoopRule | None = None,
    ) -> None:
        self.rule = rule or LoopRule()
        self.structure = torch.zeros(vocab_size, dtype=torch.bool, device=device)
        self.structure[sorted(set(structure_ids))] = True
        self.box_open, self.box_close = box_tags

    @classmethod
    def for_tokenizer(cls, tokenizer: object, vocab_size: int, device: torch.device) -> TokenLoops:
        """The detector for a Hugging Face tokenizer: structure from :data:`STRUCTURE_TEXTS`."""
        encode = tokenizer.encode  # type: ignore[attr-defined]
        structure = {i for text in STRUCTURE_TEXTS for i in encode(text, add_special_tokens=False)}
        box_tags = tokenizer.convert_tokens_to_ids(["<|det|>", "<|/det|>"])  # type: ignore[attr-defined]
        return cls(vocab_size, {i for i in structure if i < vocab_size}, tuple(box_tags), device)

    def __call__(self, tokens: torch.Tensor, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Which rows loop, and how many of their last tokens (structure included) to cut.

        ``tokens`` is right-aligned; positions before a row's start hold negatives, and
        ``counts`` says how many real tokens each row has.
        """
        rule = self.rule
        width = tokens.shape[1]
        columns = torch.arange(width, device=tokens.device)[None, :].expand_as(tokens)
        real = (columns >= width - counts.clamp(max=width)[:, None]) & (tokens >= 0)
        ids = tokens.clamp(min=0, max=self.structure.shape[0] - 1)
        opened_at = torch.where(real & (tokens == self.box_open), columns, -1).cummax(1).values
        closed_at = torch.where(real & (tokens == self.box_close), columns, -1).cummax(1).values
        in_box = opened_at > closed_at  # from a <|det|> up to its <|/det|>
        content, cols, kept = _compact(tokens, real & ~self.structure[ids] & ~in_box)
        looped, tail = detect_loops(content, kept, min_span=rule.min_span, max_period=rule.max_period)
        start = _start_column(cols, tail)
        stale, stale_tail = _stale(content, kept, rule.window, rule.min_distinct)
        start = torch.where(looped, start, _start_column(cols, stale_tail))
        looped = looped | stale
        overrun = in_box[:, -1] & (width - 1 - opened_at[:, -1] >= rule.max_box_list)
        start = torch.where(looped, start, opened_at[:, -1])
        looped = looped | overrun
        return looped, torch.where(looped, width - start, torch.zeros_like(start))


def _compact(tokens: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The kept tokens of each row, right-aligned in order, with unique negatives before them.

    Returns the compacted rows, each compacted position's original column, and the kept counts.
    """
    width = tokens.shape[1]
    order = torch.sort(keep.to(torch.int8), dim=1, stable=True).indices  # dropped first, kept last, in order
    kept = keep.sum(1)
    columns = torch.arange(width, device=tokens.device)[None, :]
    filler = -1 - columns.expand_as(tokens)
    compact = torch.where(columns >= width - kept[:, None], tokens.gather(1, order), filler)
    return compact, order, kept


def _start_column(order: torch.Tensor, tail: torch.Tensor) -> torch.Tensor:
    """The original column where the last ``tail`` compacted tokens begin."""
    width = order.shape[1]
    index = (width - tail).clamp(min=0, max=width - 1)
    return order.gather(1, index[:, None])[:, 0]


def _stale(
    tokens: torch.Tensor, counts: torch.Tensor, window: int, min_distinct: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows whose last ``window`` tokens hold fewer than ``min_distinct`` distinct 4-grams (as a share).

    The stale tail starts at the window's first 4-gram that occurs again in it: the text
    before the loop is made of 4-grams seen once.
    """
    rows = tokens.shape[0]
    if tokens.shape[1] < window:
        return torch.zeros(rows, dtype=torch.bool, device=tokens.device), torch.zeros(
            rows, dtype=torch.long, device=tokens.device
        )
    grams = tokens[:, -window:].unfold(1, 4, 1).to(torch.int64)
    mixed = ((grams[..., 0] * 1_000_003 + grams[..., 1]) * 1_000_003 + grams[..., 2]) * 1_000_003 + grams[..., 3]
    ordered = mixed.sort(dim=1).values
    distinct = 1 + (ordered[:, 1:] != ordered[:, :-1]).sum(1)
    seen = torch.searchsorted(ordered, mixed, right=True) - torch.searchsorted(ordered, mixed)
    first = torch.where(seen > 1, torch.arange(mixed.shape[1], device=tokens.device), mixed.shape[1]).min(1).values
    return (counts >= window) & (distinct < min_distinct * mixed.shape[1]), window - first
