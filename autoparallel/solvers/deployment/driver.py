"""solve_deployment: replica counts per candidate engine, proved by CP-SAT.

space   = space.build_deployment_space(...)   candidate engines with float-model coefficients
encoded = encoder.build(space, hard_demand)   replica-count variables, constraint families
solve   lexicographically (each level fixed at its optimum before the next), weighted, or, for
        $/M tokens, Dinkelbach's method (minimize cost − λ · goodput until λ stops falling)
decode  decoder.decode(...)                   placement, vLLM lines, fleet figures from the float model
explain on INFEASIBLE: explain.explain_infeasible names the conflicting families with numbers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction

from autoparallel.errors import InputError, InternalError, SolverTimeoutError
from autoparallel.solvers.cpsat import cp_model
from autoparallel.solvers.deployment.encoder import (
    MAXIMIZED,
    OBJECTIVES,
    EncodedDeployment,
    build,
    model_weight,
    set_objective,
)
from autoparallel.solvers.deployment.space import DeploymentSpace
from autoparallel.solvers.settings import SolverSettings, SolverStats

Objective = str | tuple[str, ...] | dict[str, float]

CHAINS: dict[str, tuple[str, ...]] = {
    "goodput": ("goodput", "cost"),
    "throughput": ("throughput", "cost"),
    "cost": ("cost", "throughput"),
    "gpus": ("gpus", "cost", "throughput"),
    "cost_per_mtok": ("cost_per_mtok",),
}
"""Lexicographic order used for a single objective name: ties broken by the next ones."""


def default_objective(space: DeploymentSpace) -> str:
    """goodput when a model has a request rate (serve it, then as cheaply as possible), else throughput."""
    return "goodput" if any(fm.workload.request_rate for fm in space.models) else "throughput"


def objective_chain(objective: Objective) -> tuple[str, ...] | dict[str, float]:
    """Validate an objective and expand a single name to its lexicographic chain."""
    names = list(objective) if isinstance(objective, dict | tuple | list) else [objective]
    bad = [n for n in names if n not in OBJECTIVES]
    if bad or not names:
        raise InputError(
            f"unknown deployment objective {bad or objective!r}; choose from {', '.join(OBJECTIVES)}"
        )
    if isinstance(objective, dict):
        if "cost_per_mtok" in objective:
            raise InputError(
                "cost_per_mtok is a ratio and cannot be weighted; weight cost and goodput instead"
            )
        if any(not 0 < w < 1e6 for w in objective.values()):
            raise InputError(f"objective weights must be in (0, 1e6): {objective}")
        return dict(objective)
    if isinstance(objective, str):
        return CHAINS[objective]
    if "cost_per_mtok" in names and len(names) > 1:
        raise InputError("cost_per_mtok cannot be part of a lexicographic order")
    return tuple(names)


def needs_hard_demand(chain: tuple[str, ...] | dict[str, float]) -> bool:
    """Rates are constraints unless goodput (which counts served requests up to the rate) leads."""
    first = next(iter(chain))
    return first != "goodput"


@dataclass
class Run:
    """Statistics accumulated over the CP-SAT calls behind one result."""

    settings: SolverSettings
    wall_s: float = 0.0
    solves: int = 0
    status: str = "OPTIMAL"
    primary: tuple[float, float] = (0.0, 0.0)
    levels: list[tuple[str, int]] = field(default_factory=list)
    """(objective, optimum) of each level in solver units."""

    def stats(self) -> SolverStats:
        value, bound = self.primary
        return SolverStats.of(
            status=self.status,
            wall_s=self.wall_s,
            value=value,
            bound=bound,
            solves=self.solves,
            settings=self.settings,
        )


def _solve(enc: EncodedDeployment, run: Run) -> cp_model.CpSolver | None:
    """One CP-SAT call; None when infeasible."""
    solver = cp_model.CpSolver()
    p = solver.parameters
    p.max_time_in_seconds = run.settings.time_limit_s
    p.num_workers = run.settings.workers
    p.random_seed = run.settings.seed
    p.log_search_progress = run.settings.log_search
    if run.settings.workers > 1:
        p.interleave_search = True
    start = time.perf_counter()
    status = solver.solve(enc.model)
    run.wall_s += time.perf_counter() - start
    run.solves += 1
    if status == cp_model.INFEASIBLE:
        return None
    if status == cp_model.MODEL_INVALID:
        raise InternalError(f"invalid CP-SAT deployment model: {enc.model.validate()}")
    if status == cp_model.UNKNOWN:
        raise SolverTimeoutError(
            f"no feasible deployment found within {run.settings.time_limit_s:g} s "
            "(raise SolverSettings.time_limit_s)"
        )
    if status == cp_model.FEASIBLE:
        run.status = "FEASIBLE"
    return solver


def _read(enc: EncodedDeployment, solver: cp_model.CpSolver) -> list[int]:
    return [solver.value(x) for x in enc.vars.replicas]


def _hint(enc: EncodedDeployment, counts: list[int]) -> None:
    enc.model.clear_hints()
    for x, n in zip(enc.vars.replicas, counts, strict=True):
        enc.model.add_hint(x, n)


def optimize(space: DeploymentSpace, chain: tuple[str, ...] | dict[str, float], run: Run) -> list[int] | None:
    """Replica counts of the optimum (lexicographic, weighted or ratio); None when infeasible."""
    enc = build(space, hard_demand=needs_hard_demand(chain))
    if isinstance(chain, dict):
        set_objective(enc, chain)
        solver = _solve(enc, run)
        if solver is None:
            return None
        run.primary = (solver.objective_value, solver.best_objective_bound)
        return _read(enc, solver)
    if chain == ("cost_per_mtok",):
        return _dinkelbach(enc, run)
    counts: list[int] | None = None
    for level, name in enumerate(chain):
        set_objective(enc, name)
        solver = _solve(enc, run)
        if solver is None:
            if level == 0:
                return None
            raise InternalError(f"lexicographic level {name!r} became infeasible")
        counts = _read(enc, solver)
        value = round(solver.objective_value)
        run.levels.append((name, value))
        if level == 0:
            run.primary = (solver.objective_value, solver.best_objective_bound)
        if level + 1 < len(chain):
            _fix(enc, name, value, run.settings)
            _hint(enc, counts)
    return counts


def _fix(enc: EncodedDeployment, name: str, value: int, settings: SolverSettings) -> None:
    slack = int(abs(value) * settings.lexicographic_tolerance)
    expr = enc.objective_expr(name)
    if name in MAXIMIZED:
        enc.model.add(expr >= value - slack).with_name(f"lexicographic[{name}]")
    else:
        enc.model.add(expr <= value + slack).with_name(f"lexicographic[{name}]")


def expr_value(enc: EncodedDeployment, name: str, counts: list[int]) -> int:
    """Objective `name`'s value at replica counts `counts` (served = min(capacity, demand))."""
    space = enc.space
    if name != "goodput":
        coeffs = {
            "throughput": lambda e: (
                space.models[e.model].workload.osl * e.capacity_milli_rps * model_weight(space, e.model)
            ),
            "cost": lambda e: e.micro_usd_per_hour,
            "gpus": lambda e: e.gpus,
        }[name]
        return sum(coeffs(e) * n for e, n in zip(space.engines, counts, strict=True))
    total = 0
    for m, fm in enumerate(space.models):
        cap = sum(
            e.capacity_milli_rps * n for e, n in zip(space.engines, counts, strict=True) if e.model == m
        )
        served = min(cap, fm.demand_milli_rps) if fm.demand_milli_rps else cap
        total += model_weight(space, m) * fm.workload.osl * served
    return total


def _dinkelbach(enc: EncodedDeployment, run: Run) -> list[int] | None:
    """min cost / goodput: start from the cheapest plan, then minimize cost·T0 − C0·goodput while it
    finds a strictly lower ratio (Dinkelbach 1967; finite: each step strictly lowers the ratio over a
    finite set of plans). λ = C0/T0 is exact while the products stay below 2^62, else rounded."""
    set_objective(enc, "cost")
    solver = _solve(enc, run)
    if solver is None:
        return None
    counts = _read(enc, solver)
    cost, goodput = expr_value(enc, "cost", counts), expr_value(enc, "goodput", counts)
    served = enc.objective_expr("goodput")
    spend = enc.objective_expr("cost")
    for _ in range(64):
        lam = Fraction(cost, max(goodput, 1))
        if max(lam.numerator, lam.denominator) * 10**10 > 2**62:
            lam = lam.limit_denominator(10**6)
        enc.model.minimize(spend * lam.denominator - served * lam.numerator)
        _hint(enc, counts)
        solver = _solve(enc, run)
        if solver is None:
            raise InternalError("the cost-per-token model became infeasible")
        new = _read(enc, solver)
        c, g = expr_value(enc, "cost", new), expr_value(enc, "goodput", new)
        if c * goodput >= cost * g:  # no strictly lower cost / goodput
            break
        counts, cost, goodput = new, c, g
    run.primary = (cost / max(goodput, 1), cost / max(goodput, 1))
    run.levels.append(("cost_per_mtok", 0))
    return counts
