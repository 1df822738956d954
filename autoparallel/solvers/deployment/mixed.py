"""Aggregated and disaggregated deployments of one model in ONE CP-SAT model: the mode is a decision.

The space is the union of two candidate sets built from the same serving tables (one per pool):

aggregated engines  every admissible entry (starts, meets the TTFT / TPOT limits) of every shape,
    kept when no other entry of the same shape has at least its tokens/s and at most its TPOT, then
    `space.undominated_indices` across shapes (k copies of b replace a: k · capacity_b ≥ capacity_a and
    TPOT_b ≤ TPOT_a). Unlike the deployment planner's one engine per shape (its fastest), a front
    over TPOT needs the slower-batched, lower-TPOT entries too.
decode engines      every entry that starts, TPOT = its pure decode step T_d(b) (perf/disagg.py),
    capacity b / (osl · T_d(b)) within its link and slot rates (roles.py `rated_at`); pruned the
    same way on (capacity, T_d).
prefill engines     deployment/roles.py's `prefill_engines`, rated at the TTFT budget that holds
    against every decode candidate of its link floor (the slowest KV transfer, the first decode step
    bounded by the TPOT limit or, without one, the slowest decode candidate's step).

Link floors (roles.py `link_floors`): one per distinct KV-transfer link speed L of the pools that hold
a decode engine; floor L's prefill engines are rated with decode engines on the pools whose link is
at least L only, and a decode engine may serve every floor at or below its pool's link
(`MixedSpace.role_floors`). The CP-SAT model picks one floor per disaggregated point
(mixed_encoder.py `link_floor`), so the front is over the union of the floors' deployments: those
whose every (P, D) pair meets the TTFT budget under round robin. With a TTFT limit each floor comes
in first-step tiers too (roles.py `step_ladder`, kept as `roles.build_role_space` keeps them): a
faster tier's decode engines are the entries within its bound, rated for it, and its prefill
engines are rated at the budget that bound leaves; `MixedSpace.floors` lists one entry per (floor,
tier) and `tier_bounds` their tiers and bounds, so the same one-floor rule picks one tier per point.

The CP-SAT model over this space is mixed_encoder.py; the brute-force oracle is mixed_oracle.py.
No ortools here.

TTFT is a limit here (the workload's `ttft_ms`), not an objective: a disaggregated TTFT depends on
the prefill ranks' queueing at the carried load, which is not linear in the replica counts.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

from autoparallel.errors import InputError
from autoparallel.hardware import Cluster
from autoparallel.objectives import DEPLOYMENT, SERVING, ObjectiveInfo
from autoparallel.solvers import units
from autoparallel.solvers.deployment.roles import (
    DecodeCandidate,
    LinkFloor,
    PrefillCandidate,
    RoleSpace,
    RoleTimes,
    _engine,
    burst_problem,
    critical_bounds,
    decode_candidates,
    decode_rank_rps,
    keep_tiers,
    kv_dtypes,
    link_floors,
    loosest_bound_s,
    model_ladder,
    pair_problem,
    prefill_candidates,
    prefill_engines,
    rated_at,
    rating_ceiling,
    single_node,
    smallest_pair,
    ttft_below_transfer,
    undominated,
    usable_pools,
    why_no_role,
)
from autoparallel.solvers.deployment.space import (
    MILLI,
    DeploymentSpace,
    Engine,
    FleetModel,
    admissible_utils,
    build_deployment_space,
    engine_at,
    granularity,
    rated_milli_tps,
    undominated_indices,
)
from autoparallel.solvers.serving.space import ServingOptions, ServingSpace

MODES = ("auto", "on", "off")
"""`auto`: either mode per point; `on`: disaggregated points only; `off`: aggregated points only."""
OBJECTIVES: dict[str, ObjectiveInfo] = {
    "throughput": DEPLOYMENT["throughput"],
    "tpot": SERVING["tpot"],
    "cost": ObjectiveInfo("cost", False, "US$ per hour of the GPUs used"),
    "gpus": DEPLOYMENT["gpus"],
}
"""Objectives of a deployment front (the registry's entries for the same quantities)."""


@dataclass
class MixedSpace:
    """Aggregated candidates and prefill / decode candidates of one model on a cluster."""

    aggregated: DeploymentSpace
    """Aggregated engines (empty with mode `on`)."""
    roles: RoleSpace
    """Prefill and decode engines (empty with mode `off`)."""
    agg_tpot_us: list[int]
    """TPOT of each aggregated engine (the serving table's step, µs)."""
    decode_tpot_us: list[int]
    """Per role engine: its pure decode step (decode engines; 0 for prefill), µs rounded up."""
    mode: str
    note: str = ""
    """Why one mode has no candidate (said next to the front)."""
    floors: tuple[LinkFloor, ...] = ()
    """The (link floor, first-step tier) spaces of the role engines, floors fastest first, each floor's
    tiers fastest first (its loosest last, as `RoleSpace.tiers`), one entry per tier (module doc;
    empty: one floor and one tier)."""
    role_floors: tuple[frozenset[int], ...] = ()
    """Per role engine: the indices of the `floors` at which it may be deployed (a prefill engine its
    own floor's; a decode engine every floor at or below its pool's link). Empty: every engine at
    the one floor."""
    tier_bounds: tuple[tuple[int, float], ...] = ()
    """Per entry of `floors`: (its first-step tier, 0 the loosest, roles.py `step_ladder`; the first
    decode step its prefill budget takes)."""

    def floor_engines(self, t: int) -> list[int]:
        """Indices (into the role engines) of those deployable at floor `t`."""
        if not self.role_floors:
            return list(range(len(self.roles.space.engines)))
        return [k for k, ts in enumerate(self.role_floors) if t in ts]

    @property
    def fleet_model(self) -> FleetModel:
        return self.aggregated.models[0]

    @property
    def cluster(self) -> Cluster:
        return self.aggregated.cluster

    @property
    def engines(self) -> list[Engine]:
        """Aggregated engines, then role engines (the order of a point's counts)."""
        return [*self.aggregated.engines, *self.roles.space.engines]

    def split(self, counts: tuple[int, ...] | list[int]) -> tuple[list[int], list[int]]:
        """(aggregated counts, role counts) of a point."""
        a = len(self.aggregated.engines)
        return list(counts[:a]), list(counts[a:])

    def tpot_us(self, k: int) -> int:
        """TPOT of engine k of `engines` (0: a prefill engine, which sets no TPOT)."""
        a = len(self.agg_tpot_us)
        return self.agg_tpot_us[k] if k < a else self.decode_tpot_us[k - a]


def _aggregated(space: ServingSpace, fm: FleetModel, m: int, p: int) -> tuple[list[Engine], list[int]]:
    """Every admissible entry of every shape as an engine, with its TPOT (µs); shapes whose size breaks
    node granularity as the deployment planner packs (`space.granularity`, the
    per-size rules mixed_encoder posts) are left out."""
    engines: list[Engine] = []
    tpot: list[int] = []
    for i in range(len(space.tables.evaluated)):
        ok = admissible_utils(space, i)
        if not ok:
            continue
        size = granularity(space, space.unflat(i)[0])
        if size is None:
            continue
        tps = space.tables.tps_milli[i] * size[0]
        sustained = rated_milli_tps(space, fm, i, size[0]) * size[0]
        if sustained // fm.workload.osl <= 0:
            continue
        engines.append(
            engine_at(
                space,
                m,
                p,
                i,
                ok[0],
                size,
                capacity_milli_rps=sustained // fm.workload.osl,
                milli_tokens_per_s=tps,
                sustained_milli_tps=sustained,
            )
        )
        tpot.append(space.tables.step_us[i])
    return engines, tpot


def _shape_fronts(engines: list[Engine], tpot: list[int], capped: bool) -> list[int]:
    """Indices of the entries on their shape's (capacity ↑, TPOT ↓) front (one sort per shape), so that
    `undominated_indices` (quadratic) runs on few engines. With a concurrency cap the front has a third
    axis, requests in flight ↓, and `undominated_indices` alone prunes."""
    if capped:
        return list(range(len(engines)))
    keep = []
    for shape in {(e.pool, e.shape) for e in engines}:
        mine = sorted(
            (i for i, e in enumerate(engines) if (e.pool, e.shape) == shape),
            key=lambda i: (-engines[i].rating, tpot[i], i),
        )
        best = math.inf
        for i in mine:
            if tpot[i] < best:
                keep.append(i)
                best = tpot[i]
    return sorted(keep)


def _prune(engines: list[Engine], tpot: list[int], capped: bool) -> list[int]:
    first = _shape_fronts(engines, tpot, capped)
    kept = undominated_indices([engines[i] for i in first], capped, [tpot[i] for i in first])
    return [first[i] for i in kept]


def _within(engines: list[Engine], concurrency: int | None) -> list[int]:
    """Indices of the engines one replica of which fits the concurrency cap (all without one)."""
    return [k for k, e in enumerate(engines) if concurrency is None or e.in_flight <= concurrency]


def _decode(
    space: ServingSpace,
    fm: FleetModel,
    m: int,
    p: int,
    candidates: list[DecodeCandidate],
    bound_s: float | None,
    *,
    fronts: bool = False,
) -> tuple[list[Engine], list[RoleTimes]]:
    """Every decode candidate (`roles.decode_candidates`: it starts, meets the TPOT limit with its pure
    decode step, a vLLM runtime whose shape vLLM's NIXL connector runs as a decode engine) within the
    first-step bound `bound_s` (None: the loosest), rated as `roles.decode_engines` rates it.
    `fronts`: only those that can be on their shape's (capacity ↑, TPOT ↓) front (`_shape_fronts`,
    pruning without a cap): an entry whose full-load rating (`roles.rating_ceiling`) is below the
    rating of a same-shape entry of no slower step is not slot-rated (the bisection is the cost)."""
    kept: dict[int, tuple[Engine, RoleTimes]] = {}  # candidate index -> its engine and times
    osl = space.workload.osl
    best: dict[int, int] = {}  # shape -> the highest rating of its entries rated so far (steps ascending)
    order = list(range(len(candidates)))
    if fronts:
        order.sort(key=lambda k: (candidates[k].times.decode_s, candidates[k].entry))
    for k in order:
        c = candidates[k]
        s = space.unflat(c.entry)[0]
        if fronts and rating_ceiling(c, osl) < best.get(s, -1):
            continue
        rt = rated_at(c, fm.workload, bound_s)
        if rt is None:
            continue
        rating = math.floor(MILLI * c.dp * decode_rank_rps(rt, c.batch, osl))
        e = _engine(space, m, p, s, c.entry, c.util, "decode", rating)
        if e is not None:
            best[s] = max(best.get(s, -1), rating)
            kept[k] = (e, rt)
    # in the candidates' order, whatever the rating order: CP-SAT's pick among ties follows it
    return [kept[k][0] for k in sorted(kept)], [kept[k][1] for k in sorted(kept)]


@dataclass
class _Tier:
    """One (link floor, first-step tier)'s prefill engines of the mixed space (roles.py module doc)."""

    floor: LinkFloor
    step_tier: int
    first_s: float
    """The first decode step its prefill budget takes."""
    prefill: list[Engine]
    times: list[RoleTimes]


def _tier_engines(roles: list[Engine], role_floors: list[frozenset[int]], n: int) -> list[list[Engine]]:
    """Each tier's role engines (`MixedSpace.role_floors`; one tier: all of them)."""
    if n < 2:
        return [roles]
    return [[e for e, ts in zip(roles, role_floors, strict=True) if t in ts] for t in range(n)]


def _bound_ms(tier_bounds: list[tuple[int, float]], t: int) -> float | None:
    """Tier t's first-step bound (ms) where it is a faster tier's, else None (`MixedSpace.tier_bounds`)."""
    if t >= len(tier_bounds) or not tier_bounds[t][0]:
        return None
    return tier_bounds[t][1] * 1e3


def _dtype_tiers(
    base: DeploymentSpace,
    fm: FleetModel,
    cluster: Cluster,
    candidates: dict[int, list[DecodeCandidate]],
    prefill_of: dict[int, list[PrefillCandidate]],
    bound: float,
    every: list[DecodeCandidate],
    *,
    prune: bool,
    nvlink: bool,
    kv: str | None,
) -> tuple[list[_Tier], dict[int, dict[int, tuple[list[Engine], list[RoleTimes]]]]]:
    """One KV-cache dtype's (link floor, first-step tier)s (floors fastest first, each floor's tiers
    fastest first) and its decode engines by first-step tier and pool, from its candidates by pool
    (`kv`: the dtype where several are allowed, roles.py `kv_dtypes`)."""
    cap = fm.concurrency
    pools = range(len(cluster.pools))
    fronts = prune and cap is None  # only front entries survive `_prune` there
    decode = {p: _decode(base.serving[0, p], fm, 0, p, candidates[p], bound, fronts=fronts) for p in pools}
    fits = {p: _within(decode[p][0], cap) for p in pools}
    spaces = {p: base.serving[0, p] for p in pools}
    fitting = [decode[p][0][k] for p in pools for k in fits[p]]
    critical = critical_bounds(fm, cluster, prefill_of, spaces, fitting, nvlink)
    ladder = model_ladder(fm, bound, every, critical) if fitting else []
    by_tier: dict[int, dict[int, tuple[list[Engine], list[RoleTimes]]]] = {0: decode}

    def tier(floor: LinkFloor, k: int) -> _Tier | None:
        """First-step tier k's prefill engines at `floor` (roles.py `step_ladder`; 0: the loosest,
        its bound `roles.loosest_bound_s`); None where no decode engine within its bound fits the
        concurrency cap."""
        if k not in by_tier:
            by_tier[k] = {
                p: _decode(base.serving[0, p], fm, 0, p, candidates[p], ladder[k - 1], fronts=fronts)
                for p in pools
            }
        here = {
            q: [(by_tier[k][q][0][i], by_tier[k][q][1][i]) for i in _within(by_tier[k][q][0], cap)]
            for q in floor.decode_pools
        }
        if k and not any(here.values()):
            return None
        # the prefill budget needs each decode TP once (the KV transfer depends on the TPs only)
        tps = list({e.tp: e for pairs in here.values() for e, _ in pairs}.values())
        first = ladder[k - 1] if k else bound
        out = _Tier(floor, k, first, [], [])
        for p in pools:
            times: dict[int, RoleTimes] = {}
            found = prefill_engines(
                base.serving[0, p],
                fm,
                cluster,
                0,
                p,
                tps,
                first,
                times,
                decode_pools=floor.decode_pools,
                candidates=prefill_of[p],
                same_node=nvlink,
            )
            for e in undominated(found, cap is not None) if prune else found:
                out.prefill.append(e)
                out.times.append(times[id(e)])
        return out

    tiers: list[_Tier] = []
    for floor in link_floors(cluster, [p for p in pools if fits[p]], same_node=nvlink, kv_cache_dtype=kv):
        # each floor's tiers fastest first, as `RoleSpace.tiers` lists them
        tiers += reversed(keep_tiers(functools.partial(tier, floor), len(ladder), lambda t: t.prefill))
    return tiers, by_tier


def build_mixed_space(
    fm: FleetModel,
    cluster: Cluster,
    options: ServingOptions | None = None,
    *,
    mode: str = "auto",
    prune: bool = True,
    deadline: float | None = None,
) -> MixedSpace:
    """Both candidate sets of `fm` on `cluster` (module doc); `mode` leaves one of them empty;
    `prune=False` keeps the dominated candidates (for the oracle); `deadline` as
    `build_deployment_space` takes it.

    Raises:
        InputError: an unknown mode, or what `build_deployment_space` refuses.
        InfeasibleError: the workload's context exceeds the model's.
        SolverTimeoutError: the deadline passed while the tables were computed.
    """
    if mode not in MODES:
        raise InputError(f"--disagg {mode!r}: expected one of {', '.join(MODES)}")
    base = build_deployment_space([fm], cluster, options, prune=False, deadline=deadline, scale_rates=False)
    cap = fm.concurrency
    agg: list[Engine] = []
    agg_tpot: list[int] = []
    roles: list[Engine] = []
    role_times: list[RoleTimes] = []
    role_tpot: list[int] = []
    pools = range(len(cluster.pools))
    if mode != "on":
        for p in pools:
            found, tpot = _aggregated(base.serving[0, p], fm, 0, p)
            fit = _within(found, cap)
            found, tpot = [found[k] for k in fit], [tpot[k] for k in fit]
            keep = _prune(found, tpot, cap is not None) if prune else list(range(len(found)))
            agg += [found[i] for i in keep]
            agg_tpot += [tpot[i] for i in keep]
    bound = 0.0
    burst = burst_problem(fm)
    floors: list[LinkFloor] = []
    tier_bounds: list[tuple[int, float]] = []
    role_floors: list[frozenset[int]] = []
    nvlink = single_node(cluster)
    if mode != "off" and burst is None:
        dtypes = kv_dtypes(base.serving[0, 0].options)
        prefills = {(kv, p): prefill_candidates(base.serving[0, p], kv=kv) for kv in dtypes for p in pools}

        def decode_of(same_node: bool) -> dict[tuple[str, int], list[DecodeCandidate]]:
            return {
                (kv, p): decode_candidates(base.serving[0, p], fm.workload, same_node=same_node, kv=kv)
                for kv in dtypes
                for p in pools
            }

        found_decode = decode_of(nvlink)
        nvlink = single_node(cluster, usable_pools(found_decode, prefills))
        if nvlink != single_node(cluster):  # the pools that hold no engine of the model left out
            found_decode = decode_of(nvlink)
        bounds: list[float] = []
        tiers: list[_Tier] = []
        for kv in dtypes:
            candidates = {p: found_decode[kv, p] for p in pools}
            prefill_of = {p: prefills[kv, p] for p in pools}
            every = [c for cs in candidates.values() for c in cs]
            bound = loosest_bound_s(fm, every)
            bounds.append(bound)
            base_t = len(tiers)
            kv_tiers, by_tier = _dtype_tiers(
                base,
                fm,
                cluster,
                candidates,
                prefill_of,
                bound,
                every,
                prune=prune,
                nvlink=nvlink,
                kv=kv if len(dtypes) > 1 else None,
            )
            tiers += kv_tiers
            for t, tr in enumerate(kv_tiers):
                roles += tr.prefill
                role_times += tr.times
                role_tpot += [0] * len(tr.prefill)
                role_floors += [frozenset({base_t + t})] * len(tr.prefill)
            for k, tier_decode in sorted(by_tier.items()):
                for p in pools:
                    at = frozenset(
                        base_t + t
                        for t, tr in enumerate(kv_tiers)
                        if tr.step_tier == k and p in tr.floor.decode_pools
                    )
                    if not at:
                        continue
                    ks = _within(tier_decode[p][0], cap)
                    engines, ts = [tier_decode[p][0][i] for i in ks], [tier_decode[p][1][i] for i in ks]
                    steps = [units.us_up(t.decode_s) for t in ts]
                    for i in _prune(engines, steps, cap is not None) if prune else range(len(engines)):
                        roles.append(engines[i])
                        role_times.append(ts[i])
                        role_tpot.append(steps[i])
                        role_floors.append(at)
        bound = max(bounds, default=0.0)
        floors = [t.floor for t in tiers]
        tier_bounds = [(t.step_tier, t.first_s) for t in tiers]
    aggregated = dataclasses.replace(base, engines=tuple(agg), dominated=0)
    role_space = dataclasses.replace(base, engines=tuple(roles), disaggregated=True, dominated=0)
    note = ""
    if mode != "off" and burst is not None:
        note = burst
    elif mode != "off":
        kinds = {e.role for e in roles}
        # a pair must come from one tier (a floor's and a first-step bound's): the smallest pair's
        both = [
            (t, ts)
            for t, ts in enumerate(_tier_engines(roles, role_floors, len(floors)))
            if {e.role for e in ts} == {"prefill", "decode"}
        ]
        pairs = {t: pair_problem(ts, fm.workload, cluster, _bound_ms(tier_bounds, t)) for t, ts in both}
        if pairs and all(pairs.values()):

            def gpus(t: int) -> int:
                pair = smallest_pair(dict(both)[t])
                return pair[0].gpus + pair[1].gpus if pair else 0

            note = str(pairs[min(pairs, key=lambda t: (gpus(t), t))])
        elif kinds != {"prefill", "decode"}:
            missing = sorted({"prefill", "decode"} - kinds)[0]
            gap = ttft_below_transfer(
                RoleSpace(role_space, role_times, [bound], same_node=nvlink), fm.workload, cluster
            )
            w = fm.workload
            value = w.ttft_ms if missing == "prefill" else w.tpot_ms
            limit = f" and meets {'TTFT' if missing == 'prefill' else 'TPOT'} {value:g} ms" if value else ""
            note = f"no {missing} engine of {fm.name} starts{limit} on {cluster.spec}"
            if gap and missing == "prefill":
                note += f": {gap}"
            elif missing == "decode":  # each pool's binding rule with its numbers (memory first)
                why = [
                    why_no_role(base.serving[0, p], "decode", fm, cluster, p, [], bound, same_node=nvlink)
                    for p in pools
                ]
                note += f" ({'; '.join(r for r in why if r)})" if any(why) else ""
    return MixedSpace(
        aggregated,
        RoleSpace(role_space, role_times, [bound], same_node=nvlink),
        agg_tpot,
        role_tpot,
        mode,
        note,
        tuple(floors) if len(floors) > 1 else (),
        tuple(role_floors) if len(floors) > 1 else (),
        tuple(tier_bounds) if len(floors) > 1 else (),
    )
