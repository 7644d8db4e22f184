"""Imports point only downward (DESIGN.md layers); the core never imports a framework."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "deepseek_ocr2_loaders"
FRAMEWORKS = ("langchain", "langchain_core", "llama_index", "click")
# module or folder -> internal modules it must not import
FORBIDDEN = {
    "parsing": {"engines", "pipeline", "sources", "cli", "langchain", "llama_index"},
    "sources": {"engines", "pipeline", "parsing", "cli", "langchain", "llama_index"},
    "engines": {"pipeline", "sources", "parsing", "cli", "langchain", "llama_index"},
    "pipeline.py": {"cli", "langchain", "llama_index"},
    "compression": {"cli", "langchain", "llama_index"},
    "server": {"pipeline", "sources", "parsing", "cli", "langchain", "llama_index"},
    "types.py": {"engines", "pipeline", "sources", "parsing", "cli"},
    "errors.py": {"engines", "pipeline", "sources", "parsing", "cli", "types"},
}
NO_TORCH = (
    "parsing",
    "sources",
    "types.py",
    "errors.py",
    "pipeline.py",
    "figures.py",
    "prompts.py",
    "vision_tokens.py",
)


def imports_of(path: Path, root: Path = PACKAGE) -> set[str]:
    """Absolute module names a file imports (relative imports resolved against the package)."""
    tree = ast.parse(path.read_text())
    package_parts = ["deepseek_ocr2_loaders", *path.relative_to(root).parent.parts]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
                found.add(module)
                found.update(f"{module}.{alias.name}" for alias in node.names)
            else:
                found.add(node.module or "")
    return found


def files_of(entry: str) -> list[Path]:
    target = PACKAGE / entry
    return sorted(target.rglob("*.py")) if target.is_dir() else [target]


def test_layers_import_only_downward():
    problems = []
    for entry, banned in FORBIDDEN.items():
        for path in files_of(entry):
            for name in imports_of(path):
                parts = name.split(".")
                if (
                    parts[0] == "deepseek_ocr2_loaders"
                    and len(parts) > 1
                    and parts[1].removesuffix(".py") in {b.removesuffix(".py") for b in banned}
                ):
                    problems.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert problems == []


def test_the_core_never_imports_a_framework_and_parsing_never_imports_torch():
    problems = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in ("langchain", "llama_index"):
            continue
        for name in imports_of(path):
            if name.split(".")[0] in FRAMEWORKS:
                problems.append(f"{relative} imports {name}")
            if str(relative.parts[0]) in NO_TORCH and name.split(".")[0] in ("torch", "transformers"):
                problems.append(f"{relative} imports {name}")
    assert problems == []


def test_the_checker_resolves_relative_imports(tmp_path):
    module = tmp_path / "parsing" / "bad.py"
    module.parent.mkdir()
    module.write_text("from ..pipeline import convert\nfrom . import grounding\nimport torch\n")
    found = imports_of(module, root=tmp_path)
    assert {"deepseek_ocr2_loaders.pipeline.convert", "deepseek_ocr2_loaders.parsing.grounding", "torch"} <= found
