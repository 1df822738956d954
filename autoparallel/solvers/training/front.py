"""The training front of step time and peak memory, by lazy decomposition over triples.

With two objectives, a front query of `solvers/pareto.py` is the classic ε-constraint: the
lexicographic optimum (step µs, then peak MiB) among the plans whose peak is below the last point's
(the cap). Over the (shape, micro-batch, state mode) triples of `training/decompose.py`, that is the
least of the triples' own lexicographic optima under the same cap. The caps only fall, so a triple's
optimum stays its optimum while its peak is under the cap: a triple is solved again only when the cap
falls below its peak. The triples wait in a heap, keyed by a lower bound on their (step, peak) under
the current cap and any later one:

    (step bound, −1)      never solved: `points.point_bounds`, valid for any partition and recompute
    (step, peak)          solved: the triple's optimum, exact while peak ≤ cap, a lower bound after
    (cutoff + 1, −1)      proven to have no plan with step ≤ cutoff under an earlier (larger) cap

A query pops the least key. A solved triple under the cap is the answer: every other key bounds its
triple from below. Any other triple is first re-bounded at the cap (`points.bound_under_cap`: the
planner's memory relaxation with the cap as the capacity): dropped for good when nothing fits under
it, back in the heap when its step bound rose. Only a triple still first is solved, under the cap
and with the cut step ≤ the best step found under it so far (the incumbent; without the cut, one
sub-model of Qwen3-30B-A3B on 16 H100s took CP-SAT 11 s to solve to optimality for nothing), and goes
back with its new key; a triple with no plan under the cap and no cut is dropped for good. The
re-bound does most of the work: on that front, 5,558 sub-solves without it, 114 with it.

A solve also looks first within a window just above the triple's key: step ≤ key · (1 + WINDOW_PERMILLE
/ 1000), when that is tighter than the incumbent. A triple solved again after the cap fell has its
next optimum a step or two along its own front, just above its last one (its key); a fresh triple's
often lies near its bound. Found within the window, it is the optimum (every plan outside is slower).
Not found, the triple goes back keyed past the window, like any cut, and its next solve has no
window, so a triple with nothing under the cap is still dropped after one more solve. Most of a
sub-solve's time is CP-SAT walking its incumbents down from a poor first plan, which the window
skips: `benchmarks/training_front.py --window`.

The answers are the whole-model queries' (the tests compare the fronts with the brute-force
enumeration's and with the whole-model queries'), from sub-models of one triple each, built once: the
cap and the triple's bounds under it are added to a sub-model as the cap falls (they stay valid), the
cut behind a literal held for one solve.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from autoparallel.errors import SolverTimeoutError
from autoparallel.solvers import driver
from autoparallel.solvers.cpsat import cp_model
from autoparallel.solvers.settings import SolverSettings
from autoparallel.solvers.training.decompose import WINDOW_PERMILLE, restrict
from autoparallel.solvers.training.encoder import EncodedTraining, build
from autoparallel.solvers.training.points import Point, PointBound, Triple, bound_under_cap
from autoparallel.solvers.training.tables import TrainingTables

OBJECTIVES = ("throughput", "memory")
"""The front this module computes: step time first (the triples' bounds are on it), then peak memory."""


@dataclass
class _SubModel:
    enc: EncodedTraining
    cap_mib: int | None = None
    """The tightest cap added to the model so far."""


@dataclass
class TripleFront:
    """The next point of the (step, peak) front on each `next()` call, from the triples of `bounds`
    (triples absent from it cannot fit)."""

    t: TrainingTables
    bounds: dict[Triple, PointBound]
    settings: SolverSettings
    cap_mib: int | None = None
    """Peak memory a next point must stay under (None before the first)."""
    heap: list[tuple[int, int, Triple]] = field(default_factory=list)
    solved: dict[Triple, tuple[int, int, Point]] = field(default_factory=dict)
    """Each triple's last optimum (step µs, peak MiB, point) under the cap of its solve."""
    models: dict[Triple, _SubModel] = field(default_factory=dict)
    window_permille: int | None = WINDOW_PERMILLE
    """The window's width above the key, ‰ (None: no window, each solve cut by the incumbent only)."""
    unwindowed: set[Triple] = field(default_factory=set)
    """Triples whose last solve found no plan within its window: the next one has none."""

    def __post_init__(self) -> None:
        self.heap = [(b.step_us, -1, key) for key, b in self.bounds.items()]
        heapq.heapify(self.heap)

    def next(self) -> driver.Answer[Point]:
        """The lexicographic optimum (step, peak) with peak under the cap, and the statistics of its
        sub-solves (status OPTIMAL, primary = the step time, values of both objectives); None when
        no plan is under the cap. The cap then falls below the point's peak.

        Raises:
            SolverTimeoutError: a sub-solve was not proven within the settings' limit (per query).
        """
        run = driver.Run(self.settings, deadline=self.settings.deadline())
        incumbent = min(((s, p) for s, p, _ in self.solved.values() if self._under_cap(p)), default=None)
        while self.heap:
            step_us, peak_mib, key = heapq.heappop(self.heap)
            if key in self.solved and self._under_cap(peak_mib):
                point = self.solved[key][2]
                run.primary = (float(step_us), float(step_us))
                run.values = dict(zip(OBJECTIVES, (step_us, peak_mib), strict=True))
                self.cap_mib = peak_mib - 1
                heapq.heappush(self.heap, (step_us, peak_mib, key))  # re-solved when popped again
                return driver.Answer(point, run)
            self.solved.pop(key, None)
            floor = self._floor(key)
            if floor is None:
                self.models.pop(key, None)  # nothing under this cap, nor under any later one
                continue
            if floor.step_us > step_us:  # the cap has raised the triple's bound: back in the queue
                heapq.heappush(self.heap, (floor.step_us, -1, key))
                continue
            cutoff = None if incumbent is None else incumbent[0]
            width = None if key in self.unwindowed else self.window_permille
            window = None if width is None else step_us * (1000 + width) // 1000
            if window is not None and cutoff is not None and window >= cutoff:
                window = None  # the incumbent cuts more
            self.unwindowed.discard(key)
            found = self._solve(key, floor, cutoff if window is None else window, run)
            if found is not None:
                self.solved[key] = found
                heapq.heappush(self.heap, (found[0], found[1], key))
                if incumbent is None or found[:2] < incumbent:
                    incumbent = found[:2]
            elif window is not None:  # no plan within the window: the next solve looks past it
                self.unwindowed.add(key)
                heapq.heappush(self.heap, (window + 1, -1, key))
            elif cutoff is not None:
                heapq.heappush(self.heap, (cutoff + 1, -1, key))
            else:
                del self.models[key]  # nothing under this cap, nor under any later one
        run.status = "INFEASIBLE"
        return driver.Answer(None, run)

    def _floor(self, key: Triple) -> PointBound | None:
        """The triple's lower bounds under the cap (None: nothing fits under it)."""
        if self.cap_mib is None:
            return self.bounds[key]
        return bound_under_cap(self.t, key, self.cap_mib)

    def _under_cap(self, peak_mib: int) -> bool:
        return self.cap_mib is None or peak_mib <= self.cap_mib

    def _solve(
        self, key: Triple, floor: PointBound, cutoff_us: int | None, run: driver.Run
    ) -> tuple[int, int, Point] | None:
        """The triple's optimum under the cap with step ≤ `cutoff_us` (None: no cut), or None. `floor`:
        its bounds under the cap, added with the cap as redundant cuts (both only tighten as it falls)."""
        sub = self.models.get(key)
        if sub is None:
            sub = self.models[key] = _SubModel(build(restrict(self.t, key), {(0, 0, 0): self.bounds[key]}))
        v = sub.enc.vars
        assert v.step_us is not None and v.peak_mib is not None and v.max_time_us is not None
        if self.cap_mib is not None and (sub.cap_mib is None or self.cap_mib < sub.cap_mib):
            sub.enc.model.add(v.peak_mib <= self.cap_mib).with_name("cap")
            on = [sub.enc.families[k] for k in ("global_batch", "zero_pipeline", "stage_layers", "memory")]
            for target, low in (
                (sum(v.time_us), floor.work_us),
                (v.max_time_us, floor.stage_us),
                (v.step_us, floor.step_us),
            ):
                sub.enc.model.add(target >= low).only_enforce_if(on)
            sub.cap_mib = self.cap_mib
        fixed: list[cp_model.IntVar] = []
        if cutoff_us is not None:
            lit = sub.enc.model.new_bool_var("cutoff")
            sub.enc.model.add(v.step_us <= cutoff_us).only_enforce_if(lit)
            fixed.append(lit)
        one = driver.Run(self.settings, deadline=run.deadline)
        try:
            found = driver.optimize(sub.enc, OBJECTIVES, one, fixed=fixed)
        finally:
            run.solves += one.solves
            run.wall_s += one.wall_s
        if found is None:
            return None
        if one.status != "OPTIMAL":
            raise SolverTimeoutError(f"a front query ran past {self.settings.time_limit_s:g} s")
        i, m, z = key
        return one.values["throughput"], one.values["memory"], replace(found, shape=i, micro=m, state=z)


def step_peak_queries(
    t: TrainingTables, bounds: dict[Triple, PointBound], names: tuple[str, ...], settings: SolverSettings
) -> Callable[[], driver.Answer[Point]] | None:
    """Front queries by `TripleFront` for the objectives `names` when their front is the (step, peak)
    front, else None: memory with the step time (throughput), and cost (= mfu) only where it is the
    step time itself (every shape on as many GPUs, `training/objective.py`). Each answer's values are
    given under `names`. With memory first, the points come best-first on memory: the whole front is
    found first and handed out in reverse (a front of two objectives is one set of vectors in either
    order); a time-out there hands out the points found, then ends the front, not proven complete."""
    same_world = len({s.world for s in t.space.shapes}) == 1
    steps = [n for n in names if n == "throughput" or (n == "cost" and same_world)]
    if "memory" not in names or not steps or len(steps) + 1 != len(names):
        return None
    front = TripleFront(t, bounds, settings)

    def named(found: driver.Answer[Point]) -> driver.Answer[Point]:
        if found.point is not None:
            step_us, peak_mib = (found.run.values[n] for n in OBJECTIVES)
            found.run.values = {n: peak_mib if n == "memory" else step_us for n in names}
        return found

    if names[0] != "memory":
        return lambda: named(front.next())
    found: list[driver.Answer[Point]] = []
    ended: list[driver.Answer[Point] | SolverTimeoutError] = []

    def by_memory() -> driver.Answer[Point]:
        if not ended:
            try:
                while (answer := front.next()).point is not None:
                    found.append(named(answer))
                ended.append(answer)
            except SolverTimeoutError as exc:
                ended.append(exc)
        if found:
            return found.pop()
        if isinstance(ended[0], SolverTimeoutError):
            raise ended[0]
        return ended[0]

    return by_memory
