"""Every Python snippet of the README runs, and so does its main command line.

No model can be downloaded here, so the test substitutes fakes where the README says to
substitute: ``TransformersEngine("deepseek-community/DeepSeek-OCR-2", ...)`` becomes a
``ScriptedEngine`` answering the 4-page paper of ``scripted_paper`` (and a short summary for
compact views), ``my_embeddings`` LangChain's ``DeterministicFakeEmbedding``, ``my_embed_model``
LlamaIndex's ``MockEmbedding``, ``chat_model`` LangChain's ``FakeListChatModel``, ``llm``
LlamaIndex's ``MockLLM``, ``my_client`` a client that answers with the same engine. Everything
else (loaders, splitters, stores, convert, the QA prompt) is the real code. The shell blocks
install packages or reach the network, except ``deepseek-ocr2 convert reports/ -o out/``, run here.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from scripted_paper import PAGES, write_paper

from deepseek_ocr2_loaders.cli import main
from deepseek_ocr2_loaders.testing import ScriptedEngine

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```(python|bash)\n(.*?)```", README.read_text(), flags=re.DOTALL)
PYTHON = [code for kind, code in BLOCKS if kind == "python"]
ENGINE = re.compile(r'TransformersEngine\("deepseek-community/DeepSeek-OCR-2"[^)]*\)')


def answer(image, prompt):
    """The paper's page for its full-size render (width (600 + i) * 2 px), a summary otherwise."""
    index = round(image.width / 2) - 600
    return PAGES[index] if 0 <= index < len(PAGES) else "The compression ratio grew tenfold."


def readme_engine() -> ScriptedEngine:
    return ScriptedEngine(answer, batch_size=3, name="scripted-deepseek-ocr2")


class Client:
    def ocr_batch(self, images, prompt):
        return [output.text for output in readme_engine().generate(images, prompt)]


@pytest.fixture
def reports(tmp_path, monkeypatch):
    (tmp_path / "reports").mkdir()
    write_paper(tmp_path / "reports" / "paper.pdf")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def fakes() -> dict[str, object]:
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.llms import MockLLM

    return {
        "my_embeddings": DeterministicFakeEmbedding(size=32),
        "my_embed_model": MockEmbedding(embed_dim=8),
        "chat_model": FakeListChatModel(responses=["It grew tenfold [p. 4]."]),
        "llm": MockLLM(),
        "my_client": Client(),
        "readme_engine": readme_engine,
    }


def test_the_readme_has_the_snippets_this_test_runs():
    assert len(PYTHON) == 5 and all(ENGINE.search(code) or "my_client" in code for code in PYTHON)


@pytest.mark.parametrize("code", PYTHON, ids=[code.splitlines()[-1][:40] for code in PYTHON])
def test_readme_python_snippet_runs(code, reports, capsys):
    namespace = fakes()
    exec(compile(ENGINE.sub("readme_engine()", code), str(README), "exec"), namespace)  # noqa: S102
    if "similarity_search" in code:
        assert capsys.readouterr().out.strip()  # a chunk's heading path (fake embeddings pick any chunk)
    if "LongContextQA" in code:
        assert namespace["answer"]["pages"] == [4]


def test_readme_convert_command_runs(reports, capsys):
    shell = [line for kind, code in BLOCKS if kind == "bash" for line in code.splitlines()]
    (line,) = [line for line in shell if line.startswith("deepseek-ocr2 convert reports/")]
    assert main(shlex.split(line)[1:], engine=readme_engine()) == 0
    assert len((reports / "out" / "paper.jsonl").read_text().splitlines()) == 4
