"""Enumeration over the training space, without CP-SAT (no ortools import, STYLE.md §2).

Two jobs:
- `enumerate_training`: the brute-force oracle over the UNIFORM-stage space (Megatron's even split),
  evaluating every point with the float cost model (memory/training.py, perf/training.py). Property
  tests compare the CP-SAT optimum with it; benchmarks time it.
- Integer helpers the solver shares: `evaluate_point` computes a point's stage memory / time and step
  time from the tables exactly as the CP-SAT model does (the decoder checks them against the float
  model); `point_bounds` gives valid lower bounds per (shape, micro-batch, state mode), which the
  encoder adds as redundant cuts; `best_uniform_point` (Megatron's even split, pruned by those
  bounds) and `best_partitioned_point` (exact min-max splits from partition.py) seed CP-SAT's search.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from autoparallel.configs import Recompute, TrainingConfig, ZeroStage
from autoparallel.errors import InfeasibleError
from autoparallel.solvers.partition import even_partition, min_max_partition
from autoparallel.solvers.training_space import (
    Shape,
    StateMode,
    TrainingOptions,
    TrainingSpace,
    TrainingTables,
    build_space,
)

if TYPE_CHECKING:
    from autoparallel.hardware import Cluster
    from autoparallel.memory.training import TrainingMemoryReport
    from autoparallel.models.spec import ModelSpec
    from autoparallel.perf.training import TrainingPerf
    from autoparallel.solvers.training_decoder import TrainingSolution
    from autoparallel.workload import Training

Triple = tuple[int, int, int]


@dataclass(frozen=True)
class Point:
    """One full assignment: indices into the space, layers and recompute index per stage (first → last)."""

    shape: int
    micro: int
    state: int
    layers: tuple[int, ...]
    recompute: tuple[int, ...]


@dataclass(frozen=True)
class StageValues:
    """Scaled values of one point, exactly as the CP-SAT model computes them (stages first → last)."""

    memory_mib: tuple[int, ...]
    """Allocated memory per stage before fragmentation, MiB."""
    time_us: tuple[int, ...]
    """One micro-batch forward + backward per stage, µs."""
    sync_us: tuple[int, ...]
    """Exposed data-parallel sync per stage and step, µs."""
    optim_us: tuple[int, ...]
    """Optimizer step per stage, µs."""
    step_us: int
    """(grad_accum − 1)·max time + Σ time + max sync + max optimizer, µs."""
    memory_terms: tuple[int, ...]
    """Rounded table entries summed into each stage's memory (each < 1 MiB high)."""
    time_terms: tuple[int, ...]
    """Rounded table entries summed into each stage's time (each < 1 µs high)."""


def zero_pipeline_ok(t: TrainingTables, i: int, z: int) -> bool:
    """ZeRO-2/3 only without pipeline parallelism (training_encoder.add_zero_pipeline)."""
    return t.space.shapes[i].pp == 1 or t.space.state_modes[z].zero not in (
        ZeroStage.GRADIENTS,
        ZeroStage.PARAMETERS,
    )


def evaluate_point(t: TrainingTables, p: Point) -> StageValues:
    """Stage memory, time, sync, optimizer and the step time of `p`, in the solver's integers."""
    i, m, z = p.shape, p.micro, p.state
    kinds, pp = t.space.kind_of_layer, len(p.layers)
    num, den = t.overlap
    mem, time, sync, optim, mterms, tterms = [], [], [], [], [], []
    start = 0
    for s, (n, c) in enumerate(zip(p.layers, p.recompute, strict=True)):
        cnt = [0] * t.num_kinds
        for layer in range(start, start + n):
            cnt[kinds[layer]] += 1
        start += n
        first, last = s == 0, s == pp - 1
        fly = t.inflight(i, m, s)
        state = sum(x * t.state_mib[k][i][z] for k, x in enumerate(cnt))
        act = sum(x * t.act_mib[k][c][i][m] for k, x in enumerate(cnt))
        extra = (t.first_state_mib[i][z] + t.first_act_mib[i][m] if first else 0) + (
            t.last_state_mib[i][z] + t.last_act_mib[i][m] if last else 0
        )
        mem.append(state + fly * act + extra)
        mterms.append(n + fly * n + 2 * (first + last))
        tt = sum(x * t.layer_us[k][c][i][m] for k, x in enumerate(cnt)) + t.hop_us[i][m]
        tt += (t.first_us[i][m] if first else 0) + (t.last_us[i][m] if last else 0)
        if first and t.space.state_modes[z].zero is ZeroStage.PARAMETERS:
            tt += t.zero3_us[c][i][m]
        time.append(tt)
        tterms.append(n + 3 + first + last)
        total = sum(x * t.sync_bw_us[k][i][z] for k, x in enumerate(cnt))
        total += max(t.sync_lat_us[k][i][z] for k, x in enumerate(cnt) if x)
        total += (t.sync_first_us[i][z] if first else 0) + (t.sync_last_us[i][z] if last else 0)
        sync.append(max(total - tt * num // den, total // max(n, 1)))
        optim.append(
            sum(x * t.optim_us[k][i][z] for k, x in enumerate(cnt))
            + (t.optim_first_us[i][z] if first else 0)
            + (t.optim_last_us[i][z] if last else 0)
        )
    step = (t.grad_accum[i][m] - 1) * max(time) + sum(time) + max(sync) + max(optim)
    return StageValues(
        memory_mib=tuple(mem),
        time_us=tuple(time),
        sync_us=tuple(sync),
        optim_us=tuple(optim),
        step_us=step,
        memory_terms=tuple(mterms),
        time_terms=tuple(tterms),
    )


# ----- lower bounds ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PointBound:
    """Valid lower bounds for every completion of one (shape, micro-batch, state mode)."""

    work_us: int
    """Σ over stages of one micro-batch's time."""
    stage_us: int
    """The slowest stage's time: ⌈work / pp⌉."""
    step_us: int
    """(grad_accum − 1)·stage + work."""


def point_bounds(t: TrainingTables, refine_below: int | None = None) -> dict[Triple, PointBound]:
    """Lower bounds per (i, m, z) that pass the batch and ZeRO/pipeline rules and can fit in memory at all.

    Memory (fluid relaxation, valid for any partition and per-stage recompute): stage j from the last
    holds f_j = min(j + 1, grad_accum) micro-batches, so its activations are at most (B_j − states_j)/f_j
    with B_j the capacity minus the embedding / head extras. Summing, the activations of all layers
    are at most R = Σ_j B_j/f_j − (least Σ_j states_j/f_j: one lightest layer per stage, the rest on the
    stage with the most in flight). Time: the least Σ layer time whose activations fit in R, choosing a
    recompute mode per layer fractionally (a knapsack over each kind's lower convex hull of
    (activation, time) per mode). Triples absent from the result cannot fit.
    Slowest stage: `_stage_floor`, computed only where the step bound is still below `refine_below`
    (None: everywhere), since it costs a bisection per triple.
    """
    sp = t.space
    counts = [sp.kind_of_layer.count(k) for k in range(t.num_kinds)]
    out: dict[Triple, PointBound] = {}
    for i, shape in enumerate(sp.shapes):
        for m in range(len(sp.micro_batches)):
            ga = t.grad_accum[i][m]
            if not ga:
                continue
            for z in range(len(sp.state_modes)):
                if not zero_pipeline_ok(t, i, z):
                    continue
                if shape.pp == 1:
                    exact = _single_stage(t, i, m, z)
                    if exact is not None:
                        out[(i, m, z)] = exact
                    continue
                work = _fluid_work(t, i, m, z, shape.pp, ga, counts)
                if work is None:
                    continue
                slowest = -(-work // shape.pp)
                if refine_below is None or (ga - 1) * slowest + work < refine_below:
                    floor = _stage_floor(t, i, m, z, shape.pp, ga)
                    if floor is None:
                        continue
                    slowest = max(slowest, floor)
                out[(i, m, z)] = PointBound(work_us=work, stage_us=slowest, step_us=(ga - 1) * slowest + work)
    return out


def _single_stage(t: TrainingTables, i: int, m: int, z: int) -> PointBound | None:
    """pp = 1: every layer is on the one stage, so the bound is the exact value of the best fitting mode."""
    best = None
    for c in range(len(t.space.recompute_modes)):
        values = evaluate_point(
            t, Point(shape=i, micro=m, state=z, layers=(t.space.num_layers,), recompute=(c,))
        )
        if values.memory_mib[0] <= t.capacity_mib and (best is None or values.step_us < best.step_us):
            best = PointBound(work_us=values.time_us[0], stage_us=values.time_us[0], step_us=values.step_us)
    return best


def _stage_floor(t: TrainingTables, i: int, m: int, z: int, pp: int, ga: int) -> int | None:
    """The least T such that stages of time ≤ T can hold the layers (per-stage mode, integer layers):
    stage j from the last holds ≤ max_c min(⌊(T − extra_j)/time_c⌋, ⌊B_j / (state + f_j·act_c)⌋) layers.
    Checked for all layers with the lightest kind's coefficients (every stage needs one) and for each
    kind alone with its own; the largest T is valid. None when no T works."""
    modes, kinds = range(len(t.space.recompute_modes)), range(t.num_kinds)
    fly = [min(j + 1, ga) for j in range(pp)]
    budget = [t.capacity_mib] * pp
    extra = [t.hop_us[i][m]] * pp
    budget[0] -= t.last_state_mib[i][z] + t.last_act_mib[i][m]
    extra[0] += t.last_us[i][m]
    budget[pp - 1] -= t.first_state_mib[i][z] + t.first_act_mib[i][m]
    extra[pp - 1] += t.first_us[i][m]
    cases = [
        (
            [min(t.layer_us[k][c][i][m] for k in kinds) for c in modes],
            [min(t.act_mib[k][c][i][m] for k in kinds) for c in modes],
            min(t.state_mib[k][i][z] for k in kinds),
            t.space.num_layers,
            1,
        )
    ]
    if t.num_kinds > 1:  # the kind with the most layers, alone, with its own coefficients
        k = max(kinds, key=t.space.kind_of_layer.count)
        cases.append(
            (
                [t.layer_us[k][c][i][m] for c in modes],
                [t.act_mib[k][c][i][m] for c in modes],
                t.state_mib[k][i][z],
                t.space.kind_of_layer.count(k),
                0,
            )
        )
    best = 0
    for tau, alpha, sigma, count, each in cases:
        fits = [[max(b, 0) // max(sigma + f * a, 1) for a in alpha] for b, f in zip(budget, fly, strict=True)]
        found = _least_time(tau, fits, extra, count, each)
        if found is None:
            return None
        best = max(best, found)
    return best


def _least_time(tau: list[int], fits: list[list[int]], extra: list[int], count: int, each: int) -> int | None:
    def holds(limit: int) -> bool:
        total = 0
        for j, room_c in enumerate(fits):
            room = max(min((limit - extra[j]) // max(tt, 1), r) for tt, r in zip(tau, room_c, strict=True))
            if room < each:
                return False
            total += max(room, 0)
        return total >= count

    lo, hi = 0, count * max(max(tau), 1) + max(extra)
    if not holds(hi):
        return None
    while lo < hi and hi - lo > hi >> 14:  # any lo is a valid bound: stop at 1/16384 precision
        mid = (lo + hi) // 2
        if holds(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _fluid_work(t: TrainingTables, i: int, m: int, z: int, pp: int, ga: int, counts: list[int]) -> int | None:
    cap = t.capacity_mib
    fly = [1 if pp == 1 else min(j + 1, ga) for j in range(pp)]
    budget = [float(cap)] * pp
    budget[0] -= t.last_state_mib[i][z] + t.last_act_mib[i][m]
    budget[pp - 1] -= t.first_state_mib[i][z] + t.first_act_mib[i][m]
    sigma = [t.state_mib[k][i][z] for k in range(t.num_kinds)]
    modes = range(len(t.space.recompute_modes))
    alpha = [[t.act_mib[k][c][i][m] for c in modes] for k in range(t.num_kinds)]
    tau = [[t.layer_us[k][c][i][m] for c in modes] for k in range(t.num_kinds)]
    lightest = min(min(a) for a in alpha)
    if any(min(sigma) + f * lightest > b for b, f in zip(budget, fly, strict=True)):
        return None  # even one layer in its lightest mode does not fit some stage
    jmax = max(range(pp), key=lambda j: fly[j])
    states = sum(n * s for n, s in zip(counts, sigma, strict=True))
    least = (
        sum(min(sigma) / fly[j] for j in range(pp) if j != jmax)
        + (states - (pp - 1) * min(sigma)) / fly[jmax]
    )
    room = sum(b / f for b, f in zip(budget, fly, strict=True)) - least
    base_a = sum(n * min(a) for n, a in zip(counts, alpha, strict=True))
    if base_a > room + 1e-6:
        return None
    time = 0.0
    segments: list[tuple[float, float]] = []  # (slope µs per MiB, MiB available)
    for n, a, tt in zip(counts, alpha, tau, strict=True):
        c = min(modes, key=lambda c: (a[c], tt[c]))
        time += n * tt[c]
        while True:
            better = [(tt[d] - tt[c]) / (a[d] - a[c]) for d in modes if a[d] > a[c] and tt[d] < tt[c]]
            if not better:
                break
            slope = min(better)
            d = min(
                (
                    d
                    for d in modes
                    if a[d] > a[c] and tt[d] < tt[c] and (tt[d] - tt[c]) / (a[d] - a[c]) == slope
                ),
                key=lambda d: a[d],
            )
            segments.append((slope, n * (a[d] - a[c])))
            c = d
    left = room - base_a
    for slope, size in sorted(segments):
        use = min(size, left)
        time += slope * use
        left -= use
        if left <= 0:
            break
    extra = t.first_us[i][m] + t.last_us[i][m] + pp * t.hop_us[i][m]
    return max(0, math.ceil(time - 1e-6)) + extra


# ----- hint -----------------------------------------------------------------------------------------
def best_uniform_point(
    t: TrainingTables, bounds: dict[Triple, PointBound], per_stage: bool = True
) -> tuple[Point, StageValues] | None:
    """The fastest point with Megatron's even split that fits, each stage taking its fastest fitting
    recompute mode (`per_stage`; else the fastest mode that fits every stage); (i, m, z) visited by
    increasing lower bound and cut off once it exceeds the best."""
    sp = t.space
    best: tuple[Point, StageValues] | None = None
    order = sorted(bounds, key=lambda key: (bounds[key].step_us, key))
    fast = sorted(range(len(sp.recompute_modes)), key=lambda c: _speed_rank(sp.recompute_modes[c]))
    for i, m, z in order:
        if best is not None and bounds[(i, m, z)].step_us >= best[1].step_us:
            break
        layers = even_partition(sp.num_layers, sp.shapes[i].pp)
        point = _fastest_fitting(
            t, Point(shape=i, micro=m, state=z, layers=layers, recompute=(fast[0],) * len(layers)), fast
        )
        if point is not None and not per_stage:
            slowest = max(point.recompute, key=fast.index)
            point = Point(shape=i, micro=m, state=z, layers=layers, recompute=(slowest,) * len(layers))
        if point is None:
            continue
        values = evaluate_point(t, point)
        if best is None or values.step_us < best[1].step_us:
            best = (point, values)
    return best


def _speed_rank(mode: Recompute) -> int:
    return {Recompute.NONE: 0, Recompute.SELECTIVE: 1, Recompute.FULL: 2}[mode]


def _fastest_fitting(t: TrainingTables, p: Point, fast: list[int]) -> Point | None:
    """Per stage, the fastest recompute mode whose memory fits (stages are independent given the rest)."""
    chosen = []
    for s in range(len(p.layers)):
        for c in fast:
            trial = Point(
                shape=p.shape,
                micro=p.micro,
                state=p.state,
                layers=p.layers,
                recompute=tuple(c if k == s else fast[-1] for k in range(len(p.layers))),
            )
            if evaluate_point(t, trial).memory_mib[s] <= t.capacity_mib:
                chosen.append(c)
                break
        else:
            return None
    return Point(shape=p.shape, micro=p.micro, state=p.state, layers=p.layers, recompute=tuple(chosen))


def partitioned_point(t: TrainingTables, i: int, m: int, z: int) -> Point | None:
    """The layers-per-stage split minimizing the slowest stage (partition.min_max_partition, exact), each
    stage taking its fastest recompute mode that fits: a non-uniform warm start for CP-SAT."""
    sp = t.space
    pp = sp.shapes[i].pp
    if pp == 1:
        return None
    kinds = sp.kind_of_layer
    fast = sorted(range(len(sp.recompute_modes)), key=lambda c: _speed_rank(sp.recompute_modes[c]))

    def prefix(values: list[int]) -> list[int]:
        out = [0]
        for x in values:
            out.append(out[-1] + x)
        return out

    state = prefix([t.state_mib[k][i][z] for k in kinds])
    act = {c: prefix([t.act_mib[k][c][i][m] for k in kinds]) for c in fast}
    tau = {c: prefix([t.layer_us[k][c][i][m] for k in kinds]) for c in fast}
    first_mib = t.first_state_mib[i][z] + t.first_act_mib[i][m]
    last_mib = t.last_state_mib[i][z] + t.last_act_mib[i][m]
    fly = [t.inflight(i, m, s) for s in range(pp)]
    chosen: dict[tuple[int, int, int], int] = {}

    def cost(s: int, lo: int, hi: int) -> float | None:
        base = state[hi] - state[lo] + first_mib * (s == 0) + last_mib * (s == pp - 1)
        for c in fast:
            if base + fly[s] * (act[c][hi] - act[c][lo]) <= t.capacity_mib:
                chosen[(s, lo, hi)] = c
                extra = t.first_us[i][m] * (s == 0) + t.last_us[i][m] * (s == pp - 1)
                return float(tau[c][hi] - tau[c][lo] + extra)
        return None

    split = min_max_partition(sp.num_layers, pp, cost)
    if split is None:
        return None
    bounds = [0]
    for n in split.layers_per_stage:
        bounds.append(bounds[-1] + n)
    modes = tuple(chosen[(s, bounds[s], bounds[s + 1])] for s in range(pp))
    return Point(shape=i, micro=m, state=z, layers=split.layers_per_stage, recompute=modes)


def best_partitioned_point(
    t: TrainingTables,
    bounds: dict[Triple, PointBound],
    start: tuple[Point, StageValues] | None,
    budget_s: float,
) -> tuple[Point, StageValues] | None:
    """Improve `start` with exact min-max splits of the most promising (shape, micro, state) triples, by
    increasing lower bound, while the bound is below the best step found and time is left."""
    best = start
    deadline = time.perf_counter() + budget_s
    for key in sorted(bounds, key=lambda k: (bounds[k].step_us, k)):
        if time.perf_counter() > deadline or (best is not None and bounds[key].step_us >= best[1].step_us):
            break
        point = partitioned_point(t, *key)
        if point is None:
            continue
        values = evaluate_point(t, point)
        if best is None or values.step_us < best[1].step_us:
            best = (point, values)
    return best


# ----- the float oracle -----------------------------------------------------------------------------
def enumerate_training(
    model: ModelSpec,
    cluster: Cluster,
    workload: Training,
    *,
    objective: str = "throughput",
    options: TrainingOptions | None = None,
) -> TrainingSolution:
    """Brute force over the uniform-stage space (Megatron's even split), evaluated by the float model.

    Every (shape, micro-batch, state mode) that passes the batch identity and the ZeRO/pipeline rule is
    evaluated; recompute is one mode for all stages, or with `options.per_stage_recompute` each stage's
    fastest mode that fits (exact for the time objectives: the step time grows with every stage time).
    Objectives: throughput (least step time), mfu / cost (least GPUs × step time), memory (least peak).

    Raises:
        InfeasibleError: no point fits.
    """
    from autoparallel.memory.training import training_memory
    from autoparallel.perf.training import cost_to_tokens, training_perf
    from autoparallel.solvers.training_decoder import SolverStats, TrainingSolution

    opts = options or TrainingOptions()
    space = build_space(model, cluster, workload, opts)
    modes = sorted(space.recompute_modes, key=_speed_rank)
    if objective == "memory":
        modes = modes[::-1]
    start = time.perf_counter()
    best: tuple[float, TrainingConfig, TrainingMemoryReport, TrainingPerf] | None = None
    evaluated = 0
    for shape in space.shapes:
        for micro in space.micro_batches:
            if not space.grad_accum(shape, micro):
                continue
            for state in space.state_modes:
                if shape.pp > 1 and state.zero in (ZeroStage.GRADIENTS, ZeroStage.PARAMETERS):
                    continue
                for cfg, memory in _fitting_configs(
                    space, shape, micro, state, modes, opts.per_stage_recompute, training_memory
                ):
                    perf = training_perf(model, cluster, cfg)
                    evaluated += 1
                    value = {"throughput": perf.step_time_s, "memory": memory.peak_gib}.get(
                        objective, perf.step_time_s * cfg.world_size
                    )
                    if best is None or value < best[0]:
                        best = (value, cfg, memory, perf)
    if best is None:
        raise InfeasibleError(
            f"no uniform-stage training layout of {model.name} fits {cluster.world_size} x "
            f"{cluster.gpu.name}",
            ("enumeration found no point that fits",),
        )
    value, cfg, memory, perf = best
    stats = SolverStats(
        status="ENUMERATED",
        wall_s=time.perf_counter() - start,
        objective_value=value,
        bound=value,
        gap=0.0,
        solves=evaluated,
        seed=0,
        workers=1,
        time_limit_s=0.0,
    )
    cost = cost_to_tokens(model, cluster, cfg, workload.tokens, perf=perf) if workload.tokens else None
    return TrainingSolution(
        config=cfg,
        memory=memory,
        perf=perf,
        cost=cost,
        objective=objective,
        stats=stats,
        binding=(),
        runner_up=None,
    )


def _fitting_configs(
    space: TrainingSpace,
    shape: Shape,
    micro: int,
    state: StateMode,
    modes: list[Recompute],
    per_stage: bool,
    memory_of: Callable[..., TrainingMemoryReport],
) -> list[tuple[TrainingConfig, TrainingMemoryReport]]:
    """The configs worth evaluating: each uniform mode that fits, or the per-stage preferred mode."""
    layers = even_partition(space.num_layers, shape.pp)
    reports = []
    for mode in modes:
        cfg = space.config(shape, micro, state, mode, layers_per_stage=layers)
        reports.append((cfg, memory_of(space.model, space.cluster.gpu, cfg, margins=space.options.margins)))
    if not per_stage:
        return [(cfg, rep) for cfg, rep in reports if rep.fits]
    chosen = []
    for s in range(shape.pp):
        fit = [
            mode
            for mode, (_, rep) in zip(modes, reports, strict=True)
            if rep.stages[s].total_gib <= rep.usable_gib
        ]
        if not fit:
            return []
        chosen.append(fit[0])
    cfg = space.config(shape, micro, state, chosen[0], layers_per_stage=layers, stage_recompute=tuple(chosen))
    return [(cfg, memory_of(space.model, space.cluster.gpu, cfg, margins=space.options.margins))]
