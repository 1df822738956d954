"""The analytic steady state (`serving_steps.replica_step_times`, the planner's tables) against the
request-level replay (`serving_load.simulate_benchmark`) where they used to part: a request charged
for its own replacement's prompt and queued behind its own chunks, and the data-parallel ranks of
one engine that step in lock-step priced as if each stepped alone."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autoparallel import api
from autoparallel.configs import ServingConfig
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.perf.serving_steps import ReplicaShape, lockstep_counts, replica_step_times
from autoparallel.workload import Serving

H100 = Cluster.parse("1x1xH100")


@pytest.mark.parametrize("osl", [4, 16, 256])
def test_a_lone_requests_tpot_is_a_pure_decode_step(osl: int) -> None:
    """With one request in flight nothing shares its decode steps: the steady state charged it a
    1 / osl share of a step carrying its own replacement's prompt (Qwen3-8B / H100 at 1,024 / 4
    tokens: 13.9 ms, where the decode step is 7.09)."""
    shape = ReplicaShape(1, 1, 1, None, "auto", False)
    times = replica_step_times(
        load_model("Qwen/Qwen3-8B"), H100, shape, batch=1.0, isl=1024, osl=osl, batched_tokens=8192
    )
    assert times.step_s == pytest.approx(times.decode_s, rel=1e-9)


@pytest.mark.parametrize(
    ("isl", "osl"),
    [(1024, 16), (1024, 4), (40959, 1), (8192, 256)],
)
def test_one_request_at_a_time_agrees_with_its_replay(isl: int, osl: int) -> None:
    """Qwen3-8B / H100, one request in flight: its TTFT is its own prefill, chunked at the step budget,
    plus the request overhead; its TPOT a pure decode step. The steady state gave TTFT 18,900 ms and
    0.053 requests/s at 40,959 / 1 tokens (the lone request queued behind its own chunks) where the
    replay measures 2,443 ms and 0.417/s, and TPOT 13.9 ms at 1,024 / 4 (7.09)."""
    work = Serving(isl=isl, osl=osl, concurrency=1, num_prompts=20)
    plan = api.evaluate("Qwen/Qwen3-8B", H100, ServingConfig(max_num_seqs=1), work, compare=False)
    run = plan.benchmark
    assert run is not None
    assert plan.perf.ttft_ms == pytest.approx(run.mean_ttft_ms, rel=0.05)
    assert plan.perf.output_tokens_per_s == pytest.approx(run.output_tokens_per_s, rel=0.05)
    if osl > 1:
        assert plan.perf.tpot_ms == pytest.approx(run.mean_tpot_ms, rel=0.05)


def test_the_planner_admits_a_tpot_a_lone_request_meets() -> None:
    """`plan Qwen/Qwen3-8B --cluster 1xH100 --isl 1024 --osl 16 --concurrency 1 --tpot-ms 8` exited 1
    ("the fastest plan reaches 8.8 ms") while the replay of that plan measures 7.09 ms."""
    from autoparallel.solvers.serving.solve import solve_serving

    work = Serving(isl=1024, osl=16, concurrency=1, tpot_ms=8)
    plan = solve_serving(load_model("Qwen/Qwen3-8B"), H100, work)
    assert plan.estimate.perf.tpot_ms < 7.2


@pytest.mark.parametrize("concurrency", [2, 3])
def test_a_prompt_longer_than_the_budget_is_sent_once_a_rotation(concurrency: int) -> None:
    """Prompts of 40,959 tokens, one output token, 8,192 a step: a request sends at most one prompt per
    rotation. Each prompt lengthened the rotation, which counted more finishes, which sent more
    prompts: TTFT 21.3 s at two in flight where the replay measures 4.8."""
    work = Serving(isl=40959, osl=1, concurrency=concurrency, num_prompts=40)
    plan = api.evaluate("Qwen/Qwen3-8B", H100, ServingConfig(max_num_seqs=256), work, compare=False)
    assert plan.benchmark is not None
    assert plan.perf.ttft_ms == pytest.approx(plan.benchmark.mean_ttft_ms, rel=0.15)


def test_lockstep_counts_are_the_busiest_of_independent_ranks() -> None:
    """The most prompts on any of the other ranks: P(max ≤ j) = F(j)^(ranks − 1), here P(0) = e^(−3μ)."""
    own, most, p = lockstep_counts(0.2, 0.3, 4)
    assert p.sum() == pytest.approx(1.0)
    assert float(p[most == 0].sum()) == pytest.approx(math.exp(-0.9), rel=1e-4)
    assert float(p @ own) == pytest.approx(0.2, rel=1e-4)
    alone, zero, q = lockstep_counts(0.2, 0.3, 1)
    assert (zero == 0).all() and float(q @ alone) == pytest.approx(0.2, rel=1e-4)
    assert float(p @ np.maximum(own, most)) > 0.3


@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm"])
def test_ranks_in_lock_step_agree_with_their_replay(engine: str) -> None:
    """One engine of four data-parallel ranks sharing the experts (Qwen3-30B-A3B, 4 H100s, tp 1 dp 4
    with EP): every forward pass is aligned, so a step lasts as long as the slowest rank's and a prompt
    on any rank stretches them all. Priced as four ranks stepping alone, TPOT was 9.85 / 10.37 /
    10.07 ms (vLLM / SGLang / TensorRT-LLM) where the lock-step replay measures 11.59 / 13.81 / 13.01."""
    cfg = ServingConfig(tp=1, replicas=4, enable_expert_parallel=True, max_num_seqs=128)
    work = Serving(isl=1024, osl=256, isl_cv=0.8, osl_cv=0.8, concurrency=64, num_prompts=800)
    plan = api.evaluate("Qwen/Qwen3-30B-A3B", "4xH100", cfg, work, compare=False, engine=engine)
    assert plan.benchmark is not None
    assert plan.perf.tpot_ms == pytest.approx(plan.benchmark.mean_tpot_ms, rel=0.06)
