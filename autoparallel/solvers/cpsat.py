"""OR-Tools CP-SAT, imported without paying for pandas.

`ortools.sat.python.cp_model` imports pandas at module level only for its pandas helpers
(`new_int_var_series`, `CpSolver.values` on a Series, ...), which autoparallel never calls.
Measured on the 2-core reference machine, pandas is ~1.3 s of the ~1.6 s that importing cp_model
costs (`python -X importtime`), which alone would break `autoparallel plan`'s 2 s budget.

While cp_model is imported, `pandas` resolves to a placeholder that holds only the two names
cp_model's module level touches (`pd.Index`, `pd.Series` in type aliases). Afterwards the placeholder
leaves `sys.modules`, so any later `import pandas` gets the real library, and cp_model's own `pd` is
swapped for a proxy that imports the real pandas on first use, so its pandas helpers still work.
If pandas is already loaded, or anything here fails, cp_model is imported the ordinary way.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any


class _LazyPandas:
    """Stands in for cp_model's `pd`: imports pandas on the first attribute access."""

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module("pandas"), name)


def _import_cp_model() -> types.ModuleType:
    name = "ortools.sat.python.cp_model"
    if name in sys.modules or "pandas" in sys.modules:
        return importlib.import_module(name)
    placeholder = types.ModuleType("pandas")
    placeholder.Index = type("Index", (), {})  # type: ignore[attr-defined]
    placeholder.Series = type("Series", (), {})  # type: ignore[attr-defined]
    sys.modules["pandas"] = placeholder
    try:
        module = importlib.import_module(name)
    except Exception:
        sys.modules.pop(name, None)
        sys.modules.pop("pandas", None)
        return importlib.import_module(name)
    finally:
        if sys.modules.get("pandas") is placeholder:
            del sys.modules["pandas"]
    if getattr(module, "pd", None) is placeholder:
        module.pd = _LazyPandas()  # type: ignore[attr-defined]
    return module


if TYPE_CHECKING:
    from ortools.sat.python import cp_model
else:
    cp_model = _import_cp_model()


class CpModel(cp_model.CpModel):
    """`cp_model.CpModel` without the deprecated CamelCase aliases (`NewIntVar`, `AddBoolOr`, ...) that its
    constructor binds on every instance (`_add_pre_pep8_methods`: a `dir()` walk and ~100 wrapped bound
    methods, about 0.4 ms a model, several thousand models in the test suite). autoparallel calls the
    snake_case methods only; the model's proto is the same.

    Those aliases are bound methods of the model, so they also held it in a reference cycle: it lived
    until the cyclic collector ran, and a proto read off a model nothing else holds
    (`build(space).model.proto.constraints`) stayed readable. One reference to itself keeps that
    lifetime (without it the model's C++ proto was freed at once and such a read gave None)."""

    def _add_pre_pep8_methods(self) -> None:
        self._kept_alive_as_before = self


__all__ = ["CpModel", "cp_model"]
