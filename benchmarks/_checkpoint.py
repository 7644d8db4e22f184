"""The full-size random-weight checkpoint every GPU benchmark reads, written in one place."""

from __future__ import annotations

import json
from pathlib import Path

from deepseek_ocr2_loaders.testing import make_random_checkpoint

FULL_SIZE_CONFIG = Path(__file__).resolve().parent / "configs" / "full-size-config.json"


def write_full_size_checkpoint(path: Path, *, device: str = "cuda") -> Path:
    """DeepSeek-OCR-2 at full size (3.39 B parameters), random bf16 weights, at ``path``."""
    config = json.loads(FULL_SIZE_CONFIG.read_text())
    return make_random_checkpoint(
        path, vision_config=config["vision_config"], text_config=config["text_config"], dtype="bfloat16", device=device
    )
