"""`plan --engine auto`: the engine table's KV tokens and the why-line's KV pools are the whole
deployment's, like the throughput beside them. Qwen3-14B on 4xH100 printed one replica's pool unlabelled
(vLLM 1,660,688 on 1 x tp1 pp4; TensorRT-LLM 296,256 on 4 x tp1) and the why read "KV pool 1,660,688 vs
296,256 tokens" (5.6x) where the deployments hold 1,660,688 vs 4 x 296,256 = 1,185,024 (1.4x)."""

from __future__ import annotations

import pytest

import autoparallel as ap
from autoparallel.engine_compare import comparison_dict, kv_tokens_total
from autoparallel.explain import explain_engines


@pytest.fixture(scope="module")
def plan() -> ap.ServingPlan:
    out = ap.solve(
        "Qwen/Qwen3-14B",
        "4xH100",
        settings=ap.SolverSettings(time_limit_s=30),
        options=ap.ServingOptions(engines=("vllm", "sglang", "trtllm")),
    )
    assert isinstance(out, ap.ServingPlan)
    # the case needs engines whose best plans run different numbers of replicas
    assert len({b.plan.config.replicas for b in out.engines if b.plan is not None}) > 1
    return out


def test_the_table_prints_all_replicas_kv_and_labels_the_batch_per_replica(plan: ap.ServingPlan) -> None:
    text = explain_engines(plan)
    header = next(line for line in text.splitlines() if line.startswith("engine "))
    assert "KV tokens, all replicas" in header and "batch per replica" in header
    for best in plan.engines:
        assert best.plan is not None
        row = next(line for line in text.splitlines() if line.startswith(best.name))
        total = best.plan.kv_cache_tokens * best.plan.config.replicas
        assert kv_tokens_total(best.plan) == total and f" {total:,} " in row
        if best.plan.config.replicas > 1:  # one replica's pool is not printed as the column's figure
            assert f" {best.plan.kv_cache_tokens:,} " not in row


def test_the_why_compares_the_whole_deployments_pools(plan: ap.ServingPlan) -> None:
    w = plan
    said = 0
    for entry in comparison_dict(plan)["engines"]:
        other = next(b.plan for b in plan.engines if b.engine == entry["engine"])
        assert other is not None
        # the JSON field keeps its meaning (one replica's pool), the new one says all replicas
        assert entry["kv_cache_tokens"] == other.kv_cache_tokens
        assert entry["kv_cache_tokens_all_replicas"] == other.kv_cache_tokens * other.config.replicas
        text = entry.get("why_not", "")
        if "KV pool" not in text:
            continue
        said += 1
        oc, wc = other.config, w.config
        assert (
            f"KV pool {other.kv_cache_tokens * oc.replicas:,} vs {w.kv_cache_tokens * wc.replicas:,} "
            f"tokens over all replicas ({oc.replicas} x {other.kv_cache_tokens:,} vs {wc.replicas} x "
            f"{w.kv_cache_tokens:,};"
        ) in text
    assert said == 2  # vLLM's and SGLang's whys both cite the pools
