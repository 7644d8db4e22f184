"""The ``decode="generate"`` path: transformers' own ``model.generate`` on left-padded batches.

Slower than the slot decoder (a batch waits for its longest page) but the reference: the
slot decoder is tested to give the same tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from .._base import EngineOutput
from ._guards import LoopStopper, finish_sequence

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["TABLE_CELL_TOKENS", "generate_padded", "guard_whitelist"]

TABLE_CELL_TOKENS = ("<td>", "</td>")
"""Tokens the n-gram guard never bans: empty table cells repeat legitimately."""


def guard_whitelist(tokenizer: Any) -> list[int]:
    """Ids of :data:`TABLE_CELL_TOKENS` that this tokenizer has."""
    ids = tokenizer.convert_tokens_to_ids(list(TABLE_CELL_TOKENS))
    return [i for i in ids if i != tokenizer.unk_token_id]


def generate_padded(engine: Any, images: list[Image.Image], prompt: str) -> list[EngineOutput]:
    """Read one batch with ``model.generate``, the n-gram guard and the loop stopper."""
    from transformers import LogitsProcessorList, StoppingCriteriaList

    loaded = engine._acquire()
    model, tokenizer = loaded.model, loaded.processor.tokenizer
    options = engine.options
    inputs = engine.encode(images, prompt)
    input_ids = inputs["input_ids"].to(engine.device)
    attention_mask = inputs["attention_mask"].to(engine.device)
    vision_tokens = (inputs["input_ids"] == model.config.image_token_id).sum(1).tolist()
    end_ids = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    loops = engine._loop_check(model, tokenizer)
    stopper = LoopStopper(input_ids.shape[1], end_ids, loops)
    stopping = [stopper] if options.stop_loops else []
    guard = engine._guard(tokenizer, loops, input_ids.shape[1])
    with torch.inference_mode():
        sequences = model.generate(
            input_ids=input_ids,
            inputs_embeds=engine._embed(model, inputs, input_ids),
            attention_mask=attention_mask,
            max_new_tokens=options.max_new_tokens,
            do_sample=False,
            logits_processor=LogitsProcessorList([guard]),
            stopping_criteria=StoppingCriteriaList(stopping),
            min_new_tokens=options.max_new_tokens if options.ignore_eos else None,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    generated = sequences[:, input_ids.shape[1] :].tolist()
    looped = [False] * len(images) if stopper.looped is None else stopper.looped.tolist()
    loop_start = [-1] * len(images) if stopper.loop_start is None else stopper.loop_start.tolist()
    results = []
    for row, tokens in enumerate(generated):
        keep, reason, count = finish_sequence(
            tokens, tokenizer.eos_token_id, tokenizer.pad_token_id, looped[row], loop_start[row]
        )
        results.append(
            EngineOutput(
                text=tokenizer.decode(tokens[:keep], skip_special_tokens=False),
                finish_reason=reason,
                vision_tokens=int(vision_tokens[row]),
                output_tokens=count,
            )
        )
    return results
