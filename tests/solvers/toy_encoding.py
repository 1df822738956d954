"""A toy CP-SAT encoding the driver's tests solve (test_driver.py, test_s40_f1_top_core_fixes.py): the
`driver.Encoding` protocol over two small integers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from autoparallel.solvers.cpsat import cp_model


@dataclass
class Toy:
    """x in 0..9 (the 'shape'), y in 0..9; objective names: x (max), y (min), sum (max)."""

    explain: bool = False
    model: cp_model.CpModel = field(default_factory=cp_model.CpModel)
    families: dict[str, cp_model.IntVar] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.x = self.model.new_int_var(0, 9, "x")
        self.y = self.model.new_int_var(0, 9, "y")
        self.is_x = [self.model.new_bool_var(f"x=={k}") for k in range(10)]
        for k, lit in enumerate(self.is_x):
            self.model.add(self.x == k).only_enforce_if(lit)
        self.model.add_exactly_one(self.is_x)

    def family(self, name: str) -> cp_model.IntVar:
        self.families[name] = self.model.new_bool_var(name)
        if not self.explain:
            self.model.add(self.families[name] == 1)
        return self.families[name]

    def objective_expr(self, name: str) -> cp_model.LinearExprT:
        return {"x": self.x, "y": self.y, "sum": self.x + self.y}[name]

    def maximized(self, name: str) -> bool:
        return name != "y"

    def objective_scale(self, name: str) -> int:
        return 18 if name == "sum" else 9

    def read(self, solver: cp_model.CpSolver) -> tuple[int, int]:
        return int(solver.value(self.x)), int(solver.value(self.y))

    def hint(self, point: tuple[int, int]) -> None:
        self.model.clear_hints()
        self.model.add_hint(self.x, point[0])

    def shape_literals(self, point: tuple[int, int]) -> Sequence[cp_model.IntVar]:
        return [self.is_x[point[0]]]
