"""CP-SAT deployment optimum == brute force over replica counts, on small fleets (Hypothesis).

Instances: ≤ 2 pools, ≤ 3 engine shapes per model, ≤ 16 GPUs, ≤ 2 models; goodput and cost at a
rate. The oracle walks every drawn engine; CP-SAT gets them without the dominated ones, as
`build_deployment_space` does, so the dominance pruning is checked as well. The per-engine tables
are built once from the float model (two real models on two real pools, small knob domains);
each instance draws pools' node counts, the engines, prices, rates and priorities from them. An
engine's physics does not depend on how many nodes its pool has, so a drawn instance is a real
deployment problem, not a toy.
"""

from __future__ import annotations

import dataclasses
import functools
import json

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers import units
from autoparallel.solvers.deployment import DeploymentSpace, FleetModel, build_deployment_space, solve_space
from autoparallel.solvers.deployment.client_rules import drain_completions
from autoparallel.solvers.deployment.driver import expr_value, optimize
from autoparallel.solvers.deployment.encoder import build
from autoparallel.solvers.deployment.oracle import brute_force
from autoparallel.solvers.deployment.space import _candidates, undominated
from autoparallel.solvers.driver import Run
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving
from tests.property_examples import examples

EXAMPLES = 220
CAPPED_EXAMPLES = 80
BASE_CLUSTER = "2x8xH100+2x4xA100-80G"
OPTIONS = ServingOptions(max_num_seqs=(8, 32, 128), enforce_eager=(False,))


@functools.cache
def base_space() -> DeploymentSpace:
    """Llama-3.1-8B (dense) and Qwen3-30B-A3B (MoE) on an H100 pool and an A100 pool."""
    models = [
        FleetModel(load_model("meta-llama/Llama-3.1-8B-Instruct"), Serving(isl=1024, osl=256, tpot_ms=40)),
        FleetModel(load_model("Qwen/Qwen3-30B-A3B"), Serving(isl=2048, osl=512, ttft_ms=2000, tpot_ms=50)),
    ]
    return build_deployment_space(models, Cluster.parse(BASE_CLUSTER), OPTIONS, prune=False)


@functools.cache
def capped_space() -> DeploymentSpace:
    """The base tables' candidates under a cap of 256 requests in flight: every max_num_seqs of a shape
    that beats its smaller ones (`space.staircase`), not only its fastest."""
    base = base_space()
    fleet = tuple(
        dataclasses.replace(fm, workload=fm.workload.model_copy(update={"concurrency": 256}))
        for fm in base.models
    )
    engines = [e for (m, p), serving in base.serving.items() for e in _candidates(serving, fleet[m], m, p)[0]]
    return dataclasses.replace(base, models=fleet, engines=tuple(engines))


@st.composite
def instances(draw: st.DrawFn, capped: bool = False) -> DeploymentSpace:
    base = capped_space() if capped else base_space()
    pools = draw(st.sampled_from([(0,), (1,), (0, 1)]))
    nodes = {p: draw(st.integers(1, base.cluster.pools[p].nodes)) for p in pools}
    if sum(nodes[p] * base.cluster.pools[p].gpus_per_node for p in pools) > 16:
        nodes[pools[0]] = 1
    models = draw(st.sampled_from([(0,), (1,), (0, 1)]))
    new_pool = {p: i for i, p in enumerate(pools)}
    new_model = {m: i for i, m in enumerate(models)}
    prices = {p: draw(st.sampled_from([0.8, 1.2, 2.49, 3.0])) for p in pools}
    engines = []
    for m in models:
        fitting = [
            e
            for e in base.engines
            if e.model == m
            and e.pool in pools
            and (e.nodes <= nodes[e.pool] if e.nodes else e.gpus <= base.cluster.pools[e.pool].gpus_per_node)
        ]
        chosen = (
            draw(st.lists(st.sampled_from(fitting), min_size=1, max_size=3, unique=True)) if fitting else []
        )
        engines += [
            dataclasses.replace(
                e,
                model=new_model[m],
                pool=new_pool[e.pool],
                micro_usd_per_hour=units.micro_usd(prices[e.pool]) * e.gpus,
            )
            for e in chosen
        ]
    fleet = []
    for m in models:
        fm = base.models[m]
        best = max((e.capacity_milli_rps for e in engines if e.model == new_model[m]), default=1000)
        quarters = draw(st.one_of(st.none(), st.integers(1, 12)))
        rate = None if quarters is None else quarters * best / 4000
        priority = draw(st.sampled_from([1.0, 2.0, 0.5]))
        cap = draw(st.sampled_from([None, 8, 24, 64, 160, 256])) if capped else None
        update = {"request_rate": rate, "concurrency": cap}
        fleet.append(
            dataclasses.replace(fm, workload=fm.workload.model_copy(update=update), priority=priority)
        )
    cluster = Cluster(
        pools=tuple(base.cluster.pools[p].model_copy(update={"nodes": nodes[p]}) for p in pools)
    )
    return DeploymentSpace(tuple(fleet), cluster, tuple(engines), {})


def pruned(space: DeploymentSpace) -> DeploymentSpace:
    """The space without dominated engines (what `build_deployment_space` hands CP-SAT)."""
    keep = []
    for m in range(len(space.models)):
        for p in range(len(space.cluster.pools)):
            capped = space.models[m].concurrency is not None
            keep += undominated([e for e in space.engines if (e.model, e.pool) == (m, p)], capped)
    return dataclasses.replace(space, engines=tuple(keep))


def _cpsat(space: DeploymentSpace, objective: str) -> int | None:
    """CP-SAT's optimum over the PRUNED engines (the oracle walks them all: pruning is tested too)."""
    small = pruned(space)
    counts = optimize(small, (objective,), Run(SolverSettings(time_limit_s=5)))
    if counts is None:
        return None
    return expr_value(build(small, hard_demand=objective != "goodput"), objective, counts)


def _assert_cpsat_is_the_brute_force_optimum(
    space: DeploymentSpace, objective: str
) -> tuple[int, tuple[int, ...]] | None:
    """CP-SAT and the oracle agree on feasibility and on the optimum; the oracle's answer."""
    oracle = brute_force(space, objective)
    mine = _cpsat(space, objective)
    assert (mine is None) == (oracle is None), (objective, mine, oracle)
    if oracle is not None:
        assert mine == oracle[0], (objective, mine, oracle)
    return oracle


@settings(
    max_examples=examples(EXAMPLES),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(instances())
def test_cpsat_optimum_equals_brute_force(space: DeploymentSpace) -> None:
    assert space.cluster.world_size <= 16
    event(f"dominated engines dropped: {len(space.engines) > len(pruned(space).engines)}")
    for objective in ("goodput", "cost"):
        oracle = _assert_cpsat_is_the_brute_force_optimum(space, objective)
        event(f"{objective}: {'infeasible' if oracle is None else 'feasible'}")


@settings(
    max_examples=examples(CAPPED_EXAMPLES),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(instances(capped=True))
def test_cpsat_optimum_equals_brute_force_under_concurrency_caps(space: DeploymentSpace) -> None:
    """The same, each model under a cap on requests in flight (or none), over candidates at several
    max_num_seqs per shape; the cap binds on some instances."""
    binding = False
    for objective in ("goodput", "cost"):
        oracle = _assert_cpsat_is_the_brute_force_optimum(space, objective)
        if oracle is not None:
            free = brute_force(dataclasses.replace(space, models=_uncapped(space)), objective)
            binding |= free is None or free[0] != oracle[0]
    event(f"a cap changes the optimum: {binding}")


@settings(
    max_examples=examples(60),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(instances(capped=True), st.sampled_from([40, 200, 600, 3000]))
def test_cpsat_optimum_equals_brute_force_for_a_burst(space: DeploymentSpace, prompts: int) -> None:
    """N prompts sent at once (no cap, no rate): the replicas hold at most N and the rest drain through
    the server's queue within the TTFT limit (`client_rules.drain_lines`); CP-SAT and the oracle agree."""
    burst = tuple(
        dataclasses.replace(
            fm,
            workload=fm.workload.model_copy(
                update={"concurrency": None, "request_rate": None, "num_prompts": prompts}
            ),
        )
        for fm in space.models
    )
    space = dataclasses.replace(space, models=burst)
    assert all(fm.burst_prompts == prompts for fm in burst)
    for objective in ("goodput", "cost"):
        oracle = _assert_cpsat_is_the_brute_force_optimum(space, objective)
        event(f"{objective}: {'infeasible' if oracle is None else 'feasible'}")


def test_a_burst_drain_is_charged_at_chords_at_most_an_eighth_above_it() -> None:
    """G(Q) ≥ Q ((1 − κ) Q + 1 + κ N) / 2N everywhere, equal at 0, 1, 2, 4, ... N, at most 1/8 above."""
    for n in (1, 7, 64, 1000, 5000):
        for pct in (0, 37, 100):
            kappa = pct / 100
            for queued in range(n + 1):
                exact = queued * ((1 - kappa) * queued + 1 + kappa * n) / (2 * n)
                charged = drain_completions(n, queued, pct)
                assert exact - 1e-9 <= charged <= exact * 1.125 + 1e-9, (n, pct, queued, charged, exact)
            assert drain_completions(n, n, pct) == pytest.approx((n + 1) / 2)


def test_a_burst_beyond_what_the_cluster_holds_is_charged_its_drain(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """5,000 prompts at once on 8 H100s: the whole-cluster deployment said TTFT 155 ms (exit 0) where
    the single-engine plan's drain refused it; on 16 (TTFT limit 10 s) the two agree on the wait."""
    from autoparallel.cli import main

    argv = ["plan", "Qwen/Qwen3-8B", "--num-prompts", "5000", "--disagg", "off", "--json"]
    assert main([*argv, "--cluster", "1x8xH100"]) == 1
    capsys.readouterr()
    assert main([*argv, "--cluster", "2x8xH100", "--ttft-ms", "10000"]) == 0
    d = json.loads(capsys.readouterr().out)
    (engine,) = d["deployment"]["engines"]
    assert engine["queue_ms"] > 1000
    assert engine["ttft_ms"] == pytest.approx(d["perf"]["ttft_ms"], rel=0.02)


def _uncapped(space: DeploymentSpace) -> tuple[FleetModel, ...]:
    return tuple(
        dataclasses.replace(fm, workload=fm.workload.model_copy(update={"concurrency": None}))
        for fm in space.models
    )


def test_a_cap_on_requests_in_flight_binds_and_holds() -> None:
    """Llama-3.1-8B on 1x8xH100 + 1x4xA100-80G at most 40 requests in flight: the throughput optimum
    holds ≤ 40 (max_num_seqs × replicas) and serves less than the uncapped one."""
    base = capped_space()
    cluster = Cluster(pools=tuple(p.model_copy(update={"nodes": 1}) for p in base.cluster.pools))
    engines = tuple(
        e
        for e in base.engines
        if e.model == 0 and e.nodes <= 1 and e.gpus <= cluster.pools[e.pool].world_size
    )
    fm = base.models[0]

    def solved(cap: int | None) -> tuple[int, float]:
        model = dataclasses.replace(fm, workload=fm.workload.model_copy(update={"concurrency": cap}))
        plan = solve_space(pruned(DeploymentSpace((model,), cluster, engines, base.serving)), "throughput")
        assert plan.solver.status == "OPTIMAL"
        return sum(e.max_num_seqs * e.dp * e.replicas for e in plan.engines), plan.models[0].capacity_rps

    held, rps = solved(40)
    free_held, free_rps = solved(None)
    assert held <= 40 < free_held
    assert rps < free_rps


def test_decoded_plan_agrees_with_the_float_model() -> None:
    base = base_space()
    fleet = [
        dataclasses.replace(fm, workload=fm.workload.model_copy(update={"request_rate": 3.0}))
        for fm in base.models
    ]
    space = dataclasses.replace(base, models=tuple(fleet))
    plan = solve_space(space, "cost")
    assert plan.solver.status == "OPTIMAL"
    for service in plan.models:
        assert service.capacity_rps >= 3.0
        assert service.unmet_rps == 0
    assert plan.gpus_used + plan.gpus_idle == 24
    for engine in plan.engines:
        assert (
            abs(sum(e.traffic_share * e.replicas for e in plan.engines if e.model == engine.model) - 1) < 1e-9
        )
        assert len(engine.placement) == engine.replicas


def _small(rates: tuple[float | None, float | None]) -> DeploymentSpace:
    """Both models on 1x8xH100 + 1x4xA100-80G, the base engines that fit, the given rates."""
    base = base_space()
    cluster = Cluster(
        pools=(
            base.cluster.pools[0].model_copy(update={"nodes": 1}),
            base.cluster.pools[1].model_copy(update={"nodes": 1}),
        )
    )
    engines = tuple(e for e in base.engines if e.nodes <= 1 and e.gpus <= cluster.pools[e.pool].world_size)
    fleet = tuple(
        dataclasses.replace(fm, workload=fm.workload.model_copy(update={"request_rate": r}))
        for fm, r in zip(base.models, rates, strict=True)
    )
    return pruned(DeploymentSpace(fleet, cluster, engines, base.serving))


def test_cost_per_mtok_is_the_brute_force_minimum_ratio() -> None:
    from fractions import Fraction

    from autoparallel.solvers.deployment.oracle import feasible, value, vectors

    space = _small((None, None))
    counts = optimize(space, ("cost_per_mtok",), Run(SolverSettings()))
    assert counts is not None
    enc = build(space, hard_demand=True)
    mine = Fraction(expr_value(enc, "cost", counts), expr_value(enc, "goodput", counts))
    best = min(
        Fraction(value(space, c, "cost"), value(space, c, "goodput"))
        for c in vectors(space)
        if feasible(space, c, True)
    )
    assert mine == best


def test_lexicographic_and_weighted_objectives() -> None:
    space = _small((4.0, 2.0))
    lex = solve_space(space, ("gpus", "cost"))
    cost_first = solve_space(space, "cost")
    assert lex.gpus_used <= cost_first.gpus_used
    assert lex.usd_per_hour >= cost_first.usd_per_hour - 1e-9
    weighted = solve_space(space, {"goodput": 1.0, "cost": 0.001})
    assert weighted.solver.status == "OPTIMAL"
    assert all(m.unmet_rps == 0 for m in weighted.models)


def test_unmet_demand_under_goodput_and_explained_under_cost() -> None:

    from autoparallel.errors import InfeasibleError

    space = _small((10_000.0, 1.0))
    plan = solve_space(space, "goodput")
    assert plan.models[0].unmet_rps > 0 and plan.gpus_idle == 0
    with pytest.raises(InfeasibleError) as info:
        solve_space(space, "cost")
    text = str(info.value)
    assert "10000 req/s" in text and "needs >= " in text and "holds" in text


def test_throughput_fills_every_pool_and_placement_never_straddles() -> None:
    plan = solve_space(_small((None, None)), "throughput")
    assert plan.gpus_idle == 0 and not plan.idle_reasons
    for engine in plan.engines:
        for replica in engine.placement:
            if engine.gpus_per_replica < 8:
                assert len(replica.nodes) == 1 and len(replica.gpu_ids) == engine.gpus_per_replica
    used: dict[tuple[int, int], set[int]] = {}
    for engine in plan.engines:
        for replica in engine.placement:
            for node in replica.nodes:
                slot = used.setdefault((engine.pool, node), set())
                assert not slot & set(replica.gpu_ids)
                slot |= set(replica.gpu_ids)
