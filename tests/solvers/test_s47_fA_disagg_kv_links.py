"""Session 47 fA: disaggregated serving searches every allowed KV-cache dtype (a P and a D engine that
exchange KV share one: vLLM's NIXL handshake hashes `cache_dtype`), a pool that cannot hold the model
does not move the KV transfer off NVLink, and the budget line names the link actually priced.

Each test failed on HEAD dd16c1f: auto,fp8 planned 7,187 tok/s where fp8 plans 8,580; the T4 pool
priced the 16k-token transfer at the NIC (58.3 ms, 145 tok/s against 147); the budget line named the
decode pool's >= 300 GB/s link while the transfer ran at the prefill pool's 12.5 GB/s.
"""

from __future__ import annotations

import pytest

import autoparallel as ap
from autoparallel.fleet import fleet_of_one
from autoparallel.hardware import Cluster
from autoparallel.solvers.deployment.disagg_plan import DisaggDeployment, budget_words, solve_roles
from autoparallel.solvers.deployment.roles import build_role_space, kv_dtypes, single_node
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving

LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"
SETTINGS = SolverSettings(time_limit_s=60)


def _plan(cluster: str, workload: Serving, kv: tuple[str, ...] = ("auto",)) -> DisaggDeployment:
    rs = build_role_space(
        fleet_of_one(LLAMA_70B, workload), Cluster.parse(cluster), ServingOptions(kv_cache_dtypes=kv)
    )
    return solve_roles(rs, settings=SETTINGS)


def test_kv_dtypes_are_one_set_whatever_the_order() -> None:
    assert kv_dtypes(ServingOptions(kv_cache_dtypes=("fp8", "auto"))) == ["auto", "fp8"]
    assert kv_dtypes(ServingOptions(kv_cache_dtypes=("auto", "fp8", "auto"))) == ["auto", "fp8"]


def test_more_kv_dtypes_never_plan_worse_and_order_does_not_matter() -> None:
    chatbot = Serving.preset("chatbot")
    both = _plan("2x8xH100", chatbot, ("auto", "fp8"))
    swapped = _plan("2x8xH100", chatbot, ("fp8", "auto"))
    fp8 = _plan("2x8xH100", chatbot, ("fp8",))
    auto = _plan("2x8xH100", chatbot, ("auto",))
    assert both.goodput_tokens_per_s == pytest.approx(swapped.goodput_tokens_per_s)
    assert both.goodput_tokens_per_s >= max(fp8.goodput_tokens_per_s, auto.goodput_tokens_per_s) * (1 - 1e-9)
    # HEAD: auto,fp8 planned auto's 7,187 tok/s; fp8 alone 8,580
    assert both.goodput_tokens_per_s > auto.goodput_tokens_per_s * 1.1
    # every engine of the plan shares one KV-cache dtype
    assert len({e.config.kv_cache_dtype for e in (*both.prefill, *both.decode)}) == 1


def test_the_front_searches_every_kv_dtype() -> None:
    """`pareto --disagg on` (the mixed space): the best throughput with auto,fp8 is fp8's."""

    def best(kv: tuple[str, ...]) -> float:
        front = ap.pareto_deployment(
            LLAMA_70B,
            "2x8xH100",
            ("throughput", "cost"),
            workload="chatbot",
            disagg="on",
            points=3,
            settings=SETTINGS,
            options=ServingOptions(kv_cache_dtypes=kv),
        )
        return max(p.throughput_tokens_per_s for p in front.plans)

    both = best(("auto", "fp8"))
    assert both >= best(("fp8",)) * (1 - 1e-9)
    assert both == pytest.approx(best(("fp8", "auto")))
    assert both > best(("auto",)) * 1.05  # HEAD: auto,fp8 searched auto alone


def test_a_pool_that_cannot_hold_the_model_keeps_the_transfer_on_nvlink() -> None:
    w = Serving(isl=16000, osl=256, ttft_ms=5000, tpot_ms=60)
    alone = _plan("1x8xH200", w)
    beside = _plan("1x8xH200+1x1xT4", w)
    assert beside.worst.transfer_ms == pytest.approx(alone.worst.transfer_ms)  # HEAD: 58.3 vs 7.3 ms
    assert beside.goodput_tokens_per_s == pytest.approx(alone.goodput_tokens_per_s)  # HEAD: 145 vs 147
    cluster = Cluster.parse("1x8xH200+1x1xT4")
    assert single_node(cluster, {0}) and not single_node(cluster)


def test_the_budget_line_names_the_prefill_pools_slower_link() -> None:
    d = _plan("1x8xH100,ib=100+1x8xA100-80G,ib=3200", Serving.preset("chatbot"))
    assert d.budget_decode_pools == (1,)
    assert all(e.pool == 0 for e in d.prefill)
    assert d.budget_link_pool == 0
    assert d.budget_link_gbps == pytest.approx(12.5)
    words = budget_words(d)
    assert words is not None
    assert "12.5 GB/s link of pool 0" in words  # HEAD: "priced for decode on pool 1 (links >= 300 GB/s)"


def test_a_pair_placed_on_one_node_moves_its_kv_over_nvlink() -> None:
    """1x8xH200+2x8xL40S chatbot: every engine lands on the H200 node; the L40S pools can hold the
    model, so the tables price the NIC (conservative), but the decoded transfer is the placement's."""
    d = _plan("1x8xH200+2x8xL40S", Serving.preset("chatbot"))
    placed = {(e.pool, n) for e in (*d.prefill, *d.decode) for r in e.placement for n in r.nodes}
    assert placed == {(0, 0)}
    alone = _plan("1x8xH200", Serving.preset("chatbot"))
    assert d.worst.transfer_ms < 1.0  # HEAD: 3.74 ms at the NIC, NVLink 0.47
    assert d.worst.transfer_ms == pytest.approx(alone.worst.transfer_ms, rel=0.05)
