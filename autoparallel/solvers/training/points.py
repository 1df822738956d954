"""A point of the training space evaluated in the solver's integers, and lower bounds per point family.

`evaluate_point` computes a point's stage memory / time and step time from the tables exactly as the
CP-SAT model does (the decoder checks them against the float model); `point_bounds` gives valid lower
bounds per (shape, micro-batch, state mode), which the encoder adds as redundant cuts and the warm
starts (training_hints.py) use to prune. No ortools import (STYLE.md §2): the enumeration oracle and
the benchmarks share this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autoparallel.configs import ZeroStage
from autoparallel.solvers.settings import check_deadline
from autoparallel.solvers.training.space import ZERO_WITHOUT_PIPELINE
from autoparallel.solvers.training.tables import TrainingTables

Triple = tuple[int, int, int]
"""(shape, micro-batch, state mode) indices into the space."""


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
    """ZeRO-2/3 only without pipeline parallelism (training_constraints.add_zero_pipeline)."""
    return t.space.shapes[i].pp == 1 or t.space.state_modes[z].zero not in ZERO_WITHOUT_PIPELINE


def evaluate_point(t: TrainingTables, p: Point) -> StageValues:
    """Stage memory, time, sync, optimizer and the step time of `p`, in the solver's integers."""
    i, m, z = p.shape, p.micro, p.state
    prefix, pp = t.kind_prefix, len(p.layers)
    num, den = t.overlap
    mem, time, sync, optim, mterms, tterms = [], [], [], [], [], []
    start = 0
    for s, (n, c) in enumerate(zip(p.layers, p.recompute, strict=True)):
        cnt = [row[start + n] - row[start] for row in prefix]
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
        if first and t.space.state_modes[z].zero is ZeroStage.GRADIENTS:
            tt += t.zero2_us[c][i][m]
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
    """(grad_accum − 1)·stage + work + the stage averages of the exposed sync and optimizer step."""


def point_bounds(
    t: TrainingTables, refine_below: int | None = None, deadline: float | None = None
) -> dict[Triple, PointBound]:
    """Lower bounds per (i, m, z) that pass the batch and ZeRO/pipeline rules and can fit in memory at all.

    Memory (fluid relaxation, valid for any partition and per-stage recompute): stage j from the last
    holds f_j = min(j + 1, grad_accum) micro-batches, so its activations are at most (B_j − states_j)/f_j
    with B_j the capacity minus the embedding / head extras. Summing, the activations of all layers
    are at most R = Σ_j B_j/f_j − (least Σ_j states_j/f_j: one lightest layer per stage, the rest on the
    stage with the most in flight). Time: the least Σ layer time whose activations fit in R, choosing a
    recompute mode per layer fractionally (a knapsack over each kind's lower convex hull of
    (activation, time) per mode). Triples absent from the result cannot fit.
    Step: (grad_accum − 1)·slowest stage + work + the stage averages of the exposed data-parallel sync
    and of the optimizer step (`_step_floor`). Slowest stage: `_stage_floor`, computed only where the
    step bound is still below `refine_below` (None: everywhere), since it costs a bisection per triple
    (`refine_bounds` applies it later to the triples that still matter). Past `deadline` (checked once
    a shape; None: no limit), a SolverTimeoutError.
    """
    sp = t.space
    counts = [sp.kind_of_layer.count(k) for k in range(t.num_kinds)]
    out: dict[Triple, PointBound] = {}
    for i in range(len(sp.shapes)):
        check_deadline(deadline)
        for m in range(len(sp.micro_batches)):
            if not t.grad_accum[i][m]:
                continue
            for z in range(len(sp.state_modes)):
                if zero_pipeline_ok(t, i, z) and (
                    found := _coarse_bound(t, (i, m, z), t.capacity_mib, counts)
                ):
                    out[(i, m, z)] = found
    return refine_bounds(t, out, refine_below)


def bound_under_cap(t: TrainingTables, key: Triple, cap_mib: int) -> PointBound | None:
    """`point_bounds` of one triple (refined) for plans whose every stage stays within `cap_mib` (and the
    capacity): the same relaxations at the smaller capacity; None when nothing can stay within it."""
    counts = [t.space.kind_of_layer.count(k) for k in range(t.num_kinds)]
    capacity = min(cap_mib, t.capacity_mib)
    coarse = _coarse_bound(t, key, capacity, counts)
    return None if coarse is None else _refined(t, key, coarse, capacity, counts)


def _coarse_bound(t: TrainingTables, key: Triple, capacity_mib: int, counts: list[int]) -> PointBound | None:
    """pp = 1: the exact best mode (`_single_stage`); pp > 1: the fluid work bound, unrefined."""
    i, m, z = key
    pp, ga = t.space.shapes[i].pp, t.grad_accum[i][m]
    if pp == 1:
        return _single_stage(t, i, m, z, capacity_mib)
    work = _fluid_work(t, i, m, z, pp, ga, counts, capacity_mib)
    if work is None:
        return None
    slowest = -(-work // pp)
    return PointBound(work_us=work, stage_us=slowest, step_us=_step_floor(t, key, work, slowest, counts))


def _refined(
    t: TrainingTables, key: Triple, b: PointBound, capacity_mib: int, counts: list[int]
) -> PointBound | None:
    """`b` with the slowest-stage floor (`_stage_floor`) applied; None when it proves nothing fits."""
    i, m, z = key
    pp = t.space.shapes[i].pp
    if pp == 1 or b.stage_us > -(-b.work_us // pp):
        return b  # exact, or already refined
    floor = _stage_floor(t, i, m, z, pp, t.grad_accum[i][m], capacity_mib)
    if floor is None:
        return None
    slowest = max(b.stage_us, floor)
    return PointBound(b.work_us, slowest, _step_floor(t, key, b.work_us, slowest, counts))


def refine_bounds(
    t: TrainingTables, bounds: dict[Triple, PointBound], below: int | None = None
) -> dict[Triple, PointBound]:
    """`bounds` with the slowest-stage floor (`_stage_floor`) applied to the pp > 1 triples whose step
    bound is below `below` (None: all of them); triples it proves unable to fit are dropped."""
    out = dict(bounds)
    counts = [t.space.kind_of_layer.count(k) for k in range(t.num_kinds)]
    for key, b in bounds.items():
        if below is not None and b.step_us >= below:
            continue  # not asked for
        found = _refined(t, key, b, t.capacity_mib, counts)
        if found is None:
            del out[key]
        else:
            out[key] = found
    return out


def _step_floor(t: TrainingTables, key: Triple, work: int, slowest: int, counts: list[int]) -> int:
    """step = (grad_accum − 1)·max time + Σ time + max sync + max optimizer ≥ (grad_accum − 1)·slowest
    + W + (S − overlap·W)/pp + O/pp with W = Σ time ≥ work: each max is at least its stages' average;
    S = Σ_j sync total_j (every layer's bandwidth term, each stage at least the least latency, the
    embedding and head), of which stage j hides at most overlap·time_j; O the whole optimizer step.
    W + max(0, S − overlap·W)/pp grows with W, so W = work gives the bound."""
    i, m, z = key
    pp, ga = t.space.shapes[i].pp, t.grad_accum[i][m]
    num, den = t.overlap
    optim = sum(n * t.optim_us[k][i][z] for k, n in enumerate(counts))
    optim += t.optim_first_us[i][z] + t.optim_last_us[i][z]
    sync = sum(n * t.sync_bw_us[k][i][z] for k, n in enumerate(counts))
    sync += pp * min(t.sync_lat_us[k][i][z] for k in range(t.num_kinds))
    sync += t.sync_first_us[i][z] + t.sync_last_us[i][z]
    exposed = max(0, -(-(sync * den - work * num) // (den * pp)))
    return (ga - 1) * slowest + work + exposed + -(-optim // pp)


def _single_stage(t: TrainingTables, i: int, m: int, z: int, capacity_mib: int) -> PointBound | None:
    """pp = 1: every layer is on the one stage, so the bound is the exact value of the best fitting mode."""
    best = None
    for c in range(len(t.space.recompute_modes)):
        values = evaluate_point(
            t, Point(shape=i, micro=m, state=z, layers=(t.space.num_layers,), recompute=(c,))
        )
        if values.memory_mib[0] <= capacity_mib and (best is None or values.step_us < best.step_us):
            best = PointBound(work_us=values.time_us[0], stage_us=values.time_us[0], step_us=values.step_us)
    return best


def _stage_floor(
    t: TrainingTables, i: int, m: int, z: int, pp: int, ga: int, capacity_mib: int
) -> int | None:
    """The least T such that stages of time ≤ T can hold the layers (per-stage mode, integer layers):
    stage j from the last holds ≤ max_c min(⌊(T − extra_j)/time_c⌋, ⌊B_j / (state + f_j·act_c)⌋) layers.
    Checked for all layers with the lightest kind's coefficients (every stage needs one) and for each
    kind alone with its own; the largest T is valid. None when no T works."""
    modes, kinds = range(len(t.space.recompute_modes)), range(t.num_kinds)
    fly = [min(j + 1, ga) for j in range(pp)]
    budget = [capacity_mib] * pp
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


def _slots(
    t: TrainingTables, key: Triple, pp: int, ga: int, counts: list[int]
) -> tuple[list[int], list[int], float]:
    """Per pipeline slot j, counted from the last: the micro-batches in flight f_j (1 when pp = 1) and
    the extras in MiB (LM head on slot 0, embedding on slot pp − 1); and the least Σ_j states_j / f_j
    over partitions (one lightest layer per slot, the rest on the slot with the most in flight)."""
    i, m, z = key
    fly = [1 if pp == 1 else min(j + 1, ga) for j in range(pp)]
    extras = [0] * pp
    extras[0] += t.last_state_mib[i][z] + t.last_act_mib[i][m]
    extras[pp - 1] += t.first_state_mib[i][z] + t.first_act_mib[i][m]
    sigma = [t.state_mib[k][i][z] for k in range(t.num_kinds)]
    jmax = max(range(pp), key=lambda j: fly[j])
    states = sum(n * s for n, s in zip(counts, sigma, strict=True))
    least = (
        sum(min(sigma) / fly[j] for j in range(pp) if j != jmax)
        + (states - (pp - 1) * min(sigma)) / fly[jmax]
    )
    return fly, extras, least


def peak_floor_mib(t: TrainingTables, key: Triple) -> int:
    """A lower bound on the peak stage memory (MiB) of every plan of the triple, any partition and
    per-stage recompute. pp = 1: the least over recompute modes (exact). pp > 1: the larger of two
    least capacities C. The fluid one, at which `point_bounds`' relaxation holds: all activations fit
    in what the states leave, Σ_j (C − extras_j) / f_j ≥ least Σ_j states_j / f_j + Σ lightest
    activations (`_fluid_work` with the capacity as the unknown). The packing one (`_stage_floor`
    with memory only): slot j (from the last) holds at most ⌊(C − extras_j) / (state + f_j·act)⌋
    layers, with the lightest state and activations of any layer (each slot at least one, all layers
    placed) and with those of the most common kind for its layers alone."""
    i, m, z = key
    sp = t.space
    pp, ga = sp.shapes[i].pp, t.grad_accum[i][m]
    if pp == 1:
        return min(
            evaluate_point(
                t, Point(shape=i, micro=m, state=z, layers=(sp.num_layers,), recompute=(c,))
            ).memory_mib[0]
            for c in range(len(sp.recompute_modes))
        )
    counts = [sp.kind_of_layer.count(k) for k in range(t.num_kinds)]
    fly, extras, least = _slots(t, key, pp, ga, counts)
    sigma = [t.state_mib[k][i][z] for k in range(t.num_kinds)]
    modes = range(len(sp.recompute_modes))
    alpha = [min(t.act_mib[k][c][i][m] for c in modes) for k in range(t.num_kinds)]
    one_layer = max(e + min(sigma) + f * min(alpha) for e, f in zip(extras, fly, strict=True))
    acts = sum(n * a for n, a in zip(counts, alpha, strict=True))
    spread = (least + acts + sum(e / f for e, f in zip(extras, fly, strict=True))) / sum(1 / f for f in fly)
    common = max(range(t.num_kinds), key=counts.__getitem__)
    cases = [(sp.num_layers, min(sigma), min(alpha), 1), (counts[common], sigma[common], alpha[common], 0)]

    def packs(cap: int) -> bool:
        for count, state, act, each in cases:
            rooms = [(cap - e) // max(state + f * act, 1) for e, f in zip(extras, fly, strict=True)]
            if min(rooms) < each or sum(max(r, 0) for r in rooms) < count:
                return False
        return True

    lo, hi = one_layer, max(extras) + sp.num_layers * (max(sigma) + max(fly) * max(alpha)) + 1
    while lo < hi:  # the least capacity that packs: packs() only gains as the capacity grows
        mid = (lo + hi) // 2
        if packs(mid):
            hi = mid
        else:
            lo = mid + 1
    return max(lo, math.ceil(spread - 1e-6))


def _fluid_work(
    t: TrainingTables, i: int, m: int, z: int, pp: int, ga: int, counts: list[int], capacity_mib: int
) -> int | None:
    fly, extras, least = _slots(t, (i, m, z), pp, ga, counts)
    budget = [float(capacity_mib - e) for e in extras]
    sigma = [t.state_mib[k][i][z] for k in range(t.num_kinds)]
    modes = range(len(t.space.recompute_modes))
    alpha = [[t.act_mib[k][c][i][m] for c in modes] for k in range(t.num_kinds)]
    tau = [[t.layer_us[k][c][i][m] for c in modes] for k in range(t.num_kinds)]
    lightest = min(min(a) for a in alpha)
    if any(min(sigma) + f * lightest > b for b, f in zip(budget, fly, strict=True)):
        return None  # even one layer in its lightest mode does not fit some stage
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


def memory_rules_out_everything(t: TrainingTables) -> bool:
    """True when no (shape, micro-batch, state mode) fits in memory under any partition, per-stage
    recompute, batch or ZeRO/pipeline rule: a certificate that memory alone is infeasible.

    pp = 1: the one stage holds every layer (`_single_stage`). pp > 1: the fluid relaxation of
    `point_bounds` with one micro-batch in flight per stage (the fewest any schedule keeps), summed over
    the stages, so that it holds even for empty stages: all layers' states + their lightest activations
    + the first and last stages' extras must fit in pp × capacity.
    """
    sp = t.space
    counts = [sp.kind_of_layer.count(k) for k in range(t.num_kinds)]
    modes = range(len(sp.recompute_modes))
    for i, shape in enumerate(sp.shapes):
        for m in range(len(sp.micro_batches)):
            for z in range(len(sp.state_modes)):
                if shape.pp == 1:
                    if _single_stage(t, i, m, z, t.capacity_mib) is not None:
                        return False
                    continue
                room = shape.pp * t.capacity_mib - (
                    t.last_state_mib[i][z]
                    + t.last_act_mib[i][m]
                    + t.first_state_mib[i][z]
                    + t.first_act_mib[i][m]
                )
                need = sum(
                    n * (t.state_mib[k][i][z] + min(t.act_mib[k][c][i][m] for c in modes))
                    for k, n in enumerate(counts)
                )
                if need <= room:
                    return False
    return True
