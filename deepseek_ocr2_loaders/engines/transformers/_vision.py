"""Pages -> decoder prompts: processor inputs, vision features, and image features merged into embeddings."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["PagePrompt", "embed_pages", "encode", "image_features", "vision_prompts"]

logger = logging.getLogger(__name__)


@dataclass
class PagePrompt:
    """One page ready for decoding: prompt token ids and prompt embeddings (vision merged in)."""

    index: int
    input_ids: torch.Tensor  # (T,)
    embeds: torch.Tensor  # (T, hidden)
    vision_tokens: int
    limit: int | None = None  # tokens it may write: its call's budget, or less (benchmarks' page lengths)


def vision_prompts(engine: Any, pages: list[tuple[int, Any]]) -> list[PagePrompt]:
    """One vision batch: each page's views through the towers, its features merged into its prompt.

    ``pages`` are ``(id, processor inputs)`` (the CPU work, done ahead by the caller). Each page
    keeps its own unpadded prompt: a batch shares only the vision towers, its pixels
    concatenated on the device. Runs on the current stream and does not wait for it.
    """
    model = engine._acquire().model
    image_token = model.config.image_token_id
    embed = model.get_input_embeddings()
    locals_ = [engine._to_device(inputs["pixel_values_local"]) for _, inputs in pages if "pixel_values_local" in inputs]
    features = engine.image_features(
        model,
        torch.cat([engine._to_device(inputs["pixel_values"]) for _, inputs in pages]),
        torch.cat(locals_) if locals_ else None,
        [int(inputs["num_local_patches"][0]) for _, inputs in pages],
    )
    prompts = []
    for (index, inputs), feature in zip(pages, features, strict=True):
        tokens = inputs["input_ids"][0].to(engine.device)
        mask = (tokens == image_token).unsqueeze(-1)
        embeds = embed(tokens).masked_scatter(mask, feature.to(engine.dtype))
        prompts.append(PagePrompt(index, tokens, embeds, int(feature.shape[0])))
    return prompts


def encode(processor: Any, images: list[Any], prompt: str) -> Any:
    """Processor inputs for a batch: ``BOS + prompt`` per page, ``<image>`` expanded, left-padded.

    Thread-safe and CPU-only, so pages are encoded on worker threads ahead of the GPU.
    """
    text = f"{processor.tokenizer.bos_token}{prompt}"
    inputs = processor(
        images=images, text=[text] * len(images), padding=True, add_special_tokens=False, return_tensors="pt"
    )
    return inputs


def image_features(
    model: Any,
    pixel_values: torch.Tensor,
    pixel_values_local: torch.Tensor | None,
    crops: list[int],
    *,
    batch: int,
    to_device: Any,
    shrink: Callable[[int], None],
) -> list[torch.Tensor]:
    """Each page's vision features (crops, global view, separator), on the device.

    Pages go through the model's own ``get_image_features`` ``batch`` at a time, so the
    vision towers never see more pages at once; pixels still on the host move a slice at a time.
    Out of GPU memory, the batch halves, ``shrink`` is told the new size (the engine keeps it
    for its next batches: each would run out again) and the same pages go again.
    """
    features: list[torch.Tensor] = []
    start = 0
    while start < len(crops):
        stop = start + batch
        first, last = sum(crops[:start]), sum(crops[:stop])
        local = None if pixel_values_local is None or first == last else pixel_values_local[first:last]
        try:
            out = model.get_image_features(
                pixel_values=to_device(pixel_values[start:stop]),
                pixel_values_local=None if local is None else to_device(local),
                num_local_patches=crops[start:stop],
                return_dict=True,
            )
        except torch.OutOfMemoryError:
            if batch == 1:
                raise
            batch //= 2  # a card with less room than measured: fewer pages at once, none failed
            shrink(batch)
            logger.warning("GPU out of memory in the vision towers: %d pages at a time from now on", batch)
            torch.cuda.empty_cache()
            continue
        features.extend(out.pooler_output)
        start = stop
    return features


def embed_pages(
    model: Any, inputs: Any, input_ids: torch.Tensor, *, batch: int, to_device: Any, shrink: Callable[[int], None]
) -> torch.Tensor:
    """Token embeddings of a padded batch with each page's image features scattered in."""
    embeds = model.get_input_embeddings()(input_ids)
    crops = [int(n) for n in inputs["num_local_patches"]]
    local = inputs.get("pixel_values_local")
    features = image_features(
        model, inputs["pixel_values"], local, crops, batch=batch, to_device=to_device, shrink=shrink
    )
    flat = torch.cat(features, dim=0).to(embeds.dtype)
    mask = (input_ids == model.config.image_token_id).unsqueeze(-1)
    merged: torch.Tensor = embeds.masked_scatter(mask, flat)
    return merged
