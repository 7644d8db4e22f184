"""The decoding guards on hand-made token sequences."""

from __future__ import annotations

import pytest
import torch

from deepseek_ocr2_loaders.engines.transformers._guards import LoopStopper, WindowedNoRepeatNGram, finish_sequence


def test_ngram_guard_bans_the_token_that_would_repeat_an_ngram():
    guard = WindowedNoRepeatNGram(ngram_size=3, window=10)
    ids = torch.tensor([[5, 6, 7, 8, 5, 6]])  # 5 6 -> 7 seen; next 7 would repeat "5 6 7"
    scores = guard(ids, torch.zeros(1, 20))
    assert scores[0, 7] == float("-inf")
    assert torch.isfinite(scores[0, torch.arange(20) != 7]).all()


def test_ngram_guard_spares_whitelisted_tokens_and_looks_only_inside_the_window():
    ids = torch.tensor([[5, 6, 7, 1, 2, 3, 4, 9, 5, 6]])
    assert (guard := WindowedNoRepeatNGram(3, 10, whitelist=[7]))(ids, torch.zeros(1, 20))[0, 7] == 0
    assert guard.whitelist == [7]
    assert WindowedNoRepeatNGram(3, 10)(ids, torch.zeros(1, 20))[0, 7] == float("-inf")
    assert WindowedNoRepeatNGram(3, 7)(ids, torch.zeros(1, 20))[0, 7] == 0  # "5 6 7" left the window


def test_ngram_guard_is_per_row():
    ids = torch.tensor([[5, 6, 7, 5, 6], [1, 2, 3, 4, 6]])
    scores = WindowedNoRepeatNGram(3, 10)(ids, torch.zeros(2, 10))
    assert scores[0, 7] == float("-inf") and scores[1, 7] == 0


def run_stopper(rows, prompt_length=3, **kwargs):
    stopper = LoopStopper(prompt_length, end_token_ids=[1, 2], min_span=24, max_period=16, check_every=1, **kwargs)
    ids = torch.tensor(rows)
    done = None
    for length in range(prompt_length + 1, ids.shape[1] + 1):
        done = stopper(ids[:, :length], torch.zeros(ids.shape[0], 8))
    return stopper, done


def test_loop_stopper_flags_a_periodic_tail_and_where_it_began():
    prefix = list(range(10, 40))
    loop = [50, 51, 52, 53, 54] * 10
    clean = list(range(100, 180))
    stopper, done = run_stopper([[3, 3, 3] + prefix + loop, [3, 3, 3] + clean])
    assert done.tolist() == [True, False]
    start = int(stopper.loop_start[0])
    assert len(prefix) <= start <= len(prefix) + 5
    text = (prefix + loop)[:start]
    assert text[: len(prefix)] == prefix


def test_loop_stopper_ignores_rows_that_ended_and_the_prompt():
    ended = [3, 3, 3] + list(range(10, 20)) + [1] + [2] * 60  # EOS then padding: repetitive but finished
    prompt_only_repeats = [4] * 3
    stopper, done = run_stopper([ended], prompt_length=len(prompt_only_repeats))
    assert done.tolist() == [False]


@pytest.mark.parametrize(
    ("tokens", "looped", "start", "expected"),
    [
        ([7, 8, 1, 2, 2], False, -1, (2, "stop", 3)),
        ([7, 8, 9], False, -1, (3, "length", 3)),
        ([7, 8, 9, 9, 9, 2, 2], True, 3, (3, "repetition", 5)),
        ([7, 8, 9, 9, 9, 1, 1], True, 3, (3, "repetition", 5)),  # pad == eos in some tokenizers
    ],
)
def test_finish_sequence(tokens, looped, start, expected):
    assert finish_sequence(tokens, 1, 2, looped, start) == expected


def test_detect_loops_on_right_aligned_rows_of_different_lengths():
    from deepseek_ocr2_loaders.engines.transformers._guards import detect_loops
    from deepseek_ocr2_loaders.engines.transformers._slots import _right_aligned

    generated = torch.full((2, 64), -1, dtype=torch.long)
    generated[0, :40] = torch.tensor(list(range(100, 110)) + [7, 8, 9] * 10)  # loops after 10 tokens
    generated[1, :20] = torch.arange(200, 220)
    counts = torch.tensor([40, 20])
    looped, tail = detect_loops(_right_aligned(generated, counts, width=64), counts, min_span=12, max_period=8)
    assert looped.tolist() == [True, False]
    assert 40 - int(tail[0]) >= 10  # the text before the repeated tail is kept


def test_right_aligned_fills_missing_history_with_values_that_never_match():
    from deepseek_ocr2_loaders.engines.transformers._slots import _right_aligned

    rows = _right_aligned(torch.tensor([[5, 6, 7, -1]]), torch.tensor([3]), width=4)
    assert rows[0, 1:].tolist() == [5, 6, 7] and rows[0, 0] < 0
