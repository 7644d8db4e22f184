"""Test helpers: a tiny random DeepSeek-OCR-2 checkpoint and a scripted engine.

``make_tiny_checkpoint`` writes a real checkpoint folder (config, safetensors, tokenizer
with the model's special tokens, processor config) that loads through exactly the same
``from_pretrained`` path as the published model, so tests exercise the real loading and
generation code on a CPU in seconds. Its output is random text, of course.

``ScriptedEngine`` replays model text we author, like httpx's ``MockTransport``: tests of
the parser, pipeline and adapters use it to feed realistic grounded Markdown.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .engines._base import EngineOutput, OCREngine
from .model._vision_tokens import count_vision_tokens

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["SPECIAL_TOKENS", "ScriptedEngine", "make_random_checkpoint", "make_tiny_checkpoint"]

BOS, EOS, PAD = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>"
SPECIAL_TOKENS = (
    BOS,
    EOS,
    PAD,
    "<image>",
    "<|grounding|>",
    "<|ref|>",
    "<|/ref|>",
    "<|det|>",
    "<|/det|>",
    "<td>",
    "</td>",
)

_CORPUS = (
    "# 1 Introduction\n\nDeepSeek-OCR reads documents page by page. Convert the document to markdown. Free OCR.\n"
    "<|ref|>title<|/ref|><|det|>[[120, 64, 880, 102]]<|/det|>\n## 3.2 Data\n"
    "<|ref|>table<|/ref|><|det|>[[100, 200, 900, 400]]<|/det|>\n<table><tr><td>Year</td><td>2024</td></tr></table>\n"
    "\\[ E = mc^2 \\] The quick brown fox jumps over the lazy dog 0123456789.\n"
)


TINY_VISION_CONFIG: dict[str, Any] = {
    "sam_config": {
        "hidden_size": 16,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "global_attn_indexes": [1],
        "output_channels": 16,
        "downsample_channels": [16, 32],
    },
    "encoder_config": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "vocab_size": 16,
    },
}
TINY_TEXT_CONFIG: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "moe_intermediate_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "n_routed_experts": 4,
    "num_experts_per_tok": 2,
    "n_shared_experts": 1,
    "mlp_layer_types": ["dense", "sparse"],
    "max_position_embeddings": 8192,
}


def make_tiny_checkpoint(path: str | Path, *, seed: int = 0) -> Path:
    """Write a tiny random DeepSeek-OCR-2 checkpoint to ``path`` and return the folder.

    The architecture is the real one at toy width (SAM + Qwen2-style encoder + MoE decoder),
    with the real image geometry (1024 global view, 768 crops), so vision-token counts and
    the prompt layout are exactly the real model's.

    Examples:
        >>> folder = make_tiny_checkpoint(tmp_path / "tiny")  # doctest: +SKIP
        >>> TransformersEngine(str(folder))  # doctest: +SKIP
    """
    return make_random_checkpoint(path, vision_config=TINY_VISION_CONFIG, text_config=TINY_TEXT_CONFIG, seed=seed)


def make_random_checkpoint(
    path: str | Path,
    *,
    vision_config: dict[str, Any],
    text_config: dict[str, Any],
    seed: int = 0,
    dtype: str = "float32",
    device: str = "cpu",
) -> Path:
    """Write a random-weight checkpoint of any DeepSeek-OCR-2 size, with the test tokenizer.

    The benchmarks use it with the full-size configuration: speed and memory do not depend
    on weight values. The text vocabulary keeps the configured size (ids past the small
    tokenizer decode to nothing), so the output layer costs what the real one does.
    """
    import torch
    from transformers import DeepseekOcr2Config, DeepseekOcr2ForConditionalGeneration

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    processor = _make_processor()
    tokenizer = processor.tokenizer
    text = dict(text_config)
    text.setdefault("vocab_size", len(tokenizer))
    text.update(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    config = DeepseekOcr2Config(
        vision_config=vision_config, text_config=text, image_token_id=tokenizer.convert_tokens_to_ids("<image>")
    )
    torch.manual_seed(seed)
    with torch.device(device):
        model = DeepseekOcr2ForConditionalGeneration(config).to(getattr(torch, dtype))
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(model.generation_config, key, getattr(tokenizer, key))
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _make_processor() -> Any:
    """A byte-level BPE tokenizer with the model's special tokens, in the real processor."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import DeepseekOcr2Processor, PreTrainedTokenizerFast
    from transformers.models.deepseek_ocr2.image_processing_pil_deepseek_ocr2 import (
        DeepseekOcr2ImageProcessorPil,
    )

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512, special_tokens=list(SPECIAL_TOKENS), initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator([_CORPUS] * 4, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=BOS, eos_token=EOS, pad_token=PAD)
    return DeepseekOcr2Processor(image_processor=DeepseekOcr2ImageProcessorPil(), tokenizer=tokenizer)


Handler = Callable[["Image.Image", str], "str | EngineOutput"]


class ScriptedEngine(OCREngine):
    """An engine that answers with text we author: ``handler(image, prompt) -> str | EngineOutput``.

    A plain string becomes a clean ``stop`` with the real vision-token count of the image
    and one output token per whitespace-separated word. ``calls`` records how many images
    each ``generate`` call received.
    """

    def __init__(self, handler: Handler, *, batch_size: int = 4, name: str = "scripted") -> None:
        self.handler = handler
        self.batch_size = batch_size
        self._name = name
        self.calls: list[int] = []

    @property
    def name(self) -> str:
        """The name recorded as ``model`` in metadata."""
        return self._name

    def generate(self, images: list[Image.Image], prompt: str) -> list[EngineOutput]:
        """Answer every image through the handler."""
        self.calls.append(len(images))
        outputs = []
        for image in images:
            answer = self.handler(image, prompt)
            if isinstance(answer, str):
                answer = EngineOutput(
                    text=answer,
                    vision_tokens=count_vision_tokens(*image.size),
                    output_tokens=len(answer.split()),
                )
            outputs.append(answer)
        return outputs
