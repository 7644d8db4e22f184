"""A real run prints no deprecation warning on the transformers release installed.

transformers reports deprecated arguments through its own logger (``warning_once``, not
Python warnings, so ``filterwarnings = error`` does not see them) and only once per
process: a fresh interpreter runs both decode paths and its stderr is read.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.compat  # also run on the oldest transformers we allow

SCRIPT = r"""
import sys
from PIL import Image
from deepseek_ocr2_loaders import TransformersEngine
from deepseek_ocr2_loaders.model import PROMPTS

images = [Image.new("RGB", (900, 1200), "white"), Image.new("RGB", (500, 400), "gray")]
for decode in ("slots", "generate"):
    with TransformersEngine(sys.argv[1], max_new_tokens=6, decode=decode) as engine:
        outputs = engine.generate(images, PROMPTS["markdown"])
        assert len(outputs) == 2 and all(o.output_tokens > 0 for o in outputs)
print("ran")
"""


def test_both_decode_paths_run_without_a_deprecation_warning(tiny_checkpoint):
    run = subprocess.run(
        [sys.executable, "-W", "default", "-c", SCRIPT, str(tiny_checkpoint)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "warning", "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ran"
    assert "deprecat" not in run.stderr.lower(), run.stderr
