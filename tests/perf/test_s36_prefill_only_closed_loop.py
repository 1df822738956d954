"""Prefill-only traffic (one output token) in a closed loop: every request ends on the rotation that
prefills it, so the replacements arrive together and no prompt waits out another request's rotation.
The steady state charged that wait (Mixtral-8x7B on one H200, 4,000 / 1 tokens: 4.22 requests/s at
max_num_seqs 1, 2.83 at 2, so plans picked max_num_seqs 1), and gave Qwen3-8B 21 tokens/s where the
replay of the same clients measures 30."""

import pytest

import autoparallel as ap
from autoparallel.configs import ServingConfig


def test_more_running_prompts_never_lower_prefill_only_throughput() -> None:
    work = ap.Serving(isl=4000, osl=1, concurrency=200)
    rates = [
        ap.evaluate(
            "mistralai/Mixtral-8x7B-v0.1", "1xH200", ServingConfig(max_num_seqs=b), work, compare=False
        ).perf.requests_per_s
        for b in (1, 2, 4, 8)
    ]
    assert rates == sorted(rates)


@pytest.mark.parametrize("clients", [2, 8])
def test_prefill_only_steady_state_agrees_with_its_replay(clients: int) -> None:
    work = ap.Serving(isl=1024, osl=1, concurrency=clients, num_prompts=400)
    plan = ap.evaluate("Qwen/Qwen3-8B", "1xH100", ServingConfig(max_num_seqs=256), work, compare=False)
    assert plan.benchmark is not None
    assert plan.perf.output_tokens_per_s == pytest.approx(plan.benchmark.output_tokens_per_s, rel=0.05)
    assert plan.perf.ttft_ms == pytest.approx(plan.benchmark.mean_ttft_ms, rel=0.05)
