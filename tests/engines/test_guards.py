"""The decoding guards on hand-made token sequences."""

from __future__ import annotations

import random

import pytest
import torch

from deepseek_ocr2_loaders.engines.transformers._guards import LoopStopper, WindowedNoRepeatNGram, finish_sequence
from deepseek_ocr2_loaders.engines.transformers._loops import LoopRule, TokenLoops


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


def test_ngram_guard_lets_table_structure_repeat_and_ignores_the_prompt():
    structure = [5, 6, 7]  # <tr>, <td>, </td> of a blank row
    row = [5, 6, 7, 6, 7, 5]
    ids = torch.tensor([row * 3])
    guard = WindowedNoRepeatNGram(3, 30, whitelist=[6, 7], structure=structure)
    assert guard(ids, torch.zeros(1, 10))[0, 6] == 0  # "5 6" -> 6... all structure: allowed
    assert WindowedNoRepeatNGram(3, 30, whitelist=[6, 7])(torch.tensor([[6, 7, 5, 6, 7]]), torch.zeros(1, 10))[
        0, 5
    ] == float("-inf")
    assert (
        WindowedNoRepeatNGram(3, 30, structure=structure)(torch.tensor([[6, 7, 5, 6, 7]]), torch.zeros(1, 10))[0, 5]
        == 0
    )
    mixed = torch.tensor([[8, 6, 9, 8, 6]])  # content in the n-gram: still banned
    assert WindowedNoRepeatNGram(3, 30, structure=structure)(mixed, torch.zeros(1, 10))[0, 9] == float("-inf")
    prompt = torch.tensor([[5, 8, 9, 5, 8]])  # "5 8 9" only in the prompt: not banned
    assert WindowedNoRepeatNGram(3, 30, prompt_length=3)(prompt, torch.zeros(1, 10))[0, 9] == 0
    assert WindowedNoRepeatNGram(3, 30)(prompt, torch.zeros(1, 10))[0, 9] == float("-inf")
    fillers = torch.tensor([[-3, -2, -1, 5]])  # the slot decoder's empty history
    assert torch.isfinite(WindowedNoRepeatNGram(3, 4)(fillers, torch.zeros(1, 10))).all()


def test_ngram_guard_is_per_row():
    ids = torch.tensor([[5, 6, 7, 5, 6], [1, 2, 3, 4, 6]])
    scores = WindowedNoRepeatNGram(3, 10)(ids, torch.zeros(2, 10))
    assert scores[0, 7] == float("-inf") and scores[1, 7] == 0


SMALL = LoopRule(min_span=24, max_period=16, window=40, min_distinct=0.25, max_box_list=30)
TD, SLASH_TD, SPACE, DIGITS, DET, SLASH_DET = 90, 91, 92, (80, 81, 82), 93, 94


def small_loops() -> TokenLoops:
    return TokenLoops(
        100,
        structure_ids=[TD, SLASH_TD, SPACE],
        box_tags=(DET, SLASH_DET),
        device=torch.device("cpu"),
        rule=SMALL,
    )


def judge(*rows):
    width = max(len(r) for r in rows)
    tokens = torch.tensor([[-1 - i for i in range(width - len(r))] + r for r in rows])
    return small_loops()(tokens, torch.tensor([len(r) for r in rows]))


def run_stopper(rows, prompt_length=3):
    stopper = LoopStopper(prompt_length, end_token_ids=[1, 2], check=small_loops(), check_every=1)
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
    ended = [4, 4, 4] + list(range(10, 20)) + [1] + [2] * 60  # EOS then padding: repetitive but finished
    stopper, done = run_stopper([ended])
    assert done.tolist() == [False]
    prompt_loops = [7, 8] * 40 + list(range(10, 60))  # the prompt repeats, the generated tokens do not
    stopper, done = run_stopper([prompt_loops], prompt_length=80)
    assert done.tolist() == [False]


def test_table_structure_is_never_a_loop_but_content_inside_tables_is():
    blank_row = [TD, SLASH_TD] * 120
    rows = ([60, TD, SLASH_TD, TD, SLASH_TD, 61, SPACE]) * 30  # identical empty rows: <tr><td></td>...</tr>
    content = [TD, 70, SLASH_TD, TD, 71, SLASH_TD] * 30  # a table that loops on its cells
    looped, _ = judge(blank_row, list(range(10, 40)) + blank_row)
    assert looped.tolist() == [False, False]
    looped, tail = judge(rows, content)
    assert looped.tolist() == [True, True]  # long runs of identical rows do repeat content (60, 61)
    looped, _ = judge(rows[: 7 * 5])
    assert looped.tolist() == [False]


def test_blocks_that_repeat_while_their_boxes_advance_loop_but_numbers_in_the_text_do_not():
    prefix = list(range(10, 40))

    def block(i):  # <|ref|>text<|/ref|><|det|>[[y, y+1]]<|/det|> Paid in full.
        return [50, 51, DET, DIGITS[i % 3], SPACE, DIGITS[(i // 3) % 3], SLASH_DET, 60, 61, 62, SPACE]

    advancing = [tok for i in range(12) for tok in block(i)]
    numeric = [tok for i in range(30) for tok in (50, DIGITS[i % 3], DIGITS[(i // 3) % 3], DIGITS[i // 9 % 3], 60)]
    looped, tail = judge(prefix + advancing, prefix + numeric)
    assert looped.tolist() == [True, False]  # a long numeric table is content, not a loop
    assert len(prefix) <= len(prefix + advancing) - int(tail[0]) < len(prefix + advancing)


def test_a_wandering_loop_is_stale():
    rng = random.Random(0)  # units of 2-3 tokens, picked at random: never periodic, always the same few
    wander = [tok for _ in range(260) for tok in rng.choice([(40, 41), (40, 42, 41), (43, 41, 42)])]
    prose = [rng.randrange(10, 90) for _ in range(len(wander) + 20)]  # diverse, aperiodic
    loops = TokenLoops(100, [SPACE], (DET, SLASH_DET), torch.device("cpu"))  # the default rule
    tokens = torch.tensor([list(range(10, 30)) + wander, prose])
    looped, tail = loops(tokens, torch.tensor([tokens.shape[1]] * 2))
    assert looped.tolist() == [True, False] and int(tail[0]) <= len(wander)


def test_an_open_box_list_overruns():
    box = [20, 21, DET] + [40 + (i * 7) % 53 for i in range(40)]  # an unclosed box list, no 4-gram twice
    closed = [20, 21, DET, DIGITS[0], SLASH_DET] + list(range(10, 40))
    looped, tail = judge(list(range(50, 60)) + box, closed)
    assert looped.tolist() == [True, False] and int(tail[0]) == len(box) - 2


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


def guarded_decode(script, guard, loops, fallback, vocab):
    """Greedy decoding of a model that wants to write ``script``: where the guard bans a token, ``fallback``."""
    out = []
    for position, wanted in enumerate(script):
        scores = torch.zeros(1, vocab)
        scores[0, fallback], scores[0, wanted] = 5.0, 10.0
        recent = torch.tensor([[-1 - i for i in range(guard.window)] + out])[:, -guard.window :]
        out.append(int(guard(recent, scores).argmax()))
        if loops is not None and (position + 1) % 32 == 0:
            looped, _ = loops(torch.tensor([out]), torch.tensor([len(out)]))
            if looped[0]:
                break
    return out, sum(o != s for o, s in zip(out, script, strict=False))


@pytest.mark.parametrize(("window", "stopped_by", "perturbed"), [(50, 352, 0), (90, 736, 19)])
def test_why_the_window_is_the_pdf_scripts_50(tiny_checkpoint, window, stopped_by, perturbed):
    """The measurement behind the README's choice, on the tiny tokenizer with the engine's guard and loop stop."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    vocab, fallback = len(tokenizer), tokenizer.convert_tokens_to_ids("Ġpage")
    loops = TokenLoops.for_tokenizer(tokenizer, vocab, torch.device("cpu"))
    cells = tokenizer.convert_tokens_to_ids(["<td>", "</td>"])
    guard = WindowedNoRepeatNGram(20, window, cells, structure=loops.structure.nonzero().flatten().tolist())
    unit = "A stuck model writes this very sentence again and again. "  # 47 tokens: banned only when 47 <= window - 19
    loop = tokenizer.encode("# Notes\n\n" + unit * 60, add_special_tokens=False)
    out, changed = guarded_decode(loop, guard, loops, fallback, vocab)
    assert (len(out), changed) == (stopped_by, perturbed)  # 90 turns an exact loop into a later-caught near one
    rows = tokenizer.encode(
        "<table>" + ("<tr>" + "<td></td>" * 16 + "</tr>") * 8 + "</table>", add_special_tokens=False
    )
    official = WindowedNoRepeatNGram(20, window, cells)  # the official guard: only <td>/</td> exempt
    assert guarded_decode(rows, official, None, fallback, vocab)[1] == (0 if window == 50 else 4)
    assert guarded_decode(rows, guard, None, fallback, vocab)[1] == 0  # ours lets table structure repeat
