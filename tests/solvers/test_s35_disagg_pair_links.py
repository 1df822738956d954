"""A KV transfer runs at the slower end of its (prefill pool, decode pool) pair; idle GPUs of a
disaggregated deployment get reasons."""

from __future__ import annotations

import functools

import pytest

from autoparallel.fleet import fleet_of_one
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.perf import disagg
from autoparallel.solvers.deployment.disagg_plan import decode_roles, solve_roles
from autoparallel.solvers.deployment.roles import RoleSpace, build_role_space, prefill_budget_s
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.solvers.settings import SolverSettings, SolverStats
from autoparallel.workload import Serving

# Two pools of one GPU, one node each, networks 32x apart (3200 vs 100 Gbit/s per GPU)
FAST_SLOW = "1x8xH100,ib=3200+1x8xH100,ib=100"
WORKLOAD = Serving(isl=8192, osl=256, ttft_ms=4000, tpot_ms=30)
SMALL = ServingOptions(max_num_seqs=(64, 256), enforce_eager=(False,), tp_values=(1, 2))
"""A few table entries per pool, to keep the tests fast."""


@functools.cache
def _roles(cluster: str) -> RoleSpace:
    return build_role_space(fleet_of_one("Qwen/Qwen3-0.6B", WORKLOAD), Cluster.parse(cluster), SMALL)


def test_the_copy_runs_at_the_slower_end_whichever_side_it_is() -> None:
    """vLLM's NIXL decode worker pulls the KV (nixl_connector.py, NixlConnectorWorker.start_load_kv ->
    _read_blocks): the READ crosses both NICs, so a fast prefill pool reading into a slow decode pool
    takes as long as the reverse, and as long as two slow ends."""
    c = Cluster.parse(FAST_SLOW)
    fast, slow = c.pool_cluster(0), c.pool_cluster(1)
    model = load_model("Qwen/Qwen3-0.6B")

    def x(p: Cluster, d: Cluster) -> float:
        return disagg.kv_transfer_s(
            model, p, "auto", 8192, tp_prefill=1, tp_decode=1, same_node=False, decode_cluster=d
        )

    assert x(fast, slow) == pytest.approx(x(slow, fast))
    assert x(fast, slow) == pytest.approx(x(slow, slow))
    assert x(fast, fast) < x(fast, slow) / 20


def test_the_prefill_budget_takes_the_slowest_decode_pool() -> None:
    """Before: a P engine on the fast pool budgeted its own fast link (2.9 ms of KV at 8,192 tokens)
    though a decode engine on the slow pool pulls at 100 Gbit/s, so its budget exceeded the slow pool's."""
    rs = _roles(FAST_SLOW)
    c = rs.space.cluster
    decode = [e for e in rs.space.engines if e.role == "decode"]
    assert {e.pool for e in decode} == {0, 1}
    fm = rs.space.models[0]
    bound = rs.decode_step_bound_s[0]
    on = {p: prefill_budget_s(fm, c, p, 1, decode, bound) for p in (0, 1)}
    assert on[0] == pytest.approx(on[1])
    # with decode engines on the fast pool only, the fast pool's P engines get the fast link back
    fast_only = prefill_budget_s(fm, c, 0, 1, decode, bound, decode_pools=[0])
    assert fast_only > on[0] + 0.02


def test_the_reported_transfer_is_the_pairs() -> None:
    """One P engine on the fast pool and one D engine on the slow pool: the worst pair's KV transfer is
    at the slow pool's NIC (before: the fast pool's, 32x shorter), and the TTFT still meets the limit."""
    rs = _roles(FAST_SLOW)
    engines = rs.space.engines
    p = next(k for k, e in enumerate(engines) if e.role == "prefill" and e.pool == 0 and e.tp == 1)
    d = next(k for k, e in enumerate(engines) if e.role == "decode" and e.pool == 1)
    counts = [0] * len(engines)
    counts[p] = counts[d] = 1
    stats = SolverStats.of(
        status="OPTIMAL", wall_s=0.0, value=0.0, bound=0.0, solves=0, settings=SolverSettings()
    )
    out = decode_roles(rs, counts, "throughput", stats)
    c = rs.space.cluster
    slow = disagg.kv_transfer_s(
        rs.space.models[0].model,
        c.pool_cluster(1),
        engines[d].config.kv_cache_dtype,
        WORKLOAD.isl,
        tp_prefill=engines[p].tp,
        tp_decode=engines[d].tp,
        same_node=False,
    )
    assert out.worst.transfer_ms == pytest.approx(slow * 1e3)
    assert out.ttft_ms <= WORKLOAD.ttft_ms  # type: ignore[operator]


def test_idle_gpus_of_a_disaggregated_deployment_have_reasons() -> None:
    """Before: gpus_idle 8 with no reasons (the aggregated deployment names the pool and why)."""
    w = Serving(isl=1024, osl=128, ttft_ms=2000, tpot_ms=10)
    rs = build_role_space(fleet_of_one("Qwen/Qwen3-0.6B", w), Cluster.parse("1x8xH100+1x8xT4"), SMALL)
    d = solve_roles(rs, "throughput")
    assert d.gpus_idle == 8
    assert len(d.idle_reasons) == 1
    assert d.idle_reasons[0].startswith("pool 1 (T4): 8 of 8 GPUs idle: ")
