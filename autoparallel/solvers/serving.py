"""solve_serving: the best vLLM deployment of a model on a cluster for a workload, proved by CP-SAT.

space   = serving_space.build_space(...)        domains + integer tables from the float model
encoded = serving_encoder.build(space)          CP-SAT variables and constraint families
solve   lexicographically (primary, then the next objective with the primary fixed within ε)
decode  serving_decoder.decode(...)             ServingConfig, re-checked by the float model
explain on INFEASIBLE: re-solve with each family behind an assumption literal; CP-SAT's
        sufficient_assumptions_for_infeasibility names the families; serving_explain adds numbers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from autoparallel.configs import ServingConfig
from autoparallel.errors import InputError, InternalError, SolverTimeoutError
from autoparallel.hardware import Cluster
from autoparallel.models.spec import ModelSpec
from autoparallel.perf.serving import ServingEstimate
from autoparallel.solvers import serving_explain
from autoparallel.solvers.cpsat import cp_model
from autoparallel.solvers.serving_decoder import (
    Objective,
    Point,
    RunnerUp,
    ServingSolution,
    binding_constraints,
    decode,
    objective_value,
    read_point,
    why_lost,
)
from autoparallel.solvers.serving_encoder import (
    MAXIMIZED,
    OBJECTIVES,
    EncodedServing,
    build,
    candidate_entries,
    set_objective,
    tune_presolve,
)
from autoparallel.solvers.serving_space import ServingOptions, ServingSpace, build_space
from autoparallel.solvers.settings import SolverSettings, SolverStats
from autoparallel.workload import Serving

DEFAULT_CHAINS: dict[str, tuple[str, ...]] = {
    "throughput": ("throughput", "tpot"),
    "ttft": ("ttft", "throughput"),
    "tpot": ("tpot", "throughput"),
    "cost": ("cost", "throughput"),
    "memory": ("memory", "throughput"),
}
"""Lexicographic order used for a single objective name: ties (or ε-ties) broken by the second."""


ALIASES = {"headroom": "memory"}
"""Other names accepted for an objective."""


def objective_chain(objective: Objective) -> tuple[str, ...] | dict[str, float]:
    """Validate an objective and expand a single name to its lexicographic chain."""
    if isinstance(objective, dict):
        weights = {ALIASES.get(k, k): w for k, w in objective.items()}
        bad = [k for k in weights if k not in OBJECTIVES]
        if bad or not weights:
            raise InputError(f"unknown objective {bad or objective!r}; choose from {', '.join(OBJECTIVES)}")
        return weights
    names = tuple(ALIASES.get(n, n) for n in ((objective,) if isinstance(objective, str) else objective))
    bad = [n for n in names if n not in OBJECTIVES]
    if bad or not names:
        raise InputError(f"unknown objective {bad or objective!r}; choose from {', '.join(OBJECTIVES)}")
    return DEFAULT_CHAINS[names[0]] if len(names) == 1 else names


@dataclass
class SolveRun:
    """Solver statistics accumulated over the CP-SAT calls behind one result."""

    settings: SolverSettings
    wall_s: float = 0.0
    solves: int = 0
    status: str = "OPTIMAL"
    primary: tuple[float, float] = (0.0, 0.0)
    statuses: list[str] = field(default_factory=list)

    def stats(self) -> SolverStats:
        value, bound = self.primary
        return SolverStats.of(status=self.status, wall_s=self.wall_s, value=value, bound=bound,
                              solves=self.solves, settings=self.settings)


def _solver(settings: SolverSettings) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    p = solver.parameters
    p.max_time_in_seconds = settings.time_limit_s
    p.num_workers = settings.workers
    p.random_seed = settings.seed
    p.catch_sigint_signal = False  # Ctrl-C interrupts the command (exit 130), not just the search
    p.log_search_progress = settings.log_search
    tune_presolve(p)
    if settings.workers > 1:
        p.interleave_search = True
    return solver


def _solve(enc: EncodedServing, run: SolveRun) -> cp_model.CpSolver | None:
    """One CP-SAT call; None when infeasible. Raises on time-out without a solution or invalid model."""
    solver = _solver(run.settings)
    start = time.perf_counter()
    status = solver.solve(enc.model)
    run.wall_s += time.perf_counter() - start
    run.solves += 1
    if status == cp_model.INFEASIBLE:
        return None
    if status == cp_model.MODEL_INVALID:
        raise InternalError(f"invalid CP-SAT serving model: {enc.model.validate()}")
    if status == cp_model.UNKNOWN:
        raise SolverTimeoutError(
            f"no feasible serving plan found within {run.settings.time_limit_s:g} s "
            "(raise SolverSettings.time_limit_s)"
        )
    if status == cp_model.FEASIBLE:
        run.status = "FEASIBLE"
    return solver


def _hint(enc: EncodedServing, solver: cp_model.CpSolver) -> None:
    enc.model.clear_hints()
    v = enc.vars
    for lit in [*v.shape, *v.runtime, *v.batch, *v.util, *v.mml]:
        enc.model.add_hint(lit, solver.boolean_value(lit))
    enc.model.add_hint(v.replicas, solver.value(v.replicas))


def optimize(enc: EncodedServing, chain: tuple[str, ...] | dict[str, float], run: SolveRun) -> Point | None:
    """Lexicographic (or weighted) optimization; the point of the last level, None if infeasible."""
    levels: list[str | dict[str, float]] = [chain] if isinstance(chain, dict) else list(chain)
    point = None
    for level, objective in enumerate(levels):
        set_objective(enc, objective)
        solver = _solve(enc, run)
        if solver is None:
            if level == 0:
                return None
            raise InternalError(f"lexicographic level {objective!r} became infeasible")
        point = read_point(enc, solver)
        if level == 0:
            run.primary = (solver.objective_value, solver.best_objective_bound)
        if isinstance(objective, str) and level + 1 < len(levels):
            _fix_within(enc, objective, round(solver.objective_value), run.settings)
            _hint(enc, solver)
    return point


def _fix_within(enc: EncodedServing, name: str, value: int, settings: SolverSettings) -> None:
    slack = int(abs(value) * settings.lexicographic_tolerance)
    expr = enc.vars.objective_expr(name)
    if name in MAXIMIZED:
        enc.model.add(expr >= value - slack).with_name(f"lexicographic[{name}]")
    else:
        enc.model.add(expr <= value + slack).with_name(f"lexicographic[{name}]")


def coerce_workload(workload: Serving | str) -> Serving:
    return Serving.preset(workload) if isinstance(workload, str) else workload


def solve_serving(
    model: ModelSpec,
    cluster: Cluster,
    workload: Serving | str,
    *,
    objective: Objective = "throughput",
    settings: SolverSettings | None = None,
    options: ServingOptions | None = None,
    runner_up: bool = True,
) -> ServingSolution:
    """The best vLLM deployment of `model` on `cluster` for `workload`.

    Args:
        objective: "throughput" (total output tokens/s), "ttft", "tpot", "cost" ($ per million
            output tokens), "memory" (KV headroom on the tightest GPU); a tuple for a lexicographic
            order; or {name: weight} for a weighted sum. A single name is broken by a second one
            (`DEFAULT_CHAINS`).
        settings: time limit, workers, seed (copied into the result).
        options: the knobs' allowed values.
        runner_up: also solve for the best plan of another (tp, pp, ep) shape (one more solve).

    Raises:
        InfeasibleError: no plan meets the request; `reasons` names each conflicting constraint family
            with its numbers.
        SolverTimeoutError: no plan found within the time limit.
        InputError: unknown objective or invalid options.
    """
    settings = settings or SolverSettings()
    options = options or ServingOptions()
    chain = objective_chain(objective)
    space = build_space(model, cluster, coerce_workload(workload), options)
    run = SolveRun(settings)
    point = None
    if candidate_entries(space):
        point = optimize(build(space), chain, run)
    if point is None:
        raise serving_explain.explain_infeasible(space, settings)
    return make_solution(space, chain, objective, point, run, runner_up)


def make_solution(
    space: ServingSpace,
    chain: tuple[str, ...] | dict[str, float],
    objective: Objective,
    point: Point,
    run: SolveRun,
    with_runner_up: bool,
) -> ServingSolution:
    config, est = decode(space, point)
    primary = next(iter(chain))
    ru = _runner_up(space, chain, point, (config, est), run.settings) if with_runner_up else None
    return ServingSolution(
        config=config,
        estimate=est,
        objective=objective,
        objective_value=objective_value(est, primary),
        solver=run.stats(),
        binding=binding_constraints(space, point, est),
        runner_up=ru,
        settings=run.settings,
    )


def _runner_up(
    space: ServingSpace,
    chain: tuple[str, ...] | dict[str, float],
    point: Point,
    best: tuple[ServingConfig, ServingEstimate],
    settings: SolverSettings,
) -> RunnerUp | None:
    """Best plan whose (tp, pp, ep ranks) differs from the winner's (primary objective only)."""
    win = space.shapes[point.shape]
    enc = build(space)
    for s, x in zip(space.shapes, enc.vars.shape, strict=True):
        if (s.tp, s.pp, s.ep_ranks) == (win.tp, win.pp, win.ep_ranks):
            enc.model.add(x == 0).with_name("runner_up[other shape]")
    primary: tuple[str, ...] | dict[str, float] = chain if isinstance(chain, dict) else chain[:1]
    other = optimize(enc, primary, SolveRun(settings))
    if other is None:
        return None
    config, est = decode(space, other)
    name = next(iter(chain))
    return RunnerUp(config=config, estimate=est, why_lost=why_lost(name, best[1], best[0], est, config))
