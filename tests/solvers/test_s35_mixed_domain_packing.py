"""The disaggregated and mixed planners pack power-of-two engines into wide NVLink domains too.

The deployment planner learnt to pack every power-of-two size up to the node on GB200 NVL36 / NVL72
domains (`space.granularity`, `encoder.post_node_packing`), but the role space
(roles._engine) and the mixed space (mixed._aggregated) still took only sizes dividing the node, and
the mixed encoder counted GPUs alone. DeepSeek-V3 on 1x36xGB200 at 20 req/s (cost): the --disagg
comparison's disaggregated side took 32 GPUs (7 x tp4ep4 decode engines) where 8-GPU engines do it on
12-16; with 8- and 16-GPU engines on 36-GPU domains, the GPU count alone takes vectors no packing
places (7 x 8 + 16 = 72 GPUs in two domains of 36), so the mixed encoder now posts the per-size
rules, checked against mixed_oracle's packing simulation (oracle.fits).
"""

from __future__ import annotations

import pytest

from autoparallel.configs import ServingConfig
from autoparallel.errors import InfeasibleError
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.deployment import FleetModel, solve_deployment
from autoparallel.solvers.deployment.disagg_plan import solve_roles
from autoparallel.solvers.deployment.mixed import MixedSpace, build_mixed_space
from autoparallel.solvers.deployment.mixed_encoder import build_mixed
from autoparallel.solvers.deployment.mixed_oracle import brute_force_front
from autoparallel.solvers.deployment.roles import RoleSpace, RoleTimes, build_role_space
from autoparallel.solvers.deployment.space import DeploymentSpace, Engine
from autoparallel.solvers.pareto import Front, _front, _model_queries
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving

OPTIONS = ServingOptions(max_num_seqs=(48, 256), enforce_eager=(False,))


def _deepseek() -> FleetModel:
    return FleetModel(
        load_model("deepseek-ai/DeepSeek-V3"),
        Serving(isl=2048, osl=512, ttft_ms=3000, tpot_ms=60, request_rate=20),
    )


def test_disaggregated_deepseek_v3_on_an_nvl36_domain_uses_8_gpu_engines_on_whole_hosts() -> None:
    rs = build_role_space([_deepseek()], Cluster.parse("1x36xGB200"), OPTIONS)
    sizes = {(e.role, e.gpus) for e in rs.space.engines}
    assert {("prefill", 8), ("decode", 8), ("decode", 16)} <= sizes
    d = solve_roles(rs, "cost")
    assert d.gpus_used <= 16  # 32 (1 x 4 + 7 x 4 GPUs) with sizes dividing 36 only
    for e in (*d.prefill, *d.decode):
        for replica in e.placement:  # decoder.place, told in hosts of 4 GPUs
            assert len(replica.nodes) * len(replica.gpu_ids) == e.gpus_per_replica
            if e.gpus_per_replica >= 4:
                assert replica.gpu_ids == (0, 1, 2, 3)


def test_the_mixed_space_on_an_nvl36_domain_offers_every_power_of_two_size() -> None:
    ms = build_mixed_space(_deepseek(), Cluster.parse("1x36xGB200"), OPTIONS)
    agg = {e.gpus for e in ms.aggregated.engines}
    roles = {(e.role, e.gpus) for e in ms.roles.space.engines}
    assert {8, 16} <= agg
    assert {("prefill", 8), ("decode", 8), ("decode", 16)} <= roles


def _engine(gpus: int, role: str, rating: int) -> Engine:
    decode = role != "prefill"
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
        nodes=0,
        capacity_milli_rps=rating if decode else 0,
        milli_tokens_per_s=rating * 256 if decode else 0,
        micro_usd_per_hour=6_000_000 * gpus,
        config=ServingConfig(tp=gpus),
        role=role,
        prefill_milli_tps=0 if decode else rating,
    )


def _mixed(
    cluster: str, agg: list[tuple[int, int, int]], roles: list[tuple[str, int, int, int]]
) -> MixedSpace:
    """A mixed space of stand-in engines: aggregated (GPUs, capacity, TPOT µs), role (role, GPUs,
    rating, TPOT µs; prefill ratings in prompt milli-tokens/s)."""
    fm = FleetModel(load_model("Qwen/Qwen3-8B"), Serving(isl=1024, osl=256))
    c = Cluster.parse(cluster)
    a = DeploymentSpace((fm,), c, tuple(_engine(g, "aggregated", cap) for g, cap, _ in agg), {})
    r = DeploymentSpace(
        (fm,), c, tuple(_engine(g, role, x) for role, g, x, _ in roles), {}, disaggregated=True
    )
    times = [RoleTimes(0.1, t / 1e6) for *_, t in roles]
    mode = "auto" if agg and roles else ("off" if agg else "on")
    return MixedSpace(a, RoleSpace(r, times, [0.05]), [t for *_, t in agg], [t for *_, t in roles], mode)


def _cpsat_front(space: MixedSpace, names: tuple[str, ...]) -> set[tuple[int, ...]]:
    front: Front[tuple[int, ...]] = Front(objectives=names)
    queries = _model_queries(front, lambda: build_mixed(space), SolverSettings(lexicographic_tolerance=0.0))
    assert _front(front, queries, lambda p, run: p) and front.complete
    return set(front.vectors)


@pytest.mark.parametrize(
    ("agg", "roles", "best"),
    [
        # 4 x 16 + 1 x 8 = 72 GPUs, the GPU count of two 36-GPU domains, but 2 x 16 leave 4 GPUs in each
        ([(16, 1000, 20_000), (8, 480, 18_000), (4, 200, 15_000)], [], 256 * 4400),
        # 1 x 16 prefill + 7 x 8 decode = 72 GPUs: each domain holds 4 x 8, or 16 + 2 x 8 (6 in all)
        ([], [("prefill", 16, 10**9, 0), ("decode", 8, 480, 18_000)], 256 * 6 * 480),
    ],
)
def test_the_mixed_encoder_packs_per_size_on_36_gpu_domains(
    agg: list[tuple[int, int, int]], roles: list[tuple[str, int, int, int]], best: int
) -> None:
    space = _mixed("2x36xGB200", agg, roles)
    for names in (("throughput", "gpus"), ("throughput", "tpot")):
        oracle = brute_force_front(space, names)
        assert max(v[0] for v in oracle) == best
        assert _cpsat_front(space, names) == oracle


def test_both_modes_on_nvl72_domains_equal_the_packing_oracle() -> None:
    """Aggregated 16 / 32 and roles 8 / 16 / 32 on two 72-GPU domains, the front over (throughput, cost):
    9 x 16 GPUs is their GPU count, but a domain holds 4 x 16 (64 GPUs)."""
    space = _mixed(
        "2x72xGB200",
        [(16, 900, 20_000), (32, 1900, 25_000)],
        [("prefill", 32, 600 * 1024 * 4, 0), ("decode", 16, 1100, 15_000), ("decode", 8, 500, 12_000)],
    )
    names = ("throughput", "cost")
    assert _cpsat_front(space, names) == brute_force_front(space, names)


def test_shapes_no_packing_places_are_named_with_the_rule_of_wide_domains() -> None:
    """explain.why_no_engine said "a power of two dividing a node", the rule before NVLink domains."""
    fm = FleetModel(load_model("Qwen/Qwen3-0.6B"), Serving(isl=512, osl=128))
    opts = ServingOptions(max_num_seqs=(8,), enforce_eager=(False,), tp_values=(1,), pp_values=(3,))
    with pytest.raises(InfeasibleError) as raised:
        solve_deployment([fm], Cluster.parse("1x6xH100"), options=opts)
    assert "a power of two up to the node / NVLink domain nor whole nodes" in str(raised.value)
    assert "dividing a node" not in str(raised.value)
