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

The queries are one CP-SAT model over the whole space each (`_model_queries`), except the training
front of step time and peak memory, whose queries `training/front.py` answers from sub-models of
one (shape, micro-batch, ZeRO mode) triple each: the same answers, tens of times faster.

The loop stops early at `points` points (the cap; one more query says whether the front goes on past
it) or when a solve hits its time limit (that point is then only FEASIBLE and the front is not proven
complete).
Points come out best-first on the first objective.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from autoparallel.errors import InputError, SolverTimeoutError
from autoparallel.hardware import Cluster
from autoparallel.models.spec import ModelSpec
from autoparallel.objectives import canonical, parse_objective
from autoparallel.solvers import driver
from autoparallel.solvers.serving.decoder import ServingSolution
from autoparallel.solvers.serving.encoder import build, candidate_entries
from autoparallel.solvers.serving.explain import explain_infeasible
from autoparallel.solvers.serving.solve import make_solution
from autoparallel.solvers.serving.space import Point, ServingOptions, build_space
from autoparallel.solvers.settings import SolverSettings
from autoparallel.solvers.training.decoder import TrainingSolution
from autoparallel.solvers.training.encoder import build as build_training
from autoparallel.solvers.training.front import step_peak_queries
from autoparallel.solvers.training.points import Point as TrainingPoint
from autoparallel.solvers.training.solve import make_solution as make_training_solution
from autoparallel.solvers.training.solve import prepare, solve_training
from autoparallel.solvers.training.space import TrainingOptions
from autoparallel.solvers.training.space import build_space as build_training_space
from autoparallel.solvers.training.tables import build_tables
from autoparallel.workload import Serving, Training

DEFAULT_CAP = 200
"""Most points a front holds by default (fronts of the zoo's models on 8-64 GPUs have 5-60)."""

S = TypeVar("S")
P = TypeVar("P")
Progress = Callable[[int], None]
"""Hears the number of points a front has after each new one (a progress bar's update)."""


@dataclass
class Front(Generic[S]):
    """The points of a front (best first on the first objective) and whether the front is complete."""

    objectives: tuple[str, ...]
    solutions: list[S] = field(default_factory=list)
    complete: bool = False
    """True when CP-SAT proved no further non-dominated vector exists (every solve OPTIMAL)."""
    cap: int = DEFAULT_CAP
    """The most points asked for."""
    solves: int = 0
    """CP-SAT calls made."""
    wall_s: float = 0.0
    """Their wall time, seconds."""
    vectors: list[tuple[int, ...]] = field(default_factory=list)
    """Each point's objective values in solver units, in `objectives` order."""

    def __len__(self) -> int:
        return len(self.solutions)

    def __iter__(self) -> Iterator[S]:
        return iter(self.solutions)

    def __getitem__(self, i: int) -> S:
        return self.solutions[i]


def _not_dominated_by(
    enc: driver.Encoding[P], names: tuple[str, ...], vector: tuple[int, ...], k: int
) -> None:
    """At least one objective strictly better than the found point `vector` (one solver unit)."""
    better = []
    for name, value in zip(names, vector, strict=True):
        lit = enc.model.new_bool_var(f"improves[{k}][{name}]")
        expr = enc.objective_expr(name)
        enc.model.add(expr >= value + 1 if enc.maximized(name) else expr <= value - 1).only_enforce_if(lit)
        better.append(lit)
    enc.model.add_bool_or(better).with_name(f"not_dominated[{k}]")


def _no_better_first(enc: driver.Encoding[P], name: str, last: int) -> None:
    """A redundant cut: the first objective is no better than at the last point found. Each query's
    feasible set lies inside the previous one's, whose lexicographic optimum that point was; the cut
    lets CP-SAT drop the earlier points' "first objective better" branches at once (measured: a
    deployment front's queries went from seconds to tens of milliseconds)."""
    expr = enc.objective_expr(name)
    enc.model.add(expr <= last if enc.maximized(name) else expr >= last).with_name(f"no_better[{name}]")


Query = Callable[[], driver.Answer[P]]
"""The next point of a front; raises SolverTimeoutError when the limit came first."""


def _front(
    front: Front[S],
    query: Query[P],
    solution_of: Callable[[P, driver.Run], S],
    on_point: Progress | None = None,
) -> bool:
    """Fill `front` by `query` calls; False when the very first finds nothing (the caller explains
    it). `on_point` hears the number of points found after each. At the cap one more query says
    whether the front is complete (nothing beyond it) or cut (its answer is dropped).

    Raises:
        SolverTimeoutError: the very first query ran out of time (a later one ends the front, which
            is then not proven complete).
    """
    proven = True
    while True:
        try:
            found = query()
        except SolverTimeoutError:
            if not front.vectors:
                raise
            break
        point, run = found.point, found.run
        front.solves += run.solves
        front.wall_s += run.wall_s
        if point is None:
            if not front.vectors:
                return False
            front.complete = proven
            break
        if len(front.vectors) == front.cap:
            break  # one more point exists: the front is cut at the cap
        proven = proven and run.status == "OPTIMAL"
        front.solutions.append(solution_of(point, run))
        front.vectors.append(tuple(run.values[n] for n in front.objectives))
        if on_point is not None:
            on_point(len(front.vectors))
    return True


def _model_queries(
    front: Front[S], encode: Callable[[], driver.Encoding[P]], settings: SolverSettings, hint: P | None = None
) -> Query[P]:
    """Lexicographic queries of one CP-SAT model over the whole space, not dominated by the points of
    `front` found so far (the module docstring)."""
    last: list[P] = []

    def query() -> driver.Answer[P]:
        enc = encode()
        for k, vector in enumerate(front.vectors):
            _not_dominated_by(enc, front.objectives, vector, k)
        if front.vectors:
            _no_better_first(enc, front.objectives[0], front.vectors[-1][0])
        if last:
            # The last point is excluded now, but the next lies near it (one step along the front):
            # CP-SAT starts its search there (a hint may be infeasible; it is repaired or dropped).
            # Measured on the first 12 points of Qwen3-30B-A3B's training front on 16 H100s, in
            # alternating runs: 42-45 s without, 39-41 s with; the same points.
            enc.hint(last[-1])
        run = driver.Run(settings)
        # Only the first query is seeded with the planner's warm start: later ones exclude it.
        point = driver.optimize(enc, front.objectives, run, fallback=None if front.vectors else hint)
        if point is not None:
            last[:] = [point]
        return driver.Answer(point, run)

    return query


def _names(
    objectives: tuple[str, ...], points: int, resolve: Callable[[str], str], same: str = ""
) -> tuple[str, ...]:
    names = tuple(resolve(n) for n in objectives)
    if len(names) < 2:
        raise InputError(f"a Pareto front needs two or more objectives, got {list(objectives)}")
    if len(set(names)) != len(names):
        raise InputError(f"a Pareto front needs different objectives{same}, got {list(objectives)}")
    if points < 1:
        raise InputError(f"points must be at least 1, got {points}")
    return names


def pareto_serving(
    model: ModelSpec,
    cluster: Cluster,
    workload: Serving | str,
    *,
    objectives: tuple[str, ...] = ("throughput", "tpot"),
    settings: SolverSettings | None = None,
    options: ServingOptions | None = None,
    points: int = DEFAULT_CAP,
    on_point: Progress | None = None,
) -> Front[ServingSolution]:
    """Non-dominated plans for `objectives` (two or more), best first on the first (`on_point`: called
    with the count of points found after each, e.g. to drive a progress bar). Each query has the
    settings' time limit, and so do the tables before the first.

    Raises:
        InfeasibleError: no plan meets the request at all (the reasons name the constraint families).
        InputError: fewer than two objectives, an unknown one, or the same one twice.
        SolverTimeoutError: the tables outlast the time limit.
    """
    names = _names(tuple(objectives), points, lambda n: canonical(n, "serving"))
    parse_objective(names, "serving")
    # Exactness needs ties only on the earlier objectives of each lexicographic query.
    settings = (settings or SolverSettings()).model_copy(update={"lexicographic_tolerance": 0.0})
    w = Serving.preset(workload) if isinstance(workload, str) else workload
    deadline = settings.deadline()  # the tables within one query's limit
    space = build_space(model, cluster, w, options or ServingOptions(), deadline=deadline)
    if not candidate_entries(space):
        raise explain_infeasible(space, settings)
    front: Front[ServingSolution] = Front(objectives=names, cap=points)

    def solution(point: Point, run: driver.Run) -> ServingSolution:
        return make_solution(space, names, names, point, run)

    if not _front(front, _model_queries(front, lambda: build(space), settings), solution, on_point):
        raise explain_infeasible(space, settings)
    return front


# ----- training -----------------------------------------------------------------------------------------
TRAINING_SAME = {"mfu": "cost"}
"""Training objectives that are one CP-SAT expression: MFU ∝ 1 / (GPUs · step) and $ to train ∝ GPUs ·
step for a fixed model and token budget. All are minimised in solver units: step time (µs), GPUs × step
time (µs·GPUs), peak stage memory (MiB; headroom is its complement)."""


def pareto_training(
    model: ModelSpec,
    cluster: Cluster,
    workload: Training,
    *,
    objectives: tuple[str, ...] = ("throughput", "memory"),
    settings: SolverSettings | None = None,
    options: TrainingOptions | None = None,
    points: int = DEFAULT_CAP,
    on_point: Progress | None = None,
) -> Front[TrainingSolution]:
    """Non-dominated training layouts for `objectives` (two or more of throughput, mfu / cost,
    memory / headroom), by the same lexicographic queries as `pareto_serving` (`on_point` too).
    `cost` differs from `throughput` only when layouts may use fewer GPUs than the cluster has.

    Raises:
        InfeasibleError: nothing fits (the reasons name the conflicting families with numbers).
        InputError: fewer than two objectives, an unknown one, or the same one twice (also under
            another name, e.g. mfu and cost).
        SolverTimeoutError: the tables outlast the time limit.
    """
    names = _names(
        tuple(objectives),
        points,
        lambda n: TRAINING_SAME.get(canonical(n, "training"), canonical(n, "training")),
        " (mfu and cost are one)",
    )
    settings = (settings or SolverSettings()).model_copy(update={"lexicographic_tolerance": 0.0})
    options = (options or TrainingOptions()).model_copy(update={"runner_up": False})
    deadline = settings.deadline()  # the tables within one query's limit, as for serving
    t = build_tables(build_training_space(model, cluster, workload, options, deadline), deadline)
    bounds, hint = prepare(t, options, min(2.0, settings.time_limit_s / 10), deadline)
    front: Front[TrainingSolution] = Front(objectives=names, cap=points)

    def solution(point: TrainingPoint, run: driver.Run) -> TrainingSolution:
        return make_training_solution(t, point, run, ">".join(names))

    # The (step, peak) front by triples (training/front.py): the same front as the one-model queries.
    query = step_peak_queries(t, bounds, names, settings)
    if query is None:
        query = _model_queries(front, lambda: build_training(t, bounds), settings, hint)
    ok = _front(front, query, solution, on_point)
    if not ok:  # the planner's own explanation of why nothing fits
        solve_training(model, cluster, workload, settings=settings, options=options)
    return front
