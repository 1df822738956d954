"""Disaggregated deployments: CP-SAT optimum == brute force over (shape, count) per role (Hypothesis).

Instances: ≤ 16 GPUs, one model, ≤ 3 prefill shapes and ≤ 3 decode shapes drawn from the role
engines the float model gives Llama-3.1-8B on H100 and A100 pools (built once); node counts, prices
and rates drawn. Objectives: throughput, goodput at a rate, cost at a rate. The oracle walks every
drawn engine; CP-SAT gets the undominated ones.
"""

from __future__ import annotations

import dataclasses
import functools
import math

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers import units
from autoparallel.solvers.deployment import DeploymentSpace, FleetModel
from autoparallel.solvers.deployment.driver import expr_value, optimize
from autoparallel.solvers.deployment.encoder import build
from autoparallel.solvers.deployment.oracle import brute_force
from autoparallel.solvers.deployment.roles import build_role_space
from autoparallel.solvers.deployment.space import undominated
from autoparallel.solvers.driver import Run
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving
from tests.property_examples import examples

EXAMPLES = 120
OPTIONS = ServingOptions(max_num_seqs=(8, 32, 128), enforce_eager=(False,))


@functools.cache
def base_space() -> DeploymentSpace:
    fm = FleetModel(
        load_model("meta-llama/Llama-3.1-8B-Instruct"), Serving(isl=2048, osl=256, ttft_ms=1000, tpot_ms=20)
    )
    space = build_role_space([fm], Cluster.parse("2x8xH100+2x4xA100-80G"), OPTIONS, prune=False).space
    assert {e.role for e in space.engines} == {"prefill", "decode"}
    return space


@st.composite
def instances(draw: st.DrawFn) -> DeploymentSpace:
    base = base_space()
    pools = draw(st.sampled_from([(0,), (1,), (0, 1)]))
    nodes = {p: draw(st.integers(1, base.cluster.pools[p].nodes)) for p in pools}
    if sum(nodes[p] * base.cluster.pools[p].gpus_per_node for p in pools) > 16:
        nodes[pools[0]] = 1
    new_pool = {p: i for i, p in enumerate(pools)}
    prices = {p: draw(st.sampled_from([0.8, 1.2, 2.49])) for p in pools}
    engines = []
    for role in ("prefill", "decode"):
        fitting = [
            e
            for e in base.engines
            if e.role == role
            and e.pool in pools
            and (e.nodes <= nodes[e.pool] if e.nodes else e.gpus <= base.cluster.pools[e.pool].gpus_per_node)
        ]
        chosen = (
            draw(st.lists(st.sampled_from(fitting), min_size=1, max_size=3, unique=True)) if fitting else []
        )
        engines += [
            dataclasses.replace(
                e, pool=new_pool[e.pool], micro_usd_per_hour=units.micro_usd(prices[e.pool]) * e.gpus
            )
            for e in chosen
        ]
    fm = base.models[0]
    best = max((e.capacity_milli_rps for e in engines if e.role == "decode"), default=1000)
    quarters = draw(st.one_of(st.none(), st.integers(1, 12)))
    rate = None if quarters is None else quarters * best / 4000
    fleet = (dataclasses.replace(fm, workload=fm.workload.model_copy(update={"request_rate": rate})),)
    cluster = Cluster(
        pools=tuple(base.cluster.pools[p].model_copy(update={"nodes": nodes[p]}) for p in pools)
    )
    return DeploymentSpace(fleet, cluster, tuple(engines), {}, disaggregated=True)


def pruned(space: DeploymentSpace) -> DeploymentSpace:
    keep = []
    for p in range(len(space.cluster.pools)):
        for role in ("prefill", "decode"):
            keep += undominated([e for e in space.engines if (e.pool, e.role) == (p, role)])
    return dataclasses.replace(space, engines=tuple(keep))


def _cpsat(space: DeploymentSpace, objective: str) -> int | None:
    small = pruned(space)
    counts = optimize(small, (objective,), Run(SolverSettings(time_limit_s=5)))
    if counts is None:
        return None
    return expr_value(build(small, hard_demand=objective != "goodput"), objective, counts)


@settings(
    max_examples=examples(EXAMPLES),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(instances())
def test_cpsat_optimum_equals_brute_force_per_role(space: DeploymentSpace) -> None:
    assert space.cluster.world_size <= 16
    objectives = ("throughput",) if space.models[0].workload.request_rate is None else ("goodput", "cost")
    for objective in objectives:
        oracle = brute_force(space, objective)
        mine = _cpsat(space, objective)
        event(f"{objective}: {'infeasible' if oracle is None else 'feasible'}")
        assert (mine is None) == (oracle is None), (objective, mine, oracle)
        if oracle is not None:
            assert mine == oracle[0], (objective, mine, oracle)
            if objective == "throughput":
                picked = list(zip(space.engines, oracle[1], strict=True))
                ps = sum(n for e, n in picked if e.role == "prefill")
                event(f"P:D = {ps}:{sum(n for e, n in picked if e.role == 'decode')}")


def test_the_solver_chooses_the_ratio() -> None:
    """One decode engine outruns one prefill engine: the optimum takes several P per D, and it is
    prefill- and decode-balanced within one engine of each."""
    base = base_space()
    space = dataclasses.replace(
        base,
        cluster=Cluster(pools=(base.cluster.pools[0],)),
        engines=tuple(e for e in base.engines if e.pool == 0),
    )
    counts = optimize(pruned(space), ("throughput", "cost"), Run(SolverSettings()))
    assert counts is not None
    small = pruned(space)
    p = sum(
        e.prefill_milli_tps * n for e, n in zip(small.engines, counts, strict=True) if e.role == "prefill"
    )
    d = sum(
        e.capacity_milli_rps * n for e, n in zip(small.engines, counts, strict=True) if e.role == "decode"
    )
    assert p > 0 and d > 0
    assert small.capacity_milli_rps(counts, 0) == min(p // 2048, d)


def test_role_coefficients_are_the_float_model_rounded_down() -> None:
    """Decode capacity = ⌊1000 · dp · min(b / (osl · T_d(b)), link rate)⌋; prefill = ⌊1000 · dp · isl ·
    min(ρ* / S_p, link rate)⌋ (link rate: what a rank's link carries of its KV bytes per request); the
    decode step meets TPOT and the prefill budget leaves room for the prefill itself."""
    from autoparallel.hardware import Cluster as C
    from autoparallel.perf import disagg

    fm = base_space().models[0]
    rs = build_role_space([fm], C.parse("2x8xH100"), OPTIONS)
    w = fm.workload
    for e, t in zip(rs.space.engines, rs.times, strict=True):
        if e.role == "decode":
            rps = disagg.decode_capacity_rps(e.config.max_num_seqs, w.osl, t.decode_s)
            exact = 1000 * e.dp * min(rps, t.link_rps)
            assert e.capacity_milli_rps == int(exact) and t.decode_s <= 0.020 and t.link_rps < math.inf
        else:
            assert t.prefill_s < t.budget_s < w.ttft_ms / 1e3  # type: ignore[operator]
            tps = disagg.prefill_capacity_tokens_per_s(t.prefill_s, t.budget_s, w.isl, t.service_cv2)
            exact = 1000 * e.dp * min(tps, w.isl * t.link_rps)
            assert e.prefill_milli_tps == int(exact) and t.link_rps < math.inf


def test_a_large_role_space_is_solved_to_the_optimum_on_two_workers() -> None:
    """Llama-3.2-1B on 512x8xH100: one prefill and one decode engine shape, replicas up to 4,096 each.
    The optimum fills the cluster at the balanced P:D ratio, proven at once. With the families passed
    as assumptions, two interleaved workers stalled at 57P:55D (112 GPUs) for the whole 5 s limit."""
    from autoparallel.fleet import fleet_of_one
    from autoparallel.solvers.deployment.disagg_plan import solve_roles

    fleet = fleet_of_one("meta-llama/Llama-3.2-1B", Serving.preset("chatbot"))
    rs = build_role_space(fleet, Cluster.parse("512x8xH100"))
    d = solve_roles(rs, "throughput", SolverSettings.create(time_limit_s=5, workers=2))
    assert d.solver.status == "OPTIMAL"  # proven within the limit (the stall was FEASIBLE at it)
    assert d.gpus_used == 4096
    prefill_rps = sum(e.replicas * e.capacity_rps for e in d.prefill)
    decode_rps = sum(e.replicas * e.capacity_rps for e in d.decode)
    assert abs(prefill_rps - decode_rps) < max(e.capacity_rps for e in (*d.prefill, *d.decode))


def test_a_role_of_unequal_engines_carries_its_replicas_times_the_least() -> None:
    """vLLM's P/D proxy deals requests round robin, so one replica of a role gets 1/n of them whatever
    its capacity: a role of 1 weak + 2 strong replicas carries 3 × the weak one's, not the sum."""
    base = base_space()
    prefill = sorted((e for e in base.engines if e.role == "prefill"), key=lambda e: e.rating)
    decode = max((e for e in base.engines if e.role == "decode"), key=lambda e: e.rating)
    weak, strong = prefill[0], prefill[-1]
    assert weak.rating < strong.rating
    space = dataclasses.replace(base, engines=(weak, strong, decode))
    isl = space.models[0].workload.isl
    counts = (1, 2, 50)  # decode far from binding
    assert space.capacity_milli_rps(counts, 0) == 3 * weak.rating // isl
    assert space.capacity_milli_rps((0, 2, 50), 0) == 2 * strong.rating // isl


def test_role_engines_are_what_vllms_nixl_connector_runs() -> None:
    """vLLM 0.32's NIXL pull connector raises for a decode engine with pipeline stages and for pipeline
    stages over a hybrid KV layout (nixl/base_worker.py): a 70B plan on 16 H100s proposed
    `D 1x tp2pp2`, whose decode engine cannot start."""
    from autoparallel.perf.engine_support import nixl_role_problem

    llama, gemma = load_model("meta-llama/Llama-3.1-70B"), load_model("google/gemma-3-27b-it")
    assert nixl_role_problem(llama, 1, "decode") is None
    assert "decode" in str(nixl_role_problem(llama, 2, "decode"))
    assert nixl_role_problem(llama, 2, "prefill") is None
    assert "sliding" in str(nixl_role_problem(gemma, 2, "prefill"))
    fm = FleetModel(llama, Serving(isl=1024, osl=256, ttft_ms=2000, tpot_ms=50))
    space = build_role_space([fm], Cluster.parse("2x8xH100"), ServingOptions(), prune=False).space
    decode = [e for e in space.engines if e.role == "decode"]
    assert decode and all(e.pp == 1 for e in decode)
    assert any(e.pp > 1 for e in space.engines if e.role == "prefill")
