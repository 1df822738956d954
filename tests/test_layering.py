"""Imports flow downward only (DESIGN.md), and heavy libraries stay where they are used."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "autoparallel"

BOTTOM = (
    "models",
    "hardware",
    "workload",
    "configs",
    "memory",
    "perf",
    "solvers",
    "frameworks",
    "api",
    "cli",
    "plan",
    "explain",
    "validation",
)
"""Every layer above the bottom ones (bounds, user_file), which import none of them."""

# layer -> layers it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "models": ("memory", "perf", "solvers", "frameworks", "api", "cli", "plan"),
    "hardware": ("models", "memory", "perf", "solvers", "frameworks", "api", "cli", "plan"),
    "workload": ("memory", "perf", "solvers", "frameworks", "api", "cli", "plan"),
    "configs": ("memory", "perf", "solvers", "frameworks", "api", "cli", "plan"),
    "memory": ("solvers", "frameworks", "api", "cli", "plan"),
    "perf": ("solvers", "frameworks", "api", "cli", "plan"),
    "solvers": ("frameworks", "api", "cli", "plan"),
    "frameworks": ("solvers", "api", "cli", "plan", "explain"),
    "objectives": ("memory", "perf", "solvers", "frameworks", "api", "cli", "plan", "explain"),
    "plan": ("solvers", "api", "cli"),
    "explain": ("solvers", "api", "cli"),
    "api": ("cli",),
    "sweeps": ("cli",),
    "validation": ("memory", "perf", "solvers", "frameworks", "api", "cli", "plan", "explain"),
    "user_file": BOTTOM,
    "bounds": BOTTOM,
    "errors": (*BOTTOM, "bounds", "user_file", "memo", "yaml_file"),
    "memo": (*BOTTOM, "bounds", "user_file", "errors", "yaml_file"),
    "yaml_file": BOTTOM,  # read by hardware/gpu.py: it may import only errors and user_file
    "workload_profile": (
        "solvers",
        "frameworks",
        "api",
        "cli",
        "plan",
        "explain",
        "fleet",
        "disagg",
        "sweeps",
    ),
    "engine_compare": ("solvers", "frameworks", "api", "cli", "fleet", "disagg", "sweeps"),
    "fleet": ("api", "cli", "disagg", "disagg_launch", "sweeps"),
    "disagg_launch": ("solvers", "api", "cli", "disagg", "sweeps"),
    "disagg": ("api", "cli", "sweeps"),
}

ORACLE_MAY_IMPORT = (
    "autoparallel.solvers.serving.space",
    "autoparallel.solvers.training.space",
    "autoparallel.solvers.training.tables",
    "autoparallel.solvers.partition",
    "autoparallel.solvers.deployment.space",
    "autoparallel.solvers.deployment.client_rules",  # the space's integer queue / closed-loop rules
    "autoparallel.solvers.deployment.mixed",  # the mixed space (its player is mixed_encoder)
    "autoparallel.solvers.deployment.oracle",  # the mixed oracle builds on the deployment one
)
"""The brute-force referees read the space and the tables, never the CP-SAT player's modules."""

ORACLES = (
    *sorted((PACKAGE / "solvers" / "oracle").glob("*.py")),
    PACKAGE / "solvers" / "deployment" / "oracle.py",
    PACKAGE / "solvers" / "deployment" / "mixed_oracle.py",
)


@functools.cache
def _tree(path: Path) -> ast.Module:
    """The module's syntax tree, parsed once for every test that reads it."""
    return ast.parse(path.read_text())


@functools.cache
def _imports(path: Path) -> frozenset[str]:
    names: set[str] = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return frozenset(names)


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
        assert path not in ORACLES, f"{rel}: a brute-force oracle must not use ortools"
    if "transformers" in names:
        assert rel == "models/loader.py", f"{rel}: transformers is only for configs outside the zoo"
    assert "torch" not in names, f"{rel}: torch is only used by the meta-device tests"


@pytest.mark.parametrize("path", ORACLES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_the_oracle_imports_only_the_space_and_the_tables(path: Path) -> None:
    modules = {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts) for p in _modules()}
    solver_imports = {n for n in _runtime_imports(path, modules) if n.startswith("autoparallel.solvers")}
    bad = sorted(n for n in solver_imports if n not in ORACLE_MAY_IMPORT)
    assert not bad, f"{path.name} imports the player's {bad}"


def _runtime_imports(path: Path, modules: set[str]) -> set[str]:
    """Package modules `path` imports at run time: module level and inside functions (`if TYPE_CHECKING:`
    blocks excluded); `from pkg import sub` counts as importing the submodule, not the package."""
    tree = _tree(path)
    type_only = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names} & modules
            out |= subs
            if len(subs) < len(node.names) and node.module in modules:
                out.add(node.module)
    return out


def test_the_import_graph_has_no_cycles() -> None:
    def name(p: Path) -> str:
        parts = list(p.relative_to(PACKAGE.parent).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    paths = {name(p): p for p in _modules()}
    graph = {m: _runtime_imports(p, set(paths)) - {m} for m, p in paths.items()}
    done: set[str] = set()

    def visit(m: str, stack: list[str]) -> None:
        if m in stack:
            cycle = [*stack[stack.index(m) :], m]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if m in done:
            return
        for dep in sorted(graph[m]):
            visit(dep, [*stack, m])
        done.add(m)

    for m in sorted(graph):
        visit(m, [])


@pytest.mark.parametrize(
    "module", ["autoparallel.solvers.oracle.serving", "autoparallel.perf.serving", "autoparallel.plan"]
)
def test_pydantic_models_are_complete_when_their_module_is_imported_alone(module: str) -> None:
    """A model whose field type was imported only for type checking is incomplete until someone
    rebuilds it: the brute-force oracle's `EnumerationResult` (a `ServingEstimate` field, whose
    `VllmMemoryReport` field was such a type) failed with PydanticUserError when the oracle was the
    first module imported, and passed only in a suite whose earlier tests had rebuilt it."""
    import subprocess
    import sys

    code = (
        f"import importlib, pydantic; m = importlib.import_module({module!r}); "
        "bad = [n for n, c in vars(m).items() if isinstance(c, type) and issubclass(c, pydantic.BaseModel) "
        "and c.__module__ == m.__name__ and not c.__pydantic_complete__]; print(bad); assert not bad"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr[-500:]
