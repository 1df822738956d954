"""The replay gives each pipeline micro-batch its own token budget, as vLLM V1 schedules one batch per
`schedule()` call while fewer than pp are in flight (`EngineCore.step_with_batch_queue`). It spent one
budget per rotation: Qwen3-0.6B at pp 2 with a 512-token budget replayed 8,848 tokens/s where the
steady state (k budgets a rotation) gives 14,133; now 13,221."""

import pytest

import autoparallel as ap


def test_a_pipeline_replay_agrees_with_the_steady_state_where_prompts_bind() -> None:
    w = ap.Serving(isl=256, osl=8, isl_cv=0.3, osl_cv=0.3, num_prompts=2000, concurrency=512)
    cfg = ap.ServingConfig(pp=2, max_num_seqs=256, max_num_batched_tokens=512)
    plan = ap.evaluate("Qwen/Qwen3-0.6B", "1x2xH100", cfg, w, compare=False)
    assert plan.benchmark is not None
    assert plan.benchmark.output_tokens_per_s == pytest.approx(plan.perf.output_tokens_per_s, rel=0.1)
    assert plan.benchmark.mean_tpot_ms == pytest.approx(plan.perf.tpot_ms, rel=0.1)
