"""Warm starts for CP-SAT: good training points found by plain Python over the integer tables.

`best_uniform_point` (Megatron's even split, pruned by training_points.point_bounds) and
`best_partitioned_point` (exact min-max splits from partition.py) seed CP-SAT's search; each stage takes
its fastest recompute mode that fits. No ortools import (STYLE.md §2).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from autoparallel.solvers.partition import even_partition, min_max_partition
from autoparallel.solvers.training.points import (
    Point,
    PointBound,
    StageValues,
    Triple,
    evaluate_point,
)
from autoparallel.solvers.training.space import speed_rank
from autoparallel.solvers.training.tables import TrainingTables


def best_uniform_point(
    t: TrainingTables,
    bounds: dict[Triple, PointBound],
    per_stage: bool = True,
    weight: Callable[[int], int] | None = None,
    until: float | None = None,
) -> tuple[Point, StageValues] | None:
    """The fastest point with Megatron's even split that fits, each stage taking its fastest fitting
    recompute mode (`per_stage`; else the fastest mode that fits every stage); (i, m, z) visited by
    increasing lower bound and cut off once it exceeds the best. With `weight` (shape index → factor:
    its GPUs for mfu / cost, `objective.gpu_weight`), the point of the least weight × step time. Past
    `until` (a `time.perf_counter()` instant) with a point found, the best so far: a warm start only."""
    sp = t.space
    best: tuple[Point, StageValues] | None = None
    w = weight or (lambda i: 1)
    order = sorted(bounds, key=lambda key: (bounds[key].step_us * w(key[0]), key))
    fast = _fastest_first(t)
    best_value = 0
    for i, m, z in order:
        if best is not None and (
            bounds[(i, m, z)].step_us * w(i) >= best_value
            or (until is not None and time.perf_counter() > until)
        ):
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
        if best is None or values.step_us * w(i) < best_value:
            best, best_value = (point, values), values.step_us * w(i)
    return best


def _fastest_first(t: TrainingTables) -> list[int]:
    """The space's recompute-mode indices, fastest first (none, selective, full)."""
    modes = t.space.recompute_modes
    return sorted(range(len(modes)), key=lambda c: speed_rank(modes[c]))


def _fastest_fitting(t: TrainingTables, p: Point, fast: list[int]) -> Point | None:
    """Per stage, the fastest recompute mode whose memory fits (a stage's memory depends only on its own
    layers and mode, so one evaluation per mode gives every stage's memory under it)."""
    pp = len(p.layers)
    memory = {
        c: evaluate_point(t, Point(p.shape, p.micro, p.state, p.layers, (c,) * pp)).memory_mib for c in fast
    }
    chosen = []
    for s in range(pp):
        fitting = [c for c in fast if memory[c][s] <= t.capacity_mib]
        if not fitting:
            return None
        chosen.append(fitting[0])
    return Point(shape=p.shape, micro=p.micro, state=p.state, layers=p.layers, recompute=tuple(chosen))


def partitioned_point(t: TrainingTables, i: int, m: int, z: int) -> Point | None:
    """The layers-per-stage split minimizing the slowest stage (partition.min_max_partition, exact), each
    stage taking its fastest recompute mode that fits: a non-uniform warm start for CP-SAT."""
    sp = t.space
    pp = sp.shapes[i].pp
    if pp == 1:
        return None
    kinds = sp.kind_of_layer
    fast = _fastest_first(t)

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
