"""Exact Pareto fronts of two or more serving objectives, by lexicographic CP-SAT queries.

Each query asks for the lexicographic optimum (objective 1, then 2, ... with the earlier ones fixed)
among plans that no point found so far weakly dominates:

    for every found point f:   OR_k ( objective_k strictly better than f_k by one solver unit )

The answer is non-dominated: a plan dominating it would pass the same constraints and be
lexicographically better. Each answer is a new objective vector, so the loop visits every vector of
the front (one plan per vector) and stops when the query is infeasible: the front is then complete.
With two objectives the constraint reduces to the classic ε-constraint (the second strictly better
than the last point's). Values are compared in the solver units of units.py (µs, milli-tokens/s,
µ$/M tokens, KiB), so plans closer than one unit on every objective count as one point.

The loop stops early at `points` points (the cap; the result says whether it was reached) or when a
solve hits its time limit (that point is then only FEASIBLE and the front is not proven complete).
Points come out best-first on the first objective.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from autoparallel.errors import InputError
from autoparallel.hardware import Cluster
from autoparallel.models.spec import ModelSpec
from autoparallel.solvers.serving import (
    ALIASES,
    SolveRun,
    coerce_workload,
    make_solution,
    objective_chain,
    optimize,
)
from autoparallel.solvers.serving_decoder import Point, ServingSolution
from autoparallel.solvers.serving_encoder import (
    MAXIMIZED,
    EncodedServing,
    build,
    candidate_entries,
    replica_cap,
)
from autoparallel.solvers.serving_explain import explain_infeasible
from autoparallel.solvers.serving_space import ServingOptions, ServingSpace, build_space
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving

DEFAULT_CAP = 200
"""Most points a front holds by default (fronts of the zoo's models on 8-64 GPUs have 5-60)."""


@dataclass
class ServingFront:
    """The points of a front (best first on the first objective) and whether the front is complete."""

    objectives: tuple[str, ...]
    solutions: list[ServingSolution] = field(default_factory=list)
    complete: bool = False
    """True when CP-SAT proved no further non-dominated vector exists (every solve OPTIMAL)."""
    cap: int = DEFAULT_CAP
    """The most points asked for."""
    solves: int = 0
    """CP-SAT calls made."""
    wall_s: float = 0.0
    """Their wall time, seconds."""

    def __len__(self) -> int:
        return len(self.solutions)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.solutions)

    def __getitem__(self, i: int) -> ServingSolution:
        return self.solutions[i]


def pareto_serving(
    model: ModelSpec,
    cluster: Cluster,
    workload: Serving | str,
    *,
    objectives: tuple[str, ...] = ("throughput", "tpot"),
    settings: SolverSettings | None = None,
    options: ServingOptions | None = None,
    points: int = DEFAULT_CAP,
) -> ServingFront:
    """Non-dominated plans for `objectives` (two or more), best first on the first.

    Raises:
        InfeasibleError: no plan meets the request at all (the reasons name the constraint families).
        InputError: fewer than two objectives, an unknown one, or the same one twice.
    """
    names = tuple(ALIASES.get(n, n) for n in objectives)
    if len(names) < 2:
        raise InputError(f"a Pareto front needs two or more objectives, got {list(objectives)}")
    objective_chain(names)
    if len(set(names)) != len(names):
        raise InputError(f"a Pareto front needs different objectives, got {list(objectives)}")
    if points < 1:
        raise InputError(f"points must be at least 1, got {points}")
    # Exactness needs ties only on the earlier objectives of each lexicographic query.
    settings = (settings or SolverSettings()).model_copy(update={"lexicographic_tolerance": 0.0})
    space = build_space(model, cluster, coerce_workload(workload), options or ServingOptions())
    if not candidate_entries(space):
        raise explain_infeasible(space, settings)
    front = ServingFront(objectives=names, cap=points)
    found: list[tuple[int, ...]] = []
    proven = True
    while True:
        if len(found) >= points:
            break
        enc = build(space)
        for k, vector in enumerate(found):
            _not_dominated_by(enc, names, vector, k)
        run = SolveRun(settings)
        point = optimize(enc, names, run)
        front.solves += run.solves
        front.wall_s += run.wall_s
        if point is None:
            if not found:
                raise explain_infeasible(space, settings)
            front.complete = proven
            break
        proven = proven and run.status == "OPTIMAL"
        front.solutions.append(make_solution(space, names, names, point, run, with_runner_up=False))
        found.append(tuple(_scaled(space, point, n) for n in names))
    return front


def _not_dominated_by(enc: EncodedServing, names: tuple[str, ...], vector: tuple[int, ...], k: int) -> None:
    """At least one objective strictly better than the found point `vector` (one solver unit)."""
    better = []
    for name, value in zip(names, vector, strict=True):
        lit = enc.model.new_bool_var(f"improves[{k}][{name}]")
        expr = enc.vars.objective_expr(name)
        enc.model.add(expr >= value + 1 if name in MAXIMIZED else expr <= value - 1).only_enforce_if(lit)
        better.append(lit)
    enc.model.add_bool_or(better).with_name(f"not_dominated[{k}]")


def _scaled(space: ServingSpace, point: Point, name: str) -> int:
    """The solver-unit value of objective `name` at `point` (as the encoder computes it)."""
    t, i = space.tables, point.entry(space)
    return {
        "throughput": t.tps_milli[i] * replica_cap(space, i),
        "ttft": t.ttft_us[i],
        "tpot": t.step_us[i],
        "cost": t.cost_micro_usd[i],
        "memory": space.budget_kib[point.util] - t.mem_used_kib[i],
    }[name]
