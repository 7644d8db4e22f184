"""Batches in flight together keep their order, also when one of them fails."""

from __future__ import annotations

import pytest

from deepseek_ocr2_loaders.pipeline._batch import run_batches


def failing_batch(batch):
    def steps():
        if batch == ["boom"]:
            raise RuntimeError("batch 2 failed")
        return batch
        yield  # a generator

    return steps()


def test_results_come_in_batch_order_and_a_failed_batch_raises_before_later_ones_are_yielded():
    got = []
    with pytest.raises(RuntimeError, match="batch 2 failed"):
        for result in run_batches([["a", "b"], ["boom"], ["c"]], failing_batch, depth=2):
            got.append(result)
    assert got == ["a", "b"]
    assert list(run_batches([["a"], ["b", "c"], ["d"]], failing_batch, depth=2)) == ["a", "b", "c", "d"]


def test_an_error_from_the_batches_comes_after_the_batches_already_started():
    def batches():
        yield ["a"]
        yield ["b"]
        raise ValueError("document 3 cannot be opened")

    got = []
    with pytest.raises(ValueError, match="document 3"):
        for result in run_batches(batches(), failing_batch, depth=2):
            got.append(result)
    assert got == ["a", "b"]
