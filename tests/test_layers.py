"""The folders are the layers (DESIGN.md): imports point only downward, never in a circle.

``LAYERS`` is the one table of the package's structure, bottom first. A module may import its
own folder and any entry of a lower layer; never an entry of its own layer or above. Lazy
imports inside functions and ``TYPE_CHECKING`` imports count too: an upward import that is
only deferred is still a cycle in the design. Every entry of the package must be in the table,
so a new module is placed on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "deepseek_ocr2_loaders"
LAYERS: list[tuple[str, ...]] = [
    ("_version.py", "errors.py"),  # foundation: imports nothing of ours
    ("types.py", "settings.py", "model"),  # shared vocabulary; DeepSeek-OCR-2 facts without torch
    ("options.py",),  # every option, defined once (defaults from model/)
    ("parsing", "sources", "chunking", "engines"),  # the core, side by side
    ("pipeline", "server", "testing.py"),  # convert(); the engine's HTTP server; test engines
    ("records", "compression"),  # page results -> records; long-document QA over convert()
    ("ray",),  # the Ray Data pipeline (records per mode)
    ("langchain", "llama_index"),  # framework adapters (they expose the Ray results too)
    ("cli",),  # the command line, over everything
    ("__init__.py",),  # the public surface
]
FRAMEWORKS = ("langchain", "langchain_core", "llama_index", "click")
FRAMEWORK_HOMES = ("langchain", "llama_index")
NO_TORCH = (
    "_version.py",
    "errors.py",
    "types.py",
    "options.py",
    "settings.py",
    "model",
    "parsing",
    "sources",
    "chunking",
    "pipeline",
    "records",
    "compression",
    "__init__.py",
)
RANK = {entry: rank for rank, entries in enumerate(LAYERS) for entry in entries}


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


def entry_of(name: str) -> str | None:
    """The top-level entry (folder, or ``module.py``) of one of our module names, else None."""
    parts = name.split(".")
    if parts[0] != "deepseek_ocr2_loaders" or len(parts) == 1:
        return "__init__.py" if parts == ["deepseek_ocr2_loaders"] else None
    if (PACKAGE / parts[1]).is_dir():
        return parts[1]
    if (PACKAGE / f"{parts[1]}.py").is_file():
        return f"{parts[1]}.py"
    return "__init__.py"  # a name taken from the package root itself


def module_of(name: str) -> Path | None:
    """The file of one of our module names (longest prefix that is a file), else None."""
    parts = name.split(".")[1:]
    for end in range(len(parts), 0, -1):
        candidate = PACKAGE.joinpath(*parts[:end])
        if candidate.with_suffix(".py").is_file():
            return candidate.with_suffix(".py")
        if (candidate / "__init__.py").is_file():
            return candidate / "__init__.py"
    return None


def test_the_table_covers_every_entry_of_the_package():
    entries = {p.name for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    assert entries == set(RANK)


def test_every_import_points_down_the_table():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = path.relative_to(PACKAGE).parts[0]
        for name in sorted(imports_of(path)):
            there = entry_of(name)
            if there is None or there == here:
                continue
            if RANK[there] >= RANK[here]:
                problems.append(f"{path.relative_to(PACKAGE)} imports {name} (layer {RANK[there]} >= {RANK[here]})")
    assert problems == []


def test_no_module_imports_itself_in_a_circle():
    graph: dict[Path, set[Path]] = {}
    for path in PACKAGE.rglob("*.py"):
        targets = {module_of(name) for name in imports_of(path) if name.startswith("deepseek_ocr2_loaders")}
        # a package's own __init__ runs before any of its modules anyway: not an edge of ours
        graph[path] = {
            t
            for t in targets
            if t is not None and t != path and not (t.name == "__init__.py" and t.parent in path.parents)
        }
    state: dict[Path, int] = {}
    cycles: list[str] = []

    def visit(node: Path, trail: list[Path]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                loop = [*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt]
                cycles.append(" -> ".join(str(p.relative_to(PACKAGE)) for p in loop))
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == []


def test_the_core_never_imports_a_framework_and_the_model_free_layers_never_import_torch():
    problems = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        for name in imports_of(path):
            top = name.split(".")[0]
            if top in FRAMEWORKS and relative.parts[0] not in FRAMEWORK_HOMES:
                problems.append(f"{relative} imports {name}")
            if relative.parts[0] in NO_TORCH and top in ("torch", "transformers"):
                problems.append(f"{relative} imports {name}")
    assert problems == []


def test_the_checker_sees_relative_lazy_and_upward_imports(tmp_path):
    module = tmp_path / "parsing" / "bad.py"
    module.parent.mkdir()
    module.write_text("from ..pipeline import convert\ndef f():\n    from . import _grounding\nimport torch\n")
    found = imports_of(module, root=tmp_path)
    assert {"deepseek_ocr2_loaders.pipeline.convert", "deepseek_ocr2_loaders.parsing._grounding", "torch"} <= found
    assert RANK[entry_of("deepseek_ocr2_loaders.pipeline.convert")] > RANK["parsing"]
