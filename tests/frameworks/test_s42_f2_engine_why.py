"""`--engine auto`'s reason names the cause the numbers show. Before: it cited the running batch whenever
the batches differed, even where the loser ran the larger one (Qwen3-0.6B on one H100: vLLM 512 and
SGLang 525 against TensorRT-LLM's 505), and blamed "the largest max_num_seqs allowed" where no line
binds (vLLM's 768 and 1024 fit there) or where the grid's top would run no more (a client's
concurrency). A loser with as large a batch loses on its step time; a smaller batch is cited with the
cap that truly binds it."""

from __future__ import annotations

import autoparallel as ap
from autoparallel.engine_compare import _batch_cap, why
from autoparallel.workload import Serving

ENGINES = ("vllm", "sglang", "trtllm")
SETTINGS = ap.SolverSettings(workers=1, seed=0, time_limit_s=30)


def _whys(
    model: str, cluster: str, workload: Serving | str, **options: object
) -> tuple[ap.ServingPlan, dict]:
    plan = ap.solve(
        model, cluster, workload, settings=SETTINGS, options=ap.ServingOptions(engines=ENGINES, **options)
    )
    assert isinstance(plan, ap.ServingPlan)
    return plan, {
        b.engine: why(plan, b.plan) for b in plan.engines if b.plan is not None and b.engine != plan.engine
    }


def test_a_loser_with_the_larger_batch_loses_on_its_step_time() -> None:
    plan, whys = _whys("Qwen/Qwen3-0.6B", "1xH100", "chatbot")
    assert plan.engine == "trtllm"
    for engine, tpot in (("vllm", "33.7"), ("sglang", "40.2")):
        text = whys[engine]
        assert "it runs the larger batch" in text and f"TPOT {tpot} vs 30.0 ms" in text, text
        assert "efficiency factors: flops_fraction 0.45 vs 0.5" in text, text
        assert "capped by" not in text and "largest max_num_seqs" not in text, text


def test_a_smaller_batch_is_cited_with_the_cap_that_binds_it() -> None:
    """SGLang stops at max_num_seqs 256 on Qwen3-8B (its KV cache holds 319: `evaluate --max-num-seqs 319`
    runs 319 at 3,990 tokens/s, under 4,109 at 256); vLLM runs the larger batch and loses on its step."""
    plan, whys = _whys("Qwen/Qwen3-8B", "1xH100", Serving(isl=1024, osl=256))
    assert plan.engine == "trtllm"
    sglang = whys["sglang"]
    assert "running batch 256 vs 321 per replica; SGLang's is capped by its max_num_seqs=256" in sglang, (
        sglang
    )
    assert "a larger one fits (its KV cache holds 319 sequences) but plans no better" in sglang, sglang
    assert "largest max_num_seqs" not in sglang
    assert "it runs the larger batch (running batch 351 vs 321 per replica)" in whys["vllm"], whys["vllm"]


def test_the_grid_top_is_cited_only_where_a_larger_value_would_run_more() -> None:
    # vLLM runs 32 on one tp=2 replica (the grid's top, its KV cache and the 48 clients would give more)
    # where TensorRT-LLM runs 24 on each of two
    _, whys = _whys(
        "Qwen/Qwen3-8B", "1x2xH100", Serving(isl=1024, osl=256, concurrency=48), max_num_seqs=(16, 32)
    )
    vllm = whys["vllm"]
    assert "running batch 32 vs 24 per replica on 1 (tp=2 pp=1) vs 2 (tp=1 pp=1) replicas" in vllm, vllm
    assert "capped by max_num_seqs: 32 is the largest allowed value" in vllm, vllm
    # 100 clients run 100 of max_num_seqs 128 (the grid's top): the concurrency caps, not the grid
    workload = Serving(isl=1024, osl=256, concurrency=100)
    plan, _ = _whys("Qwen/Qwen3-0.6B", "1xH100", workload, max_num_seqs=(64, 128))
    assert plan.perf.batch_size == 100 and plan.config.max_num_seqs == 128
    # the plan's own binding line says so now (decoder.binding_constraints), else `_batch_cap`'s words
    assert _batch_cap(plan) in (
        "the client's concurrency (100 requests per replica)",
        "concurrency: the workload's 100 requests in flight run 100 per replica on 1, fewer than "
        "max_num_seqs=128",
    )
    tie = why(plan, plan)
    assert "concurrency" in tie and "largest allowed" not in tie, tie
