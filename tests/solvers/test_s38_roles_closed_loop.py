"""A concurrency cap's closed loop through prefill and decode roles (client_rules.closed_loop_rule).

C clients hold every request's whole cycle: the request overhead, the prompt's wait and prefill at a
P rank (an M/G/n count), the KV transfer and the decode slot. The slot count alone (Σ max_num_seqs ·
ranks ≤ C) let the roles carry more than C requests can cycle through: Qwen3-8B on
1x8xH100+1x8xA100-80G at 64 clients planned 51.07 req/s (6P:1D) where the prefill queue held 17
requests and the loop carried about 49.6.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.perf import disagg
from autoparallel.perf.serving_efficiency import efficiency_for
from autoparallel.solvers.deployment import DeploymentSpace, FleetModel
from autoparallel.solvers.deployment.client_rules import CLIENT_SCALE, prefill_client_lines
from autoparallel.solvers.deployment.disagg_plan import decode_roles
from autoparallel.solvers.deployment.driver import expr_value, optimize
from autoparallel.solvers.deployment.encoder import build
from autoparallel.solvers.deployment.oracle import brute_force
from autoparallel.solvers.deployment.roles import RoleSpace, build_role_space
from autoparallel.solvers.deployment.space import round_robin_milli_rps, undominated
from autoparallel.solvers.driver import Run
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving
from tests.property_examples import examples

EXAMPLES = 60
TOP_CLIENTS = 256
OPTIONS = ServingOptions(max_num_seqs=(2, 8, 32), enforce_eager=(False,))


@functools.cache
def capped_roles() -> RoleSpace:
    """Llama-3.1-8B's role engines on H100 and A100 pools, rated for a cap of TOP_CLIENTS (their
    chords then hold for every smaller cap: more chords, the same interpolant)."""
    fm = FleetModel(
        load_model("meta-llama/Llama-3.1-8B-Instruct"),
        Serving(isl=2048, osl=128, ttft_ms=3000, concurrency=TOP_CLIENTS),
    )
    return build_role_space([fm], Cluster.parse("2x8xH100+2x4xA100-80G"), OPTIONS, prune=False)


def test_the_chords_lie_above_the_m_g_1_count_and_close_to_it() -> None:
    """Up to the last chord's end: CLIENT_SCALE · f(ρ) ≤ the chords' maximum ≤ (1.05 below ρ = 1/16,
    1.02 beyond) · it (+ the rounding unit); at that end one rank alone holds more than the clients,
    and the chords only rise past it (the load past it is ruled out)."""
    for cv2, clients, ranks in itertools.product((0.0, 0.3, 1.0, 2.5), (1, 8, 64, 4096), (1, 4, 16)):
        lines = prefill_client_lines(cv2, clients, 1.0, ranks)
        assert all(alpha <= 0 for alpha, _ in lines)

        def f(rho: float, cv2: float = cv2, ranks: int = ranks) -> float:
            return disagg.prefill_in_system(rho, cv2, ranks)  # a pooled engine's count per rank

        # the last end: where the last chord meets f again
        (a1, b1), (a2, b2) = lines[-2], lines[-1]
        start = (a1 - a2) / (b2 - b1)  # the last chord's own start
        end = next(
            r / 10**6
            for r in range(math.ceil(start * 10**6) + 1, 10**6)
            if a2 + b2 * r / 10**6 <= CLIENT_SCALE * f(r / 10**6)
        )
        assert f(end) > clients * (1 - 1e-3)
        for rho in [i / 2000 * end for i in range(1, 2000)]:
            charged = max(alpha + beta * rho for alpha, beta in lines)
            assert charged >= CLIENT_SCALE * f(rho) - 1e-6, (cv2, clients, ranks, rho)
            slack = 1.05 if rho < 1 / 16 else 1.02
            assert charged <= slack * CLIENT_SCALE * f(rho) + 2, (cv2, clients, ranks, rho, charged / f(rho))


def _instance(space: DeploymentSpace, clients: int, rate: float | None) -> DeploymentSpace:
    fm = space.models[0]
    w = fm.workload.model_copy(update={"concurrency": clients, "request_rate": rate})
    return dataclasses.replace(space, models=(dataclasses.replace(fm, workload=w),))


@st.composite
def instances(draw: st.DrawFn) -> DeploymentSpace:
    base = capped_roles().space
    pools = draw(st.sampled_from([(0,), (1,), (0, 1)]))
    nodes = {p: 1 for p in pools}
    new_pool = {p: i for i, p in enumerate(pools)}
    engines = []
    for role in ("prefill", "decode"):
        fitting = [
            e for e in base.engines if e.role == role and e.pool in pools and not e.nodes and e.gpus <= 4
        ]
        chosen = draw(st.lists(st.sampled_from(fitting), min_size=1, max_size=3, unique=True))
        engines += [dataclasses.replace(e, pool=new_pool[e.pool]) for e in chosen]
    clients = draw(st.sampled_from([4, 8, 16, 32, 64, TOP_CLIENTS]))
    best = max(e.capacity_milli_rps for e in engines if e.role == "decode")
    quarters = draw(st.one_of(st.none(), st.integers(1, 12)))
    rate = None if quarters is None else quarters * best / 4000
    cluster = Cluster(
        pools=tuple(
            base.cluster.pools[p].model_copy(update={"nodes": nodes[p], "gpus_per_node": 4}) for p in pools
        )
    )
    space = DeploymentSpace(base.models, cluster, tuple(engines), {}, disaggregated=True)
    return _instance(space, clients, rate)


def _pruned(space: DeploymentSpace) -> DeploymentSpace:
    keep = []
    for p in range(len(space.cluster.pools)):
        for role in ("prefill", "decode"):
            keep += undominated([e for e in space.engines if (e.pool, e.role) == (p, role)], capped=True)
    return dataclasses.replace(space, engines=tuple(keep))


@settings(
    max_examples=examples(EXAMPLES),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(instances())
def test_cpsat_optimum_equals_brute_force_under_a_cap(space: DeploymentSpace) -> None:
    """The encoder's closed-loop family (chords with used-engine literals) and the oracle's closed form
    (`ClosedLoopRule.flow` over the vector) agree; CP-SAT sees the undominated engines only."""
    objectives = ("throughput",) if space.models[0].workload.request_rate is None else ("goodput", "cost")
    for objective in objectives:
        oracle = brute_force(space, objective)
        small = _pruned(space)
        counts = optimize(small, (objective,), Run(SolverSettings(time_limit_s=5)))
        mine = (
            None
            if counts is None
            else expr_value(build(small, hard_demand=objective != "goodput"), objective, counts)
        )
        assert (mine is None) == (oracle is None), (objective, mine, oracle)
        if oracle is None:
            event(f"{objective}: infeasible")
            continue
        assert mine == oracle[0], (objective, mine, oracle)
        picked = [(e, n) for e, n in zip(space.engines, oracle[1], strict=True) if n]
        binds = space.capacity_milli_rps(oracle[1], 0) < round_robin_milli_rps(picked, 2048)
        event(f"{objective}: the closed loop {'binds' if binds else 'does not bind'}")


def _float_clients(rs: RoleSpace, counts: list[int], rps: float) -> float:
    """Requests in flight at `rps` through the chosen engines, recomputed here from perf/disagg.py:
    round robin, the mean overhead, transfer and slot time, each P engine's M/G/n count per rank."""
    space = rs.space
    fm = space.models[0]
    used = [k for k, n in enumerate(counts) if n]
    p_ks = [k for k in used if space.engines[k].role == "prefill"]
    d_ks = [k for k in used if space.engines[k].role == "decode"]
    n_p, n_d = sum(counts[k] for k in p_ks), sum(counts[k] for k in d_ks)
    total = 0.0
    for kp in p_ks:
        e, t = space.engines[kp], rs.times[kp]
        pool = space.cluster.pool_cluster(e.pool)
        rho = rps / n_p / e.dp * t.prefill_s
        total += counts[kp] * e.dp * disagg.prefill_in_system(rho, t.service_cv2, e.dp)
        total += rps * counts[kp] / n_p * efficiency_for(pool.gpu).request_overhead_s
        for kd in d_ks:
            d = space.engines[kd]
            x = disagg.kv_transfer_s(
                fm.model,
                pool,
                d.config.kv_cache_dtype,
                fm.workload.isl,
                tp_prefill=e.tp,
                tp_decode=d.tp,
                same_node=False,
                pp_prefill=e.pp,
                decode_cluster=space.cluster.pool_cluster(d.pool),
            )
            total += rps * counts[kp] / n_p * counts[kd] / n_d * x
    for kd in d_ks:
        d = space.engines[kd]
        cap = d.dp * min(
            disagg.decode_capacity_rps(d.config.max_num_seqs, fm.workload.osl, rs.times[kd].decode_s),
            rs.times[kd].link_rps,
        )
        total += rps * counts[kd] / n_d * d.in_flight / cap
    return total


def test_the_plan_carries_what_its_clients_can_cycle_through() -> None:
    """The reproducer: Qwen3-8B on an H100 and an A100 node, 64 clients (chatbot SLOs). On every link
    floor, the optimum's decoded flow has its requests in flight within the 64 clients by the float
    model's own count, and it is at least the solver's flow."""
    from autoparallel.fleet import fleet_of_one

    w = Serving.preset("chatbot").model_copy(update={"concurrency": 64})
    rs = build_role_space(fleet_of_one("Qwen/Qwen3-8B", w), Cluster.parse("1x8xH100+1x8xA100-80G"))
    for tier in rs.tiers():
        run = Run(SolverSettings(time_limit_s=60))
        counts = optimize(tier.space, ("throughput",), run)
        if counts is None:  # a faster first-step tier's few decode slots may not carry the clients
            assert tier.step_tier > 0
            continue
        d = decode_roles(tier, counts, "throughput", run.stats())
        assert _float_clients(tier, counts, d.capacity_rps) <= 64 * (1 + 1e-6)
        flow = tier.space.capacity_milli_rps(counts, 0) / tier.space.models[0].units_per_rps
        assert flow <= d.capacity_rps * (1 + 1e-6)


def test_a_cap_below_the_cycle_of_the_roles_rate_binds() -> None:
    """One P and one D replica (8 slots): at the round-robin rate the cycle holds more requests than
    a cap just below that count, so the closed loop carries less than the roles, and the float count
    at what it carries is within the cap; a cap above the count leaves the roles' rate."""
    rs = capped_roles()
    fm = rs.space.models[0]
    space = rs.space
    prefill = max(
        (k for k, e in enumerate(space.engines) if e.role == "prefill" and e.pool == 0),
        key=lambda k: space.engines[k].rating,
    )
    decode = next(
        k
        for k, e in enumerate(space.engines)
        if e.role == "decode" and e.pool == 0 and e.in_flight == 8 and e.gpus == 1
    )
    counts = [0] * len(space.engines)
    counts[prefill], counts[decode] = 1, 1
    picked = [(space.engines[k], counts[k]) for k in (prefill, decode)]
    rr = round_robin_milli_rps(picked, fm.workload.isl)
    at_rr = _float_clients(rs, counts, rr / fm.units_per_rps)
    assert 8 < at_rr < 10
    loose = _instance(space, math.ceil(at_rr * 1.05), None)
    assert loose.capacity_milli_rps(counts, 0) == rr
    tight = _instance(space, math.floor(at_rr), None)
    loop = tight.capacity_milli_rps(counts, 0)
    assert loop < rr
    assert _float_clients(
        dataclasses.replace(rs, space=tight), counts, loop / fm.units_per_rps
    ) <= math.floor(at_rr)


def test_the_queue_reason_quotes_numbers_past_the_limit() -> None:
    """The disaggregated client_queue reason re-solves without the TTFT rule but with the cap and its
    closed loop, and quotes the shortest slot time (the rule binds on it): with two decode engines
    and the cap dropped it printed 2000 / 235.55 - 6.65 = 1.8 s, under the 2 s limit it explained.
    (2,000 clients now have a deployment, 8P:2D at TTFT 1,871 ms, since prefill slots stopped counting
    against the cap; 8,000 do not.)"""
    import re

    from autoparallel.errors import InfeasibleError
    from autoparallel.fleet import fleet_of_one
    from autoparallel.solvers.deployment.disagg_plan import solve_roles

    w = Serving.preset("chatbot").model_copy(update={"concurrency": 8000})
    rs = build_role_space(fleet_of_one("Qwen/Qwen3-8B", w), Cluster.parse("1x8xH100+1x8xA100-80G"))
    try:
        solve_roles(rs, "throughput", SolverSettings.create(time_limit_s=60, workers=1))
    except InfeasibleError as exc:
        found = re.search(r"gives 8000 / [\d.]+ - [\d.]+ = ([\d.]+) s", str(exc))
        assert found is not None and float(found.group(1)) > 2.0, str(exc)
    else:
        raise AssertionError("8000 clients at TTFT 2 s have a disaggregated deployment")
