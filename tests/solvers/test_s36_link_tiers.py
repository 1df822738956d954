"""Disaggregated planning per KV-link floor (roles.py `link_floors`): decode engines only on pools whose
link is at least L, every prefill budget at that floor, the best floor kept.

Before, every prefill engine's TTFT budget paid the KV transfer at the slowest link of any pool that
might hold a decode engine, even where the best deployment keeps decode on the fast pool: Llama-3.1-70B
on 2x8xH100 (IB 400 Gbit/s) + 1x8xA10 (IB 10 Gbit/s) was infeasible (a 199 ms budget for a 448 ms
prefill) though the H100 pool alone plans P 1x tp8 | D 1x tp4 at TTFT 723 ms.
"""

from __future__ import annotations

import functools
import json

import pytest

from autoparallel.cli import main
from autoparallel.errors import InfeasibleError, SolverTimeoutError
from autoparallel.fleet import fleet_of_one
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.perf import disagg
from autoparallel.solvers.deployment import disagg_plan
from autoparallel.solvers.deployment.disagg_plan import solve_roles
from autoparallel.solvers.deployment.driver import objective_chain, optimize
from autoparallel.solvers.deployment.front import pareto_mixed
from autoparallel.solvers.deployment.mixed import build_mixed_space
from autoparallel.solvers.deployment.mixed_oracle import brute_force_front
from autoparallel.solvers.deployment.oracle import brute_force, brute_force_floors
from autoparallel.solvers.deployment.roles import RoleSpace, build_role_space
from autoparallel.solvers.deployment.space import FleetModel
from autoparallel.solvers.driver import Run
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving

REPRO = [
    "plan",
    "meta-llama/Llama-3.1-70B",
    "--cluster",
    "2x8xH100,ib=400+1x8xA10,ib=10",
    "--disagg",
    "on",
    "--request-rate",
    "1",
    "--isl",
    "8192",
    "--osl",
    "256",
    "--ttft-ms",
    "1500",
    "--tpot-ms",
    "60",
]
SMALL = ServingOptions(max_num_seqs=(16, 64), enforce_eager=(False,), tp_values=(1, 2))
"""A few table entries per pool of Qwen3-0.6B, so that the oracles walk every vector in milliseconds."""
TWO_BY_TWO = "1x2xH100,ib=3200+1x2xH100,ib=100"
"""Two 2-GPU pools 32x apart in network (400 vs 12.5 GB/s)."""
FOUR_AND_TWO = "1x4xH100,ib=3200+1x2xH100,ib=25"


def _qwen(ttft_ms: float, rate: float | None = None, isl: int = 8192, osl: int = 256) -> Serving:
    tpot = 10.0 if osl > 256 else 30.0
    return Serving(isl=isl, osl=osl, ttft_ms=ttft_ms, tpot_ms=tpot, request_rate=rate)


@functools.cache
def _roles(cluster: str, w: Serving, prune: bool = True) -> RoleSpace:
    return build_role_space(fleet_of_one("Qwen/Qwen3-0.6B", w), Cluster.parse(cluster), SMALL, prune=prune)


def test_the_repro_plans_decode_on_the_fast_pool(capsys: pytest.CaptureFixture[str]) -> None:
    """Before: exit 1 (infeasible, the A10 pool's 1.25 GB/s link charged to every prefill engine)."""
    assert main([*REPRO, "--json"]) == 0
    dep = json.loads(capsys.readouterr().out)["deployment"]
    assert dep["mode"] == "disaggregated"
    assert {e["pool"] for e in dep["decode"]} == {0}
    assert dep["ttft_ms"] <= 1500
    assert dep["budget_decode_pools"] == [0] and dep["kv_link_floor_gbps"] == 50


def test_no_floor_feasible_names_each_floors_numbers() -> None:
    """A TTFT no floor meets: each floor's binding numbers, fastest first, with its decode pools (the
    fast floor's budget 16 ms, the slow floor's -24 ms, for a 21 ms prefill; each its fastest
    first-step tier's, 4.6 ms: TTFT 80 ms and 100 ms plan since the tiers)."""
    rs = _roles(TWO_BY_TWO, _qwen(70))
    floors = [t.floor.decode_pools for t in rs.tiers() if t.floor]
    assert list(dict.fromkeys(floors)) == [(0,), (0, 1)]  # each with its first-step tiers
    with pytest.raises(InfeasibleError) as err:
        solve_roles(rs)
    text = str(err.value)
    fast = text.index("with decode on pools at >= 400 GB/s (pool 0): no prefill engine")
    slow = text.index("with decode on pools at >= 12.5 GB/s (pools 0, 1): no prefill engine")
    assert fast < slow
    assert "prefill 21 ms (tp=2 pp=1) leaves no queueing room in the TTFT budget 16 ms" in text[:slow]
    assert "TTFT budget -24 ms" in text[slow:]
    assert (
        "the first decode step at its bound 4.6 ms (the fastest first-step tier's, within which its "
        "fastest decode engines step)" in text
    )


def test_a_slow_pool_needed_for_decode_is_still_charged_its_link() -> None:
    """A decode-heavy workload wants every GPU for decode: the plan puts decode engines on the slow pool
    too, its prefill budget assumes both pools, and the worst pair's transfer is at the slow link."""
    w = _qwen(300, isl=2048, osl=1024)
    rs = _roles(TWO_BY_TWO, w)
    d = solve_roles(rs, "throughput")
    assert 1 in {e.pool for e in d.decode}
    assert d.budget_decode_pools == (0, 1) and d.link_floor_gbps == 12.5
    c = rs.space.cluster
    p, dd = d.prefill[0], next(e for e in d.decode if e.pool == 1)
    slow = disagg.kv_transfer_s(
        rs.space.models[0].model,
        c.pool_cluster(p.pool),
        dd.config.kv_cache_dtype,
        w.isl,
        tp_prefill=p.tp,
        tp_decode=dd.tp,
        same_node=False,
        decode_cluster=c.pool_cluster(1),
    )
    assert d.worst.transfer_ms == pytest.approx(slow * 1e3)
    assert d.ttft_ms <= 300


def test_a_tie_keeps_the_faster_floor() -> None:
    """Both floors carry the same tokens/s (and the rest of the chain) here: the fast floor is kept."""
    w = _qwen(200)
    rs = _roles(TWO_BY_TWO, w)
    chain = objective_chain("throughput")
    best: dict[tuple[int, ...], int] = {}  # per floor, the best of its first-step tiers
    for tier in rs.tiers():
        run = Run(SolverSettings())
        if optimize(tier.space, chain, run) is not None and tier.floor is not None:
            pools = tier.floor.decode_pools
            best[pools] = max(best.get(pools, 0), run.values["throughput"])
    assert list(best) == [(0,), (0, 1)] and best[0,] == best[0, 1]
    assert solve_roles(rs, "throughput").budget_decode_pools == (0,)


# (cluster, TTFT ms, rate, objective, floor index of the optimum: None where floors tie)
ORACLE_CASES = {
    "fast-only-feasible": (FOUR_AND_TWO, 200, None, "throughput", 0),
    "fast-beats-slow": (FOUR_AND_TWO, 600, None, "throughput", 0),
    "slow-beats-fast": (TWO_BY_TWO, 300, None, "throughput", 1),
    "tie": (TWO_BY_TWO, 200, None, "throughput", None),
    "cost-at-a-rate": (TWO_BY_TWO, 150, 2.0, "cost", 0),
    "goodput-at-a-rate": (TWO_BY_TWO, 150, 10.0, "goodput", 0),
}


@pytest.mark.parametrize("case", list(ORACLE_CASES))
def test_role_planner_equals_brute_force_over_the_floors(case: str) -> None:
    """The planner's optimum == the best of every floor's brute force over its unpruned engines."""
    cluster, ttft, rate, objective, floor = ORACLE_CASES[case]
    w = _qwen(ttft, rate)
    full = _roles(cluster, w, prune=False)
    oracle = brute_force_floors([t.space for t in full.tiers()], objective)
    assert oracle is not None
    d = solve_roles(_roles(cluster, w), objective)
    assert round(d.solver.objective_value) == oracle[0]
    assert d.solver.status == "OPTIMAL"
    # each floor's first-step tiers (roles.py `step_ladder`) are spaces of their own, floors in order
    by_tier = [t.floor.decode_pools for t in full.tiers() if t.floor]
    pools = list(dict.fromkeys(by_tier))
    assert len(pools) == 2
    if floor is not None:
        assert by_tier[oracle[1]] == pools[floor] and d.budget_decode_pools == pools[floor]
    slowest = brute_force(full.space, objective)  # the old space: every prefill at the slow link
    if floor == 0:
        assert slowest is None or slowest[0] != oracle[0]


@pytest.mark.parametrize(
    ("cluster", "ttft", "mode", "names"),
    [
        (TWO_BY_TWO, 300, "on", ("throughput", "gpus")),
        (TWO_BY_TWO, 600, "on", ("throughput", "tpot")),
        (FOUR_AND_TWO, 300, "auto", ("throughput", "gpus")),
        (FOUR_AND_TWO, 600, "on", ("throughput", "tpot")),
    ],
)
def test_mixed_front_equals_brute_force_over_the_floors(
    cluster: str, ttft: float, mode: str, names: tuple[str, ...]
) -> None:
    """The mixed front (one CP-SAT model, one floor per point) == the non-dominated vectors of every
    floor's vectors walked apart (mixed_oracle), over the unpruned candidates."""
    fm = FleetModel(load_model("Qwen/Qwen3-0.6B"), _qwen(ttft))
    c = Cluster.parse(cluster)
    space = build_mixed_space(fm, c, SMALL, mode=mode, prune=False)
    assert len({f.decode_pools for f in space.floors}) == 2  # each with its first-step tiers
    front = pareto_mixed(fm, c, objectives=names, mode=mode, options=SMALL)
    assert front.complete
    assert set(front.vectors) == brute_force_front(space, names)


def test_the_floors_share_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each floor's solve gets what is left ÷ the floors left; one that runs out without a plan leaves
    the other floor's plan, FEASIBLE (not proven the best)."""
    rs = _roles(TWO_BY_TWO, _qwen(200))
    real = disagg_plan._optimize_floor
    shares: list[float] = []

    def slow_floor_times_out(tier: RoleSpace, chain: object, run: Run, scales: dict[str, int]) -> object:
        import time

        assert run.deadline is not None
        shares.append(run.deadline - time.perf_counter())
        if tier.floor is not None and tier.floor.slowest:
            raise SolverTimeoutError("no feasible plan found within 10 s (raise --time-limit)")
        return real(tier, chain, run, scales)  # type: ignore[arg-type]

    monkeypatch.setattr(disagg_plan, "_optimize_floor", slow_floor_times_out)
    settings = SolverSettings()
    d = solve_roles(rs, "throughput", settings)
    assert d.solver.status == "FEASIBLE" and d.budget_decode_pools == (0,)
    assert shares[0] == pytest.approx(settings.time_limit_s / len(rs.tiers()), abs=0.5)
    assert shares[1] > shares[0] - 0.5
