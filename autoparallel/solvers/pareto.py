"""Exact Pareto fronts of two or more objectives, serving and training, by lexicographic CP-SAT queries.

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

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from autoparallel.errors import InputError, InternalError, SolverTimeoutError
from autoparallel.hardware import Cluster
from autoparallel.models.spec import ModelSpec
from autoparallel.perf.training import cost_to_tokens
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
from autoparallel.solvers.training_decoder import TrainingSolution
from autoparallel.solvers.training_encoder import EncodedTraining
from autoparallel.solvers.training_objective import objective_expr
from autoparallel.solvers.training_points import Point as TrainingPoint
from autoparallel.solvers.training_points import evaluate_point
from autoparallel.solvers.training_space import TrainingOptions
from autoparallel.solvers.training_tables import TrainingTables
from autoparallel.solvers.training_vars import Expr
from autoparallel.workload import Serving, Training

if TYPE_CHECKING:
    from autoparallel.solvers.training import _Run

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

    def __iter__(self) -> Iterator[ServingSolution]:
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


# ----- training -----------------------------------------------------------------------------------------
TRAINING_OBJECTIVES = ("throughput", "cost", "memory")
"""Training front objectives, all minimised in solver units: step time (µs; throughput and tokens/s are
its inverse), GPUs × step time (µs·GPUs; MFU ∝ its inverse and $ to train ∝ it, for a fixed model and
token budget: `mfu` names the same objective), peak stage memory (MiB; headroom is its complement)."""
TRAINING_ALIASES = {"mfu": "cost", "headroom": "memory", "step_time": "throughput", "tokens": "throughput"}


@dataclass
class TrainingFront:
    """Training plans on a front (best first on the first objective); fields as `ServingFront`."""

    objectives: tuple[str, ...]
    solutions: list[TrainingSolution] = field(default_factory=list)
    complete: bool = False
    cap: int = DEFAULT_CAP
    solves: int = 0
    wall_s: float = 0.0
    vectors: list[tuple[int, ...]] = field(default_factory=list)
    """Each point's objective values in solver units (µs, µs·GPUs, MiB), in `objectives` order."""

    def __len__(self) -> int:
        return len(self.solutions)

    def __iter__(self) -> Iterator[TrainingSolution]:
        return iter(self.solutions)

    def __getitem__(self, i: int) -> TrainingSolution:
        return self.solutions[i]


def pareto_training(
    model: ModelSpec,
    cluster: Cluster,
    workload: Training,
    *,
    objectives: tuple[str, ...] = ("throughput", "memory"),
    settings: SolverSettings | None = None,
    options: TrainingOptions | None = None,
    points: int = DEFAULT_CAP,
) -> TrainingFront:
    """Non-dominated training layouts for `objectives` (two or more of `TRAINING_OBJECTIVES`), by the
    same lexicographic queries as `pareto_serving`. `cost` differs from `throughput` only when layouts
    may use fewer GPUs than the cluster has (`TrainingOptions.world_sizes`).

    Raises:
        InfeasibleError: nothing fits (the reasons name the conflicting families with numbers).
        InputError: fewer than two objectives, an unknown one, or the same one twice (also under
            another name, e.g. mfu and cost).
    """
    from autoparallel.solvers.training import _Run, evaluate, explain_infeasible, minimal_core, prepare
    from autoparallel.solvers.training_encoder import build as build_training

    names = tuple(TRAINING_ALIASES.get(n, n) for n in objectives)
    bad = [n for n in names if n not in TRAINING_OBJECTIVES]
    if len(names) < 2 or bad:
        raise InputError(
            f"a training front needs two or more of throughput, mfu, cost, headroom; got {list(objectives)}"
        )
    if len(set(names)) != len(names):
        raise InputError(
            f"a training front needs different objectives (mfu and cost are one), got {list(objectives)}"
        )
    if points < 1:
        raise InputError(f"points must be at least 1, got {points}")
    settings = (settings or SolverSettings()).model_copy(update={"lexicographic_tolerance": 0.0})
    options = (options or TrainingOptions()).model_copy(update={"runner_up": False})
    t, bounds, hint = prepare(model, cluster, workload, options, min(2.0, settings.time_limit_s / 10))
    front = TrainingFront(objectives=names, cap=points)
    found = front.vectors
    proven = True
    while len(found) < points:
        enc = build_training(t, bounds)
        exprs = {n: objective_expr(enc.model, t, enc.vars, n) for n in names}
        for k, vector in enumerate(found):
            better = []
            for name, value in zip(names, vector, strict=True):
                lit = enc.model.new_bool_var(f"improves[{k}][{name}]")
                enc.model.add(exprs[name] <= value - 1).only_enforce_if(lit)
                better.append(lit)
            enc.model.add_bool_or(better).with_name(f"not_dominated[{k}]")
        run = _Run(settings)
        try:
            # Only the first query is seeded with the planner's hint: later ones exclude it.
            answer = _lexicographic(enc, exprs, run, hint if not found else None, settings.time_limit_s)
        except SolverTimeoutError:
            break
        front.solves += run.solves
        front.wall_s += run.wall_s
        if answer is None:
            if not found:
                raise explain_infeasible(t, minimal_core(enc, run.core, settings))
            front.complete = proven
            break
        point, vector = answer
        proven = proven and run.status == "OPTIMAL"
        config, memory, perf, _ = evaluate(t, point)
        cost = cost_to_tokens(model, cluster, config, workload.tokens, perf=perf) if workload.tokens else None
        front.solutions.append(
            TrainingSolution(
                config=config,
                memory=memory,
                perf=perf,
                cost=cost,
                objective=">".join(names),
                stats=run.stats(),
                binding=(),
                runner_up=None,
            )
        )
        found.append(vector)
    return front


def _lexicographic(
    enc: EncodedTraining, exprs: dict[str, Expr], run: _Run, hint: TrainingPoint | None, time_limit_s: float
) -> tuple[TrainingPoint, tuple[int, ...]] | None:
    """Minimise each expression in turn, each fixed at its optimum before the next; the point and its
    objective values as the solver computed them. None when infeasible. A time-out at a later level
    returns the previous level's point (status FEASIBLE: the front is then not proven).

    Raises:
        SolverTimeoutError: the first level found nothing within the time limit.
        InternalError: a later level became infeasible.
    """
    from autoparallel.solvers.training import _solve
    from autoparallel.solvers.training_decoder import read_point
    from autoparallel.solvers.training_encoder import add_hint

    enc.model.add_assumptions(list(enc.families.values()))
    if hint is not None:
        add_hint(enc, hint)
    answer: tuple[TrainingPoint, tuple[int, ...]] | None = None
    for level, (name, expr) in enumerate(exprs.items()):
        enc.model.minimize(expr)
        solver = _solve(enc, run, time_limit_s)
        if solver is None and run.status == "UNKNOWN":
            if answer is None:
                raise SolverTimeoutError(f"no training plan found within {time_limit_s:g} s")
            run.status = "FEASIBLE"
            return answer
        if solver is None:
            if level == 0:
                return None
            raise InternalError(f"lexicographic level {name!r} became infeasible")
        point = read_point(enc, solver)
        answer = (point, tuple(int(solver.value(e)) for e in exprs.values()))
        if level == 0:
            run.primary = (solver.objective_value, solver.best_objective_bound)
        enc.model.add(expr <= round(solver.objective_value)).with_name(f"lexicographic[{name}]")
        enc.model.clear_hints()
        add_hint(enc, point)
    return answer


def _training_scaled(t: TrainingTables, point: TrainingPoint, names: tuple[str, ...]) -> tuple[int, ...]:
    """The solver-unit objective values of a training point (as `training_objective` computes them)."""
    values = evaluate_point(t, point)
    world = t.space.shapes[point.shape].world
    by_name = {"throughput": values.step_us, "cost": world * values.step_us, "memory": max(values.memory_mib)}
    return tuple(by_name[n] for n in names)
