"""solve_serving: the best vLLM deployment of a model on a cluster for a workload, decided by CP-SAT.

space   = space.build_space(...)       domains + integer tables from the float model
encoded = encoder.build(space)         CP-SAT variables and constraint families
solve   driver.optimize                lexicographic or weighted (solvers/driver.py)
decode  decoder.decode(...)            ServingConfig, re-checked by the float model
top-k   driver.k_best           no-good cuts on the chosen shapes, in the same CP-SAT model
graphs  prefer_cuda_graphs             every reported point (plan, engine bests, alternatives,
                                       runner-up) takes its CUDA-graph twin where it ties
explain on INFEASIBLE: driver.minimal_core names the conflicting families; explain.py adds numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from autoparallel.errors import InfeasibleError, SolverTimeoutError
from autoparallel.hardware import Cluster
from autoparallel.models.spec import ModelSpec
from autoparallel.objectives import Chain, parse_objective
from autoparallel.solvers import driver
from autoparallel.solvers.cpsat import cp_model
from autoparallel.solvers.serving import explain, remedies
from autoparallel.solvers.serving.decoder import (
    EngineBest,
    Objective,
    RunnerUp,
    ServingSolution,
    binding_constraints,
    decode_engine,
    objective_value,
    why_lost,
)
from autoparallel.solvers.serving.encoder import EncodedServing, build, candidate_entries
from autoparallel.solvers.serving.space import (
    Point,
    ServingOptions,
    ServingSpace,
    build_space,
    engine_refusal,
)
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving


class Solutions(list[ServingSolution]):
    """`solve_serving_top`'s plans, best first. `cut`: the time limit stopped the search for further
    shapes before `top` plans were found, so more shapes may fit (False: `top` were found, or no other
    shape fits)."""

    cut: bool = False


def solve_serving(model: ModelSpec, cluster: Cluster, workload: Serving, **kwargs: Any) -> ServingSolution:
    """The best vLLM deployment: `solve_serving_top` (same keyword arguments) with top=1."""
    return solve_serving_top(model, cluster, workload, **kwargs)[0]


def solve_serving_top(
    model: ModelSpec,
    cluster: Cluster,
    workload: Serving,
    *,
    objective: Objective = "throughput",
    settings: SolverSettings | None = None,
    options: ServingOptions | None = None,
    runner_up: bool = True,
    top: int = 1,
    fixes: bool = True,
) -> Solutions:
    """The `top` best vLLM deployments of `model` on `cluster` for `workload`, each of another
    (tp, pp, EP) shape, best first; fewer when fewer shapes fit or the time limit cut the search
    (`Solutions.cut`).

    Args:
        objective: a name of `objectives.SERVING`, a tuple of them (lexicographic) or {name: weight}.
        settings: time limit, workers, seed (copied into the result).
        options: the knobs' allowed values.
        runner_up: give the first plan its runner-up (the second best shape), one more solve.
        top: how many plans of different shapes.
        fixes: on an infeasible request, solve its nearest fixes (`remedies`, further planning calls
            within the same time limit) for the error.

    Raises:
        InfeasibleError: no plan meets the request; `reasons` names each conflicting constraint family
            with its numbers, `fixes` the nearest changes that make it feasible (each a solved plan).
        SolverTimeoutError: no plan found within the time limit.
        InputError: unknown objective or invalid options.
    """
    settings = settings or SolverSettings()
    options = options or ServingOptions()
    deadline = settings.deadline()  # the time limit bounds the whole call
    try:
        return _solve_top(model, cluster, workload, objective, settings, options, runner_up, top, deadline)
    except InfeasibleError as err:
        if not fixes:
            raise
        families = tuple(r.split(":", 1)[0] for r in err.reasons)

        def solve(c: Cluster, w: Serving, o: ServingOptions, name: str) -> ServingSolution:
            left = settings.until(deadline)
            if left is None:
                raise SolverTimeoutError("no time left") from None
            return _solve_top(model, c, w, name, left, o, False, 1, deadline, explained=False)[0]

        found = remedies.nearest_fixes(model, cluster, workload, options, families, solve, deadline)
        raise InfeasibleError(err.args[0], err.reasons, found) from None


def _solve_top(
    model: ModelSpec,
    cluster: Cluster,
    workload: Serving,
    objective: Objective,
    settings: SolverSettings,
    options: ServingOptions,
    runner_up: bool,
    top: int,
    deadline: float,
    *,
    explained: bool = True,
) -> Solutions:
    """The plans; on infeasibility an InfeasibleError that names the conflicting families with their
    numbers, or (not `explained`: a nearest fix's trial, whose failure is only skipped) one without
    reasons, sparing the complete tables and the core's solves."""
    chain = parse_objective(objective, "serving")
    space = build_space(model, cluster, workload, options, deadline=deadline)
    run = driver.Run(settings, deadline=deadline)
    enc = build(space) if candidate_entries(space) else None
    point = driver.optimize(enc, chain, run) if enc is not None else None
    if (enc is None or point is None) and not explained:
        raise InfeasibleError("no plan under this change")
    if enc is None or point is None:
        raise explain.explain_infeasible(space, settings, deadline)
    point, run = prefer_cuda_graphs(enc, chain, point, run, settings, deadline)
    bests: list[tuple[str, Point | None, driver.Run | None, str]] = []
    if len(space.options.engines) > 1:  # before k_best: its no-good cuts stay in the model
        # the plan is its own engine's best whatever its status (a FEASIBLE one under a tight
        # --time-limit too: that engine's row must not say "no plan" beside it)
        bests = engine_bests(
            enc, chain, settings, deadline, (space.runtimes[point.runtime].engine, point, run)
        )
        # Equal optima (every objective level): the engine listed first (vllm, sglang, trtllm) is the plan.
        tied = [(p, r) for _, p, r, _ in bests if p is not None and r is not None and r.values == run.values]
        if tied and run.status == "OPTIMAL" and tied[0][1].status == "OPTIMAL":
            point, run = tied[0]
    best = make_solution(space, chain, objective, point, run)
    if bests:
        entries = tuple(
            EngineBest(
                engine=e,
                solution=None if p is None or r is None else make_solution(space, chain, objective, p, r),
                note=note,
            )
            for e, p, r, note in bests
        )
        best = best.model_copy(update={"engines": entries})
    shapes = next_shapes(enc, chain, point, max(top, 2 if runner_up else 1) - 1, settings, deadline)
    more = shapes.found
    out = Solutions([best])
    out.cut = top > 1 and shapes.cut  # with top 1 the search was the runner-up's alone
    for other, other_run in more[: top - 1]:
        out.append(make_solution(space, chain, objective, other, other_run))
    if runner_up and more:
        config, est, _ = decode_engine(space, more[0][0])
        name = next(iter(chain))
        why = why_lost(name, best.estimate, best.config, est, config)
        engine = space.runtimes[more[0][0].runtime].engine
        ru = RunnerUp(config=config, estimate=est, why_lost=why, engine=engine)
        out[0] = best.model_copy(update={"runner_up": ru})
    return out


def next_shapes(
    enc: EncodedServing,
    chain: Chain,
    first: Point,
    n: int,
    settings: SolverSettings,
    deadline: float,
) -> driver.Shapes[Point]:
    """Up to `n` further plans, each of another shape, best first (`driver.k_best`: its `cut`
    says whether the time limit stopped the search), each given its graph twin on a tie
    (`prefer_cuda_graphs` with the point's shape fixed): the `--top` alternatives and the runner-up
    keep CUDA graphs where they cost nothing. k_best cuts every shape it returns,
    the twin's too (the same shape), so the twin is solved in a cut-free copy of the encoding
    (`encoder.build` of the same space: its tables, memory rows and objective units), built once
    and only when a point is eager."""
    shapes = driver.k_best(enc, chain, first, n + 1, settings, deadline=deadline)
    if not any(enc.space.runtimes[p.runtime].enforce_eager for p, _ in shapes.found):
        return shapes
    check = build(enc.space, explain=enc.explain)
    twins = [
        prefer_cuda_graphs(check, chain, p, r, settings, deadline, fixed=(check.vars.shape[p.shape],))
        for p, r in shapes.found
    ]
    return driver.Shapes(twins, cut=shapes.cut)


def prefer_cuda_graphs(
    enc: EncodedServing,
    chain: Chain,
    point: Point,
    run: driver.Run,
    settings: SolverSettings,
    deadline: float,
    fixed: Sequence[cp_model.IntVar] = (),
) -> tuple[Point, driver.Run]:
    """Among equal optima, the plan that keeps CUDA graphs. Above an engine's largest captured batch
    (SGLang's `cuda_graph_max_bs`, vLLM's 512 / 1,024) a full-load step runs eagerly either way, so
    the eager runtime and its graph twin tie on every objective level, and the tie fell either way:
    SGLang Qwen3-0.6B on one H200 at 4,096 running was planned with `--disable-cuda-graph`, which
    gains nothing there and costs every step below full load (TPOT 2.9 -> 7.2 ms at 100 req/s).
    When the optimum is eager, the same model is solved with its graph twin's runtime fixed
    (`driver.optimize(fixed=...)`, with `fixed`: the literals the optimum was found under, an engine
    for `engine_bests`, a shape for `next_shapes`); that plan replaces it when it is proven optimal at
    equal values. Every reported point goes through here: the plan, each engine's best, the `--top`
    alternatives and the runner-up (the CUDA-graph memory is in the twin's own table rows, so a
    twin that does not fit is never chosen)."""
    space = enc.space
    rt = space.runtimes[point.runtime]
    if not rt.enforce_eager or run.status != "OPTIMAL":
        return point, run
    twin = next(
        (
            r
            for r, other in enumerate(space.runtimes)
            if other == dataclasses.replace(rt, enforce_eager=False)
        ),
        None,
    )
    if twin is None:
        return point, run
    again = driver.Run(settings, deadline=deadline)
    try:
        graphs = driver.optimize(enc, chain, again, fixed=[*fixed, enc.vars.runtime[twin]])
    except SolverTimeoutError:
        return point, run
    if graphs is not None and again.status == "OPTIMAL" and again.values == run.values:
        return graphs, again
    return point, run


def engine_bests(
    enc: EncodedServing,
    chain: Chain,
    settings: SolverSettings,
    deadline: float,
    known: tuple[str, Point, driver.Run] | None = None,
) -> list[tuple[str, Point | None, driver.Run | None, str]]:
    """Each engine's optimum: the same CP-SAT model optimized with that engine's literal fixed
    (`driver.optimize(fixed=...)`), its graph twin on a tie (`prefer_cuda_graphs`); (engine, point or
    None, its run, why there is none). `known`: the plan over all engines, which is its own engine's
    row whatever its status (not solved again; FEASIBLE under a tight limit is shown as such)."""
    out: list[tuple[str, Point | None, driver.Run | None, str]] = []
    for engine in enc.space.options.engines:
        if known is not None and engine == known[0]:
            out.append((engine, known[1], known[2], ""))
            continue
        lit = enc.vars.engine.get(engine)
        if lit is None:
            out.append(
                (
                    engine,
                    None,
                    None,
                    engine_refusal(enc.space.model, enc.space.options, engine, enc.space.cluster.gpu),
                )
            )
            continue
        run = driver.Run(settings, deadline=deadline)
        try:
            point = driver.optimize(enc, chain, run, fixed=[lit])
        except SolverTimeoutError:
            out.append((engine, None, None, "no plan found within the time limit"))
            continue
        note = (
            ""
            if point is not None
            else "no admissible plan under the same limits (memory, SLOs, concurrency, rate)"
        )
        if point is not None:
            point, run = prefer_cuda_graphs(enc, chain, point, run, settings, deadline, fixed=(lit,))
        out.append((engine, point, run, note))
    return out


def make_solution(
    space: ServingSpace, chain: Chain, objective: Objective, point: Point, run: driver.Run
) -> ServingSolution:
    """The decoded, float-checked plan of `point`."""
    config, est, ev = decode_engine(space, point)
    return ServingSolution(
        config=config,
        engine=space.runtimes[point.runtime].engine,
        engine_eval=ev,
        estimate=est,
        objective=objective,
        objective_value=objective_value(est, next(iter(chain))),
        solver=run.stats(),
        binding=binding_constraints(space, point, est),
        settings=run.settings,
    )
