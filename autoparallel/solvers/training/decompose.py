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
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from autoparallel.errors import SolverTimeoutError
from autoparallel.solvers import driver
from autoparallel.solvers.settings import SolverSettings
from autoparallel.solvers.training.encoder import build
from autoparallel.solvers.training.objective import point_value
from autoparallel.solvers.training.points import Point, PointBound, Triple, peak_floor_mib
from autoparallel.solvers.training.tables import Table2, TrainingTables


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
    values: dict[Triple, int] = field(default_factory=dict)
    """Proven optimum step µs of each triple solved to optimality."""


def solve_by_triples(
    t: TrainingTables,
    bounds: dict[Triple, PointBound],
    hint: Point | None,
    settings: SolverSettings,
    deadline: float,
    runner_up: bool,
    objective: str = "throughput",
) -> Decomposed:
    """The least value of `objective` (`throughput`: the step time; `memory`: the peak stage memory)
    over every triple in `bounds` (triples absent from it cannot fit), by increasing lower bound with
    pruning; and, with `runner_up`, the best point of another shape. The lower bounds: the step
    bounds of `bounds`, or `points.peak_floor_mib`.

    Raises:
        SolverTimeoutError: the deadline came before any plan was found (and no `hint`).
    """
    out = Decomposed(best=None, runner_up=None, run=driver.Run(settings, deadline=deadline))
    best_of_shape: dict[int, tuple[int, Point]] = {}
    low = {  # proven lower bounds, raised by sub-solves
        key: b.step_us if objective == "throughput" else peak_floor_mib(t, key) for key, b in bounds.items()
    }
    exact = out.values
    built: set[Triple] = set()

    def offer(point: Point, value: int) -> None:
        cur = best_of_shape.get(point.shape)
        if cur is None or value < cur[0]:
            best_of_shape[point.shape] = (value, point)

    def top() -> tuple[tuple[int, Point] | None, tuple[int, Point] | None]:
        ranked = sorted(best_of_shape.values(), key=lambda vp: (vp[0], vp[1].shape))
        return (ranked[0] if ranked else None), (ranked[1] if len(ranked) > 1 else None)

    def cutoff(key: Triple, second: bool) -> int | None:
        """The value a triple must beat to matter (None: any value matters)."""
        first, other = top()
        if first is None:
            return None
        if not second or key[0] == first[1].shape:
            return first[0]
        return None if other is None else other[0]

    if hint is not None:
        offer(hint, point_value(t, hint, objective))
    order = sorted(bounds, key=lambda k: (low[k], k))
    for second in (False, True) if runner_up else (False,):
        for key in order:
            limit = cutoff(key, second)
            if key in exact or (limit is not None and low[key] >= limit):
                continue
            if time.perf_counter() >= deadline - driver.MIN_SOLVE_S:
                break
            for cut in _windows(low[key], limit):
                found, status, bound = _solve_triple(
                    t, key, bounds[key], cut, best_of_shape.get(key[0]), out, objective, low[key]
                )
                if status != "INFEASIBLE" or cut is None or cut == limit:
                    break
                low[key] = cut  # nothing within the window: look past it
            built.add(key)
            if status == "INFEASIBLE":  # nothing below the cutoff (or nothing at all)
                low[key] = max(low[key], limit if limit is not None else NEVER)
            elif found is not None:
                value = point_value(t, found, objective)
                offer(found, value)
                low[key] = value if status == "OPTIMAL" else max(low[key], bound)
                if status == "OPTIMAL":
                    exact[key] = value
    first, other = top()
    out.solved, out.pruned = len(built), len(bounds) - len(built)
    if first is None:
        if any(key not in exact and low[key] < NEVER for key in bounds):
            raise SolverTimeoutError(
                f"no feasible plan found within {settings.time_limit_s:g} s (raise --time-limit)"
            )
        out.run.status = "INFEASIBLE"
        return out
    value, out.best = first
    open_lows = [low[key] for key in bounds if key not in exact and low[key] < value]
    out.left = len(open_lows)
    out.run.primary = (float(value), float(min([value, *open_lows])))
    out.run.status = "OPTIMAL" if not open_lows else "FEASIBLE"
    if runner_up and other is not None:
        out.runner_up = other[1]
        out.runner_exact = not any(
            key not in exact and key[0] != out.best.shape and low[key] < other[0] for key in bounds
        )
    return out


NEVER = 2**62
"""The lower bound of a triple proven infeasible."""

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


def _solve_triple(
    t: TrainingTables,
    key: Triple,
    bound: PointBound,
    limit: int | None,
    incumbent: tuple[int, Point] | None,
    out: Decomposed,
    objective: str = "throughput",
    floor: int | None = None,
) -> tuple[Point | None, str, int]:
    """One sub-model: the triple's best point of `objective` below `limit` (None: unbounded), CP-SAT's
    status and bound (`floor`, default the step bound, when it finds nothing). Seeded with the
    incumbent of the same shape when it is this triple."""
    start = time.perf_counter()
    sub = build(restrict(t, key), {(0, 0, 0): bound})
    if limit is not None:
        sub.model.add(sub.objective_expr(objective) <= limit - 1).with_name("cutoff")
    if incumbent is not None and (incumbent[1].micro, incumbent[1].state) == key[1:]:
        sub.hint(replace(incumbent[1], shape=0, micro=0, state=0))
    out.build_s += time.perf_counter() - start
    run = driver.Run(out.run.settings, deadline=out.run.deadline)
    try:
        found = driver.optimize(sub, (objective,), run)
    except SolverTimeoutError:
        found = None
    out.run.wall_s += run.wall_s
    out.run.solves += run.solves
    if found is None:
        return None, run.status, bound.step_us if floor is None else floor
    point = replace(found, shape=key[0], micro=key[1], state=key[2])
    return point, run.status, int(run.primary[1])
