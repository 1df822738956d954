"""Exact Pareto fronts over deployments that may be aggregated or disaggregated (mixed.py's model).

The front comes from `solvers/pareto.py`'s lexicographic / not-dominated loop over ONE CP-SAT model
in which the mode is a decision, so a front can mix aggregated and disaggregated points. Each point is
decoded by the float model (deployment/decoder.py for aggregated engines, deployment/disagg_plan.py
for prefill / decode engines), and its figures are checked against the solver's integer values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from autoparallel.errors import InfeasibleError, InputError, InternalError
from autoparallel.hardware import Cluster
from autoparallel.solvers import driver
from autoparallel.solvers.deployment.client_rules import CHORD_EXCESS
from autoparallel.solvers.deployment.decoder import Deployment, decode
from autoparallel.solvers.deployment.disagg_plan import (
    DisaggDeployment,
    decode_roles,
    role_dict,
    why_infeasible,
)
from autoparallel.solvers.deployment.explain import infeasible_reasons
from autoparallel.solvers.deployment.mixed import OBJECTIVES, MixedSpace, build_mixed_space
from autoparallel.solvers.deployment.mixed_encoder import build_mixed
from autoparallel.solvers.deployment.roles import RoleSpace
from autoparallel.solvers.deployment.space import FleetModel
from autoparallel.solvers.pareto import DEFAULT_CAP, Front, Progress, _front, _model_queries, _names
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.solvers.settings import SolverSettings

UNITS = {"throughput": 1e3, "tpot": 1e3, "cost": 1e6, "gpus": 1.0}
"""Solver units per real unit: milli-tokens/s, µs, µ$ per hour, GPUs."""


@dataclass(frozen=True)
class DeploymentPoint:
    """One point of a deployment front: an aggregated or a disaggregated deployment (float figures)."""

    mode: str
    """`aggregated` or `disaggregated`."""
    aggregated: Deployment | None
    disaggregated: DisaggDeployment | None
    vector: tuple[int, ...]
    """The solver's objective values (solver units, in the front's objective order)."""
    status: str
    """CP-SAT status of the query that found it."""

    @property
    def throughput_tokens_per_s(self) -> float:
        """Output tokens/s at SLO capacity (float model)."""
        if self.disaggregated is not None:
            d = self.disaggregated
            return d.capacity_rps * d.goodput_tokens_per_s / d.served_rps if d.served_rps else 0.0
        assert self.aggregated is not None
        return self.aggregated.throughput_tokens_per_s

    @property
    def gpus_used(self) -> int:
        d = self.disaggregated or self.aggregated
        assert d is not None
        return d.gpus_used

    @property
    def tokens_per_s_per_gpu(self) -> float:
        return self.throughput_tokens_per_s / self.gpus_used if self.gpus_used else 0.0

    @property
    def ttft_ms(self) -> float:
        """Disaggregated: the worst (prefill, decode) pair at the served load; else the slowest engine."""
        if self.disaggregated is not None:
            return self.disaggregated.ttft_ms
        assert self.aggregated is not None
        return max(e.ttft_ms for e in self.aggregated.engines)

    @property
    def tpot_ms(self) -> float:
        if self.disaggregated is not None:
            return self.disaggregated.tpot_ms
        assert self.aggregated is not None
        return max(e.tpot_ms for e in self.aggregated.engines)

    @property
    def usd_per_hour(self) -> float:
        d = self.disaggregated or self.aggregated
        assert d is not None
        return d.usd_per_hour

    @property
    def usd_per_million_tokens(self) -> float:
        tps = self.throughput_tokens_per_s
        return self.usd_per_hour / (tps * 3600.0) * 1e6 if tps > 0 else float("inf")

    @property
    def ratio(self) -> str:
        """xP:yD for a disaggregated point, empty for an aggregated one."""
        return self.disaggregated.ratio if self.disaggregated is not None else ""

    @property
    def label(self) -> str:
        """`4x tp2 b64` (aggregated) or `P 4x tp2 | D 1x tp8 b128` (disaggregated)."""

        def side(engines: Any) -> str:
            return " + ".join(
                f"{e.replicas}x tp{e.tp}"
                + (f"pp{e.pp}" if e.pp > 1 else "")
                + (f"ep{e.ep}" if e.ep > 1 else "")
                + (f" b{e.max_num_seqs}" if e.role != "prefill" else "")
                for e in engines
            )

        if self.disaggregated is not None:
            return f"P {side(self.disaggregated.prefill)} | D {side(self.disaggregated.decode)}"
        assert self.aggregated is not None
        return " + ".join(
            f"{e.replicas}x tp{e.tp}"
            + (f"pp{e.pp}" if e.pp > 1 else "")
            + (f"ep{e.ep}" if e.ep > 1 else "")
            + f" b{e.max_num_seqs}"
            for e in self.aggregated.engines
        )

    def value(self, name: str) -> float:
        """Objective `name` in real units: tokens/s, ms, US$ per hour, GPUs."""
        return {
            "throughput": self.throughput_tokens_per_s,
            "tpot": self.tpot_ms,
            "cost": self.usd_per_hour,
            "gpus": float(self.gpus_used),
        }[name]

    def to_dict(self) -> dict[str, Any]:
        """JSON: mode, figures, and `engines[]` (aggregated) or `prefill[]` / `decode[]` (disaggregated),
        with the same engine fields as `plan --disagg ... --json`."""
        out: dict[str, Any] = {
            "mode": self.mode,
            "label": self.label,
            "ratio": self.ratio or None,
            "throughput_tokens_per_s": self.throughput_tokens_per_s,
            "tokens_per_s_per_gpu": self.tokens_per_s_per_gpu,
            "ttft_ms": self.ttft_ms,
            "tpot_ms": self.tpot_ms,
            "gpus_used": self.gpus_used,
            "usd_per_hour": self.usd_per_hour,
            "usd_per_million_tokens": self.usd_per_million_tokens,
            "solver_status": self.status,
            "engines": [],
            "prefill": [],
            "decode": [],
        }
        if self.disaggregated is not None:
            d = self.disaggregated
            out["prefill"] = [role_dict(e) for e in d.prefill]
            out["decode"] = [role_dict(e) for e in d.decode]
            out["bound"] = d.bound
            out["ttft_parts_ms"] = d.ttft_parts_ms()
        elif self.aggregated is not None:
            out["engines"] = [e.to_dict({"config", "placement", "nodes"}) for e in self.aggregated.engines]
        return out


@dataclass
class MixedFront(Front[DeploymentPoint]):
    """A front over deployments, with why a mode is missing (`note`) and the candidates' count."""

    mode: str = "auto"
    note: str = ""
    candidates: int = 0


def objective_names(objectives: tuple[str, ...], points: int) -> tuple[str, ...]:
    """Validated objective names of a deployment front.

    Raises:
        InputError: fewer than two, a repeat, or one a deployment front cannot have (ttft says why).
    """

    def resolve(name: str) -> str:
        key = str(name).strip().lower()
        if key == "ttft":
            raise InputError(
                "ttft is a limit of a deployment front (--ttft-ms), not an objective: a disaggregated "
                "TTFT depends on prefill queueing at the carried load; use tpot, cost or gpus"
            )
        if key not in OBJECTIVES:
            raise InputError(
                f"unknown deployment front objective {name!r}; choose from {', '.join(OBJECTIVES)}"
            )
        return key

    return _names(objectives, points, resolve)


def pareto_mixed(
    fm: FleetModel,
    cluster: Cluster,
    *,
    objectives: tuple[str, ...] = ("throughput", "tpot"),
    mode: str = "auto",
    settings: SolverSettings | None = None,
    options: ServingOptions | None = None,
    points: int = DEFAULT_CAP,
    on_point: Progress | None = None,
) -> MixedFront:
    """Non-dominated deployments of one model on the whole cluster, aggregated or disaggregated per
    point (`mode` auto; `on` / `off` keep one mode), best first on the first objective (`on_point`:
    as `pareto_serving` takes it). Each query has the settings' time limit, and so do the tables.

    Raises:
        InputError: bad objectives or mode.
        InfeasibleError: no deployment at all (with `mode="on"`: why no disaggregated one, with numbers).
        SolverTimeoutError: the tables outlast the time limit.
    """
    names = objective_names(tuple(objectives), points)
    settings = (settings or SolverSettings()).model_copy(update={"lexicographic_tolerance": 0.0})
    deadline = settings.deadline()  # the tables within one query's limit
    space = build_mixed_space(fm, cluster, options, mode=mode, deadline=deadline)
    if mode == "on" and space.note:
        raise InfeasibleError(space.note)
    front = MixedFront(
        objectives=names, cap=points, mode=mode, note=space.note, candidates=len(space.engines)
    )

    def solution(counts: tuple[int, ...], run: driver.Run) -> DeploymentPoint:
        return decode_point(space, counts, names, run)

    if not space.engines or not _front(
        front, _model_queries(front, lambda: build_mixed(space), settings), solution, on_point
    ):
        raise InfeasibleError(_why_none(space, driver.Run(settings, deadline=deadline)))
    return front


def solve_mixed(
    fm: FleetModel,
    cluster: Cluster,
    objective: Any,
    *,
    mode: str,
    settings: SolverSettings | None = None,
    options: ServingOptions | None = None,
    deadline: float | None = None,
) -> DeploymentPoint:
    """The optimum of `objective` (a deployment objective: a name, a lexicographic order or
    {name: weight}; `driver.objective_chain`) over `fm`'s mixed space on `cluster`:
    with ("tpot", "throughput") the query that finds the first point of `pareto_mixed(objectives=
    ("tpot", "throughput"))`, the least worst TPOT of the engines used (an aggregated engine's step,
    a decode engine's pure decode step), then the most tokens/s at it. `mode` "off" keeps aggregated
    engines, "on" prefill / decode engines, "auto" either. The point is decoded by the float model
    (its figures labelled `driver.objective_label`) and checked against the solver's values, as a front's are;
    `deadline` (a `time.perf_counter()`; default the settings' limit from now) bounds the tables too.

    Raises:
        InputError: an objective the mixed model has not (`OBJECTIVES`: goodput, cost_per_mtok), or
            a bad mode.
        InfeasibleError: no deployment meets the limits and the rate (with `mode="on"`: why no
            disaggregated one, with numbers).
        SolverTimeoutError: the tables or the search outlast the time limit.
    """
    from autoparallel.solvers.deployment.driver import needs_hard_demand, objective_chain, objective_label

    chain, label = objective_chain(objective), objective_label(objective)
    names = tuple(chain)
    other = [n for n in names if n not in OBJECTIVES]
    if other:
        raise InputError(
            f"objective {label}: {other[0]} cannot be optimized with tpot; a deployment's TPOT goes with "
            f"{', '.join(n for n in OBJECTIVES if n != 'tpot')}"
        )
    settings = (settings or SolverSettings()).model_copy(update={"lexicographic_tolerance": 0.0})
    if deadline is None:
        deadline = settings.deadline()
    space = build_mixed_space(fm, cluster, options, mode=mode, deadline=deadline)
    if mode == "on" and space.note:
        raise InfeasibleError(space.note)
    run = driver.Run(settings, deadline=deadline)
    counts = driver.optimize(build_mixed(space), chain, run) if space.engines else None
    if counts is None:
        raise InfeasibleError(_why_none(space, run))
    return decode_point(space, counts, names, run, label, soft_rates=not needs_hard_demand(chain))


def _why_none(space: MixedSpace, run: driver.Run) -> str:
    """One line: the model, cluster, limits and rate nothing meets, then what binds with its numbers,
    from the planners' own explanations: the aggregated deployment planner's conflicting families
    (`explain.infeasible_reasons`: no engine meeting the SLOs, the rate, the concurrency cap, the
    client's queue, the pools) and the disaggregated planner's (`disagg_plan.why_infeasible`, per link
    floor), each side named under `auto`."""
    fm = space.fleet_model
    w = fm.workload
    limits = ", ".join(
        f"{k} {v:g} ms" for k, v in (("TTFT", w.ttft_ms), ("TPOT", w.tpot_ms)) if v is not None
    )
    rate = f" at {w.request_rate:g} req/s" if w.request_rate else ""
    what = {"on": "disaggregated ", "off": "aggregated "}.get(space.mode, "")
    meets = limits or "the workload"
    sides: list[tuple[str, str]] = []
    if space.mode != "on":
        sides.append(("aggregated", _aggregated_reason(space, run)))
    if space.mode != "off":
        sides.append(("disaggregated", space.note or why_infeasible(_role_tiers(space), run)))
    why = "; ".join((f"{side}: {text}" if space.mode == "auto" else text) for side, text in sides if text)
    return f"no {what}deployment of {fm.name} on {space.cluster.spec} meets {meets}{rate}" + (
        f": {why}" if why else ""
    )


def _aggregated_reason(space: MixedSpace, run: driver.Run) -> str:
    """Why no aggregated deployment exists (`explain.infeasible_reasons` over the aggregated candidates:
    the same families as the mixed model's aggregated side), the client's queue named as such."""
    named = infeasible_reasons(space.aggregated, run.settings)
    own = f"{space.fleet_model.name}: "  # the line names the model already
    return "; ".join(
        f"the client's queue: {text.removeprefix(own)}"
        if family.startswith("client_queue")
        else text.removeprefix(own)
        for family, text in named
    )


def _role_tiers(space: MixedSpace) -> RoleSpace:
    """The mixed space's prefill and decode engines as the disaggregated planner's link-floor spaces
    (`roles.RoleSpace.tiers`): floor t's engines are those `MixedSpace.role_floors` allows at t."""
    rs = space.roles
    if not space.floors:
        return rs
    tiers = []
    for t, floor in enumerate(space.floors):
        ks = space.floor_engines(t)
        sub = dataclasses.replace(rs.space, engines=tuple(rs.space.engines[k] for k in ks))
        step_tier, first = space.tier_bounds[t]
        tiers.append(
            RoleSpace(
                sub, [rs.times[k] for k in ks], [first], floor, step_tier=step_tier, same_node=rs.same_node
            )
        )
    return dataclasses.replace(tiers[-1], faster=tuple(tiers[:-1]))


def decode_point(
    space: MixedSpace,
    counts: tuple[int, ...],
    names: tuple[str, ...],
    run: driver.Run,
    objective: str = "front",
    soft_rates: bool = False,
) -> DeploymentPoint:
    """The float model's deployment of `counts` (labelled `objective`), checked against the solver's
    objective values.

    Raises:
        InternalError: the float figures differ from the solver's beyond its rounding.
    """
    agg, roles = space.split(counts)
    stats = run.stats()
    tighten_values(space, counts, names, run)
    if any(roles):
        d = decode_roles(space.roles, roles, objective, stats, soft_rates=soft_rates)
        point = DeploymentPoint("disaggregated", None, d, tuple(run.values[n] for n in names), run.status)
    else:
        a = decode(space.aggregated, agg, objective, stats, soft_rates=soft_rates)
        point = DeploymentPoint("aggregated", a, None, tuple(run.values[n] for n in names), run.status)
    check_point(space, counts, point, names)
    return point


def table_values(space: MixedSpace, counts: tuple[int, ...] | list[int]) -> dict[str, int]:
    """The objectives of replica counts `counts` in solver units from the space's integer tables, as
    mixed_encoder.py posts them at their tightest: throughput osl · (Σ_A capacity_milli_rps · r + the
    flow the roles carry round robin within a cap's closed loop, `DeploymentSpace.capacity_milli_rps`),
    tpot the largest TPOT of the engines used (`MixedSpace.tpot_us`), cost and gpus their sums."""
    fm = space.fleet_model
    agg, roles = space.split(counts)
    flow = space.roles.space.capacity_milli_rps(roles, 0)
    carried = sum(e.capacity_milli_rps * n for e, n in zip(space.aggregated.engines, agg, strict=True))
    used = [k for k, n in enumerate(counts) if n]
    return {
        "throughput": fm.workload.osl * (carried + flow),
        "tpot": max((space.tpot_us(k) for k in used), default=0),
        "cost": sum(space.engines[k].micro_usd_per_hour * counts[k] for k in used),
        "gpus": sum(space.engines[k].gpus * counts[k] for k in used),
    }


def tighten_values(
    space: MixedSpace, counts: tuple[int, ...], names: tuple[str, ...], run: driver.Run
) -> None:
    """`run.values` (the solver's objectives of `counts`) replaced by the counts' own (`table_values`).

    The model's flow_milli_rps and tpot_us are bounded by the engines used (flow ≤ each role's round
    robin, tpot ≥ each used engine's TPOT), not tied to them, so a solve that is not proven optimal may
    stop with slack in either: Llama-3.1-8B on 2x8xH100 (sharegpt, 1 s / 100 ms, `--time-limit 5`) gave
    P 2x tp1 | D 3x tp4 b48 a flow of 167.16 req/s where its roles carry 179.06, which the float model
    gives (a FEASIBLE solve under the lexicographic lock on the last level's throughput). The counts
    are the solution; their figures are the tables'. A table value worse than the solver's is a bug.

    Raises:
        InternalError: the counts' table value of an objective is worse than the solver's.
    """
    table = table_values(space, counts)
    for name in names:
        solver_value, exact = run.values[name], table[name]
        worse = exact < solver_value if OBJECTIVES[name].maximize else exact > solver_value
        if worse:
            raise InternalError(
                f"deployment front: {name} {solver_value} in solver units vs {exact} from the tables of "
                f"the same replica counts"
            )
        run.values[name] = exact


def check_point(
    space: MixedSpace, counts: tuple[int, ...], point: DeploymentPoint, names: tuple[str, ...]
) -> None:
    """Solver values == float values within the solver's rounding (capacities floor to milli-requests/s,
    steps round to µs); a disaggregated point's throughput under a client's cap may lie below the
    float model's by the closed-loop chords' excess too (`client_rules.CHORD_EXCESS`: the solver
    charges each prefill rank's requests on chords above their curve, so it carries a little less;
    Llama-3.1-8B on 1x8xH100 at 64 clients, 2,048 / 128 tokens, exited 3 at 1,672 units of 7,077,248)."""
    osl = space.fleet_model.workload.osl
    slack = {
        "throughput": osl * (sum(counts) + 2) + 1e-6 * point.throughput_tokens_per_s * 1e3,
        "tpot": 1.0,
        "cost": point.gpus_used + 1.0,  # µ$ per GPU-hour rounded once per GPU
        "gpus": 0.0,
    }
    looped = point.mode == "disaggregated" and space.fleet_model.concurrency is not None
    for name, solver_value in zip(names, point.vector, strict=True):
        exact = point.value(name) * UNITS[name]
        below = CHORD_EXCESS * exact if looped and name == "throughput" else 0.0
        if not -slack[name] - below <= solver_value - exact <= slack[name]:
            raise InternalError(
                f"deployment front: {point.mode} point {point.label}: {name} {solver_value} in solver "
                f"units vs {exact:.3f} from the float model"
            )
