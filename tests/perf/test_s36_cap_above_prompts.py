"""A client cap of at least the prompt count caps nothing: the benchmark is the burst it is (it was
priced as an endless closed loop, TTFT 29.6 s where the replay of the burst measures 12.5 s)."""

import pytest

import autoparallel as ap


@pytest.mark.parametrize("cap", [200, 4096])
def test_a_cap_above_the_prompts_is_the_burst(cap: int) -> None:
    assert ap.Serving(num_prompts=200, concurrency=cap).concurrency is None
    assert ap.Serving(num_prompts=200, concurrency=199).concurrency == 199
    cfg = ap.ServingConfig(max_num_seqs=16)
    capped = ap.Serving(isl=1024, osl=256, isl_cv=0.8, osl_cv=0.8, num_prompts=200, concurrency=cap)
    burst = capped.model_copy(update={"concurrency": None})
    a = ap.evaluate("Qwen/Qwen3-8B", "1x8xH100", cfg, capped, compare=False)
    b = ap.evaluate("Qwen/Qwen3-8B", "1x8xH100", cfg, burst, compare=False)
    assert a.perf.ttft_ms == pytest.approx(b.perf.ttft_ms)
    assert a.benchmark is not None
    assert a.perf.ttft_ms == pytest.approx(a.benchmark.mean_ttft_ms, rel=0.2)
