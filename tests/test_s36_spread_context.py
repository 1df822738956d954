"""A workload of spread lengths deploys a max_model_len that holds its long requests (the 99th
percentile prompt plus output, `profile`'s rule): 1,024 / 1,024 tokens at a spread of 1.5 deployed
2,048, which about a quarter of the requests exceed; the replay cut them silently (5,826 tokens/s)
where the steady state priced them whole (4,208)."""

import pytest

import autoparallel as ap


def test_spread_lengths_widen_the_default_context() -> None:
    assert ap.Serving(isl=1024, osl=1024).context_len == 2048
    assert ap.Serving(isl=1024, osl=1024, isl_cv=1.5, osl_cv=1.5).context_len == 16384
    assert ap.Serving(isl=1024, osl=1024, isl_cv=1.5, max_model_len=4096).context_len == 4096
    assert ap.Serving.preset("sharegpt").context_len == 2048  # its own max_model_len


def test_the_replay_and_the_steady_state_agree_on_spread_lengths() -> None:
    w = ap.Serving(isl=1024, osl=1024, isl_cv=1.5, osl_cv=1.5, num_prompts=1000)
    plan = ap.evaluate("Qwen/Qwen3-8B", "1xH100", ap.ServingConfig(tp=1), w, compare=False)
    assert plan.config.max_model_len == 16384 and plan.benchmark is not None
    assert plan.benchmark.output_tokens_per_s == pytest.approx(plan.perf.output_tokens_per_s, rel=0.2)
