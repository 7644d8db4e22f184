"""The loop stop on the tiny checkpoint, through the real engine path (both decoders).

The tiny model is random, so its output layer is swapped for a scripted one: call ``k``
favours token ``script[k]`` (and one fallback token second, which is what comes out where
the n-gram guard bans the scripted one). Everything else is the engine's own: prefill,
decode steps, the n-gram guard, loop detection, cutting and finish reasons. Blank forms must
come out whole; exact, counting, wandering and advancing loops must stop well before the budget.
"""

from __future__ import annotations

import random

import pytest
import torch
from PIL import Image

from deepseek_ocr2_loaders import TransformersEngine

PAGE = Image.new("RGB", (640, 480), "white")
PROMPT = "<image>\nFree OCR."
INTRO = "# Ledger\n\nEach page of the report is read by the model and then written out as Markdown text.\n\n"


class ScriptedHead(torch.nn.Module):
    """Stands in for ``lm_head``: the logits of call ``k`` favour ``script[k]``, then EOS."""

    def __init__(self, script: list[int], vocab: int, eos: int, fallback: int) -> None:
        super().__init__()
        self.script, self.vocab, self.eos, self.fallback = script, vocab, eos, fallback
        self.calls = 0

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        token = self.script[self.calls] if self.calls < len(self.script) else self.eos
        self.calls += 1
        logits = torch.zeros(*hidden.shape[:-1], self.vocab, dtype=hidden.dtype, device=hidden.device)
        logits[..., self.fallback] = 5.0
        logits[..., token] = 10.0
        return logits


@pytest.fixture
def read(tiny_checkpoint, monkeypatch):
    """``read(text, budget, decode)``: the engine's output when the model wants to write ``text``."""

    def run(text: str, budget: int, decode: str = "slots"):
        engine = TransformersEngine(str(tiny_checkpoint), max_new_tokens=budget, max_batch_size=1, decode=decode)
        loaded = engine._acquire()
        tokenizer, model = loaded.processor.tokenizer, loaded.model
        script = tokenizer.encode(text, add_special_tokens=False)
        fallback = tokenizer.convert_tokens_to_ids("Ġpage")
        head = ScriptedHead(script, model.config.get_text_config().vocab_size, tokenizer.eos_token_id, fallback)
        monkeypatch.setattr(model, "lm_head", head)
        try:
            (output,) = engine.generate([PAGE], PROMPT)
        finally:
            engine.close()
        return output, len(script)

    return run


def blank_row(cells: int) -> str:
    return "<table><tr>" + "<td></td>" * cells + "</tr></table>"


def identical_rows(rows: int, columns: int) -> str:
    return "<table>" + ("<tr>" + "<td></td>" * columns + "</tr>") * rows + "</table>"


@pytest.mark.parametrize("decode", ["slots", "generate"])
@pytest.mark.parametrize(
    "text",
    [
        blank_row(120),
        identical_rows(8, 16),
        identical_rows(12, 6),  # rows shorter than the guard's window
        INTRO + identical_rows(20, 16) + "\n\nTotal: 0",
    ],
    ids=["blank-120-cells", "8-empty-16-col-rows", "12-empty-6-col-rows", "20-rows-between-prose"],
)
def test_blank_forms_come_out_whole(read, text, decode):
    output, length = read(text, budget=1200, decode=decode)
    assert (output.finish_reason, output.text) == ("stop", text)
    assert output.output_tokens == length + 1


def exact_loop() -> str:
    return INTRO + "The same long sentence of a stuck model, written again and again without end. " * 60


def wandering_loop(seed: int = 3) -> str:
    rng = random.Random(seed)
    return INTRO + "".join(rng.choice(["[underline", "[line", "[overline", "[underline"]) for _ in range(700))


def counting_loop() -> str:
    numbers = " ".join(str(i // 7 if i % 3 == 0 else 0) for i in range(2500))
    return INTRO + "<|ref|>table<|/ref|><|det|>[[" + numbers


def advancing_blocks() -> str:
    return INTRO + "".join(
        f"<|ref|>text<|/ref|><|det|>[[100, {100 + i * 5}, 900, {112 + i * 5}]]<|/det|>\nItem paid in full.\n\n"
        for i in range(170)
    )


@pytest.mark.parametrize("decode", ["slots", "generate"])
@pytest.mark.parametrize(
    ("text", "spent_at_most"),
    [(exact_loop(), 600), (wandering_loop(), 800), (counting_loop(), 700), (advancing_blocks(), 700)],
    ids=["exact", "wandering", "counting-in-a-box-list", "170-advancing-blocks"],
)
def test_loops_stop_early_and_keep_the_text_before_them(read, text, spent_at_most, decode):
    output, length = read(text, budget=4000, decode=decode)
    assert output.finish_reason == "repetition"
    assert length > 4000 and output.output_tokens <= spent_at_most  # stopped well before the budget
    assert output.text.startswith(INTRO.strip()[:20]) and len(output.text) < len(text) / 2
