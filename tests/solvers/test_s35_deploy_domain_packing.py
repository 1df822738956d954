"""Sub-domain engines on NVLink domains wider than a host (GB200 NVL36 / NVL72) pack as bins.

The deployment planner took a sub-node engine only when its size was a power of two dividing the
node, which dropped 8-GPU engines on 36-GPU domains and 16 / 32 / 64-GPU EP engines on NVL72:
DeepSeek-V3 on 1x36xGB200 at 20 req/s (cost) was 8 x tp4ep4 at $192/h where the single-engine
plan's 8-GPU tp4 x dp2 EP engine carries it at $48/h. Every power-of-two size up to the domain now
packs (whole hosts from 4 GPUs up), by one linear rule per size (encoder.add_node_packing_gpus),
first-fit decreasing in decoder.place and a packing simulation in the oracle.
"""

from __future__ import annotations

import random

import pytest

from autoparallel.configs import ServingConfig
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.deployment import FleetModel, solve_deployment
from autoparallel.solvers.deployment.decoder import place
from autoparallel.solvers.deployment.driver import expr_value, optimize
from autoparallel.solvers.deployment.encoder import build, packing_sizes
from autoparallel.solvers.deployment.oracle import brute_force, fits
from autoparallel.solvers.deployment.space import DeploymentSpace, Engine, copies_fitting, sub_domain_size
from autoparallel.solvers.driver import Run
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving


def test_deepseek_v3_on_an_nvl36_domain_deploys_the_8_gpu_ep_engine() -> None:
    fm = FleetModel(
        load_model("deepseek-ai/DeepSeek-V3"),
        Serving(isl=2048, osl=512, ttft_ms=3000, tpot_ms=60, request_rate=20),
    )
    d = solve_deployment(
        [fm], Cluster.parse("1x36xGB200"), objective="cost", options=ServingOptions(max_num_seqs=(48, 256))
    )
    assert d.usd_per_hour == pytest.approx(48.0)
    (engine,) = d.engines
    assert (engine.gpus_per_replica, engine.replicas, engine.tp, engine.dp) == (8, 1, 4, 2)
    (replica,) = engine.placement
    assert replica.nodes == (0, 1) and replica.gpu_ids == (0, 1, 2, 3)  # two whole hosts of 4 GPUs


def test_every_power_of_two_up_to_the_domain_packs_on_whole_hosts_or_inside_one() -> None:
    assert [g for g in range(1, 36) if sub_domain_size(g, 36, 4)] == [1, 2, 4, 8, 16, 32]
    assert [g for g in range(1, 72) if sub_domain_size(g, 72, 4)] == [1, 2, 4, 8, 16, 32, 64]
    assert [g for g in range(1, 8) if sub_domain_size(g, 8, 8)] == [1, 2, 4]
    # nodes every size divides keep the GPU count alone (one rule: plans there do not change)
    assert packing_sizes(8, {1, 2, 4}) == [(1, 8)]
    assert packing_sizes(36, {4, 8, 16, 32}) == [(4, 36), (8, 32)]
    assert packing_sizes(72, {8, 16, 32, 64}) == [(8, 72), (16, 64)]


def _engine(gpus: int, capacity: int, nodes: int = 0) -> Engine:
    return Engine(
        model=0,
        pool=0,
        shape=gpus,
        entry=gpus,
        util=0,
        tp=gpus,
        pp=1,
        ep=1,
        dp=1,
        gpus=gpus,
        nodes=nodes,
        capacity_milli_rps=capacity,
        milli_tokens_per_s=capacity * 256,
        micro_usd_per_hour=6_000_000 * gpus,
        config=ServingConfig(tp=min(gpus, 64)),
    )


def _space(cluster: str, engines: list[Engine], rate: float | None = None) -> DeploymentSpace:
    fm = FleetModel(load_model("Qwen/Qwen3-8B"), Serving(isl=1024, osl=256, request_rate=rate))
    return DeploymentSpace((fm,), Cluster.parse(cluster), tuple(engines), {})


def _solve(space: DeploymentSpace, objective: str) -> list[int] | None:
    return optimize(space, (objective,), Run(SolverSettings(time_limit_s=5)))


def test_sixteen_gpu_engines_leave_no_slot_for_an_eight_gpu_one_on_36_gpu_domains() -> None:
    """4 x 16 + 1 x 8 GPUs is 72 GPUs, the GPU count of 2 domains of 36, but 2 x 16 per domain leave 4
    GPUs each: the GPU count alone took it (decoder.place then raised); 4 x 16 + 2 x 4 is the optimum."""
    space = _space("2x36xGB200", [_engine(16, 1000), _engine(8, 480), _engine(4, 200), _engine(32, 1990)])
    counts = _solve(space, "throughput")
    assert counts is not None
    value = expr_value(build(space, hard_demand=False), "throughput", counts)
    oracle = brute_force(space, "throughput")
    assert oracle is not None and value == oracle[0]
    assert counts == [4, 0, 2, 0]
    spots = place(space, counts)
    for k, replicas in spots.items():
        for hosts, ids in replicas:  # host indices on GB200; whole hosts from 4 GPUs up
            assert len(hosts) * len(ids) == space.engines[k].gpus and len(ids) == 4


@pytest.mark.parametrize("cluster", ["2x36xGB200", "1x72xGB200", "2x8xH100"])
def test_cpsat_equals_the_packing_oracle_and_its_plans_place(cluster: str) -> None:
    """Random capacities over three power-of-two sizes: CP-SAT's optimum is the brute force's over
    vectors the oracle packs one by one, and decoder.place places it (host-aligned)."""
    node = Cluster.parse(cluster).gpus_per_node
    sizes = [s for s in (1, 2, 4, 8, 16, 32, 64) if s < node][-4:]
    rng = random.Random(f"s35-{cluster}")
    for _ in range(4):
        chosen = sorted(rng.sample(sizes, 3))
        engines = [_engine(g, g * rng.randint(90, 110)) for g in chosen]
        for objective, rate in (("throughput", None), ("cost", rng.randint(5, 30) * 0.1)):
            space = _space(cluster, engines, rate)
            counts = _solve(space, objective)
            oracle = brute_force(space, objective)
            assert (counts is None) == (oracle is None)
            if counts is None or oracle is None:
                continue
            assert expr_value(build(space, hard_demand=rate is not None), objective, counts) == oracle[0]
            assert fits(space, tuple(counts))
            place(space, counts)


def test_copies_of_a_narrow_engine_in_whole_domains_count_slots_per_domain() -> None:
    """Two whole 36-GPU domains hold 2 x 4 engines of 8 GPUs, not 72 // 8 = 9."""
    assert copies_fitting(_engine(72, 1, nodes=2), _engine(8, 1)) == 8
    assert copies_fitting(_engine(16, 1), _engine(8, 1)) == 2
    space = _space("2x36xGB200", [_engine(8, 1)])
    assert space.max_replicas(space.engines[0]) == 8
