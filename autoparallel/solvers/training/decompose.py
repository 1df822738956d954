"""The step-time objective (or the peak memory alone) solved by decomposition over (shape,
micro-batch, state mode) triples.

With the shape, micro-batch and state mode fixed, what is left is the stage partition and the recompute
mode per stage: a small CP-SAT model (the same encoder, on tables restricted to the one triple). The
triples are visited by increasing lower bound (`points.point_bounds` for the step time,
`points.peak_floor_mib` for the peak memory); a triple whose bound is at least the incumbent's value
cannot improve it and is pruned, and each sub-model is solved with the cut value < incumbent, so that
a triple that cannot improve is proven so quickly (INFEASIBLE).

A sub-model with no cut (no incumbent yet: no warm start, or the runner-up's first other shape) is
first solved within windows just above its bound, value ≤ bound · (1 + w / 1000) for w =
WINDOW_PERMILLE, twice that, ... up to twice the bound: the first window holding a plan gives the
triple's optimum (every plan outside it is worse), each empty one raises the bound past it, and no cut
comes last. Without a cut, most of a sub-solve's time is CP-SAT walking its incumbents down from a poor
first plan, which a window skips: the runner-up of gemma-3-27b-it on 512x8xH100 (a 16-stage split of
two layer kinds) took CP-SAT 5.3 s, its empty first window and its second 0.9-1.5 s. With the
incumbent's cut, the windows only added solves (DeepSeek-V3 on 64x8xH100: 5 → 8, 1.4 → 2.1 s of
CP-SAT), so they stay off.

    OPTIMAL    every triple whose bound is below the best value was solved to optimality (or proven
               unable to improve it), the rest pruned by their bounds;
    FEASIBLE   the deadline came first: the gap's lower end is the least bound of the triples left.

The runner-up (the best plan of another shape) comes from the same pass: triples of other shapes are
kept while their bound is below the best other-shape value found.

With a tie-break (`plan --train --objective memory`: the least peak, then the shortest step, as the
serving planner's memory chain breaks its ties by throughput), a value is the pair (peak MiB, step
µs), compared lexicographically: a triple's bound is (`peak_floor_mib`, its step bound), each
sub-model is solved lexicographically (`driver.optimize`, peak then step) with the cut "(peak, step)
below the incumbent's" (peak ≤ P and, by one literal, peak < P or step < S), and a triple whose peak
floor only equals the incumbent's peak is solved, not pruned, as it may hold a faster plan of that
peak. The windows bound the peak alone.

mfu and cost over several GPU counts (`objective.gpu_weight`) break their ties by the step time, ties
within the solver's rounding included: GPUs × step of 8 GPUs × T and 64 GPUs × T / 8 are one float
value, but each GPU count rounds its step's µs up differently (Llama-3.1-8B on 8x8xH100: 60,598,560
µs·GPU on 8 GPUs at 7.57 s, 60,599,360 on 64 at 0.95 s), so an exact integer tie-break still picked
the 8x slower plan. The float model decides the tie: with the least GPU-time C* found (the pass
above), a plan ties with C*'s plan when its float GPU-time is no larger (`FLOAT_TIE`), which needs
its integer GPU-time within its GPUs g × `objective.step_rounding_us` of C*, i.e. its step at most
⌊C* / g⌋ + that rounding; the shortest step among the tying plans wins (then the least GPU-time, the
least shape index). A second pass over the triples by increasing step bound solves each sub-model
for the step with the cut "step below the incumbent's and within the rounding" and checks the
triple's fastest plan in floats (its slower plans cost more). OPTIMAL needs both passes proven.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from autoparallel.errors import SolverTimeoutError
from autoparallel.perf.training import training_perf
from autoparallel.solvers import driver
from autoparallel.solvers.settings import RAISE_LIMIT, SolverSettings
from autoparallel.solvers.training.decoder import to_config
from autoparallel.solvers.training.encoder import EncodedTraining, build
from autoparallel.solvers.training.objective import GPU_WEIGHED, gpu_weight, point_value, step_rounding_us
from autoparallel.solvers.training.points import Point, PointBound, Triple, peak_floor_mib
from autoparallel.solvers.training.tables import Table2, TrainingTables

Value = tuple[int, ...]
"""A point's objective value: (objective,), or (objective, tie-break), compared lexicographically."""


def restrict(t: TrainingTables, key: Triple) -> TrainingTables:
    """The tables of the space with only shape i, micro-batch m and state mode z (each index 0 there)."""
    i, m, z = key
    sp = t.space
    space = replace(
        sp, shapes=(sp.shapes[i],), micro_batches=(sp.micro_batches[m],), state_modes=(sp.state_modes[z],)
    )

    def im(table: Table2) -> Table2:
        return ((table[i][m],),)

    def iz(table: Table2) -> Table2:
        return ((table[i][z],),)

    return replace(
        t,
        space=space,
        grad_accum=im(t.grad_accum),
        state_mib=tuple(iz(x) for x in t.state_mib),
        act_mib=tuple(tuple(im(x) for x in per_mode) for per_mode in t.act_mib),
        first_state_mib=iz(t.first_state_mib),
        first_act_mib=im(t.first_act_mib),
        last_state_mib=iz(t.last_state_mib),
        last_act_mib=im(t.last_act_mib),
        layer_us=tuple(tuple(im(x) for x in per_mode) for per_mode in t.layer_us),
        first_us=im(t.first_us),
        last_us=im(t.last_us),
        hop_us=im(t.hop_us),
        zero3_us=tuple(im(x) for x in t.zero3_us),
        zero2_us=tuple(im(x) for x in t.zero2_us),
        sync_bw_us=tuple(iz(x) for x in t.sync_bw_us),
        sync_lat_us=tuple(iz(x) for x in t.sync_lat_us),
        sync_first_us=iz(t.sync_first_us),
        sync_last_us=iz(t.sync_last_us),
        optim_us=tuple(iz(x) for x in t.optim_us),
        optim_first_us=iz(t.optim_first_us),
        optim_last_us=iz(t.optim_last_us),
    )


@dataclass
class Decomposed:
    """The outcome of `solve_by_triples`."""

    best: Point | None
    runner_up: Point | None
    run: driver.Run
    """status OPTIMAL / FEASIBLE / INFEASIBLE, primary (step µs, lower bound µs), CP-SAT wall and calls."""
    solved: int = 0
    """Triples whose sub-model was built and solved (at least once)."""
    pruned: int = 0
    """Triples never built: their bound reached the incumbent's step time (or, see `left`, the deadline
    came first)."""
    left: int = 0
    """Triples still open at the deadline (FEASIBLE)."""
    build_s: float = 0.0
    """Seconds spent building the sub-models."""
    runner_exact: bool = True
    """The runner-up is the best of the other shapes (False: the deadline came first)."""
    values: dict[Triple, Value] = field(default_factory=dict)
    """Proven optimum value (`Value`: the objective, then the tie-break) of each triple solved to
    optimality."""


def solve_by_triples(
    t: TrainingTables,
    bounds: dict[Triple, PointBound],
    hint: Point | None,
    settings: SolverSettings,
    deadline: float,
    runner_up: bool,
    objective: str = "throughput",
    tie_break: str | None = None,
) -> Decomposed:
    """The least value of `objective` (`throughput`: the step time; `memory`: the peak stage memory;
    `mfu` / `cost`: GPUs × step time, `objective.gpu_weight`) over every triple in `bounds` (triples
    absent from it cannot fit), by increasing lower bound with pruning; and, with `runner_up`, the best
    point of another shape. The lower bounds: the step bounds of `bounds` (times the triple's GPUs for
    mfu / cost), or `points.peak_floor_mib`. A triple has one shape, so its sub-model minimizes the
    step time alone, its cuts and bounds scaled by the shape's GPUs (`_solve_scaled`). With `tie_break`
    (`throughput` after `memory`), the least value of the pair (objective, tie-break),
    lexicographically (the module docstring); `throughput` after `mfu` / `cost`: the shortest step
    among the plans whose GPU-time ties with the least within the solver's rounding (the module
    docstring; on one GPU count, the step time is the objective and no second pass runs);
    `run.primary` stays the first objective's (value, bound).

    Raises:
        SolverTimeoutError: the deadline came before any plan was found (and no `hint`).
    """
    pairs = (("memory", "throughput"), *((n, "throughput") for n in GPU_WEIGHED))
    if tie_break is not None and (objective, tie_break) not in pairs:
        raise ValueError(f"no decomposition of {objective!r} broken by {tie_break!r}")
    by_step = tie_break is not None and objective in GPU_WEIGHED  # a second pass, not a pair value
    names = (objective,) if tie_break is None or by_step else (objective, tie_break)
    out = Decomposed(best=None, runner_up=None, run=driver.Run(settings, deadline=deadline))
    best_of_shape: dict[int, tuple[Value, Point]] = {}
    steps = objective in ("throughput", "mfu", "cost")
    sub_names = ("throughput",) if steps else names  # one shape: GPUs × step is the step, scaled

    weights = {i: gpu_weight(t, i, objective) for i in {key[0] for key in bounds}}

    def gpus(key: Triple) -> int:
        return weights[key[0]]

    def floor(key: Triple) -> Value:
        b = bounds[key]
        if steps:
            return (b.step_us * gpus(key),)
        return (peak_floor_mib(t, key),) if tie_break is None else (peak_floor_mib(t, key), b.step_us)

    def value_of(point: Point) -> Value:
        return tuple(point_value(t, point, n) for n in names)

    low = {key: floor(key) for key in bounds}  # proven lower bounds, raised by sub-solves
    exact = out.values
    built: set[Triple] = set()
    optima: dict[Triple, Point] = {}  # the plan of each triple solved to optimality

    def offer(point: Point, value: Value) -> None:
        cur = best_of_shape.get(point.shape)
        if cur is None or value < cur[0]:
            best_of_shape[point.shape] = (value, point)

    def top() -> tuple[tuple[Value, Point] | None, tuple[Value, Point] | None]:
        ranked = sorted(best_of_shape.values(), key=lambda vp: (vp[0], vp[1].shape))
        return (ranked[0] if ranked else None), (ranked[1] if len(ranked) > 1 else None)

    def cutoff(key: Triple, second: bool) -> Value | None:
        """The value a triple must beat to matter (None: any value matters)."""
        first, other = top()
        if first is None:
            return None
        if not second or key[0] == first[1].shape:
            return first[0]
        return None if other is None else other[0]

    if hint is not None:
        offer(hint, value_of(hint))
    order = sorted(bounds, key=lambda k: (low[k], k))
    for second in (False, True) if runner_up else (False,):
        for key in order:
            limit = cutoff(key, second)
            if key in exact or (limit is not None and low[key] >= limit):
                continue
            if time.perf_counter() >= deadline - driver.MIN_SOLVE_S:
                break
            for cut in _cuts(low[key], limit):
                found, status, bound = _solve_scaled(
                    t, key, bounds[key], cut, best_of_shape.get(key[0]), out, sub_names, low[key], gpus(key)
                )
                if status != "INFEASIBLE" or cut is None or cut == limit:
                    break
                low[key] = max(low[key], cut + low[key][len(cut) :])  # nothing within the window
            built.add(key)
            if status == "INFEASIBLE":  # nothing below the cutoff (or nothing at all)
                low[key] = max(low[key], limit if limit is not None else NEVER)
            elif found is not None:
                value = value_of(found)
                offer(found, value)
                low[key] = value if status == "OPTIMAL" else max(low[key], bound)
                if status == "OPTIMAL":
                    exact[key] = value
                    optima[key] = found
    first, other = top()
    out.solved, out.pruned = len(built), len(bounds) - len(built)
    if first is None:
        if any(key not in exact and low[key] < NEVER for key in bounds):
            raise SolverTimeoutError(
                f"no feasible plan found within {float(f'{settings.time_limit_s:.3g}'):g} s "
                f"({RAISE_LIMIT})"  # 3 significant digits of what a deadline left (not 2.49997 s)
            )
        out.run.status = "INFEASIBLE"
        return out
    value, out.best = first
    open_lows = [low[key] for key in bounds if key not in exact and low[key] < value]
    out.left = len(open_lows)
    out.run.primary = (float(value[0]), float(min([value, *open_lows])[0]))
    out.run.status = "OPTIMAL" if not open_lows else "FEASIBLE"
    if by_step and len(set(weights.values())) > 1:
        chosen = _fastest_tie(t, bounds, low, optima, (value, out.best), weights, out, deadline)
        if chosen[1].shape != out.best.shape:  # the least GPU-time of the other shapes: the first pass's
            other = first
        value, out.best = chosen
        # proven: the chosen plan is the optimum under the tie rule, its GPU-time the least up to its
        # rounding, so its own value is the bound (`plan.SolverReport.gap` is 0 when OPTIMAL)
        proven = out.run.status == "OPTIMAL"
        out.run.primary = (float(value[0]), float(value[0]) if proven else out.run.primary[1])
    if runner_up and other is not None:
        out.runner_up = other[1]
        out.runner_exact = not any(
            key not in exact and key[0] != out.best.shape and low[key] < other[0] for key in bounds
        )
    return out


def _fastest_tie(
    t: TrainingTables,
    bounds: dict[Triple, PointBound],
    low: dict[Triple, Value],
    optima: dict[Triple, Point],
    least: tuple[Value, Point],
    gpus: dict[int, int],
    out: Decomposed,
    deadline: float,
) -> tuple[Value, Point]:
    """The second pass of mfu / cost (the module docstring): among the plans whose float GPU-time ties
    with that of `least` (the least integer GPU-time C*), the one of the shortest step (then the least
    GPU-time, the least shape index), with its value (GPU-time,). Only a plan within its GPUs ×
    `objective.step_rounding_us` of C* in the solver's integers can tie in floats. `low`: each triple's
    proven lower bound on its GPU-time; `optima`: the plans of the triples solved to optimality.
    Triples left open at the deadline leave `out.run.status` FEASIBLE."""
    cost = least[0][0]

    def float_cost(point: Point) -> float:
        sp = t.space
        return gpus[point.shape] * training_perf(sp.model, sp.cluster, to_config(sp, point)).step_time_s

    tie = float_cost(least[1]) * (1 + FLOAT_TIE)

    def rank(point: Point, step: int) -> tuple[int, int, int]:
        return step, step * gpus[point.shape], point.shape

    def cap(key: Triple) -> int:  # the slowest step that may tie: g · step ≤ C* + g · rounding
        return cost // gpus[key[0]] + step_rounding_us(t, key[0], key[1]) + 1

    best = least[1]
    best_rank = rank(best, cost // gpus[best.shape])

    def consider(point: Point, step: int) -> None:
        nonlocal best, best_rank
        if rank(point, step) < best_rank and float_cost(point) <= tie:
            best, best_rank = point, rank(point, step)

    step_low = {key: -(-low[key][0] // gpus[key[0]]) for key in bounds}
    order = sorted((key for key in bounds if step_low[key] <= cap(key)), key=lambda k: (step_low[k], k))
    left = 0
    for key in order:
        g = gpus[key[0]]
        if (step_low[key], step_low[key] * g, key[0]) >= best_rank:
            continue  # cannot beat the incumbent
        if key in optima:  # its optimum is known: the least step (and GPU-time) of the triple
            consider(optima[key], out.values[key][0] // g)
            continue
        if time.perf_counter() >= deadline - driver.MIN_SOLVE_S:
            left += 1
            continue
        # a step below the incumbent's (or equal to it on fewer GPUs, or a lower shape index) that may tie
        beats = best_rank[0] + (1 if (g, key[0]) < (gpus[best.shape], best.shape) else 0)
        limit = (min(cap(key) + 1, beats),)
        found, status, _ = _solve_triple(
            t, key, bounds[key], limit, None, out, "throughput", (step_low[key],)
        )
        if found is not None:  # the triple's least step under the cut: its other plans cost more
            consider(found, point_value(t, found, "throughput"))
        if status not in ("OPTIMAL", "INFEASIBLE"):
            left += 1
    if left:
        out.left += left
        out.run.status = "FEASIBLE"
    return (best_rank[1],), best


FLOAT_TIE = 1e-9
"""Relative difference of two float GPU-times (the float model's GPUs × step s) that is a tie: 8 GPUs
× T and 64 × T / 8 of a step that scales with the data-parallel degree differ by float noise only."""


NEVER: Value = (2**62,)
"""The lower bound of a triple proven infeasible (above every value, whatever its length)."""

WINDOW_PERMILLE = 20
"""The first window's width above a triple's bound, ‰: here (the module docstring) and in
training/front.py, where a re-solved triple's next optimum lies just past its last one."""


def _windows(low: int, limit: int | None) -> Iterator[int | None]:
    """The cuts (value < cut) a triple of lower bound `low` is solved with in turn: with no `limit`
    (None), windows 2%, 4%, 8%, ... above `low` up to twice it, then no cut; else `limit` alone."""
    width = WINDOW_PERMILLE
    while limit is None and width <= 1000:
        yield low * (1000 + width) // 1000 + 1
        width *= 2
    yield limit


def _cuts(low: Value, limit: Value | None) -> Iterator[Value | None]:
    """`_windows` on values: with no `limit`, the windows on the first objective (one-element cuts:
    that objective alone below the window), then no cut; else `limit` alone."""
    if limit is not None:
        yield limit
        return
    for window in _windows(low[0], None):
        yield None if window is None else (window,)


def _cut_below(sub: EncodedTraining, names: tuple[str, ...], limit: Value) -> None:
    """Constrain `sub` to values (of `names`) lexicographically below `limit`: the first objective
    below a one-element limit; with two, the first at most limit[0], and (by one literal) the first
    below it or the second below limit[1]."""
    first = sub.objective_expr(names[0])
    if len(limit) == 1:
        sub.model.add(first <= limit[0] - 1).with_name("cutoff")
        return
    sub.model.add(first <= limit[0]).with_name("cutoff")
    below = sub.model.new_bool_var("cutoff[first_below]")
    sub.model.add(first <= limit[0] - 1).only_enforce_if(below)
    sub.model.add(sub.objective_expr(names[1]) <= limit[1] - 1).only_enforce_if(below.Not())


def _solve_scaled(
    t: TrainingTables,
    key: Triple,
    bound: PointBound,
    limit: Value | None,
    incumbent: tuple[Value, Point] | None,
    out: Decomposed,
    names: tuple[str, ...],
    floor: Value,
    gpus: int,
) -> tuple[Point | None, str, Value]:
    """`_solve_triple` for values `gpus` × the sub-model's (GPUs × step time, one shape's GPUs): the
    limit and the floor divided by `gpus` (value < L iff step < ⌈L / gpus⌉; step ≥ ⌈floor / gpus⌉),
    the lower bound found multiplied back."""
    if gpus == 1:
        return _solve_triple(t, key, bound, limit, incumbent, out, names, floor)
    assert len(names) == 1 and len(floor) == 1
    cut = None if limit is None else (-(-limit[0] // gpus),)
    found, status, low = _solve_triple(t, key, bound, cut, incumbent, out, names, (-(-floor[0] // gpus),))
    return found, status, (low[0] * gpus,)


def _solve_triple(
    t: TrainingTables,
    key: Triple,
    bound: PointBound,
    limit: Value | None,
    incumbent: tuple[Value, Point] | None,
    out: Decomposed,
    objective: str | tuple[str, ...] = "throughput",
    floor: Value | int | None = None,
) -> tuple[Point | None, str, Value]:
    """One sub-model: the triple's best point of `objective` (a name, or names for a lexicographic
    order) below `limit` (None: unbounded), CP-SAT's status and a lower bound on the triple's value
    below the limit (`floor`, default the step bound, when CP-SAT proves none higher: its bound on
    the first objective, then `floor`'s rest). Seeded with the incumbent of the same shape when it is
    this triple."""
    names = (objective,) if isinstance(objective, str) else objective
    start = time.perf_counter()
    sub = build(restrict(t, key), {(0, 0, 0): bound})
    if limit is not None:
        _cut_below(sub, names, limit)
    if incumbent is not None and (incumbent[1].micro, incumbent[1].state) == key[1:]:
        sub.hint(replace(incumbent[1], shape=0, micro=0, state=0))
    out.build_s += time.perf_counter() - start
    run = driver.Run(out.run.settings, deadline=out.run.deadline)
    try:
        found = driver.optimize(sub, names, run)
    except SolverTimeoutError:
        found = None
    out.run.wall_s += run.wall_s
    out.run.solves += run.solves
    floor = (bound.step_us,) if floor is None else (floor,) if isinstance(floor, int) else floor
    if found is None:
        return None, run.status, floor
    point = replace(found, shape=key[0], micro=key[1], state=key[2])
    return point, run.status, max(floor, (int(run.primary[1]), *floor[1:]))
