"""The ``>>>`` examples in the package's docstrings run and print what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import deepseek_ocr2_loaders

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(deepseek_ocr2_loaders.__path__, f"{deepseek_ocr2_loaders.__name__}.")
    if not info.name.endswith("__main__")  # importing it runs the CLI
)


def with_examples(name: str) -> bool:
    """Whether the module has an example that is not marked ``+SKIP``."""
    tests = doctest.DocTestFinder().find(importlib.import_module(name))
    return any(not example.options.get(doctest.SKIP) for test in tests for example in test.examples)


@pytest.mark.parametrize("name", [name for name in MODULES if with_examples(name)])
def test_docstring_examples_hold(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0
