"""The one CP-SAT driver: solver settings, status mapping, lexicographic and weighted optimization,
k-best by no-good cuts, and the minimal infeasible core. The serving and training planners (and every
planner after them) encode their problem as an `Encoding` and hand it here.

Statuses (ortools `CpSolverStatus`):
    OPTIMAL      the optimum, proven;
    FEASIBLE     the time limit was reached with a solution: the best found, with CP-SAT's bound and gap;
    INFEASIBLE   no solution: the caller explains it with `minimal_core`;
    UNKNOWN      the time limit was reached without a solution: the warm start (when the encoding has
                 one) is returned as FEASIBLE, else `SolverTimeoutError`;
    MODEL_INVALID  a bug: `InternalError`.

Weighted objectives: Σ weight_k · sense_k · expr_k / scale_k · 10¹², where scale_k is the encoding's
`objective_scale(k)` (a bound on |expr_k| over the space, so each term is at most its weight × 10¹²).
Weights therefore compare objectives relative to their range on this problem, not in raw units.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from autoparallel.errors import InternalError, SolverTimeoutError
from autoparallel.objectives import Chain
from autoparallel.solvers.cpsat import cp_model
from autoparallel.solvers.settings import RAISE_LIMIT, SolverSettings, SolverStats

P = TypeVar("P")
MIN_SOLVE_S = 0.01
"""Less time than this left before the deadline: no CP-SAT call is made (a time-out)."""
PARALLEL_MIN_VARIABLES = 1000
"""Models with fewer CP-SAT variables run on one worker (`make_solver`): the deployment models (one
count per engine) and most training sub-models."""
WEIGHTED_SCALE = 10**12
"""A weighted objective term is at most weight × WEIGHTED_SCALE (see the module docstring)."""


class Encoding(Protocol[P]):
    """What the driver needs from an encoded problem (`P`: the problem's decoded point)."""

    @property
    def model(self) -> cp_model.CpModel:
        """The CP-SAT model."""

    @property
    def families(self) -> dict[str, cp_model.IntVar]:
        """Constraint family name -> the literal that enables it: fixed true when optimizing, passed as
        assumptions by `minimal_core` (see `explain`)."""

    @property
    def explain(self) -> bool:
        """The family literals are free, for `minimal_core` to pass as assumptions (True), or fixed
        true in the model (False: what every optimization solves)."""

    def objective_expr(self, name: str) -> cp_model.LinearExprT:
        """The scaled integer expression of objective `name`."""

    def maximized(self, name: str) -> bool:
        """True when `objective_expr(name)` is maximized."""

    def objective_scale(self, name: str) -> int:
        """A positive bound on |objective_expr(name)| (normalises weighted sums)."""

    def read(self, solver: cp_model.CpSolver) -> P:
        """The point of a solution."""

    def hint(self, point: P) -> None:
        """Seed the search with `point` (replacing earlier hints)."""

    def shape_literals(self, point: P) -> Sequence[cp_model.IntVar]:
        """Literals true at `point` that identify its shape (k-best forbids them together)."""


@dataclass
class Run:
    """Statistics over the CP-SAT calls behind one result."""

    settings: SolverSettings
    wall_s: float = 0.0
    solves: int = 0
    status: str = "OPTIMAL"
    primary: tuple[float, float] = (0.0, 0.0)
    """CP-SAT's (objective, bound) of the first lexicographic level, solver units."""
    statuses: list[str] = field(default_factory=list)
    deadline: float | None = None
    """`time.perf_counter()` by which the whole call must end (None: each solve gets the full limit)."""
    values: dict[str, int] = field(default_factory=dict)
    """The objectives' values at the last solution, in solver units (what CP-SAT computed)."""

    def budget(self, requested: float | None = None) -> float:
        """Seconds the next CP-SAT call may take: the request (default the settings' limit), cut to what
        is left before the deadline."""
        limit = self.settings.time_limit_s if requested is None else requested
        if self.deadline is not None:
            limit = min(limit, self.deadline - time.perf_counter())
        return max(limit, 0.0)

    def stats(self) -> SolverStats:
        value, bound = self.primary
        return SolverStats.of(
            status=self.status,
            wall_s=self.wall_s,
            value=value,
            bound=bound,
            solves=self.solves,
            settings=self.settings,
        )


@dataclass(frozen=True)
class Answer(Generic[P]):
    """What one query found: a point (None: nothing meets it) and the statistics of its solves."""

    point: P | None
    run: Run


def make_solver(
    settings: SolverSettings,
    time_limit_s: float | None = None,
    variables: int | None = None,
    *,
    full_presolve: bool = False,
) -> cp_model.CpSolver:
    """A CpSolver with the settings' limit, workers and seed, and the presolve steps that cost more than
    they give on these table-driven models switched off (measured in benchmarks/: probing alone took 3 s
    of a 10 s training solve; the serving models spend 2-10× the search in inclusion / overlap
    detection).

    Several workers run CP-SAT's parallel portfolio, never `interleave_search` (deterministic, but
    marked experimental). With the families passed as assumptions on every solve, as they once were,
    two interleaved workers stalled a disaggregated deployment at 112 of 4,096 GPUs for the whole
    limit; without assumptions, ortools 9.15's interleaved search aborted the process on a training
    plan (`Check failed: heuristics.fixed_search != nullptr`, exit 134) and took a Qwen3-30B-A3B
    training plan from 0.1 s to 5 s of CP-SAT. benchmarks/solver_workers.py's eleven plans, one run
    each: two interleaved workers with assumptions 37.5 s against one worker's 17.0 s, two of the
    disaggregation comparisons left FEASIBLE; now 14.1 s against 13.1 s, all OPTIMAL.

    A model of fewer than PARALLEL_MIN_VARIABLES `variables` gets one worker whatever the settings:
    CP-SAT's presolve and LP settle such models alone, and a second worker's neighbourhood search
    only disturbs them (a Dinkelbach step of Mixtral-8x7B's disaggregated deployment on 512x8xH100,
    11 variables: 0.03 s on one worker, FEASIBLE after 8.5 s on two, most runs).

    The LP relaxation takes every linear constraint, those behind an enforcement literal included
    (`linearization_level` 2; CP-SAT's default 1 leaves them out): the families' rules are enforced by
    literals, and without them the LP bound of a lexicographic tie-break is empty. Qwen3-8B on
    2x8xH100 at 128 clients proved its throughput optimum in 0.01 s, then spent 44 s proving that no
    cheaper deployment reaches it (bound 1 GPU's price until the end); with them, 0.01 s. Measured
    over solver_workers.py's plans and four capped ones in one run (`benchmarks/solver_linearization.py`).

    `full_presolve`: probing and inclusion detection at CP-SAT's defaults, for `solve_once`'s second
    look at an INFEASIBLE answer."""
    solver = cp_model.CpSolver()
    p = solver.parameters
    p.max_time_in_seconds = settings.time_limit_s if time_limit_s is None else time_limit_s
    small = variables is not None and variables < PARALLEL_MIN_VARIABLES
    p.num_workers = 1 if small else settings.workers
    p.random_seed = settings.seed
    p.log_search_progress = settings.log_search
    p.catch_sigint_signal = False  # Ctrl-C interrupts the command (exit 130), not "time limit reached"
    if not full_presolve:
        p.cp_model_probing_level = 0
        p.presolve_inclusion_work_limit = 0
    p.find_big_linear_overlap = False
    p.symmetry_level = 0
    p.linearization_level = 2
    return solver


def family_literal(
    model: cp_model.CpModel, families: dict[str, cp_model.IntVar], name: str, explain: bool
) -> cp_model.IntVar:
    """The enable literal of constraint family `name` in `families`, created on first use: free in an
    explanation's model (`minimal_core` assumes it), fixed true in an optimization's."""
    if name not in families:
        lit = model.new_bool_var(f"family[{name}]")
        if not explain:
            model.add(lit == 1)
        families[name] = lit
    return families[name]


def _call(
    enc: Encoding[P],
    run: Run,
    assumptions: Sequence[str] | None,
    time_limit_s: float | None,
    *,
    full_presolve: bool = False,
) -> tuple[str, cp_model.CpSolver]:
    """One CP-SAT call, the named families passed as assumptions (an explanation's trial; None: none)."""
    enc.model.clear_assumptions()
    if assumptions is not None:
        enc.model.add_assumptions([enc.families[n] for n in assumptions])
    limit = run.budget(time_limit_s)
    solver = make_solver(run.settings, limit, len(enc.model.proto.variables), full_presolve=full_presolve)
    if limit < MIN_SOLVE_S:  # the call's time is spent: as a time-out without a solution
        run.statuses.append("UNKNOWN")
        return "UNKNOWN", solver
    start = time.perf_counter()
    status = solver.solve(enc.model)
    run.wall_s += time.perf_counter() - start
    run.solves += 1
    name = solver.status_name(status)
    run.statuses.append(name)
    if status == cp_model.MODEL_INVALID:
        raise InternalError(f"invalid CP-SAT model: {enc.model.validate()}")
    return name, solver


def solve_once(enc: Encoding[P], run: Run, time_limit_s: float | None = None) -> cp_model.CpSolver | None:
    """One CP-SAT call of an optimization (no assumptions: its model fixes the families on). Returns
    the solver with a solution, or None: `run.status` then says INFEASIBLE or UNKNOWN.

    An INFEASIBLE answer is looked at again with probing and inclusion detection at CP-SAT's defaults
    (`make_solver(full_presolve=True)`) before it is believed: ortools 9.15 with both off called a
    feasible model infeasible (a disaggregated closed-loop rule with a right side of 4e12; the
    encoders keep their coefficients smaller since, tests/solvers/test_s38_cpsat_second_look.py).

    Raises:
        InternalError: CP-SAT calls the model invalid.
    """
    name, solver = _call(enc, run, None, time_limit_s)
    if name == "INFEASIBLE":
        again, second = _call(enc, run, None, time_limit_s, full_presolve=True)
        if again != "UNKNOWN":  # out of time for the second look: the first answer stands
            name, solver = again, second
    if name in ("INFEASIBLE", "UNKNOWN"):
        run.status = name
        return None
    if name == "FEASIBLE":
        run.status = "FEASIBLE"
    return solver


def timeout_message(run: Run) -> str:
    """Why no plan came within the limit: CP-SAT found none in its time, or (no CP-SAT call made) the
    limit ran out before the search could start (what came before it, the tables or earlier solves,
    counts in the limit)."""
    # What a deadline left is the limit here (2.49997 s of a 2.5 s --time-limit): 3 significant digits.
    limit = float(f"{run.settings.time_limit_s:.3g}")
    if run.solves == 0:
        return (
            f"no feasible plan found within {limit:g} s: the limit ran out before CP-SAT could start "
            f"searching ({RAISE_LIMIT})"
        )
    return f"no feasible plan found within {limit:g} s ({RAISE_LIMIT})"


def set_objective(enc: Encoding[P], objective: str | dict[str, float]) -> None:
    """One objective by name, or a weighted sum normalised as the module docstring says."""
    if isinstance(objective, str):
        expr = enc.objective_expr(objective)
        enc.model.maximize(expr) if enc.maximized(objective) else enc.model.minimize(expr)
        return
    terms = []
    for name, weight in objective.items():
        scale = max(1, round(weight * WEIGHTED_SCALE / max(enc.objective_scale(name), 1)))
        sign = 1 if enc.maximized(name) else -1
        terms.append(sign * scale * enc.objective_expr(name))
    enc.model.maximize(cp_model.LinearExpr.sum(terms))


def _keep_within(enc: Encoding[P], name: str, value: int, tolerance: float) -> int:
    """Later lexicographic levels keep objective `name` within `tolerance` of `value`; the constraint's
    index (`optimize` removes it again when done)."""
    slack = int(abs(value) * tolerance)
    expr = enc.objective_expr(name)
    ct = enc.model.add(expr >= value - slack) if enc.maximized(name) else enc.model.add(expr <= value + slack)
    return int(ct.with_name(f"lexicographic[{name}]").index)


def optimize(
    enc: Encoding[P],
    chain: Chain,
    run: Run,
    *,
    fallback: P | None = None,
    fallback_primary: tuple[float, float] | None = None,
    time_limit_s: float | None = None,
    fixed: Sequence[cp_model.IntVar] = (),
) -> P | None:
    """Lexicographic (each level solved, then kept within the tolerance while the next is solved) or
    weighted optimization. None when infeasible (`run.status` INFEASIBLE). The model is left as it was
    found, but for its objective and hints, so that it can be optimized again (k-best, fronts).

    `fixed`: literals held true for this optimization only (a categorical choice pinned, e.g. one
    serving engine); removed afterwards like the lexicographic locks.

    On a time-out without a solution, the best point so far is returned as FEASIBLE: an earlier
    level's, else `fallback` (a warm start known to be feasible) with `fallback_primary` as its
    (value, bound); with neither, SolverTimeoutError.
    """
    locks: list[int] = [int(enc.model.add(lit == 1).with_name(f"fixed[{lit.name}]").index) for lit in fixed]
    try:
        return _optimize_levels(enc, chain, run, fallback, fallback_primary, time_limit_s, locks)
    finally:
        for index in locks:  # an emptied constraint is a no-op: the model is as the caller built it
            enc.model.proto.constraints[index].clear_linear()


def _optimize_levels(
    enc: Encoding[P],
    chain: Chain,
    run: Run,
    fallback: P | None,
    fallback_primary: tuple[float, float] | None,
    time_limit_s: float | None,
    locks: list[int],
) -> P | None:
    levels: list[str | dict[str, float]] = [chain] if isinstance(chain, dict) else list(chain)
    point: P | None = None
    if fallback is not None:
        enc.hint(fallback)
    for level, objective in enumerate(levels):
        set_objective(enc, objective)
        solver = solve_once(enc, run, time_limit_s=time_limit_s)
        if solver is None and run.status == "UNKNOWN":
            point = point if point is not None else fallback
            if point is None:
                raise SolverTimeoutError(timeout_message(run))
            if level == 0:
                run.primary = fallback_primary or (0.0, 0.0)
            run.status = "FEASIBLE"
            return point
        if solver is None:
            if level == 0:
                return None
            raise InternalError(f"lexicographic level {objective!r} became infeasible")
        point = enc.read(solver)
        names = levels if isinstance(chain, tuple) else list(chain)
        run.values = {str(n): int(solver.value(enc.objective_expr(str(n)))) for n in names}
        if level == 0:
            run.primary = (solver.objective_value, solver.best_objective_bound)
        if isinstance(objective, str) and level + 1 < len(levels):
            tolerance = run.settings.lexicographic_tolerance
            locks.append(_keep_within(enc, objective, round(solver.objective_value), tolerance))
            enc.hint(point)
    return point


def forbid_shape(enc: Encoding[P], point: P) -> None:
    """A no-good cut: the shape of `point` may not be chosen again."""
    lits = list(enc.shape_literals(point))
    enc.model.add_bool_or([lit.Not() for lit in lits]).with_name("no_good[shape]")


@dataclass(frozen=True)
class Shapes(Generic[P]):
    """What `k_best` found: the further points with their runs, best first, and whether the
    time limit stopped the search before `k` points (True: more shapes may exist; False: `k` were
    found, or none is left)."""

    found: list[tuple[P, Run]]
    cut: bool = False


def k_best(
    enc: Encoding[P],
    chain: Chain,
    first: P,
    k: int,
    settings: SolverSettings,
    *,
    time_limit_s: float | None = None,
    deadline: float | None = None,
) -> Shapes[P]:
    """Up to `k` − 1 further points, each the optimum of `chain` over the shapes not yet returned (a
    no-good cut per shape found, inside the same CP-SAT model). The first point is the caller's. A
    search that finds no point within the time limit ends the enumeration as `cut`: DeepSeek-V3 on
    64x8xH200 at --time-limit 1.8 listed 7 shapes, which the CLI called all that fit (36 do)."""
    out: list[tuple[P, Run]] = []
    forbid_shape(enc, first)
    for _ in range(k - 1):
        run = Run(settings, deadline=deadline)
        try:
            point = optimize(enc, chain, run, time_limit_s=time_limit_s)
        except SolverTimeoutError:
            return Shapes(out, cut=True)
        if point is None:
            break
        out.append((point, run))
        forbid_shape(enc, point)
    return Shapes(out)


@dataclass(frozen=True)
class Core:
    """Why a problem is infeasible: families proven needed, and those a trial could not decide."""

    needed: tuple[str, ...]
    """Families each of which, dropped, makes the rest feasible (a minimal conflicting set when
    `undecided` is empty)."""
    undecided: tuple[str, ...] = ()
    """Families whose trial ran out of time: neither blamed nor cleared."""


def _sufficient(enc: Encoding[P], solver: cp_model.CpSolver, assumed: list[str]) -> set[str]:
    """The families among `assumed` that CP-SAT's last INFEASIBLE answer names as sufficient (all of
    them when it names none, as it may when presolve alone proves it)."""
    index = {enc.families[n].index: n for n in assumed}
    named = {index[i] for i in solver.sufficient_assumptions_for_infeasibility() if i in index}
    return named or set(assumed)


def minimal_core(
    enc: Encoding[P],
    settings: SolverSettings,
    *,
    time_limit_s: float | None = None,
    deadline: float | None = None,
    held: Collection[str] = (),
) -> Core:
    """The deletion filter: drop each family whose removal leaves the rest infeasible. A trial that
    times out leaves the family in the set (so the set stays infeasible) but reports it as undecided,
    never as needed.

    The families are tried in the reverse of the order the encoding created them, which runs from the
    most basic rule to the most specific (serving: architecture, layouts, memory, max_model_len,
    SLOs, rate), so that of two families that rule out the same plans the earlier one is kept: a model
    whose weights fit nowhere is explained by memory, not by max_model_len (whose KV-cache numbers
    for one request would not show why). A family outside the last infeasible solve's sufficient
    assumptions (CP-SAT's, refined after each trial) is dropped without a solve, since a superset of
    an infeasible set stays infeasible.

    `held`: families no request can change (serving: a model's architecture rules, which also guard
    the placeholder numbers of the shapes they rule out), assumed in every trial and never offered as
    removable: the core is minimal among the others. Only when those others are all dropped (the
    held families conflict on their own) are the held ones filtered and named. DeepSeek-V3 on
    64x8xH200 with 200,000 prompts blamed `ep_divides_experts` beside the TTFT limit: without the
    rule, the ep=512 shape's placeholder TTFT of 1 µs met it.

    Raises:
        InternalError: the encoding fixes its families on (not built to explain), or the model is
            feasible with every family assumed.
    """
    if not enc.explain:
        raise InternalError("an infeasibility explanation needs an encoding built with free family literals")
    limit = settings.time_limit_s if time_limit_s is None else time_limit_s
    enc.model.clear_objective()
    keep = list(enc.families)
    hard = {n for n in keep if n in held}
    status, solver = _call(enc, Run(settings, deadline=deadline), keep, limit)
    if status in ("OPTIMAL", "FEASIBLE"):
        raise InternalError("the model is feasible with every constraint family on; nothing to explain")
    if status == "UNKNOWN":
        return Core(needed=(), undecided=tuple(n for n in keep if n not in hard) or tuple(keep))
    sufficient = _sufficient(enc, solver, keep)
    undecided: list[str] = []
    others = set(keep) - hard
    blamed: set[str] = set()  # the families tried (the held ones only when the others are all dropped)
    for candidates in (others, hard):
        if candidates is hard and others & set(keep):
            break  # the others conflict under the held rules: the held ones are the background
        blamed |= candidates
        for name in reversed(list(keep)):  # the later, more specific families first (see above)
            if name not in candidates:
                continue
            trial = [n for n in keep if n != name]
            if name not in sufficient:
                keep = trial  # the sufficient set is still assumed: infeasible without a solve
                continue
            status, solver = _call(enc, Run(settings, deadline=deadline), trial, max(0.5, limit / 4))
            if status == "INFEASIBLE":
                keep, sufficient = trial, _sufficient(enc, solver, trial)
            elif status == "UNKNOWN":
                undecided.append(name)
            # else feasible without it: needed
    return Core(
        needed=tuple(n for n in keep if n in blamed and n not in undecided), undecided=tuple(undecided)
    )
