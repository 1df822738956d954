"""The deployment planner: integer replica counts per (model, GPU pool, candidate engine) in CP-SAT.

space.py    candidate engines with float-model coefficients (from the serving planner's tables)
encoder.py  CP-SAT variables, one function per constraint family, objectives
driver.py   lexicographic / weighted / ratio optimization
decoder.py  placement, vLLM lines, fleet figures re-evaluated by the float model
explain.py  conflicting families with numbers when the demand cannot be met
oracle.py   brute force over replica counts (shares only the space with the CP-SAT player)
"""

from __future__ import annotations

from autoparallel.errors import InputError, InternalError
from autoparallel.hardware import Cluster
from autoparallel.solvers.deployment.decoder import DeployedEngine, Deployment, ModelService, decode
from autoparallel.solvers.deployment.driver import (
    Objective,
    default_objective,
    needs_hard_demand,
    needs_mixed,
    objective_chain,
    objective_label,
    optimize,
)
from autoparallel.solvers.deployment.explain import explain_infeasible
from autoparallel.solvers.deployment.space import DeploymentSpace, FleetModel, build_deployment_space
from autoparallel.solvers.driver import Run
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.solvers.settings import SolverSettings

__all__ = [
    "DeployedEngine",
    "Deployment",
    "DeploymentSpace",
    "FleetModel",
    "ModelService",
    "build_deployment_space",
    "solve_deployment",
    "solve_space",
]


def solve_space(
    space: DeploymentSpace,
    objective: Objective | None = None,
    settings: SolverSettings | None = None,
    *,
    deadline: float | None = None,
) -> Deployment:
    """The optimal deployment over a built space, by `deadline` (a `time.perf_counter()`; default:
    the settings' time limit from now).

    Raises:
        InfeasibleError: the demand cannot be met (capacity objectives) or a model has no engine.
        SolverTimeoutError: no deployment found within the time limit.
        InputError: unknown objective.
    """
    settings = settings or SolverSettings()
    name = objective if objective is not None else default_objective(space)
    chain = objective_chain(name)
    if deadline is None:
        deadline = settings.deadline()
    run = Run(settings, deadline=deadline)
    counts = optimize(space, chain, run) if space.engines else None
    if counts is None:
        raise explain_infeasible(space, settings)
    return decode(space, counts, objective_label(name), run.stats(), soft_rates=not needs_hard_demand(chain))


def solve_deployment(
    models: list[FleetModel] | tuple[FleetModel, ...],
    cluster: Cluster,
    *,
    objective: Objective | None = None,
    settings: SolverSettings | None = None,
    options: ServingOptions | None = None,
) -> Deployment:
    """Replica counts of every candidate engine of every model on every pool, optimal for `objective`.

    objective: "goodput" (default with rates: served tokens/s within SLO, then $/hour), "throughput"
        (default without rates), "cost" ($/hour meeting every rate), "gpus", "cost_per_mtok"; a tuple
        for a lexicographic order; {name: weight} for a weighted sum. "tpot" (then throughput; one
        model): the least worst TPOT of the engines, over every admissible entry of the serving
        tables (`front.solve_mixed`, the query of a deployment front's first point), any rate a
        demand.

    The settings' time limit bounds the whole call, the serving tables of every (model, pool)
    included (SolverTimeoutError when they outlast it).

    Raises:
        InputError: tpot for a fleet of several models, or with goodput or cost_per_mtok.
    """
    settings = settings or SolverSettings()
    deadline = settings.deadline()
    if objective is not None and needs_mixed(objective_chain(objective)):
        return _solve_tpot(models, cluster, objective, settings, options, deadline)
    space = build_deployment_space(models, cluster, options, deadline=deadline)
    return solve_space(space, objective, settings, deadline=deadline)


def _solve_tpot(
    models: list[FleetModel] | tuple[FleetModel, ...],
    cluster: Cluster,
    objective: Objective,
    settings: SolverSettings,
    options: ServingOptions | None,
    deadline: float,
) -> Deployment:
    """`solve_deployment` at a tpot objective: one model's aggregated engines in the mixed space."""
    from autoparallel.objectives import DEPLOYMENT
    from autoparallel.solvers.deployment.front import solve_mixed

    if len(models) != 1:
        raise InputError(
            f"objective tpot is the worst TPOT of one model's engines; a fleet of {len(models)} models "
            f"optimizes {', '.join(n.replace('_', '-') for n in DEPLOYMENT if n != 'tpot')}"
        )
    point = solve_mixed(
        models[0],
        cluster,
        objective,
        mode="off",
        settings=settings,
        options=options,
        deadline=deadline,
    )
    if point.aggregated is None:
        raise InternalError("a mixed space of mode off returned a disaggregated deployment")
    return point.aggregated
