"""The training planner's entry point: build the space, solve (lexicographic / weighted), explain.

`solve_training` builds the integer tables from the float model (`training_space`), encodes them
(`training_encoder`), solves with CP-SAT, decodes and re-checks the result against the float model
(`training_decoder`). On INFEASIBLE it names the conflicting constraint families with numbers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from autoparallel.errors import InfeasibleError, InputError, InternalError, SolverTimeoutError
from autoparallel.memory.training import GIB
from autoparallel.perf.training import TrainingPerf, cost_to_tokens
from autoparallel.solvers.settings import SolverSettings, SolverStats
from autoparallel.solvers.training_decoder import (
    Objective,
    RunnerUp,
    TrainingSolution,
    binding_constraints,
    evaluate,
    read_point,
    recompute_rank,
    why_lost,
)
from autoparallel.solvers.training_enumerate import (
    Point,
    PointBound,
    Triple,
    best_partitioned_point,
    best_uniform_point,
    evaluate_point,
    point_bounds,
)
from autoparallel.solvers.training_space import (
    MIB_BYTES,
    TrainingOptions,
    TrainingTables,
    build_space,
    build_tables,
)

if TYPE_CHECKING:
    from autoparallel.hardware import Cluster
    from autoparallel.models.spec import ModelSpec
    from autoparallel.solvers.cpsat import cp_model
    from autoparallel.solvers.training_encoder import EncodedTraining
    from autoparallel.workload import Training


# ----- solving ----------------------------------------------------------------------------------------
def objective_chain(objective: Objective) -> tuple[str, ...] | dict[str, float]:
    """A lexicographic tuple of names, or weights; validated.

    Raises:
        InputError: an unknown objective name or a negative weight.
    """
    from autoparallel.solvers.training_encoder import OBJECTIVES

    names = [objective] if isinstance(objective, str) else list(objective)
    bad = [n for n in names if n not in OBJECTIVES]
    if bad or not names:
        raise InputError(f"unknown objective {bad or objective!r}; choose from {', '.join(OBJECTIVES)}")
    if isinstance(objective, Mapping):
        if any(w < 0 for w in objective.values()):
            raise InputError(f"objective weights must be >= 0, got {dict(objective)}")
        return {str(k): float(w) for k, w in objective.items()}
    return tuple(names)


def _label(chain: tuple[str, ...] | dict[str, float]) -> str:
    if isinstance(chain, dict):
        return ",".join(f"{k}={w:g}" for k, w in chain.items())
    return ">".join(chain)


class _Run:
    """Statistics over the CP-SAT calls behind one result."""

    def __init__(self, settings: SolverSettings) -> None:
        self.settings = settings
        self.wall_s = 0.0
        self.solves = 0
        self.status = "OPTIMAL"
        self.primary = (0.0, 0.0)
        self.core: list[str] = []

    def stats(self) -> SolverStats:
        value, bound = self.primary
        return SolverStats.of(status=self.status, wall_s=self.wall_s, value=value, bound=bound,
                              solves=self.solves, settings=self.settings)


def _solver(settings: SolverSettings, time_limit_s: float) -> cp_model.CpSolver:
    from autoparallel.solvers.cpsat import cp_model

    solver = cp_model.CpSolver()
    prm = solver.parameters
    prm.max_time_in_seconds = time_limit_s
    prm.num_workers = settings.workers
    prm.random_seed = settings.seed
    prm.catch_sigint_signal = False  # Ctrl-C interrupts the command (exit 130), not just the search
    prm.log_search_progress = settings.log_search
    prm.cp_model_probing_level = 0  # probing took 3 s of a 10 s solve on Llama-70B, 64 GPUs (measured)
    if settings.workers > 1:
        prm.interleave_search = True  # reproducible with several workers
    return solver


def _solve(enc: EncodedTraining, run: _Run, time_limit_s: float) -> cp_model.CpSolver | None:
    """One CP-SAT call under the family assumptions; None when infeasible (the conflicting families
    in `run.core`) or when the time ran out without a solution (`run.status` = "UNKNOWN").

    Raises:
        InternalError: CP-SAT calls the model invalid.
    """
    from autoparallel.solvers.cpsat import cp_model

    solver = _solver(run.settings, time_limit_s)
    start = time.perf_counter()
    status = solver.solve(enc.model)
    run.wall_s += time.perf_counter() - start
    run.solves += 1
    if status == cp_model.INFEASIBLE:
        names = {lit.index: name for name, lit in enc.families.items()}
        run.core = [names[k] for k in solver.sufficient_assumptions_for_infeasibility() if k in names]
        run.status = "INFEASIBLE"
        return None
    if status == cp_model.MODEL_INVALID:
        raise InternalError(f"invalid CP-SAT training model: {enc.model.validate()}")
    if status == cp_model.UNKNOWN:
        run.status = "UNKNOWN"
        return None
    if status == cp_model.FEASIBLE:
        run.status = "FEASIBLE"
    return solver


def minimal_core(enc: EncodedTraining, core: list[str], settings: SolverSettings) -> list[str]:
    """Drop families from an infeasible set while the rest stays infeasible (deletion filter), so that
    the explanation names only families that conflict (CP-SAT's sufficient set need not be minimal)."""
    from autoparallel.solvers.cpsat import cp_model

    keep = list(core) or list(enc.families)
    for name in list(keep):
        trial = [n for n in keep if n != name]
        enc.model.clear_assumptions()
        enc.model.add_assumptions([enc.families[n] for n in trial])
        solver = _solver(settings, max(1.0, settings.time_limit_s / 4))
        solver.parameters.stop_after_first_solution = True
        if solver.solve(enc.model) == cp_model.INFEASIBLE:
            keep = trial
    return keep


def _set_objective(enc: EncodedTraining, objective: str | dict[str, float], refs: dict[str, int]) -> None:
    from autoparallel.solvers.training_encoder import objective_expr

    if isinstance(objective, str):
        enc.model.minimize(objective_expr(enc.model, enc.tables, enc.vars, objective))
        return
    # Weighted: each objective normalized by its value at the hint (or 1), scaled to ~10⁶ per unit weight.
    enc.model.minimize(
        sum(
            round(w * 1e6 / max(refs.get(name, 1), 1)) * objective_expr(enc.model, enc.tables, enc.vars, name)
            for name, w in objective.items()
        )
    )


def optimize(
    enc: EncodedTraining,
    chain: tuple[str, ...] | dict[str, float],
    run: _Run,
    hint: Point | None,
    time_limit_s: float,
    floor_us: int = 0,
) -> Point | None:
    """Lexicographic (solve, keep within tolerance, solve the next) or weighted; None if infeasible.

    Out of time without a solution, the hint is returned (status FEASIBLE, bound `floor_us` on the
    step time); without a hint, SolverTimeoutError."""
    from autoparallel.solvers.training_encoder import add_hint, objective_expr

    enc.model.add_assumptions(list(enc.families.values()))
    refs: dict[str, int] = {}
    if hint is not None:
        add_hint(enc, hint)
        values = evaluate_point(enc.tables, hint)
        world = enc.tables.space.shapes[hint.shape].world
        refs = {
            "throughput": values.step_us,
            "mfu": world * values.step_us,
            "cost": world * values.step_us,
            "memory": max(values.memory_mib),
        }
    levels: list[str | dict[str, float]] = [chain] if isinstance(chain, dict) else list(chain)
    point = None
    for level, objective in enumerate(levels):
        _set_objective(enc, objective, refs)
        solver = _solve(enc, run, time_limit_s)
        if solver is None and run.status == "UNKNOWN":
            if point is None and hint is None:
                raise SolverTimeoutError(
                    f"no feasible training plan found within {time_limit_s:g} s "
                    "(raise SolverSettings.time_limit_s)"
                )
            # Out of time before CP-SAT loaded a solution: the hint (a feasible plan) is the best found.
            point = point or hint
            if level == 0:
                value = float(refs[objective]) if isinstance(objective, str) else 0.0
                run.primary = (value, float(floor_us) if objective == "throughput" else 0.0)
            run.status = "FEASIBLE"
            break
        if solver is None:
            if level == 0:
                return None
            raise InternalError(f"lexicographic level {objective!r} became infeasible")
        point = read_point(enc, solver)
        if level == 0:
            run.primary = (solver.objective_value, solver.best_objective_bound)
        if isinstance(objective, str) and level + 1 < len(levels):
            best = round(solver.objective_value)
            slack = int(abs(best) * run.settings.lexicographic_tolerance)
            expr = objective_expr(enc.model, enc.tables, enc.vars, objective)
            enc.model.add(expr <= best + slack).with_name(f"lexicographic[{objective}]")
            enc.model.clear_hints()
            add_hint(enc, point)
    return point


def explain_infeasible(t: TrainingTables, core: list[str]) -> InfeasibleError:
    """InfeasibleError naming the conflicting constraint families, each with its numbers."""
    sp, wl = t.space, t.space.workload
    reasons = [_reason(t, name) for name in (core or ["memory"])]
    return InfeasibleError(
        f"no training layout of {sp.model.name} fits {sp.cluster.world_size} x {sp.cluster.gpu.name} for "
        f"sequence length {wl.seq_len} and global batch {wl.global_batch}",
        tuple(reasons),
    )


def _reason(t: TrainingTables, family: str) -> str:
    sp, wl = t.space, t.space.workload
    if family == "memory":
        usable = t.usable_bytes / GIB
        best: tuple[float, str] | None = None
        lightest = max(range(len(sp.recompute_modes)), key=lambda c: recompute_rank(sp.recompute_modes[c]))
        for i, shape in enumerate(sp.shapes):
            for m in range(len(sp.micro_batches)):
                if not t.grad_accum[i][m]:
                    continue
                for z, mode in enumerate(sp.state_modes):
                    layers = tuple(sp.config(shape, 1, mode).stage_layers(sp.num_layers))
                    point = Point(shape=i, micro=m, state=z, layers=layers, recompute=(lightest,) * shape.pp)
                    gib = max(evaluate_point(t, point).memory_mib) * MIB_BYTES * (1 + t.fragmentation) / GIB
                    if best is None or gib < best[0]:
                        best = (
                            gib,
                            f"{shape.label()}, micro-batch {sp.micro_batches[m]}, {mode.label()}, "
                            f"{sp.recompute_modes[lightest].value} recompute",
                        )
        where = f" ({best[1]})" if best else ""
        need = f"{best[0]:.2f} GiB" if best else "more memory than any shape offers"
        return (
            f"memory: the smallest per-GPU footprint of any allowed layout is {need}{where}, but "
            f"{sp.cluster.gpu.name} offers {usable:.2f} GiB usable after margins"
        )
    if family == "global_batch":
        dps = sorted({s.dp for s in sp.shapes})
        return (
            f"global_batch: {wl.global_batch} sequences is not micro-batch × dp × grad-accum for any allowed "
            f"micro-batch {list(sp.micro_batches)} and dp {dps}"
        )
    if family == "zero_pipeline":
        return (
            "zero_pipeline: ZeRO-2/3 need pp = 1 (DeepSpeed's pipeline engine rejects them), and the "
            f"allowed pipeline degrees are {sorted({s.pp for s in sp.shapes})}"
        )
    if family == "stage_layers":
        return f"stage_layers: every pipeline stage needs at least one of the {sp.num_layers} decoder layers"
    if family == "uniform_stages":
        return "uniform_stages: options.non_uniform_stages=False forces Megatron's even split of the layers"
    if family == "uniform_recompute":
        return "uniform_recompute: options.per_stage_recompute=False forces one recompute mode for all stages"
    return family


def _runner_up(
    t: TrainingTables,
    bounds: dict[Triple, PointBound],
    chain: tuple[str, ...] | dict[str, float],
    best: Point,
    best_perf: TrainingPerf,
    settings: SolverSettings,
) -> RunnerUp | None:
    """Solve again without the chosen shape (primary objective, a quarter of the time limit)."""
    from autoparallel.solvers.training_encoder import build

    others = {key: b for key, b in bounds.items() if key[0] != best.shape}
    if not others:
        return None
    enc = build(t, others)
    enc.model.add(enc.vars.shape[best.shape] == 0).with_name("runner_up")
    hint = best_uniform_point(t, others, per_stage=t.space.options.per_stage_recompute)
    primary: tuple[str, ...] | dict[str, float] = chain if isinstance(chain, dict) else chain[:1]
    try:
        point = optimize(
            enc, primary, _Run(settings), hint[0] if hint else None, max(1.0, settings.time_limit_s / 4)
        )
    except SolverTimeoutError:
        return None
    if point is None:
        return None
    config, _, perf, _ = evaluate(t, point)
    return RunnerUp(config=config, step_time_s=perf.step_time_s, reason=why_lost(best_perf, perf))


def prepare(
    model: ModelSpec, cluster: Cluster, workload: Training, options: TrainingOptions, budget_s: float = 1.0
) -> tuple[TrainingTables, dict[Triple, PointBound], Point | None]:
    """Space, tables, lower bounds and a hint: the best even split, improved (free stages only) by exact
    min-max splits of the most promising triples for up to `budget_s` seconds."""
    t = build_tables(build_space(model, cluster, workload, options))
    if not options.hints:
        return t, point_bounds(t), None
    hint = best_uniform_point(t, point_bounds(t, refine_below=0), per_stage=options.per_stage_recompute)
    bounds = point_bounds(t, refine_below=hint[1].step_us + 1 if hint else None)
    if options.non_uniform_stages and options.per_stage_recompute:
        hint = best_partitioned_point(t, bounds, hint, budget_s)
    return t, bounds, hint[0] if hint else None


def solve_training(
    model: ModelSpec,
    cluster: Cluster,
    workload: Training,
    *,
    objective: Objective = "throughput",
    settings: SolverSettings | None = None,
    options: TrainingOptions | None = None,
) -> TrainingSolution:
    """The best training layout of `model` on `cluster` for `workload`, decided by CP-SAT.

    Args:
        objective: `throughput` (tokens/s), `mfu`, `cost` (to the token budget), `memory` (headroom); a
            sequence of them for a lexicographic order; or {name: weight} for a weighted sum.
        settings: time limit, workers, seed (copied into the result).
        options: the knobs' domains and switches (non-uniform stages, per-stage recompute, offload ...).

    Raises:
        InputError: an unknown objective or an invalid option.
        InfeasibleError: nothing fits; the reasons name the conflicting constraint families with numbers.
        SolverTimeoutError: no plan found within the time limit.
        InternalError: the solver's integers disagree with the float model.
    """
    from autoparallel.solvers.training_encoder import build

    settings = settings or SolverSettings()
    options = options or TrainingOptions()
    chain = objective_chain(objective)
    t, bounds, hint = prepare(model, cluster, workload, options, min(2.0, settings.time_limit_s / 10))
    run = _Run(settings)
    enc = build(t, bounds)
    floor_us = min((b.step_us for b in bounds.values()), default=0)
    point = optimize(enc, chain, run, hint, settings.time_limit_s, floor_us)
    if point is None:
        raise explain_infeasible(t, minimal_core(enc, run.core, settings))
    config, memory, perf, _ = evaluate(t, point)
    runner = _runner_up(t, bounds, chain, point, perf, settings) if options.runner_up else None
    cost = cost_to_tokens(model, cluster, config, workload.tokens, perf=perf) if workload.tokens else None
    return TrainingSolution(
        config=config,
        memory=memory,
        perf=perf,
        cost=cost,
        objective=_label(chain),
        stats=run.stats(),
        binding=binding_constraints(t, point, config, memory, perf),
        runner_up=runner,
    )
