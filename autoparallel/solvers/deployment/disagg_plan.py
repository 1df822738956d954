"""A disaggregated deployment: solve the role space through the common driver, decode it with floats.

The counts come from the same encoder and driver as aggregated deployments (encoder.py's role families).
Decoding re-evaluates every chosen engine with perf/disagg.py. vLLM's P/D proxy deals requests round
robin over each role's replicas (disagg_launch.py), so each of a role's n replicas carries 1/n of the
rate whatever its capacity: requests/s carried = min(n_P × the least prefill replica's prompts/s, n_D ×
the least decode replica's requests/s), each replica's within the KV bytes its ranks' links carry
(roles.py `prefill_rank_tokens_per_s`, `decode_rank_rps`: the same figures the tables were rated at);
each P engine's M/G/n wait (its ranks pooled) is taken at its share, and the TTFT of the worst (P, D)
pair, its KV transfer over the slower of the two pools' links (perf/disagg.py `pair_link`; NVLink where
every replica of both sits on one node as placed, or only one node can hold an engine of the model,
roles.py `single_node`), is checked against the limit; the TPOT of the slowest D engine, checked
against the limit. Replicas are placed as aggregated ones (decoder.py `place`: wide engines on whole
nodes, narrow ones first-fit decreasing at multiples of their size, told in hosts on a rack-scale GPU,
so an 8-GPU engine on a GB200 NVL36 domain takes two whole hosts). Idle GPUs get the aggregated
deployment's reasons (decoder.py `idle_reasons`, which reads the role space's engines and round-robin
capacity as it reads an aggregated space's).

The role space comes in link floors (roles.py `link_floors`: decode engines only on pools whose KV
link is at least L, every prefill budget at that floor); `solve_roles` solves each floor's space with
the same objective chain, the floors sharing the call's time (each what is left ÷ the floors left),
and keeps the best deployment (ties: the faster floor). It is OPTIMAL only when every floor's solve
was.
"""

from __future__ import annotations

import dataclasses
import math
import time
from fractions import Fraction
from typing import Any

from pydantic import BaseModel, ConfigDict

from autoparallel.configs import BASE_PORT, ServingConfig
from autoparallel.errors import InfeasibleError, InternalError, SolverTimeoutError
from autoparallel.perf import disagg
from autoparallel.perf.serving_efficiency import efficiency_for
from autoparallel.perf.slot_queue import slot_wait_s
from autoparallel.solvers import driver
from autoparallel.solvers.deployment.decoder import ReplicaPlacement, idle_reasons, place
from autoparallel.solvers.deployment.driver import (
    Objective,
    default_objective,
    needs_hard_demand,
    needs_mixed,
    objective_chain,
    objective_label,
    optimize,
)
from autoparallel.solvers.deployment.encoder import (
    MAXIMIZED,
    EncodedDeployment,
    build,
    objective_upper_bound,
)
from autoparallel.solvers.deployment.explain import why_no_engine
from autoparallel.solvers.deployment.roles import (
    LinkFloor,
    RoleSpace,
    burst_problem,
    decode_rank_rps,
    nominal_link_gbps,
    pair_problem,
    prefill_rank_tokens_per_s,
    smallest_pair,
    why_no_role,
)
from autoparallel.solvers.deployment.space import DeploymentSpace
from autoparallel.solvers.driver import WEIGHTED_SCALE, Run
from autoparallel.solvers.settings import SolverSettings, SolverStats
from autoparallel.workload import rps_text


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RoleEngine(_Frozen):
    """Identical replicas of one prefill or decode engine."""

    role: str
    model: str
    gpu: str
    pool: int
    tp: int
    pp: int
    ep: int
    dp: int
    gpus_per_replica: int
    replicas: int
    placement: tuple[ReplicaPlacement, ...]
    capacity_rps: float
    """Requests/s one replica can carry: prompts within the TTFT budget (P), finished requests (D)."""
    load_rps: float
    """Requests/s the proxy sends each replica: the served rate ÷ the role's replicas (round robin)."""
    prefill_ms: float
    """One prompt alone (P engines)."""
    decode_step_ms: float
    """The pure decode step at max_num_seqs (D engines: the TPOT)."""
    max_num_seqs: int
    usd_per_hour: float
    """All replicas, US$ per hour."""
    config: ServingConfig


class DisaggDeployment(_Frozen):
    """Prefill and decode engines of one model with the float model's figures."""

    cluster: str
    prefill: tuple[RoleEngine, ...]
    decode: tuple[RoleEngine, ...]
    capacity_rps: float
    """Requests/s both roles carry, round robin: min(n_P × least prefill, n_D × least decode)."""
    served_rps: float
    goodput_tokens_per_s: float
    gpus_used: int
    gpus_idle: int
    idle_reasons: tuple[str, ...]
    """Why GPUs stay idle, per pool, with numbers (decoder.py `idle_reasons`)."""
    usd_per_hour: float
    usd_per_million_tokens: float
    worst: disagg.DisaggRequest
    """The TTFT parts of the slowest (P, D) pair at the served load."""
    ttft_ms: float
    """The worst pair's TTFT, or a closed-loop client's mean TTFT where longer (`closed_loop_ttft_ms`)."""
    tpot_ms: float
    objective: str
    solver: SolverStats
    bound: str
    """What limits the carried rate: `prefill`, `decode` or `concurrency` (a cap's clients cycling
    through both roles, `perf.disagg.closed_loop_rps`)."""
    budget_decode_pools: tuple[int, ...] | None = None
    """The pools the prefill engines' TTFT budget assumed may hold a decode engine (the KV transfer at
    the slowest of their links, roles.py `link_floors`); None: not told (a front's point)."""
    link_floor_gbps: float | None = None
    """The slowest of those pools' KV-transfer links, nominal GB/s (None where not told)."""
    budget_link_pool: int | None = None
    """The pool whose KV-transfer link the slowest priced transfer of its prefill engines' TTFT budget
    runs at: the slower end of a pair (perf/disagg.py `pair_link`), a prefill engine's own pool where
    its link is below the decode pools' (`budget_link`); None where not told."""
    budget_link_gbps: float | None = None
    """That pool's nominal KV-transfer link, GB/s (roles.py `nominal_link_gbps`; None where not told)."""

    def ttft_parts_ms(self) -> dict[str, float]:
        """`ttft_ms` in parts: the worst (P, D) pair's (`worst`: at an arrival rate with a TTFT limit,
        its D engine's wait for a free slot at the served load among them) and, under a closed-loop
        client, the wait for a decode slot that Little's law adds (C / X − T past the pair's own
        TTFT)."""
        w = self.worst
        return {
            "prefill_wait": w.prefill_wait_ms,
            "prefill": w.prefill_ms,
            "kv_transfer": w.transfer_ms,
            "decode_slot_wait": w.slot_wait_ms,
            "first_decode": w.first_decode_ms,
            "overhead": w.overhead_ms,
            "client_wait": max(self.ttft_ms - w.ttft_ms, 0.0),
        }

    @property
    def ratio(self) -> str:
        """xP:yD, counted in engines."""
        return f"{sum(e.replicas for e in self.prefill)}P:{sum(e.replicas for e in self.decode)}D"

    @property
    def tokens_per_s_per_gpu(self) -> float:
        return self.goodput_tokens_per_s / self.gpus_used if self.gpus_used else 0.0


def role_dict(e: RoleEngine) -> dict[str, Any]:
    """A prefill or decode engine's JSON (`plan --disagg --json`, a deployment front's points): its
    figures, its KV-cache dtype (a pair shares one) and placement, without the rest of the ServingConfig."""
    out: dict[str, Any] = e.model_dump(mode="json", exclude={"config", "placement"})
    out["kv_cache_dtype"] = e.config.kv_cache_dtype
    out["placement"] = [p.model_dump(mode="json") for p in e.placement]
    return out


def solve_roles(
    rs: RoleSpace,
    objective: Objective | None = None,
    settings: SolverSettings | None = None,
    *,
    deadline: float | None = None,
) -> DisaggDeployment:
    """The optimal disaggregated deployment of a role space, by `deadline` (a `time.perf_counter()`;
    default: the settings' time limit from now): the best of its link floors' optima (module doc).

    Raises:
        InfeasibleError: no prefill or no decode engine, or the rate cannot be met (capacity objectives),
            at any link floor.
        SolverTimeoutError: no floor's solve found a deployment in its share of the time and one ran out.
    """
    settings = settings or SolverSettings()
    name = objective if objective is not None else default_objective(rs.space)
    if deadline is None:
        deadline = settings.deadline()
    chain = objective_chain(name)
    tiers = rs.tiers()
    scales = _common_scales(tiers, chain)
    runs: list[Run] = []
    found: list[tuple[int, list[int]]] = []
    timed_out: SolverTimeoutError | None = None
    for k, tier in enumerate(tiers):
        now = time.perf_counter()
        run = Run(settings, deadline=now + max(deadline - now, 0.0) / (len(tiers) - k))
        runs.append(run)
        try:
            counts = _optimize_floor(tier, chain, run, scales) if tier.space.engines else None
        except SolverTimeoutError as exc:
            timed_out = exc
            continue
        if counts is None:
            run.status = "INFEASIBLE"
        else:
            found.append((k, counts))
    if not found:
        if timed_out is not None:
            raise timed_out
        raise InfeasibleError(why_infeasible(rs, Run(settings, deadline=deadline)))
    best, counts = found[0]
    for k, other in found[1:]:  # fastest floor first: a tie keeps it, and a floor's loosest tier
        rank, kept = _rank(chain, runs[k], scales), _rank(chain, runs[best], scales)
        looser = tiers[k].floor is tiers[best].floor and tiers[k].step_tier < tiers[best].step_tier
        if rank > kept or (rank == kept and looser):
            best, counts = k, other
    proven = timed_out is None and all(r.status in ("OPTIMAL", "INFEASIBLE") for r in runs)
    stats = _union_stats(chain, runs, best, proven)
    return decode_roles(
        tiers[best], counts, objective_label(name), stats, soft_rates=not needs_hard_demand(chain)
    )


def _common_scales(tiers: list[RoleSpace], chain: tuple[str, ...] | dict[str, float]) -> dict[str, int]:
    """A weighted objective's per-objective bounds over every floor's space (`encoder.objective_scale`
    of each, the largest), so that every floor's solve weighs the objectives alike and their optima
    compare; {} for a lexicographic chain or one floor."""
    if not isinstance(chain, dict) or len(tiers) < 2:
        return {}
    return {n: max(objective_upper_bound(t.space, n) for t in tiers) for n in chain}


@dataclasses.dataclass
class _ScaledEncoding(EncodedDeployment):
    """A deployment encoding whose weighted-sum normalisation is `scales` (`_common_scales`)."""

    scales: dict[str, int] = dataclasses.field(default_factory=dict)

    def objective_scale(self, name: str) -> int:
        return self.scales[name]


def _optimize_floor(
    rs: RoleSpace, chain: tuple[str, ...] | dict[str, float], run: Run, scales: dict[str, int]
) -> list[int] | None:
    """One floor's optimum of `chain` (deployment/driver.py `optimize`), a weighted sum normalised by
    `scales` when given (None: infeasible)."""
    if not scales or needs_mixed(chain):
        return optimize(rs.space, chain, run)
    enc = build(rs.space, hard_demand=needs_hard_demand(chain))
    scaled = _ScaledEncoding(enc.model, enc.vars, enc.space, enc.hard_demand, enc.explain, scales)
    return driver.optimize(scaled, chain, run)


def _rank(
    chain: tuple[str, ...] | dict[str, float], run: Run, scales: dict[str, int]
) -> tuple[int | Fraction, ...]:
    """A floor's optimum as a key that grows with the objective: the chain's values in order (solver
    units, negated where minimized); a weighted sum as the driver sets it (`driver.set_objective`,
    at the common `scales`); minus the $/M tokens ratio."""
    if chain == ("cost_per_mtok",):
        return (-Fraction(run.primary[0]),)
    if isinstance(chain, dict):
        total = 0
        for n, weight in chain.items():
            factor = max(1, round(weight * WEIGHTED_SCALE / max(scales.get(n, 1), 1)))
            total += (1 if n in MAXIMIZED else -1) * factor * run.values[n]
        return (total,)
    return tuple((1 if n in MAXIMIZED else -1) * run.values[n] for n in chain)


def _union_stats(
    chain: tuple[str, ...] | dict[str, float], runs: list[Run], best: int, proven: bool
) -> SolverStats:
    """The statistics of the floors' solves together: their CP-SAT time and calls, the best floor's
    primary value with the best bound of any floor that found a deployment, OPTIMAL when every floor
    was proven (`proven`)."""
    if len(runs) == 1:
        return runs[0].stats()
    maximize = isinstance(chain, dict) or (chain != ("cost_per_mtok",) and chain[0] in MAXIMIZED)
    bounds = [r.primary[1] for r in runs if r.status in ("OPTIMAL", "FEASIBLE") and r.solves]
    bound = (max if maximize else min)(bounds, default=runs[best].primary[1])
    union = Run(
        runs[best].settings,
        wall_s=sum(r.wall_s for r in runs),
        solves=sum(r.solves for r in runs),
        status="OPTIMAL" if proven else "FEASIBLE",
        primary=(runs[best].primary[0], bound),
    )
    return union.stats()


def why_infeasible(rs: RoleSpace, run: Run) -> str:
    """Why no tier's space has a deployment: one reason per link floor (`_floor_reason`), fastest
    first, prefixed with the decode pools its prefill budget assumed (`LinkFloor.label`) where there
    are several. `solve_roles` and the mixed fronts (`front._why_none`) both say it."""
    floors: dict[int, list[RoleSpace]] = {}
    for t in rs.tiers():
        floors.setdefault(id(t.floor), []).append(t)
    if len(floors) == 1:
        return _floor_reason(rs.tiers(), run)
    return "; ".join(f"with {_floor_label(ts[0].floor)}: {_floor_reason(ts, run)}" for ts in floors.values())


def _floor_reason(tiers: list[RoleSpace], run: Run) -> str:
    """Why none of one link floor's first-step tiers (roles.py `step_ladder`) has a deployment, in the
    words of the tier that comes nearest: without a tier holding both roles, the fastest tier with a
    decode engine (the most prefill budget; the loosest where none has one: then no tier has); where
    no tier's smallest pair fits, the tier of the smallest pair; else the tier whose most carrying
    deployment (without the rule that binds: the client's queue or the rate) carries most, so that
    "the most any carries" is the most of every tier's."""

    def has(t: RoleSpace, role: str) -> bool:
        return any(e.role == role for e in t.space.engines)

    loosest = min(tiers, key=lambda t: t.step_tier)
    both = [t for t in tiers if has(t, "prefill") and has(t, "decode")]
    if not both:
        with_decode = [t for t in tiers if has(t, "decode")]
        return _why_infeasible(max(with_decode, key=lambda t: t.step_tier) if with_decode else loosest, run)
    fits = [t for t in both if _pair_problem(t) is None]
    if not fits:

        def pair_gpus(t: RoleSpace) -> tuple[int, int]:
            pair = smallest_pair(t.space.engines)
            return (pair[0].gpus + pair[1].gpus if pair else 0, t.step_tier)

        return _why_infeasible(min(both, key=pair_gpus), run)
    fm = loosest.space.models[0]
    queued = fm.queue_clients is not None and fm.workload.ttft_ms is not None
    dropped = "ttft_ms" if queued else "request_rate" if fm.workload.request_rate is not None else None
    if len(fits) > 1 and dropped is not None:
        carried = {}
        for t in fits:
            best = _most_carrying(t, run, dropped)
            carried[id(t)] = best.capacity_rps if best is not None else -1.0
        return _why_infeasible(max(fits, key=lambda t: (carried[id(t)], -t.step_tier)), run)
    return _why_infeasible(min(fits, key=lambda t: t.step_tier), run)


def _pair_problem(rs: RoleSpace) -> str | None:
    """`roles.pair_problem` of a tier's engines, in the words of its first-step bound."""
    fm = rs.space.models[0]
    bound_ms = rs.decode_step_bound_s[0] * 1e3 if rs.step_tier else None
    return pair_problem(rs.space.engines, fm.workload, rs.space.cluster, bound_ms)


def _floor_label(floor: LinkFloor | None) -> str:
    return floor.label() if floor is not None else "decode on every pool"


def _why_infeasible(rs: RoleSpace, run: Run) -> str:
    """Why the role space has no deployment (`run`: what is left of the call's time, for a solve that
    finds the numbers)."""
    space = rs.space
    fm = space.models[0]
    if (burst := burst_problem(fm)) is not None:
        return burst
    roles = {e.role for e in space.engines}
    decode = [e for e in space.engines if e.role == "decode"]

    def why(role: str) -> str:
        """Each pool's own reason for `role` with its numbers (`roles.why_no_role`)."""
        kv = rs.floor.kv_cache_dtype if rs.floor is not None else None
        parts = (
            why_no_role(
                s,
                role,
                fm,
                space.cluster,
                p,
                decode,
                rs.decode_step_bound_s[0],
                rs.step_tier,
                kv=kv,
                same_node=rs.nvlink,
            )
            for (m, p), s in sorted(space.serving.items())
            if m == 0
        )
        # none binds alone (entries that pass each rule but not all together): the pools' own numbers
        return "; ".join(part for part in parts if part) or "; ".join(
            why_no_engine(s) for (m, _), s in sorted(space.serving.items()) if m == 0
        )

    if "decode" not in roles:
        limit = f" and meets TPOT {fm.workload.tpot_ms:g} ms" if fm.workload.tpot_ms is not None else ""
        return f"no decode engine of {fm.name} starts{limit} on {space.cluster.spec} ({why('decode')})"
    if "prefill" not in roles:
        return (
            f"no prefill engine of {fm.name} meets TTFT {fm.workload.ttft_ms} ms on {space.cluster.spec} "
            f"({why('prefill')})"
        )
    if fm.concurrency is not None:
        # encoder.add_concurrency: every decode replica holds its in_flight requests
        least = min(e.in_flight for e in space.engines if e.role == "decode")
        if least > fm.concurrency:
            return (
                f"concurrency {fm.concurrency}: the smallest decode engine holds {least} requests in "
                "flight (max_num_seqs × data-parallel ranks), over the cap"
            )
    if (pair := _pair_problem(rs)) is not None:
        return pair
    if (queue := _queue_reason(rs, run)) is not None:
        return queue
    if fm.workload.request_rate is None:
        return f"no prefill and decode engines of {fm.name} fit {space.cluster.spec} side by side"
    return _rate_reason(rs, run) or (
        f"the prefill and decode engines that fit {space.cluster.spec} cannot carry "
        f"{fm.workload.request_rate} req/s"
    )


def _rate_reason(rs: RoleSpace, run: Run) -> str | None:
    """Why no deployment carries the request rate, with the most carrying one's numbers and what binds
    it (`DisaggDeployment.bound`: a concurrency cap's closed loop, or a role), "the best found" unless
    CP-SAT proves it; None when no deployment is found in `run`'s time."""
    fm = rs.space.models[0]
    rate = fm.workload.request_rate
    best = _most_carrying(rs, run, "request_rate")
    if best is None:
        return None
    which = "the most any carries" if run.status == "OPTIMAL" else "the best found"
    return (
        f"request_rate: {rate:g} req/s; {which}, {best.ratio} on {best.gpus_used} GPUs, carries "
        f"{rps_text(best.capacity_rps)} req/s, bound by {bound_words(best, fm.concurrency)}"
    )


def _most_carrying(rs: RoleSpace, run: Run, dropped: str) -> DisaggDeployment | None:
    """The throughput optimum of `rs` with the workload's `dropped` field unset (the rule an infeasibility
    reason explains away), decoded by the float model; None when none is found in `run`'s time."""
    fm = rs.space.models[0]
    free = dataclasses.replace(fm, workload=fm.workload.model_copy(update={dropped: None}))
    space = dataclasses.replace(rs.space, models=(free,))
    try:
        counts = optimize(space, objective_chain("throughput"), run)
    except SolverTimeoutError:
        return None
    if counts is None:
        return None
    return decode_roles(dataclasses.replace(rs, space=space), counts, "throughput", run.stats())


def bound_words(d: DisaggDeployment, clients: int | None) -> str:
    """`d.bound` in words: its prefill or decode engines, or a concurrency cap's `clients` cycling
    through both roles (what they carry without it, round robin)."""
    if d.bound != "concurrency":
        return f"its {d.bound} engines"
    return (
        f"the {clients} clients' cycle through both roles (closed_loop: the roles alone carry "
        f"{rps_text(_roles_rps(d))} req/s round robin)"
    )


def _roles_rps(d: DisaggDeployment) -> float:
    """Requests/s the roles of `d` carry round robin, without a client's closed loop."""
    prefill = sum(e.replicas for e in d.prefill) * min(e.capacity_rps for e in d.prefill)
    decode = sum(e.replicas for e in d.decode) * min(e.capacity_rps for e in d.decode)
    return min(prefill, decode)


def _queue_reason(rs: RoleSpace, run: Run) -> str | None:
    """Why a closed-loop client rules every deployment out, with the numbers of the most carrying one
    without its rule (`encoder.add_role_client_queue`: the TTFT limit dropped, the cap and its closed
    loop kept; "the best found" unless CP-SAT proves it) and the shortest slot time of its decode
    engines, the one the rule binds on; None when that is not the reason, or no deployment is found in
    `run`'s time."""
    fm = rs.space.models[0]
    clients, limit = fm.queue_clients, fm.workload.ttft_ms
    if clients is None or limit is None:
        return None
    # without the TTFT limit's rule (the cap and its closed loop kept): the most the clients carry
    best = _most_carrying(rs, run, "ttft_ms")
    if best is None:
        return None
    # the rule holds for every used decode engine, so the shortest slot time binds
    slot_s = min(e.max_num_seqs * e.dp / e.capacity_rps for e in best.decode)
    return (
        f"client_queue: {clients} requests in flight (a closed-loop client) at TTFT {limit:g} ms: by "
        "Little's law the mean TTFT is C / X - T (X the carried requests/s, T the time a request holds "
        f"a decode slot); {'the most the cluster carries' if run.status == 'OPTIMAL' else 'the best found'}, "
        f"{best.ratio} at {best.capacity_rps:.3g} req/s "
        f"with T {slot_s:.2f} s, gives {clients} / {best.capacity_rps:.3g} - {slot_s:.2f} = "
        f"{clients / best.capacity_rps - slot_s:.2f} s"
    )


def closed_loop_ttft_ms(
    clients: int | None,
    capacity_rps: float,
    counts: list[int],
    space: DeploymentSpace,
    d_cap: dict[int, float],
) -> float:
    """The mean TTFT of a closed-loop client of `clients` requests (0 without one): C / X − T by Little's
    law, X the carried requests/s, T the mean time a request holds a decode slot (max_num_seqs × ranks
    / capacity of its decode engine, round robin over the decode replicas;
    `client_rules.role_queue_room_us`)."""
    n = sum(counts[k] for k in d_cap)
    if clients is None or capacity_rps <= 0 or not n:
        return 0.0
    held_s = sum(counts[k] * space.engines[k].in_flight / d_cap[k] for k in d_cap) / n
    return max(clients / capacity_rps - held_s, 0.0) * 1e3


def _bound(prefill_rps: float, decode_rps: float, loop_rps: float) -> str:
    """What limits the carried rate (`DisaggDeployment.bound`)."""
    if loop_rps < min(prefill_rps, decode_rps):
        return "concurrency"
    return "prefill" if prefill_rps <= decode_rps else "decode"


def closed_loop_capacity_rps(
    rs: RoleSpace,
    counts: list[int],
    d_cap: dict[int, float],
    transfer: dict[tuple[int, int], float],
    top_rps: float,
) -> float:
    """Requests/s a concurrency cap's C clients carry through the chosen engines (`perf.disagg.
    closed_loop_rps`; `top_rps` without a cap): the proxy deals requests round robin, so a request
    meets the mean P replica's overhead, the mean (P, D) pair's KV transfer and the mean D replica's
    slot time (max_num_seqs × ranks / capacity, Little's law), and each P rank gets 1 / (n_P · dp) of
    the rate. The solver charges more (`client_rules.closed_loop_rule`: chords above the M/G/n count,
    the slowest of each role), so this is never below the flow it found."""
    space = rs.space
    clients = space.models[0].concurrency
    p_ks = [k for k, n in enumerate(counts) if n and space.engines[k].role == "prefill"]
    if clients is None or not p_ks or not d_cap:
        return top_rps
    n_p, n_d = sum(counts[k] for k in p_ks), sum(counts[k] for k in d_cap)
    overhead = sum(
        counts[k] * efficiency_for(space.cluster.pools[space.engines[k].pool].gpu).request_overhead_s
        for k in p_ks
    )
    moved = sum(counts[kp] * counts[kd] * x for (kp, kd), x in transfer.items())
    held = sum(counts[k] * space.engines[k].in_flight / d_cap[k] for k in d_cap)
    cycle = overhead / n_p + moved / (n_p * n_d) + held / n_d
    ranks = [
        disagg.PrefillRanks(
            counts[k] * space.engines[k].dp,
            1.0 / (n_p * space.engines[k].dp),
            rs.times[k].prefill_s,
            rs.times[k].service_cv2,
            space.engines[k].dp,
        )
        for k in p_ks
    ]
    return disagg.closed_loop_rps(clients, cycle, ranks, top_rps)


def _floor_idle_reasons(rs: RoleSpace, reasons: tuple[str, ...]) -> tuple[str, ...]:
    """`reasons` (decoder.py `idle_reasons`), where a pool has no engine at this link floor only because
    its decode engines sit below the floor (`LinkFloor.below`), saying so with the links' numbers."""
    floor = rs.floor
    if floor is None or not floor.below:
        return reasons
    cluster = rs.space.cluster
    out = []
    for reason in reasons:
        p = next((q for q in floor.below if reason.startswith(f"pool {q} (")), None)
        if p is None or rs.space.engines_of(pool=p):
            out.append(reason)
            continue
        head = ": ".join(reason.split(": ")[:2])  # "pool p (GPU): n of m GPUs idle"
        sub = cluster.pool_cluster(p)
        link = nominal_link_gbps(sub, rs.nvlink)
        noun = "pool" if len(floor.decode_pools) == 1 else "pools"
        out.append(
            f"{head}: a decode engine here would pull the KV over its {link:g} GB/s link; this deployment "
            f"keeps decode on {noun} {', '.join(map(str, floor.decode_pools))} (links >= {floor.gbps:g} "
            "GB/s), the link its prefill engines' TTFT budget is priced for"
        )
    return tuple(out)


def decode_roles(
    rs: RoleSpace, counts: list[int], objective: str, stats: SolverStats, *, soft_rates: bool = False
) -> DisaggDeployment:
    """Figures of replica counts `counts` from the float model (module doc); `soft_rates` as
    `decoder.decode`'s.

    Raises:
        InternalError: the float model misses an SLO the tables promised.
    """
    space = rs.space
    fm = space.models[0]
    w = fm.workload
    spots = place(space, counts)
    chosen = [k for k, n in enumerate(counts) if n]
    held = sum(
        counts[k] * space.engines[k].config.max_num_seqs * space.engines[k].dp
        for k in chosen
        if space.engines[k].role == "decode"
    )
    if fm.concurrency is not None and held > fm.concurrency:
        raise InternalError(
            f"{fm.name}: the engines hold {held} requests, over its concurrency {fm.concurrency}"
        )
    p_cap = {
        k: space.engines[k].dp * prefill_rank_tokens_per_s(rs.times[k], w.isl)
        for k in chosen
        if space.engines[k].role == "prefill"
    }
    d_cap = {
        k: space.engines[k].dp * decode_rank_rps(rs.times[k], space.engines[k].config.max_num_seqs, w.osl)
        for k in chosen
        if space.engines[k].role == "decode"
    }
    n_prefill = sum(counts[k] for k in p_cap)
    n_decode = sum(counts[k] for k in d_cap)
    prefill_rps = n_prefill * min(p_cap.values(), default=0.0) / w.isl
    decode_rps = n_decode * min(d_cap.values(), default=0.0)
    same_node = rs.nvlink

    def nodes_of(k: int) -> set[tuple[int, int]]:
        """The (pool, node) of every replica of engine k as placed (`place`)."""
        return {(space.engines[k].pool, n) for spot, _ in spots[k] for n in spot}

    transfer = {
        (kp, kd): disagg.kv_transfer_s(
            fm.model,
            space.cluster.pool_cluster(space.engines[kp].pool),
            space.engines[kd].config.kv_cache_dtype,
            w.isl,
            tp_prefill=space.engines[kp].tp,
            tp_decode=space.engines[kd].tp,
            # every replica of both on one node as placed: NVLink (the tables priced the pool's link)
            same_node=same_node or len(nodes_of(kp) | nodes_of(kd)) == 1,
            pp_prefill=space.engines[kp].pp,
            decode_cluster=space.cluster.pool_cluster(space.engines[kd].pool),
        )
        for kp in p_cap
        for kd in d_cap
    }
    loop = closed_loop_capacity_rps(rs, counts, d_cap, transfer, min(prefill_rps, decode_rps))
    capacity = min(prefill_rps, decode_rps, loop)
    solver_rps = space.capacity_milli_rps(counts, 0) / fm.units_per_rps
    if solver_rps > capacity * (1 + 1e-6) + 1 / fm.units_per_rps:
        raise InternalError(
            f"disaggregated solver and float model disagree on {fm.name}: the solver's flow "
            f"{solver_rps:.3f} req/s > the float model's {capacity:.3f}"
        )
    served = capacity if w.request_rate is None else min(capacity, w.request_rate)
    load = {
        "prefill": served / n_prefill if n_prefill else 0.0,
        "decode": served / n_decode if n_decode else 0.0,
    }
    slot_wait = {
        kd: 0.0 if (q := rs.times[kd].slot_queue) is None else slot_wait_s(load["decode"], *q) for kd in d_cap
    }
    worst: disagg.DisaggRequest | None = None
    for kp in p_cap:
        ep = space.engines[kp]
        rank_rate = load["prefill"] / ep.dp
        sub = space.cluster.pool_cluster(ep.pool)
        for kd in d_cap:
            r = disagg.disagg_request(
                prefill_s=rs.times[kp].prefill_s,
                prefill_rate_per_rank=rank_rate,
                transfer_s=transfer[kp, kd],
                decode_s=rs.times[kd].decode_s,
                overhead_s=efficiency_for(sub.gpu).request_overhead_s,
                service_cv2=rs.times[kp].service_cv2,
                slot_wait_s=slot_wait[kd],
                prefill_ranks=ep.dp,
            )
            if worst is None or r.ttft_ms > worst.ttft_ms:
                worst = r
    if worst is None:
        raise InternalError("a disaggregated deployment without a prefill or a decode engine")
    tpot = max(rs.times[k].decode_s for k in d_cap) * 1e3
    where = f"disaggregated solver and float model disagree on {fm.name}"
    if w.ttft_ms is not None and worst.ttft_ms > w.ttft_ms * (1 + 1e-9):
        raise InternalError(f"{where}: TTFT {worst.ttft_ms:.1f} ms > {w.ttft_ms} ms")
    ttft = max(worst.ttft_ms, closed_loop_ttft_ms(fm.queue_clients, capacity, counts, space, d_cap))
    if w.ttft_ms is not None and ttft > w.ttft_ms * (1 + 1e-9):
        raise InternalError(
            f"{where}: TTFT {ttft:.1f} ms under the client's {fm.queue_clients} > {w.ttft_ms} ms"
        )
    if w.tpot_ms is not None and tpot > w.tpot_ms * (1 + 1e-9):
        raise InternalError(f"{where}: TPOT {tpot:.2f} ms > {w.tpot_ms} ms")
    ports: dict[tuple[int, int], int] = {}
    engines: list[RoleEngine] = []
    for k in chosen:
        e = space.engines[k]
        pool = space.cluster.pools[e.pool]
        placement = []
        for nodes, gpu_ids in spots[k]:
            port = ports.get((e.pool, nodes[0]), BASE_PORT)
            ports[e.pool, nodes[0]] = port + 1
            placement.append(ReplicaPlacement(nodes=nodes, gpu_ids=gpu_ids, port=port))
        engines.append(
            RoleEngine(
                role=e.role,
                model=fm.name,
                gpu=pool.gpu.name,
                pool=e.pool,
                tp=e.tp,
                pp=e.pp,
                ep=e.ep,
                dp=e.dp,
                gpus_per_replica=e.gpus,
                replicas=counts[k],
                placement=tuple(placement),
                capacity_rps=p_cap[k] / w.isl if e.role == "prefill" else d_cap[k],
                load_rps=load[e.role],
                prefill_ms=rs.times[k].prefill_s * 1e3,
                decode_step_ms=rs.times[k].decode_s * 1e3,
                max_num_seqs=e.config.max_num_seqs,
                usd_per_hour=counts[k] * e.gpus * pool.usd_per_hour,
                config=e.config,
            )
        )
    used = sum(e.gpus_per_replica * e.replicas for e in engines)
    usd = sum(e.usd_per_hour for e in engines)
    goodput = served * w.osl
    return DisaggDeployment(
        cluster=space.cluster.spec,
        prefill=tuple(e for e in engines if e.role == "prefill"),
        decode=tuple(e for e in engines if e.role == "decode"),
        capacity_rps=capacity,
        served_rps=served,
        goodput_tokens_per_s=goodput,
        gpus_used=used,
        gpus_idle=space.cluster.world_size - used,
        idle_reasons=_floor_idle_reasons(rs, idle_reasons(space, counts, objective, soft_rates)),
        usd_per_hour=usd,
        usd_per_million_tokens=usd / (goodput * 3600.0) * 1e6 if goodput > 0 else math.inf,
        worst=worst,
        ttft_ms=ttft,
        tpot_ms=tpot,
        objective=objective,
        solver=stats,
        bound=_bound(prefill_rps, decode_rps, loop),
        budget_decode_pools=rs.decode_pools,
        link_floor_gbps=rs.floor.gbps if rs.floor is not None else None,
        **budget_link(rs, sorted({e.pool for e in engines if e.role == "prefill"})),
    )


def budget_link(rs: RoleSpace, prefill_pools: list[int]) -> dict[str, Any]:
    """`budget_link_pool` and `budget_link_gbps` of a deployment whose prefill engines run on
    `prefill_pools`: the slowest link their TTFT budget priced the KV transfer at, each prefill pool
    paired with the slowest of the decode pools it assumed (roles.py `slowest_decode_pool`: the slower
    end of the pair); {} without a link floor."""
    if rs.floor is None or not prefill_pools:
        return {}
    cluster, same_node = rs.space.cluster, rs.nvlink
    decode = range(len(cluster.pools)) if rs.decode_pools is None else rs.decode_pools

    def speed(q: int) -> float:
        return disagg.transfer_link(cluster.pool_cluster(q), same_node=same_node).bytes_per_s

    # each prefill pool's pairs run at the slower end (a tie: the decode pool's, as the floor says it)
    _, _, pool = min((speed(q), q not in decode, q) for p in prefill_pools for q in {p, *decode})
    return {
        "budget_link_pool": pool,
        "budget_link_gbps": nominal_link_gbps(cluster.pool_cluster(pool), same_node),
    }


def budget_words(d: DisaggDeployment) -> str | None:
    """Which link the prefill engines' TTFT budget priced the KV transfer at, on a cluster of several
    pools: the decode pools' floor (roles.py `link_floors`), or a prefill engine's own pool where its
    link is slower (the D rank reads over both ends, perf/disagg.py `pair_link`); None on one pool or
    where not told. The `plan --disagg` text's budget line (disagg.py `_budget_line`)."""
    pools = d.budget_decode_pools
    if pools is None or "+" not in d.cluster:  # `Cluster.spec` joins pools with "+"
        return None
    noun = "pool" if len(pools) == 1 else "pools"
    decode = f"decode on {noun} {', '.join(map(str, pools))} (links >= {d.link_floor_gbps:g} GB/s)"
    own = d.budget_link_pool
    if own is None or own in pools or d.budget_link_gbps is None:
        return f"prefill TTFT budget: the KV transfer priced for {decode}"
    return (
        f"prefill TTFT budget: the KV transfer priced at the {d.budget_link_gbps:g} GB/s link of pool "
        f"{own}, its prefill engines' own and the slower end of their pairs with {decode}"
    )
