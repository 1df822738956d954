"""solve_deployment's optimization: replica counts per candidate engine, through the common driver.

space   = space.build_deployment_space(...)   candidate engines with float-model coefficients
encoded = encoder.build(space, hard_demand)   replica-count variables, constraint families
solve   solvers/driver.py: lexicographic (each level kept at its optimum while the next is solved) or
        weighted; for $/M tokens, Dinkelbach's method (minimize cost − λ · goodput until λ stops falling)
decode  decoder.decode(...)                   placement, vLLM lines, fleet figures from the float model
explain on INFEASIBLE: explain.explain_infeasible names the conflicting families with numbers.
"""

from __future__ import annotations

import math
from fractions import Fraction

from autoparallel.errors import InputError, InternalError, SolverTimeoutError
from autoparallel.objectives import parse_objective
from autoparallel.solvers import driver
from autoparallel.solvers.cpsat import cp_model
from autoparallel.solvers.deployment.encoder import (
    WEIGHT_SCALE,
    EncodedDeployment,
    build,
    model_weight,
    objective_upper_bound,
)
from autoparallel.solvers.deployment.space import MILLI, DeploymentSpace
from autoparallel.solvers.settings import RAISE_LIMIT

Objective = str | tuple[str, ...] | dict[str, float]


def default_objective(space: DeploymentSpace) -> str:
    """goodput when a model has a request rate (serve it, then as cheaply as possible), else throughput."""
    return "goodput" if any(fm.workload.request_rate for fm in space.models) else "throughput"


def objective_chain(objective: Objective) -> tuple[str, ...] | dict[str, float]:
    """Validate an objective (`objectives.DEPLOYMENT`) and expand a single name to its chain; the
    $/M tokens ratio can be neither weighted nor part of a longer order."""
    chain = parse_objective(objective, "deployment")
    if isinstance(chain, dict) and "cost_per_mtok" in chain:
        raise InputError("cost_per_mtok is a ratio and cannot be weighted; weight cost and goodput instead")
    if isinstance(chain, tuple) and "cost_per_mtok" in chain and len(chain) > 1:
        raise InputError("cost_per_mtok cannot be part of a lexicographic order")
    return chain


MIXED_ONLY = frozenset({"tpot"})
"""Objectives of one model's mixed space only (`front.solve_mixed`): the worst TPOT of the engines
used needs every admissible entry (not one per shape) and a TPOT variable, which the fleet encoder
(encoder.py) has not."""


def needs_mixed(chain: tuple[str, ...] | dict[str, float]) -> bool:
    """True when `chain` holds an objective only the mixed space optimizes (`MIXED_ONLY`)."""
    return any(name in MIXED_ONLY for name in chain)


def leading(objective: Objective | None) -> str | None:
    """The objective a lexicographic order optimizes first (None: none given, or a weighted sum)."""
    if objective is None:
        return None
    chain = objective_chain(objective)
    return None if isinstance(chain, dict) else chain[0]


def objective_label(objective: Objective) -> str:
    """The objective as a deployment names it: the name, `a+b` for an order, the weights' repr."""
    if isinstance(objective, str):
        return objective
    return "+".join(objective) if isinstance(objective, tuple) else str(objective)


def needs_hard_demand(chain: tuple[str, ...] | dict[str, float]) -> bool:
    """Rates are constraints unless goodput (which counts served requests up to the rate) leads."""
    first = next(iter(chain))
    return first != "goodput"


def optimize(
    space: DeploymentSpace, chain: tuple[str, ...] | dict[str, float], run: driver.Run
) -> list[int] | None:
    """Replica counts of the optimum (lexicographic, weighted or ratio); None when infeasible.

    Raises:
        InputError: a `MIXED_ONLY` objective (solve_deployment and compare_disagg take it to the mixed
            space; a built fleet space has no TPOT variable).
    """
    if needs_mixed(chain):
        raise InputError(
            f"objective {'>'.join(chain)}: tpot is optimized over one model's mixed space "
            "(solve_deployment, compare_disagg), not over a built deployment or role space"
        )
    enc = build(space, hard_demand=needs_hard_demand(chain))
    if chain == ("cost_per_mtok",):
        return _dinkelbach(enc, run)
    return driver.optimize(enc, chain, run)


def expr_value(enc: EncodedDeployment, name: str, counts: list[int]) -> int:
    """Objective `name`'s value at replica counts `counts` (served = min(capacity, demand))."""
    space = enc.space
    if name == "throughput" and space.disaggregated:
        return sum(
            model_weight(space, m) * fm.milli_tokens_per_unit * space.capacity_milli_rps(counts, m)
            for m, fm in enumerate(space.models)
        )
    if name != "goodput":
        coeffs = {
            "throughput": lambda e: (
                space.models[e.model].milli_tokens_per_unit
                * e.capacity_milli_rps
                * model_weight(space, e.model)
            ),
            "cost": lambda e: e.micro_usd_per_hour,
            "gpus": lambda e: e.gpus,
        }[name]
        return sum(coeffs(e) * n for e, n in zip(space.engines, counts, strict=True))
    total = 0
    for m, fm in enumerate(space.models):
        cap = space.capacity_milli_rps(counts, m)
        served = min(cap, fm.demand_milli_rps) if fm.demand_milli_rps else cap
        total += model_weight(space, m) * fm.milli_tokens_per_unit * served
    return total


MICRO_USD_PER_MTOK = Fraction(10**6 * MILLI * WEIGHT_SCALE, 3600)
"""µ$ per million (priority-weighted) output tokens in one unit of cost / goodput, the units the ratio's
solver statistics are reported in: cost is µ$/hour (`objective_expr("cost")`), goodput (priority ×
WEIGHT_SCALE) × output milli-tokens/s (`objective_expr("goodput")`)."""


def goodput_upper(enc: EncodedDeployment) -> int:
    """The most goodput any plan of `enc` has: each model's served rate at its variable's upper bound
    (min(its engines' capacity at their most replicas, its request rate), `encoder.build`)."""
    space, served = enc.space, enc.vars.served_milli_rps
    return sum(
        model_weight(space, m) * fm.milli_tokens_per_unit * list(served[m].proto.domain)[-1]
        for m, fm in enumerate(space.models)
    )


def _integer_bound(bound: float) -> int:
    """The least integer an integer objective may take above CP-SAT's float bound `bound`."""
    return math.ceil(bound - 1e-6)


def below(x: Fraction, most: int) -> Fraction:
    """The fraction closest to `x` from below among those of denominator at most `most`: the lower of
    the two best approximations `Fraction.limit_denominator` chooses between (the convergent and the
    semiconvergent of x's continued fraction, one on each side of x)."""
    if x.denominator <= most:
        return x
    p0, q0, p1, q1 = 0, 1, 1, 0
    n, d = x.numerator, x.denominator
    while True:
        a = n // d
        q2 = q0 + a * q1
        if q2 > most:
            break
        p0, q0, p1, q1 = p1, q1, p0 + a * p1, q2
        n, d = d, n - a * d
    k = (most - q0) // q1
    semi, conv = Fraction(p0 + k * p1, q0 + k * q1), Fraction(p1, q1)
    return min((f for f in (semi, conv) if f <= x), key=lambda f: x - f)


def _dinkelbach(enc: EncodedDeployment, run: driver.Run) -> list[int] | None:
    """min cost / goodput: start from the cheapest plan, then minimize cost·T0 − C0·goodput while it
    finds a strictly lower ratio (Dinkelbach 1967; finite: each step strictly lowers the ratio over a
    finite set of plans). λ = C0/T0 is exact while the objective's terms at their bounds stay
    below 2^61 (CP-SAT's overflow check), else rounded.

    The ratio is proven optimal only by a lower bound that reaches it: every plan costs at least the
    cheapest plan's bound C and serves at most `goodput_upper` G, so no ratio is below C / G (with
    every model's rate a constraint, the cheapest plan meets it: no Dinkelbach step is needed, and a
    step's objective, of terms up to 10^16, is one CP-SAT's float LP cannot close within the limit);
    and a step whose bound B ≥ 0 proves cost − λ·goodput ≥ B / q, so no ratio is below
    λ + B / (q·G). A rounded λ is the closest fraction of bounded denominator at or below the ratio
    (`below`): above it, the current plan itself scores negative and no step bound can prove it (a
    Mixtral-8x7B disaggregated plan on 512x8xH100 stopped FEASIBLE at a gap of 99.99%). `run.primary`
    is (the ratio, the best of these bounds) in µ$ per million tokens (`MICRO_USD_PER_MTOK`),
    `run.status` OPTIMAL when they meet, within the rounding of the last step's λ where it had to be
    rounded (the precision CP-SAT's 64-bit objective carries: a step's bound B ≥ 0 proves every ratio
    at least the rounded λ; 3·10^-10 of the ratio in that Mixtral case), else FEASIBLE. A step that
    ends without a solution (the limit) leaves the plan found so far, FEASIBLE."""
    driver.set_objective(enc, "cost")
    solver = _solve(enc, run)
    if solver is None:
        return None
    counts = enc.read(solver)
    cost, goodput = expr_value(enc, "cost", counts), expr_value(enc, "goodput", counts)
    most = goodput_upper(enc)
    lower = Fraction(max(_integer_bound(solver.best_objective_bound), 0), most) if most > 0 else Fraction(0)
    served = enc.objective_expr("goodput")
    spend = enc.objective_expr("cost")
    # CP-SAT refuses an objective whose terms at their bounds could pass 2^63 (integer overflow)
    tops = objective_upper_bound(enc.space, "cost"), objective_upper_bound(enc.space, "goodput")
    rounding = Fraction(0)  # how far below the current ratio the last step's λ was rounded
    for _ in range(64):
        if Fraction(cost, max(goodput, 1)) <= lower:  # proven: no plan has a lower ratio
            break
        lam = Fraction(cost, max(goodput, 1))
        if lam.denominator * tops[0] + lam.numerator * tops[1] > 2**61:  # q · cost + p · goodput ≲ 2^60
            lam = below(lam, max(1, int(2**60 / (tops[0] + lam * tops[1] + 1))))
        rounding = Fraction(cost, max(goodput, 1)) - lam
        enc.model.minimize(spend * lam.denominator - served * lam.numerator)
        enc.hint(counts)
        solver = driver.solve_once(enc, run)
        if solver is None:
            if run.status == "UNKNOWN":  # the limit, without a solution: the plan found so far
                break
            raise InternalError("the cost-per-token model became infeasible")
        bound = _integer_bound(solver.best_objective_bound)
        if bound >= 0 and most > 0:
            lower = max(lower, lam + Fraction(bound, lam.denominator * most))
        new = enc.read(solver)
        c, g = expr_value(enc, "cost", new), expr_value(enc, "goodput", new)
        if c * goodput >= cost * g:  # no strictly lower cost / goodput
            break
        counts, cost, goodput = new, c, g
    ratio = Fraction(cost, max(goodput, 1))
    run.status = "OPTIMAL" if lower >= ratio - rounding else "FEASIBLE"
    run.primary = (float(ratio * MICRO_USD_PER_MTOK), float(min(lower, ratio) * MICRO_USD_PER_MTOK))
    return counts


def _solve(enc: EncodedDeployment, run: driver.Run) -> cp_model.CpSolver | None:
    """One driver call: the solver with a solution, None when infeasible; a time-out without one raises."""
    solver = driver.solve_once(enc, run)
    if solver is None and run.status == "UNKNOWN":
        raise SolverTimeoutError(
            f"no feasible deployment found within {float(f'{run.settings.time_limit_s:.3g}'):g} s "
            f"({RAISE_LIMIT})"  # 3 significant digits of what a deadline left (not 2.49997 s)
        )
    return solver
