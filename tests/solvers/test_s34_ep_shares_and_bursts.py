"""Review fixes of the client-share rules.

- An EP engine's data ranks are fixed: vLLM's DP load balancer deals each request to the least loaded
  rank, so 12 clients on 8 ranks run 1.5 each; the planner required every rank to be fillable to
  max_num_seqs and refused it.
- N prompts at once under a TTFT limit get no disaggregated plan: the roles' prefill engines are rated
  for arrivals at a rate, and the verdict had picked an uncharged 5P:3D over a charged aggregated plan.
"""

from __future__ import annotations

import pytest

import autoparallel as ap
from autoparallel.cli import main
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.workload import Serving


def test_twelve_clients_run_on_eight_ep_ranks() -> None:
    w = Serving.preset("chatbot").model_copy(update={"concurrency": 12})
    plan = ap.solve(
        "Qwen/Qwen3-235B-A22B", "1x8xH100", workload=w, options=ServingOptions(tp_values=(1,), pp_values=(1,))
    )
    assert plan.config.enable_expert_parallel and plan.config.replicas == 8
    assert plan.perf.batch_size == 1.5 and plan.config.max_num_seqs == 2
    same = ap.evaluate("Qwen/Qwen3-235B-A22B", "1x8xH100", plan.config, w)
    assert same.perf.ttft_ms == pytest.approx(plan.perf.ttft_ms)


def test_a_burst_under_a_ttft_limit_is_not_disaggregated(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "meta-llama/Llama-3.1-8B", "--cluster", "1x8xH100", "--num-prompts", "5000"]
    assert main([*argv, "--disagg", "on"]) == 1
    assert "drain of a burst is not modelled" in capsys.readouterr().err
