"""Pareto fronts of two serving objectives by the ε-constraint method.

    1. optimize objective A, then B with A fixed (lexicographic): one front point;
    2. require B strictly better than that point's B (by one solver unit) and repeat,
    until the requirement is infeasible or `points` points are found.

Every point is optimal for A among plans at least that good on B, so each is non-dominated (up to
the solver units of units.py); the points come out from best-A to best-B.
"""

from __future__ import annotations

from autoparallel.errors import InputError
from autoparallel.hardware import Cluster
from autoparallel.models.spec import ModelSpec
from autoparallel.objectives import parse_objective
from autoparallel.solvers import driver
from autoparallel.solvers.serving.decoder import ServingSolution
from autoparallel.solvers.serving.encoder import MAXIMIZED, build, candidate_entries, replica_cap
from autoparallel.solvers.serving.explain import explain_infeasible
from autoparallel.solvers.serving.solve import make_solution
from autoparallel.solvers.serving.space import Point, ServingOptions, ServingSpace, build_space
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving


def pareto_serving(
    model: ModelSpec,
    cluster: Cluster,
    workload: Serving | str,
    *,
    objectives: tuple[str, str] = ("throughput", "tpot"),
    settings: SolverSettings | None = None,
    options: ServingOptions | None = None,
    points: int = 16,
) -> list[ServingSolution]:
    """Non-dominated plans trading `objectives[0]` against `objectives[1]`, best first on the first.

    Raises:
        InfeasibleError: no plan meets the request at all (the reasons name the constraint families).
        InputError: unknown objectives, or the same one twice.
    """
    a, b = parse_objective(tuple(objectives), "serving")
    if a == b:
        raise InputError(f"a Pareto front needs two different objectives, got {a!r} twice")
    settings = settings or SolverSettings()
    space = build_space(model, cluster, Serving.preset(workload) if isinstance(workload, str) else workload,
                        options or ServingOptions())
    front: list[ServingSolution] = []
    bound: int | None = None
    if not candidate_entries(space):
        raise explain_infeasible(space, settings)
    while len(front) < points:
        enc = build(space)
        if bound is not None:
            expr = enc.vars.objective_expr(b)
            better = expr >= bound + 1 if b in MAXIMIZED else expr <= bound - 1
            enc.model.add(better).with_name(f"epsilon[{b}]")
        run = driver.Run(settings)
        point = driver.optimize(enc, (a, b), run)
        if point is None:
            if not front:
                raise explain_infeasible(space, settings)
            break
        front.append(make_solution(space, (a, b), (a, b), point, run))
        bound = _scaled(space, point, b)
    return front


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
