"""The training planner's entry point: build the space, solve (lexicographic / weighted), explain.

`solve_training` builds the integer tables from the float model (`training/space.py`), encodes them
(`training/encoder.py`), solves with CP-SAT, decodes and re-checks the result against the float model
(`training/decoder.py`). On INFEASIBLE it names the conflicting constraint families with numbers.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from autoparallel.bounds import BOUNDS
from autoparallel.errors import InfeasibleError, InputError, SolverTimeoutError
from autoparallel.memory.training import GIB, TrainingMemoryReport
from autoparallel.objectives import Chain, label, parse_objective
from autoparallel.perf.training import TrainingPerf, cost_to_tokens
from autoparallel.solvers import driver
from autoparallel.solvers.settings import RAISE_LIMIT, SolverSettings
from autoparallel.solvers.training.decoder import (
    Objective,
    RunnerUp,
    TrainingSolution,
    binding_constraints,
    evaluate,
    why_lost,
)
from autoparallel.solvers.training.decompose import solve_by_triples
from autoparallel.solvers.training.encoder import EncodedTraining, build
from autoparallel.solvers.training.hints import best_partitioned_point, best_uniform_point
from autoparallel.solvers.training.objective import GPU_WEIGHED, gpu_weight, point_value
from autoparallel.solvers.training.points import (
    Point,
    PointBound,
    Triple,
    memory_rules_out_everything,
    point_bounds,
    refine_bounds,
)
from autoparallel.solvers.training.remedies import (
    bf16_left_out,
    nearest_fixes,
    smallest_footprint,
    zero_text,
)
from autoparallel.solvers.training.space import (
    TrainingOptions,
    build_space,
    cp_chunks,
    cp_dropped_by_sequence,
)
from autoparallel.solvers.training.tables import TrainingTables, build_tables

if TYPE_CHECKING:
    from autoparallel.hardware import Cluster
    from autoparallel.models.spec import ModelSpec
    from autoparallel.workload import Training


def explain_infeasible(t: TrainingTables, core: driver.Core) -> InfeasibleError:
    """InfeasibleError naming the conflicting constraint families, each with its numbers (families whose
    trial ran out of time are listed as undecided, never blamed). Where `options.world_sizes` keeps the
    plans off the cluster's own GPU count, the header names the counts allowed, not the whole cluster."""
    sp, wl = t.space, t.space.workload
    reasons = [_reason(t, name) for name in core.needed]
    if core.undecided:
        reasons.append(f"undecided within the time limit ({RAISE_LIMIT}): {', '.join(core.undecided)}")
    cluster = f"{sp.cluster.world_size} x {sp.cluster.gpu.name}"
    if (counts := _restricted_worlds(t)) is not None:
        cluster = f"{_counts_text(counts)} of the {cluster} (the GPU counts --world-sizes allows)"
    return InfeasibleError(
        f"no training layout of {sp.model.name} fits {cluster} for sequence length {wl.seq_len} and "
        f"global batch {wl.global_batch}",
        tuple(reasons),
    )


def _restricted_worlds(t: TrainingTables) -> list[int] | None:
    """The GPU counts `options.world_sizes` allows when they leave out the cluster's own count (the
    plans never tried the whole cluster), else None."""
    given, world = t.space.options.world_sizes, t.space.cluster.world_size
    return None if given is None or world in given else sorted(set(given))


def _counts_text(counts: list[int], listed: bool = False) -> str:
    """`1`, `1 or 3`, `1, 2 or 4`, or listed `[1, 3]`; a long list as its first five and how many
    there are (`1, 2, 3, 4, 5, ... (10 counts)`)."""
    if len(counts) > 6:
        text = f"{', '.join(map(str, counts[:5]))}, ... ({len(counts):,} counts)"
    elif listed or len(counts) == 1:
        text = ", ".join(map(str, counts))
    else:
        text = f"{', '.join(map(str, counts[:-1]))} or {counts[-1]}"
    return f"[{text}]" if listed else text


def _reason(t: TrainingTables, family: str) -> str:
    sp, wl = t.space, t.space.workload
    if family == "memory":
        usable = t.usable_bytes / GIB
        best = smallest_footprint(t)
        where = f" ({best[1]})" if best else ""
        need = f"{best[0]:.2f} GiB" if best else "more memory than any shape offers"
        # "any allowed layout" named what the defaults left out: Megatron's ZeRO 0-3 (fp32 gradients)
        left = bf16_left_out(t)
        out = (
            f"; the allowed layouts leave out {zero_text(left)}, which Megatron runs only with "
            "--grad-reduce-in-bf16 (its default keeps fp32 gradients)"
            if left
            else ""
        )
        return (
            f"memory: the smallest per-GPU footprint of any allowed layout is {need}{where}, but "
            f"{sp.cluster.gpu.name} offers {usable:.2f} GiB usable after margins{out}"
        )
    if family == "global_batch":
        dps = sorted({s.dp for s in sp.shapes})
        return (
            f"global_batch: {wl.global_batch} sequences is not micro-batch × dp × grad-accum for any allowed "
            f"micro-batch {list(sp.micro_batches)} and dp {dps}"
        )
    if family == "zero_pipeline":
        return _zero_pipeline_reason(t)
    if family == "stage_layers":
        return f"stage_layers: every pipeline stage needs at least one of the {sp.num_layers} decoder layers"
    if family == "uniform_stages":
        why = ", the only split DeepSpeed runs" if sp.options.framework == "deepspeed" else ""
        return f"uniform_stages: Megatron's even split of the layers{why} (options.non_uniform_stages=False)"
    if family == "uniform_recompute":
        return (
            "uniform_recompute: one recompute mode for all stages, as Megatron-LM and DeepSpeed take it "
            "(options.per_stage_recompute=False)"
        )
    return family


def _world_sizes_reason(t: TrainingTables, core: driver.Core, deadline: float) -> tuple[str, bool] | None:
    """The restriction `options.world_sizes` (`--world-sizes`) where it keeps the plans off the
    cluster's own GPU count, with whether lifting it is what memory needs: where memory binds, the
    smallest footprint on all the cluster's GPUs (`remedies.smallest_footprint` of the same job's tables
    without the restriction, built within the time left). Llama-3.1-8B at seq_len 4096 on 8xH100
    with `--world-sizes 1` needs 145.58 GiB on its one GPU, 18.23 GiB on all 8 (where it plans). None
    without such a restriction."""
    counts = _restricted_worlds(t)
    if counts is None:
        return None
    sp = t.space
    world = sp.cluster.world_size
    text = (
        f"world_sizes: the GPU counts allowed are {_counts_text(counts, listed=True)} (--world-sizes, "
        f"TrainingOptions.world_sizes), not the cluster's {world}"
    )
    if "memory" not in core.needed:
        return text, False
    whole: tuple[float, str] | None = None
    try:
        wide = build_space(
            sp.model, sp.cluster, sp.workload, sp.options.model_copy(update={"world_sizes": None}), deadline
        )
        whole = smallest_footprint(build_tables(wide, deadline), deadline)
    except (InfeasibleError, InputError, SolverTimeoutError):
        pass
    if whole is None:
        return text, False
    usable = t.usable_bytes / GIB
    fits = whole[0] <= usable
    verdict = f"within the {usable:.2f} GiB usable" if fits else f"still above the {usable:.2f} GiB usable"
    return (
        f"{text}; with all {world} GPUs the smallest per-GPU footprint is {whole[0]:.2f} GiB ({whole[1]}), "
        f"{verdict}",
        fits,
    )


def _zero_pipeline_reason(t: TrainingTables) -> str:
    """The rule `zero_pipeline` (`constraints.add_zero_pipeline`) in the plan's framework's own terms:
    DeepSpeed's PipelineEngine refuses ZeRO-2/3; Megatron runs pipeline stages with its distributed
    optimizer (zero=dist), and ZeRO-2/3 there is Megatron-FSDP, which the planner keeps to pp = 1 as
    Megatron-LM documents and tests it (`frameworks.megatron.FSDP_PIPELINE_NOTE`)."""
    sp = t.space
    pps = sorted({s.pp for s in sp.shapes})
    if sp.options.framework == "deepspeed":
        return (
            "zero_pipeline: DeepSpeed's PipelineEngine runs ZeRO 0 or 1 only (deepspeed/runtime/pipe/"
            "engine.py: 'ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism'), so zero=2/3 "
            f"need pp = 1, and the allowed pipeline degrees are {pps}"
        )
    return (
        "zero_pipeline: zero=2/3 run on Megatron-FSDP, which the plans keep to pp = 1 (Megatron-LM "
        "documents and tests it without pipeline parallelism; --megatron-fsdp-version 2 refuses pp > 1), "
        "while the distributed optimizer (zero=dist) runs with pipeline stages; the allowed pipeline "
        f"degrees are {pps}"
    )


def _infeasible(
    t: TrainingTables, core: driver.Core, settings: SolverSettings, deadline: float, fixes: bool = True
) -> InfeasibleError:
    """`explain_infeasible`'s error, led by the rule `cp_divides_sequence` where it binds
    (`_cp_relaxation`): a rule that only shrank the cp domain is otherwise never named. A
    `world_sizes` restriction that leaves out the cluster's own GPU count is named too
    (`_world_sizes_reason`), first where all the GPUs fit the memory. Where memory binds (and
    `fixes`), the nearest changes that fit it (`remedies.nearest_fixes`: --grad-reduce-in-bf16,
    --engine deepspeed, more GPUs), within what is left of the time limit."""
    err = explain_infeasible(t, core)
    cp = _cp_relaxation(t, settings, deadline)
    reasons = err.reasons if cp is None else (cp, *err.reasons)
    worlds = _world_sizes_reason(t, core, deadline)
    if worlds is not None:  # led by the restriction where lifting it fits memory
        reasons = (worlds[0], *reasons) if worlds[1] else (*reasons, worlds[0])
    found = nearest_fixes(t, deadline) if fixes and "memory" in core.needed else ()
    if reasons is err.reasons and not found:
        return err
    return InfeasibleError(str(err.args[0]), reasons, (*err.fixes, *found))


def _cp_relaxation(t: TrainingTables, settings: SolverSettings, deadline: float) -> str | None:
    """The rule `cp_divides_sequence` with its numbers when relaxing it would fit, else None.

    The cp degrees it dropped (`space.cp_dropped_by_sequence`: the sequence is no multiple of their
    chunks) are planned alone for the sequence padded to the next length they all divide, within the
    time the call has left; a plan there (necessarily one of those degrees) shows the rule binding:
    Llama-3.1-70B on 8x8xH100 at seq_len 131070 named only ZeRO/pipeline and memory, while 131072
    plans tp=8 cp=8. None when nothing was dropped, or the relaxed plan is infeasible too, outlasts
    the time left or needs a sequence above the bounds."""
    sp = t.space
    wl, opts = sp.workload, sp.options
    dropped = cp_dropped_by_sequence(wl.seq_len, sp.cluster.gpu, opts)
    left = settings.until(deadline)
    if not dropped or left is None:
        return None
    step = math.lcm(*(cp_chunks(cp, opts.framework) for cp in dropped))
    padded = -(-wl.seq_len // step) * step
    if padded > BOUNDS["seq_len"].hi:
        return None
    relaxed = opts.model_copy(update={"cp_values": dropped, "runner_up": False})
    try:
        sol = solve_training(
            sp.model,
            sp.cluster,
            wl.model_copy(update={"seq_len": padded}),
            settings=left,
            options=relaxed,
            fixes=False,
        )
    except (InfeasibleError, InputError, SolverTimeoutError):
        return None
    c = sol.config
    layout = f"tp={c.tp},pp={c.pp},cp={c.cp},ep={c.ep},dp={c.dp}, zero={c.zero.value}"
    chunks, how = (
        ("2·cp", "Megatron's load-balanced context parallelism")
        if opts.framework == "megatron"
        else ("cp", "DeepSpeed-Ulysses")
    )
    kept = sorted({s.cp for s in sp.shapes})
    return (
        f"cp_divides_sequence: {how} cuts each sequence into {chunks} equal chunks, and seq_len "
        f"{wl.seq_len} is no multiple of {chunks} for cp {', '.join(map(str, dropped))}, which leaves cp "
        f"{', '.join(map(str, kept))}; padded to {padded} tokens (a multiple of {step}), the sequence "
        f"trains on {layout} at {sol.memory.peak_gib:.2f} GiB per GPU ({t.usable_bytes / GIB:.2f} GiB "
        "usable)"
    )


def _runner_up(
    enc: EncodedTraining,
    chain: Chain,
    best: Point,
    chosen: tuple[TrainingMemoryReport, TrainingPerf, int],
    settings: SolverSettings,
    deadline: float,
) -> RunnerUp | None:
    """The best plan of another shape: a no-good cut on the winner's shape, a quarter of the time limit."""
    found = driver.k_best(
        enc, chain, best, 2, settings, time_limit_s=max(1.0, settings.time_limit_s / 4), deadline=deadline
    ).found
    return None if not found else _runner(enc.tables, found[0][0], chosen, chain)


def _runner(
    t: TrainingTables, point: Point, chosen: tuple[TrainingMemoryReport, TrainingPerf, int], chain: Chain
) -> RunnerUp:
    """The runner-up `point`, decoded and checked by the float model, and why it lost to the chosen
    plan (`chosen`: its memory, step and GPUs): by peak memory when that is the first objective, by
    GPU-seconds per step when mfu or cost is and the GPU counts differ, else by step time."""
    config, memory, perf, _ = evaluate(t, point)
    first = chain[0] if isinstance(chain, tuple) else None
    peaks = (chosen[0].peak_gib, memory.peak_gib) if first == "memory" else None
    worlds = (chosen[2], config.world_size)
    gpus = worlds if first in GPU_WEIGHED and worlds[0] != worlds[1] else None
    return RunnerUp(
        config=config, step_time_s=perf.step_time_s, reason=why_lost(chosen[1], perf, peaks, gpus)
    )


def prepare(
    t: TrainingTables,
    options: TrainingOptions,
    budget_s: float = 1.0,
    deadline: float | None = None,
    objective: str = "throughput",
) -> tuple[dict[Triple, PointBound], Point | None]:
    """Lower bounds and a hint: the best even split, improved (free stages only, step time) by exact
    min-max splits of the most promising triples for up to `budget_s` seconds. For mfu / cost over
    several GPU counts (`objective`, the primary one; `objective.gpu_weight`) the hint is the even split of
    the least GPUs × step time, found within `budget_s`, and the bounds are refined where that product
    may beat it. The bounds stop at `deadline` (a SolverTimeoutError, as the tables do)."""
    if not options.hints:
        return point_bounds(t, deadline=deadline), None
    base = point_bounds(t, refine_below=0, deadline=deadline)
    gpus = {i: gpu_weight(t, i, objective) for i in {key[0] for key in base}}
    if len(set(gpus.values())) > 1:
        until = (
            time.perf_counter() + budget_s
            if deadline is None
            else min(deadline, time.perf_counter() + budget_s)
        )
        hint = best_uniform_point(t, base, options.per_stage_recompute, gpus.__getitem__, until)
        if hint is None:
            return refine_bounds(t, base), None
        value = hint[1].step_us * gpus[hint[0].shape]
        bounds: dict[Triple, PointBound] = {}
        for g in set(gpus.values()):  # refined where GPUs × step may beat the hint's
            part = {key: b for key, b in base.items() if gpus[key[0]] == g}
            bounds.update(refine_bounds(t, part, value // g + 1))
        return bounds, hint[0]
    hint = best_uniform_point(t, base, per_stage=options.per_stage_recompute)
    bounds = refine_bounds(t, base, hint[1].step_us + 1 if hint else None)
    if options.non_uniform_stages and options.per_stage_recompute:
        hint = best_partitioned_point(t, bounds, hint, budget_s)
    return bounds, hint[0] if hint else None


def _weighed_gpus(weights: dict[str, float]) -> str:
    """The objective a weighted sum builds its space for: cost (or mfu) where it weighs GPUs × step time
    (the hint then weighs each shape's GPUs, `gpu_weight`), else throughput."""
    return next((n for n in GPU_WEIGHED if weights.get(n, 0.0) > 0), "throughput")


def solve_training(
    model: ModelSpec,
    cluster: Cluster,
    workload: Training,
    *,
    objective: Objective = "throughput",
    settings: SolverSettings | None = None,
    options: TrainingOptions | None = None,
    timings: dict[str, float] | None = None,
    fixes: bool = True,
) -> TrainingSolution:
    """The best training layout of `model` on `cluster` for `workload`, decided by CP-SAT.

    Args:
        objective: `throughput` (tokens/s), `mfu`, `cost` (to the token budget), `memory` (headroom); a
            sequence of them for a lexicographic order; or {name: weight} for a weighted sum.
        settings: time limit, workers, seed (copied into the result).
        options: the knobs' domains and switches (non-uniform stages, per-stage recompute, offload ...).
        timings: when given, filled with the seconds of each phase (tables, bounds_hints, cpsat, decode,
            runner_up) for benchmarks.
        fixes: on a job no layout fits in memory, check its nearest fixes (`remedies.nearest_fixes`,
            within the same time limit) for the error.

    `mfu` or `cost` weigh GPUs × step time where `options.world_sizes` gives several GPU counts
    (`objective.gpu_weight`); on the whole cluster alone they rank the step time. The step-time
    objective alone (`throughput`, the default), `mfu`
    or `cost` alone (GPUs × step time), the peak memory alone or then the step time are solved by
    decomposition over
    (shape, micro-batch, state mode) triples (`training/decompose.py`); other objectives by one CP-SAT
    model over the whole space.

    Raises:
        InputError: an unknown objective or an invalid option.
        InfeasibleError: nothing fits; the reasons name the conflicting constraint families with numbers,
            `fixes` (memory binding) the single changes whose smallest footprint fits.
        SolverTimeoutError: no plan found within the time limit (also: the tables or the bounds outlast it).
        InternalError: the solver's integers disagree with the float model.
    """
    settings = settings or SolverSettings()
    clock = _Clock(timings)
    deadline = settings.deadline()  # the time limit bounds the whole call
    options = options or TrainingOptions()
    chain = parse_objective(objective, "training")
    lead = chain[0] if isinstance(chain, tuple) else _weighed_gpus(chain)
    t = build_tables(build_space(model, cluster, workload, options, deadline), deadline)
    clock.lap("tables")
    if not any(g for row in t.grad_accum for g in row):
        raise _infeasible(t, driver.Core(needed=("global_batch",)), settings, deadline, fixes)
    if memory_rules_out_everything(t):
        # Memory alone is the usual cause; proving the other families innocent by deletion trials can
        # take CP-SAT longer than the time limit, and this certificate from the tables settles it.
        raise _infeasible(t, driver.Core(needed=("memory",)), settings, deadline, fixes)
    bounds, hint = prepare(t, options, min(2.0, settings.time_limit_s / 10), deadline, lead)
    clock.lap("bounds_hints")
    runner_point: Point | None = None
    enc: EncodedTraining | None = None
    if (names := _decomposable(chain, t, settings)) is not None:
        # The step time, or the peak memory (then the step time): exact decomposition over (shape,
        # micro-batch, state).
        tie = names[1] if len(names) > 1 else None
        parts = solve_by_triples(t, bounds, hint, settings, deadline, options.runner_up, names[0], tie)
        clock.lap("cpsat")
        if parts.best is None:
            raise _nothing_fits(t, bounds, settings, deadline, fixes)
        point, run, runner_point = parts.best, parts.run, parts.runner_up
    else:
        run = driver.Run(settings, deadline=deadline)
        enc = build(t, bounds)
        # Out of time before CP-SAT holds a solution, the warm start is the best found (no bound),
        # valued by the first objective (a weighted sum: no single value).
        first = chain[0] if isinstance(chain, tuple) else None
        primary = None if hint is None or first is None else (float(point_value(t, hint, first)), 0.0)
        found = driver.optimize(enc, chain, run, fallback=hint, fallback_primary=primary)
        clock.lap("cpsat")
        if found is None:
            raise _nothing_fits(t, bounds, settings, deadline, fixes)
        point = found
    config, memory, perf, _ = evaluate(t, point)
    clock.lap("decode")
    runner = None
    if options.runner_up:
        if enc is None:
            runner = (
                None
                if runner_point is None
                else _runner(t, runner_point, (memory, perf, config.world_size), chain)
            )
        else:
            runner = _runner_up(enc, chain, point, (memory, perf, config.world_size), settings, deadline)
    clock.lap("runner_up")
    binding = binding_constraints(t, point, config, memory, perf, lead)
    return make_solution(t, point, run, label(chain), binding=binding, runner_up=runner)


def make_solution(
    t: TrainingTables,
    point: Point,
    run: driver.Run,
    objective: str,
    *,
    binding: tuple[str, ...] = (),
    runner_up: RunnerUp | None = None,
) -> TrainingSolution:
    """The decoded, float-checked layout of `point`, with the time and cost to the token budget."""
    config, memory, perf, _ = evaluate(t, point)
    sp = t.space
    tokens = sp.workload.tokens
    cost = cost_to_tokens(sp.model, sp.cluster, config, tokens, perf=perf) if tokens else None
    return TrainingSolution(
        config=config,
        memory=memory,
        perf=perf,
        cost=cost,
        objective=objective,
        stats=run.stats(),
        binding=binding,
        runner_up=runner_up,
    )


def _nothing_fits(
    t: TrainingTables,
    bounds: dict[Triple, PointBound],
    settings: SolverSettings,
    deadline: float,
    fixes: bool = True,
) -> InfeasibleError:
    """The explanation of an infeasible space: its minimal core, found on a model with free families."""
    core = driver.minimal_core(build(t, bounds, explain=True), settings, deadline=deadline)
    return _infeasible(t, core, settings, deadline, fixes)


def _decomposable(chain: Chain, t: TrainingTables, settings: SolverSettings) -> tuple[str, ...] | None:
    """The objectives `solve_by_triples` solves for `chain`, or None: ("throughput",) (the step time:
    throughput, or mfu / cost when every shape uses as many GPUs, `training/objective.py` then
    minimizing the step time itself), ("mfu",) / ("cost",) (GPUs × step time over shapes of several
    GPU counts: each triple's sub-model minimizes its step time; then "throughput", the shortest step
    among the plans that tie within the solver's rounding), ("memory",) (the peak stage memory
    alone) or ("memory", "throughput") (the peak, then the step time, exactly: without the settings'
    lexicographic tolerance, which the whole model applies)."""
    if chain in (("throughput",), ("memory",)):
        return chain
    if chain == ("memory", "throughput") and settings.lexicographic_tolerance == 0:
        return chain
    if chain in (("mfu",), ("cost",)):  # GPUs × step time: one shape's GPUs per triple (decompose.py)
        # over several GPU counts, ties within the solver's rounding go to the shortest step
        return ("throughput",) if len({s.world for s in t.space.shapes}) == 1 else (*chain, "throughput")
    return None


class _Clock:
    """Seconds per phase of one call, added into `timings` (when given) under each phase's name."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[phase] = self.timings.get(phase, 0.0) + now - self.last
        self.last = now
