"""Imports flow downward only (DESIGN.md), and heavy libraries stay where they are used."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "autoparallel"

# layer -> layers it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "models": ("memory", "perf", "solvers", "frameworks", "api", "cli", "plan"),
    "hardware": ("models", "memory", "perf", "solvers", "frameworks", "api", "cli", "plan"),
    "workload": ("memory", "perf", "solvers", "frameworks", "api", "cli", "plan"),
    "configs": ("memory", "perf", "solvers", "frameworks", "api", "cli", "plan"),
    "memory": ("solvers", "frameworks", "api", "cli", "plan"),
    "perf": ("solvers", "frameworks", "api", "cli", "plan"),
    "solvers": ("frameworks", "api", "cli", "plan"),
    "frameworks": ("solvers", "api", "cli", "plan"),
    "validation": ("memory", "perf", "solvers", "frameworks", "api", "cli", "plan", "explain"),
    "bounds": ("models", "hardware", "workload", "configs", "memory", "perf", "solvers", "frameworks", "api",
               "cli", "plan", "explain", "validation"),
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _layer(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_downward(path: Path) -> None:
    forbidden = FORBIDDEN.get(_layer(path), ())
    bad = sorted(
        name
        for name in _imports(path)
        if name.startswith("autoparallel.") and name.split(".")[1] in forbidden
    )
    assert not bad, f"{path.relative_to(PACKAGE)} imports {bad} (layer {_layer(path)!r} must not)"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_heavy_libraries_stay_in_their_modules(path: Path) -> None:
    rel = path.relative_to(PACKAGE).as_posix()
    names = {n.split(".")[0] for n in _imports(path)}
    if "ortools" in names:
        assert rel.startswith("solvers/"), f"{rel}: ortools belongs under solvers/ only"
        assert "enumerate" not in rel, f"{rel}: the enumeration oracle must not use ortools"
    if "transformers" in names:
        assert rel == "models/loader.py", f"{rel}: transformers is only for configs outside the zoo"
    assert "torch" not in names, f"{rel}: torch is only used by the meta-device tests"
