"""Aggregated vs disaggregated serving of one model on a cluster, in one answer.

`compare_disagg` solves both deployment spaces (the same serving tables, read as aggregated engines
and as prefill / decode roles) through the common CP-SAT driver and says which wins at the SLOs, by
the measure of the objective both were planned for (`MEASURES`: capacity tokens/s per GPU under
throughput, goodput tokens/s per GPU under goodput, $/hour under cost, ...; ties: lower $/M tokens).

mode: "off" (aggregated only); "on" (the disaggregated deployment is the answer, still compared: a
cluster too small for a prefill and a decode engine, or a TTFT limit below the KV transfer + first
decode step + request overhead, is infeasible with numbers); "auto" (compare when the cluster holds
two of the smallest engines, else say why not).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from autoparallel.errors import InfeasibleError, InputError, SolverTimeoutError
from autoparallel.fleet import FleetPlan, fleet_of_one, solve_fleet
from autoparallel.hardware import Cluster
from autoparallel.models import ModelSpec
from autoparallel.objectives import canonical
from autoparallel.plan import round_floats
from autoparallel.workload import Serving, rps_text

MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class Comparison:
    """The best aggregated and the best disaggregated deployment, and the verdict."""

    mode: str
    """The deployment recommended: `aggregated` or `disaggregated`."""
    aggregated: FleetPlan | None
    disaggregated: Any
    """solvers.deployment.disagg_plan.DisaggDeployment, or None."""
    why: str
    """Why the winner wins, or why disaggregation was not compared."""
    launch: dict[str, Any] | None = None
    """The disaggregated deployment's launch lines (`disagg_launch.pd_launch`)."""
    request_rate: float | None = None
    """The workload's request rate (None: as much as the GPUs give)."""
    measure: str = "throughput"
    """The objective whose measure compares the two deployments (`MEASURES`, or tpot)."""

    @property
    def unmet_rps(self) -> float:
        """Requests/s of the rate the recommended deployment cannot carry (0 without a rate)."""
        if self.request_rate is None:
            return 0.0
        return max(self.request_rate - _capacity_rps(self.aggregated, self.disaggregated, self.mode), 0.0)

    def to_dict(self) -> dict[str, Any]:
        """{deployment: the recommended deployment, comparison: {aggregated, disaggregated, winner, why}}.

        The deployment holds its own figures only: `mode`; an aggregated one is `FleetPlan.deployment_dict`
        (engines[], models[], totals, objective, solver); a disaggregated one has `prefill[]` / `decode[]`
        (each engine's figures and, under `vllm`, every replica's host, port, env and NIXL `vllm serve`
        lines), the `proxy` line that pairs them, its `notes`, its own totals, objective and solver. The
        other mode's engine lists are empty."""
        return round_floats(
            {
                "deployment": self.deployment_dict(),
                "comparison": {
                    "aggregated": _agg_summary(self.aggregated),
                    "disaggregated": _disagg_summary(self.disaggregated),
                    "winner": self.mode,
                    "measure": self.measure,
                    "why": self.why,
                },
            }
        )

    def deployment_dict(self) -> dict[str, Any]:
        """The recommended deployment (`to_dict`), its floats rounded as every plan's JSON
        (`plan.round_floats`: a capacity down)."""
        if self.mode == "aggregated":
            assert self.aggregated is not None
            return {"mode": "aggregated", **self.aggregated.deployment_dict(), "prefill": [], "decode": []}
        d, launch = self.disaggregated, self.launch
        assert d is not None and launch is not None
        summary = _disagg_summary(d)
        assert summary is not None

        def engines(role: str) -> list[dict[str, Any]]:
            return [
                {**_role_dict(e), "vllm": {k: v for k, v in lines.items() if k != "role"}}
                for e, lines in zip(getattr(d, role), launch[role], strict=True)
            ]

        return round_floats(
            {
                "mode": "disaggregated",
                "cluster": d.cluster,
                "engines": [],
                "prefill": engines("prefill"),
                "decode": engines("decode"),
                "proxy": launch["proxy"],
                "notes": launch["notes"],
                **{k: v for k, v in summary.items() if k not in ("solver_status", "wall_s")},
                "capacity_rps": d.capacity_rps,
                "served_rps": d.served_rps,
                "unmet_rps": self.unmet_rps,
                "gpus_idle": d.gpus_idle,
                "idle_reasons": list(d.idle_reasons),
                "usd_per_hour": d.usd_per_hour,
                "objective": d.objective,
                "solver": d.solver.model_dump(mode="json"),
            }
        )

    def to_yaml(self) -> str:
        """The plan file of the recommended deployment: an aggregated one's is `FleetPlan.to_yaml`; a
        disaggregated one's has `mode: disaggregated`, `prefill` and `decode` engines (each replica's
        pool, nodes, GPUs, host, port, env and NIXL lines) and the `proxy` line, and no `engines` key,
        so that a launcher of aggregated plan files stops there rather than start prefill and decode
        engines as plain ones."""
        if self.mode == "aggregated":
            assert self.aggregated is not None
            return self.aggregated.to_yaml()
        from autoparallel.fleet import plan_yaml

        d = self.deployment_dict()

        def engine(e: dict[str, Any]) -> dict[str, Any]:
            lines = e["vllm"]
            return {
                "model": e["model"],
                "engine": "vllm",
                "kv_role": lines["kv_role"],
                **{k: e[k] for k in ("tp", "pp", "ep", "dp", "capacity_rps", "load_rps")},
                "replicas": [
                    {
                        "pool": e["pool"],
                        "gpu": e["gpu"],
                        "nodes": p["nodes"],
                        "gpu_ids": p["gpu_ids"],
                        "host": r["host"],
                        "hosts": r["hosts"],
                        "port": r["port"],
                        "env": r["env"],
                        "commands": r["commands"],
                    }
                    for p, r in zip(e["placement"], lines["replicas"], strict=True)
                ],
            }

        doc = {
            "cluster": d["cluster"],
            "objective": d["objective"],
            "mode": "disaggregated",
            "ratio": d["ratio"],
            "prefill": [engine(e) for e in d["prefill"]],
            "decode": [engine(e) for e in d["decode"]],
            "proxy": d["proxy"],
            "notes": d["notes"],
            "usd_per_hour": d["usd_per_hour"],
            "solver_status": d["solver"]["status"],
        }
        return plan_yaml(doc)

    def explain(self) -> str:
        """Side by side: tokens/s/GPU, TTFT, TPOT, $/M tokens, GPUs; then the verdict."""
        rows: list[tuple[str, ...]] = [("", "aggregated", "disaggregated")]
        a, d = _agg_summary(self.aggregated), _disagg_summary(self.disaggregated)
        # with a rate, tokens/s are what is served of it; capacity is what the GPUs could carry
        capacity = ("capacity_tokens_per_s_per_gpu", "capacity tok/s/GPU", "{:.0f}")
        for key, label, fmt in (
            ("layout", "engines", "{}"),
            ("tokens_per_s_per_gpu", "tokens/s/GPU", "{:.0f}"),
            ("goodput_tokens_per_s", "tokens/s", "{:.0f}"),
            *((capacity,) if self.request_rate else ()),
            ("ttft_ms", "TTFT ms", "{:.0f}"),
            ("tpot_ms", "TPOT ms", "{:.1f}"),
            ("usd_per_million_tokens", "$/M tokens", "{:.3f}"),
            ("gpus_used", "GPUs used", "{}"),
        ):
            rows.append(
                (
                    label,
                    *(_cell(s, key, fmt) for s in (a, d)),
                )
            )
        width = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = ["Aggregated vs disaggregated (prefill/decode) serving:"]
        lines += ["  " + "  ".join(c.ljust(width[i]) for i, c in enumerate(r)).rstrip() for r in rows]
        lines.append(f"  -> {self.mode}: {self.why}")
        if self.mode == "disaggregated" and self.disaggregated is not None:
            if (budget := _budget_line(self.disaggregated)) is not None:
                lines.append(f"  {budget}")
            lines += [f"  idle: {r}" for r in self.disaggregated.idle_reasons]
        if self.mode == "disaggregated" and self.launch is not None:
            lines.append("Launch (first replica of each engine; --json or --plan-file for all):")
            for role in ("prefill", "decode"):
                for engine in self.launch[role]:
                    r = engine["replicas"][0]
                    env = " ".join(f"{k}={v}" for k, v in r["env"].items())
                    for host, node in zip(r["hosts"], r["commands"], strict=True):
                        lines += [f"  [{role} {host}] {env} {line}" for line in node]
            lines.append(f"  [proxy] {self.launch['proxy']}")
            lines += [f"  note: {n}" for n in self.launch["notes"]]
        return "\n".join(lines)


def _capacity_rps(aggregated: FleetPlan | None, disaggregated: Any, mode: str) -> float:
    """Requests/s the deployment of `mode` carries at its SLOs (0: none)."""
    if mode == "disaggregated":
        return float(disaggregated.capacity_rps) if disaggregated is not None else 0.0
    return float(aggregated.deployment.models[0].capacity_rps) if aggregated is not None else 0.0


def _role_dict(e: Any) -> dict[str, Any]:
    from autoparallel.solvers.deployment.disagg_plan import role_dict

    return role_dict(e)


def _budget_line(d: Any) -> str | None:
    """Which link the prefill engines' TTFT budget priced the KV transfer at, on a cluster of several
    pools (disagg_plan.py `budget_words`); None on one pool or where not told."""
    from autoparallel.solvers.deployment.disagg_plan import budget_words

    return budget_words(d) if getattr(d, "budget_decode_pools", None) is not None else None


def _agg_summary(plan: FleetPlan | None) -> dict[str, Any] | None:
    if plan is None:
        return None
    d = plan.deployment
    layout = engines_layout(d.engines)
    return {
        "layout": layout,
        "tokens_per_s_per_gpu": d.goodput_tokens_per_s / d.gpus_used if d.gpus_used else 0.0,
        "goodput_tokens_per_s": d.goodput_tokens_per_s,
        "capacity_tokens_per_s_per_gpu": d.throughput_tokens_per_s / d.gpus_used if d.gpus_used else 0.0,
        "capacity_tokens_per_s": d.throughput_tokens_per_s,
        "ttft_ms": max(e.ttft_ms for e in d.engines),
        "tpot_ms": max(e.tpot_ms for e in d.engines),
        "usd_per_million_tokens": d.usd_per_million_tokens,
        "usd_per_hour": d.usd_per_hour,
        "gpus_used": d.gpus_used,
        "solver_status": d.solver.status,
        "wall_s": d.solver.wall_s,
    }


def engines_layout(engines: Any, *, gpus: bool = False) -> str:
    """Engines as `2x tp4pp2 + 1x tp8ep8` (`gpus`: each with its GPU, `2x tp4 on H100-SXM`)."""
    return " + ".join(
        f"{e.replicas}x tp{e.tp}"
        + (f"pp{e.pp}" if e.pp > 1 else "")
        + (f"ep{e.ep}" if e.ep > 1 else "")
        + (f" on {e.gpu}" if gpus else "")
        for e in engines
    )


def _disagg_summary(d: Any) -> dict[str, Any] | None:
    if d is None:
        return None

    # output tokens per request: the goodput is the served rate times it
    per_request = d.goodput_tokens_per_s / d.served_rps if d.served_rps > 0 else 0.0
    capacity = d.capacity_rps * per_request
    kv = d.prefill[0].config.kv_cache_dtype if d.prefill else "auto"  # P and D share one (roles.py)
    return {
        "layout": f"P {engines_layout(d.prefill)} | D {engines_layout(d.decode)}"
        + (f" (KV cache {kv})" if kv != "auto" else ""),
        "kv_cache_dtype": kv,
        "ratio": d.ratio,
        "tokens_per_s_per_gpu": d.tokens_per_s_per_gpu,
        "goodput_tokens_per_s": d.goodput_tokens_per_s,
        "capacity_tokens_per_s_per_gpu": capacity / d.gpus_used if d.gpus_used else 0.0,
        "capacity_tokens_per_s": capacity,
        "ttft_ms": d.ttft_ms,
        "ttft_parts_ms": d.ttft_parts_ms(),
        "tpot_ms": d.tpot_ms,
        "usd_per_million_tokens": d.usd_per_million_tokens,
        "usd_per_hour": d.usd_per_hour,
        "gpus_used": d.gpus_used,
        "bound": d.bound,
        "budget_decode_pools": (
            list(d.budget_decode_pools) if getattr(d, "budget_decode_pools", None) is not None else None
        ),
        "kv_link_floor_gbps": getattr(d, "link_floor_gbps", None),
        "solver_status": d.solver.status,
        "wall_s": d.solver.wall_s,
    }


@dataclass(frozen=True)
class Measure:
    """What the verdict compares under one deployment objective: a figure of both sides' summaries."""

    label: str
    key: str
    """The summary key (`_agg_summary`, `_disagg_summary`)."""
    maximize: bool
    fmt: str


MEASURES: dict[str, Measure] = {
    "goodput": Measure("goodput tokens/s/GPU", "tokens_per_s_per_gpu", True, "{:.1f}"),
    "throughput": Measure("capacity tokens/s/GPU", "capacity_tokens_per_s_per_gpu", True, "{:.1f}"),
    "cost": Measure("$/hour", "usd_per_hour", False, "${:.2f}"),
    "cost_per_mtok": Measure("$/M tokens", "usd_per_million_tokens", False, "${:.3f}"),
    "gpus": Measure("GPUs", "gpus_used", False, "{}"),
}
"""The verdict's measure per deployment objective (`objectives.DEPLOYMENT`; tpot compares the worst
TPOT): goodput counts tokens/s up to the rate, throughput at the SLO capacity, per GPU used, so that
the side that happened to take more GPUs for the same goodput does not lose a tie it did not make.
Per GPU only where both sides' GPUs are of one type (`WHOLE_MEASURES` else)."""

WHOLE_MEASURES: dict[str, Measure] = {
    "goodput": Measure("goodput tokens/s", "goodput_tokens_per_s", True, "{:,.0f}"),
    "throughput": Measure("capacity tokens/s", "capacity_tokens_per_s", True, "{:,.0f}"),
}
"""The token measures on the whole deployment, where the two sides' GPUs differ (a mixed cluster): a
tokens/s per GPU counts a T4 as an H100, so 182 tokens/s/GPU on 8 H100s (1,459 tokens/s, $4.571/M)
beat 105 on 8 H100s and 16 T4s (2,524 tokens/s, $3.258/M). $/hour, $/M tokens and GPUs are whole
figures already (`MEASURES`)."""


def measure_for(measure: str, gpu_types: frozenset[str]) -> Measure:
    """The verdict's measure of objective `measure` (not tpot) when the two deployments use
    `gpu_types`: per GPU on one GPU type (`MEASURES`), on the whole deployment else
    (`WHOLE_MEASURES`)."""
    if len(gpu_types) > 1 and measure in WHOLE_MEASURES:
        return WHOLE_MEASURES[measure]
    return MEASURES[measure]


def _gpu_types(aggregated: FleetPlan, disaggregated: Any) -> frozenset[str]:
    """The GPU types either deployment runs engines on."""
    roles = (*disaggregated.prefill, *disaggregated.decode)
    return frozenset({*(e.gpu for e in aggregated.deployment.engines), *(e.gpu for e in roles)})


def measure_name(first: str | None, has_rate: bool) -> str:
    """The objective whose measure compares the deployments: the leading objective of the one both were
    planned for (`first`), or the planner's default (goodput with a rate, throughput without:
    `driver.default_objective`) for none or a weighted sum."""
    if first in MEASURES or first == "tpot":
        return str(first)
    return "goodput" if has_rate else "throughput"


UNBOUNDED = "unbounded"
"""The TTFT of prefill engines rated at full load (no TTFT limit): an open loop's queue wait grows
without bound there; set --ttft-ms to rate them below it."""
UNBOUNDED_WHY = (
    "unbounded: the prefill engines are rated at full load (no --ttft-ms), where an open loop's queue "
    "wait grows without bound; set --ttft-ms to rate them below it"
)
"""Why an infinite TTFT (`UNBOUNDED`) is null in strict JSON."""


def _cell(summary: dict[str, Any] | None, key: str, fmt: str) -> str:
    """One figure of the side-by-side table: "-" where a side has none, UNBOUNDED for an infinite one."""
    value = None if summary is None else summary.get(key)
    if value is None:
        return "-"
    return UNBOUNDED if isinstance(value, float) and math.isinf(value) else fmt.format(value)


def compare_disagg(
    model: str | ModelSpec,
    workload: Serving,
    cluster: Cluster,
    *,
    mode: str = "auto",
    objective: str | None = None,
    settings: Any = None,
    options: Any = None,
    aggregated: FleetPlan | None = None,
) -> Comparison:
    """The best aggregated and disaggregated deployments of `model` on `cluster` and the verdict.

    Raises:
        InputError: an unknown mode; a mixed cluster is fine.
        InfeasibleError: `mode="on"` and no disaggregated deployment exists (reason with numbers), or
            neither exists.
        SolverTimeoutError: the time limit ran out before a deployment was found (tables included).

    aggregated: the aggregated deployment when the caller already solved it (else solved here).
    The settings' time limit bounds the whole comparison, both deployments and their tables.
    """
    from autoparallel.solvers.deployment.driver import leading

    if mode not in MODES:
        raise InputError(f"--disagg {mode!r}: expected one of {', '.join(MODES)}")
    if objective is not None:  # both deployments name it canonically ("COST" -> "cost"), as solve_fleet's
        objective = canonical(objective, "deployment")
    measure = measure_name(leading(objective), workload.request_rate is not None)
    comp = _compare(model, workload, cluster, mode, objective, settings, options, aggregated)
    return dataclasses.replace(comp, measure=measure)


def _compare(
    model: str | ModelSpec,
    workload: Serving,
    cluster: Cluster,
    mode: str,
    objective: str | None,
    settings: Any,
    options: Any,
    aggregated: FleetPlan | None,
) -> Comparison:
    """`compare_disagg` (its `measure` not set)."""
    from autoparallel.solvers.deployment.disagg_plan import solve_roles
    from autoparallel.solvers.deployment.driver import leading, needs_mixed, objective_chain
    from autoparallel.solvers.deployment.front import solve_mixed
    from autoparallel.solvers.deployment.roles import build_role_space, burst_problem, ttft_below_transfer
    from autoparallel.solvers.settings import SolverSettings

    settings = settings or SolverSettings()
    deadline = settings.deadline()
    models = fleet_of_one(model, workload)
    rate = workload.request_rate
    agg_error = "no aggregated deployment meets the SLOs"

    def solve_aggregated(limit: Any) -> FleetPlan | None:
        nonlocal agg_error
        try:
            return solve_fleet(models, cluster, objective=objective, settings=limit, options=options)
        except InfeasibleError as exc:
            agg_error = str(exc)
            return None

    # --disagg on: the required deployment first, the aggregated one for the comparison in what is left
    if aggregated is None and mode != "on":
        aggregated = solve_aggregated(settings)
    if mode == "off":
        if aggregated is None:
            raise InfeasibleError(agg_error)
        return Comparison("aggregated", aggregated, None, "--disagg off", request_rate=rate)
    if (burst := burst_problem(models[0])) is not None:
        # Before the size check: a burst's role space holds no engine, and the smallest engine left
        # (the aggregated one's) made "fewer than two of the smallest engine" the reason shown.
        if mode == "on" or aggregated is None:
            raise InfeasibleError(burst if mode == "on" else agg_error)
        return Comparison(
            "aggregated", aggregated, None, f"no disaggregated deployment: {burst}", request_rate=rate
        )
    rs = build_role_space(models, cluster, options, deadline=deadline)
    smallest = _smallest_engine(rs, aggregated)
    too_small = smallest is not None and cluster.world_size < 2 * smallest
    if too_small:
        why = (
            f"the cluster has {cluster.world_size} GPUs, fewer than two of the smallest engine "
            f"({smallest} GPUs): disaggregation needs a prefill and a decode engine, so it cannot win here"
        )
        if mode == "on" or aggregated is None:
            raise InfeasibleError(why if mode == "on" else agg_error)
        return Comparison("aggregated", aggregated, None, why, request_rate=rate)
    ttft_gap = ttft_below_transfer(rs, workload, cluster)
    try:
        if objective is not None and needs_mixed(objective_chain(objective)):
            # the worst TPOT over every decode entry: the mixed space's query (`front.solve_mixed`)
            disaggregated = solve_mixed(
                models[0],
                cluster,
                objective,
                mode="on",
                settings=settings,
                options=options,
                deadline=deadline,
            ).disaggregated
        else:
            disaggregated = solve_roles(rs, objective, settings, deadline=deadline)
    except InfeasibleError as exc:
        reason = ttft_gap or str(exc)
        if mode == "on" or aggregated is None:
            raise InfeasibleError(reason if mode == "on" else agg_error) from None
        why = f"no disaggregated deployment: {reason}"
        return Comparison("aggregated", aggregated, None, why, request_rate=rate)
    if aggregated is None and mode == "on":
        # half of what is left: the command's other sections (`plan`'s single-engine plan) get the rest
        left = settings.until(deadline)
        half = None if left is None else left.model_copy(update={"time_limit_s": left.time_limit_s / 2})
        try:
            aggregated = solve_aggregated(half) if half is not None else None
        except SolverTimeoutError as exc:
            agg_error = f"none planned within half of what the disaggregated one left: {exc}"
        if half is None:
            agg_error = "none planned: the disaggregated deployment spent the time limit"
    from autoparallel.disagg_launch import pd_launch

    launch = pd_launch(disaggregated, cluster, models[0].model)
    if aggregated is None:
        why = f"no aggregated deployment: {agg_error}"
        return Comparison("disaggregated", None, disaggregated, why, launch, rate)
    measure = measure_name(leading(objective), rate is not None)
    verdict = _verdict(aggregated, disaggregated, workload, measure)
    if mode == "on" and verdict.mode == "aggregated":
        verdict = dataclasses.replace(
            verdict,
            mode="disaggregated",
            why=f"required by --disagg on, though aggregated would win: {verdict.why}",
        )
    return dataclasses.replace(verdict, launch=launch, request_rate=rate)


def _smallest_engine(rs: Any, aggregated: FleetPlan | None) -> int | None:
    """GPUs of the smallest engine of either mode (the role space's over every link floor)."""
    sizes = [e.gpus for tier in rs.tiers() for e in tier.space.engines]
    if aggregated is not None:
        sizes += [e.gpus_per_replica for e in aggregated.deployment.engines]
    return min(sizes) if sizes else None


def _verdict(aggregated: FleetPlan, disaggregated: Any, workload: Serving, measure: str) -> Comparison:
    """The deployment that serves the workload's rate when only one does (the rate is a demand, as in
    `plan`); else the better by the measure of the objective both were planned for (`measure`: tpot
    the lower worst TPOT, the others `MEASURES`), ties to lower $/M tokens. The reason states the
    numbers compared."""
    a = _agg_summary(aggregated)
    d = _disagg_summary(disaggregated)
    assert a is not None and d is not None
    dis = disaggregated
    rate = workload.request_rate
    carried = {m: _capacity_rps(aggregated, dis, m) for m in ("aggregated", "disaggregated")}
    serves = {m: rate is None or c >= rate * (1 - 1e-9) for m, c in carried.items()}
    if serves["aggregated"] != serves["disaggregated"]:
        win = "aggregated" if serves["aggregated"] else "disaggregated"
        lose = "disaggregated" if win == "aggregated" else "aggregated"
        layout = (a if win == "aggregated" else d)["layout"]
        why = (
            f"only the {win} deployment serves {rate:g} req/s ({layout}: {rps_text(carried[win])} req/s at "
            f"the SLOs); the {lose} one carries {rps_text(carried[lose])} req/s at most"
        )
        return Comparison(win, aggregated, dis, why)
    sides = {"aggregated": a, "disaggregated": d}
    types = _gpu_types(aggregated, dis)
    if measure == "tpot":
        label, key, maximize, fmt = "TPOT (worst, ms)", "tpot_ms", False, "{:.1f}"
    else:
        m = measure_for(measure, types)
        label, key, maximize, fmt = m.label, m.key, m.maximize, m.fmt
        if m is not MEASURES[measure]:
            label += f" (whole deployments: their GPUs differ, {' and '.join(sorted(types))})"
    va, vd = float(a[key]), float(d[key])
    if not math.isclose(va, vd, rel_tol=1e-9):
        win = "disaggregated" if (vd > va) == maximize else "aggregated"
        lose = _other(win)
        decided = f"{label} {fmt.format(sides[win][key])} {win} vs {fmt.format(sides[lose][key])} {lose}"
    else:
        ca, cd = a["usd_per_million_tokens"], d["usd_per_million_tokens"]
        win = "disaggregated" if cd < ca * (1 - 1e-9) else "aggregated"
        kept = " (a tie too: aggregated kept)" if math.isclose(ca, cd, rel_tol=1e-9) else ""
        decided = (
            f"{label} {fmt.format(va)} on both sides; $/M tokens {ca:.3f} aggregated vs {cd:.3f} "
            f"disaggregated{kept}"
        )
    limit = f"TPOT ≤ {workload.tpot_ms:g} ms" if workload.tpot_ms is not None else "no TPOT limit"
    load = (
        "its prefill ranks rated at full load without a --ttft-ms"
        if workload.ttft_ms is None
        else f"its prefill ranks{' and decode slots' * workload.slot_rated} held below full load to keep "
        f"TTFT ≤ {workload.ttft_ms:g} ms"
    )
    transfer = f"KV transfer {dis.worst.transfer_ms:.1f} ms"
    if dis.worst.slot_wait_ms >= 0.05:  # shown to 0.1 ms
        transfer += f", a decode slot's wait {dis.worst.slot_wait_ms:.1f} ms"
    ttft = (
        f"TTFT {UNBOUNDED} (an open loop's prefill at full load without a --ttft-ms queues without bound), "
        f"{transfer}"
        if math.isinf(dis.ttft_ms)
        else f"TTFT {dis.ttft_ms:.0f} ms incl. {transfer}"
    )
    from autoparallel.solvers.deployment.disagg_plan import bound_words

    bound = bound_words(dis, workload.in_flight)
    why = (
        f"objective {measure}: {decided} (at {limit}); aggregated {a['layout']} on {a['gpus_used']} GPUs, "
        f"disaggregated {d['layout']} ({dis.ratio}) on {d['gpus_used']} GPUs, its carried rate bound by "
        f"{bound}, {load}: {ttft}"
    )
    return Comparison(win, aggregated, dis, why)


def _other(mode: str) -> str:
    return "aggregated" if mode == "disaggregated" else "disaggregated"
