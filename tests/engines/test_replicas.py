"""Several devices from one engine: one page queue, a replica per device, results in page order.

Two CPU replicas of the tiny checkpoint stand in for two GPUs; a replica that fails is a real
exception raised where its decoder would be built (a lost GPU cannot happen on a CPU).
"""

from __future__ import annotations

import pytest
import torch
from text_pages import text_page

from deepseek_ocr2_loaders import ConfigError, TransformersEngine
from deepseek_ocr2_loaders.model import PROMPTS

pytestmark = pytest.mark.compat

MARKDOWN = PROMPTS["markdown"]


IMAGES = [text_page(500 + 60 * seed, 700, f"replica page {seed}", rows=3) for seed in range(8)]
OPTIONS = {"max_new_tokens": 24, "max_batch_size": 4, "ignore_eos": True}


@pytest.fixture(scope="module")
def expected(tiny_checkpoint):
    with TransformersEngine(str(tiny_checkpoint), device="cpu", **OPTIONS) as engine:
        return [o.text for o in engine.generate(IMAGES, MARKDOWN)]


def test_two_replicas_share_the_pages_and_return_them_in_order(tiny_checkpoint, expected):
    with TransformersEngine(str(tiny_checkpoint), device=["cpu", "cpu"], **OPTIONS) as engine:
        assert [o.text for o in engine.generate(IMAGES, MARKDOWN)] == expected
        done = [replica.stats.get("pages", 0) for replica in engine._replicas]
        assert sum(done) == len(IMAGES) and all(count > 0 for count in done), done
        assert engine.last_stats["pages"] == len(IMAGES)


def test_a_failed_replica_hands_its_pages_to_the_other(tiny_checkpoint, expected):
    with TransformersEngine(str(tiny_checkpoint), device="cpu,cpu", **OPTIONS) as engine:
        _, replicas = engine._page_queue()

        def lost(*args, **kwargs):
            raise RuntimeError("CUDA error: device lost")

        replicas[1].engine._scheduled_decoder = lost
        assert [o.text for o in engine.generate(IMAGES, MARKDOWN)] == expected
        assert not replicas[1].alive and replicas[0].alive
        assert replicas[0].stats["pages"] == len(IMAGES)
        assert [o.text for o in engine.generate(IMAGES[:2], MARKDOWN)] == expected[:2]  # the survivor serves on


def test_device_lists_are_checked(tiny_checkpoint):
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    every = [torch.device("cuda", index) for index in range(gpus)] or [torch.device("cpu")]
    assert TransformersEngine(str(tiny_checkpoint), device="auto").devices == every
    assert len(TransformersEngine(str(tiny_checkpoint), device=["cpu", "cpu"]).devices) == 2
    with pytest.raises(ConfigError, match="decode='slots'"):
        TransformersEngine(str(tiny_checkpoint), device="cpu,cpu", decode="generate")
    with pytest.raises(ConfigError, match="not a torch device"):
        TransformersEngine(str(tiny_checkpoint), device=["cpu", "gpu7"])


def test_the_cli_runs_one_replica_per_device_listed(tmp_path, tiny_checkpoint):
    from deepseek_ocr2_loaders.cli import main

    for index in range(3):
        IMAGES[index].save(tmp_path / f"scan-{index}.png")
    flags = ["--model", str(tiny_checkpoint), "--device", "cpu,cpu", "--max-new-tokens", "4", "--no-cache", "-q"]
    assert main(["convert", str(tmp_path), "-o", str(tmp_path / "out"), *flags]) == 0
    assert sorted(p.name for p in (tmp_path / "out").rglob("*.md")) == [f"scan-{i}.md" for i in range(3)]
