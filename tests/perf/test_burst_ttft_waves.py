"""N prompts sent at once: the steady-state TTFT's client wait (`perf.serving.client_queue_s`) agrees
with the replay of the benchmark (`perf.serving_load`). It missed two mechanisms and was 0.06-0.8 of
the replay: the first wave's prompts, all arriving together, are prefilled in arrival order, as many
to a step as the token budget packs (`StepTimes.prompt_s`; charging each a lone prompt's prefill put
DeepSeek-V3's ShareGPT burst at 6.75x the replay), and slots that started together complete in waves
(renewal theory: the k-th completion of b slots at k · μ / b + (1 − cv²) · μ / 2)."""

from __future__ import annotations

import pytest

import autoparallel as ap
from autoparallel.api import with_benchmark


@pytest.mark.parametrize(
    ("model", "max_num_seqs", "isl", "osl", "prompts", "before"),
    [
        ("Qwen/Qwen3-8B", 256, 1024, 256, 300, 0.06),  # one wave, 44 queued: 0.37 s vs 6.1 s
        ("meta-llama/Llama-3.1-8B", 32, 512, 512, 100, 0.62),
    ],
)
def test_a_burst_ttft_is_the_replays_within_a_tenth(
    model: str, max_num_seqs: int, isl: int, osl: int, prompts: int, before: float
) -> None:
    w = ap.Serving(isl=isl, osl=osl, num_prompts=prompts, ttft_ms=None, tpot_ms=None)
    plan = ap.evaluate(model, "1x1xH100", ap.ServingConfig(tp=1, max_num_seqs=max_num_seqs), w)
    bench = with_benchmark(plan).benchmark
    assert bench is not None
    ratio = plan.perf.ttft_ms / bench.mean_ttft_ms
    assert 0.9 <= ratio <= 1.1, (ratio, before)


def test_output_length_spread_unsyncs_the_waves() -> None:
    """Exponential-like output lengths (cv² ≥ 1) complete as a stream: no wave offset, κ = 0."""
    from autoparallel.perf.serving import burst_sync, client_queue_s

    fixed = ap.Serving(isl=1024, osl=256, num_prompts=300, ttft_ms=None, tpot_ms=None)
    spread = fixed.model_copy(update={"osl_cv": 1.2})
    assert burst_sync(fixed) == 1.0 and burst_sync(ap.Serving.model_validate(spread.model_dump())) == 0.0
    waits = [client_queue_s(w, 1, 256, 4000.0, 0.03) for w in (fixed, spread)]
    assert waits[0] > waits[1] > 0


def test_short_prompts_share_a_prefill_step() -> None:
    """A prompt's share of a full prefill step, not a lone prompt's prefill (whose weight read a full
    step shares): 256-token prompts, 32 to an 8,192-token step, on Qwen3-30B-A3B."""
    from autoparallel.hardware import Cluster
    from autoparallel.models import load_model
    from autoparallel.perf.serving import ReplicaShape, replica_step_times

    config = ap.ServingConfig(tp=1, max_num_seqs=512)
    shape = ReplicaShape.of(config, "0.32")
    times = replica_step_times(
        load_model("Qwen/Qwen3-30B-A3B"),
        Cluster.parse("1x1xH100"),
        shape,
        batch=64.0,
        isl=256,
        osl=256,
        batched_tokens=8192,
    )
    assert times.prompt_s < times.prefill_s / 4
