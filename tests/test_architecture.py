"""The layout ARCHITECTURE.md describes: imports point down the layers, no cycle, small modules and functions."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "auditor"

# Each layer may import the layers after it in this list, never those before it.
LAYERS = ["cli", "workflows", "batch", "approvals", "reports", "pipeline", "runtime", "judge", "scanners",
          "inventory", "sources", "parsers", "sandbox"]
# Modules every layer may use: data types, the rules loader, errors, settings, atomic writes.
FOUNDATION = {"model", "record", "facts", "rules", "errors", "settings", "atomic", "__init__", "__main__"}


def _layer(module: str) -> str:
    head = module.split(".")[1] if module.count(".") else ""
    return head


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "auditor":
                found.update(f"auditor.{alias.name}" for alias in node.names)
            elif node.module.startswith("auditor."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("auditor."))
    return found


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for module, path in _modules().items():
        mine = _layer(module)
        if mine not in LAYERS:
            continue
        for imported in _imports(path):
            theirs = _layer(imported)
            if theirs in FOUNDATION or theirs not in LAYERS or theirs == mine:
                continue
            if LAYERS.index(theirs) < LAYERS.index(mine):
                wrong.append(f"{module} imports {imported}")
    assert not wrong, "\n".join(sorted(wrong))


def test_every_package_is_in_a_layer() -> None:
    top = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    top |= {p.stem for p in PACKAGE.glob("*.py")}
    unknown = top - set(LAYERS) - FOUNDATION - {"_data"}
    assert not unknown, f"add these to LAYERS (and ARCHITECTURE.md): {sorted(unknown)}"


def test_no_module_above_600_lines() -> None:
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600}
    assert not long, long


def test_no_function_above_cyclomatic_complexity_20() -> None:
    radon = pytest.importorskip("radon.complexity")
    heavy = []
    for path in PACKAGE.rglob("*.py"):
        for block in radon.cc_visit(path.read_text(encoding="utf-8")):
            if block.complexity > 20:
                heavy.append(f"{path.relative_to(PACKAGE)}:{block.lineno} {block.name} cc {block.complexity}")
    assert not heavy, "\n".join(sorted(heavy))
