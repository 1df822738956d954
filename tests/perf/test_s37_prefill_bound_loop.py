"""A closed loop whose prompts fill vLLM's token budget (`Scheduler.schedule` keeps filling it): more
clients cannot lower the rate. `serving_steps._step_times` counts each prompt's wait once: the
rotation in progress and the prompt's first-come-first-served place in the carrying rotation, or,
past the budget, Little's law over the saturated engine (the queue and the carrying rotation hold
the same prompts), not the queue on top of both."""

from __future__ import annotations

import itertools

import pytest

import autoparallel as ap

REPLAY = {10: 28.6, 12: 28.62, 16: 28.62, 32: 28.62, 64: 28.62}
"""`vllm bench serve` replay (`evaluate(...).benchmark`) of Qwen3-8B on one H100, 4,096 / 4 tokens,
400 prompts: output tokens/s at each concurrency (prompt_ms 139.5: at most 7.17 prompts/s)."""


def _tokens_per_s(isl: int, osl: int, concurrency: int) -> float:
    result = ap.evaluate(
        "Qwen/Qwen3-8B",
        "1xH100",
        ap.ServingConfig(),
        ap.Serving(isl=isl, osl=osl, concurrency=concurrency, num_prompts=400),
        compare=False,
        engine="vllm",
    )
    assert result.perf is not None
    return float(result.perf.output_tokens_per_s)


def test_prefill_bound_rate_does_not_fall_with_concurrency() -> None:
    rates = {c: _tokens_per_s(4096, 4, c) for c in (4, 8, 10, 12, 16, 32, 64)}
    ordered = [rates[c] for c in sorted(rates)]
    # Before: 22.7 / 21.8 / - / - / 18.2 / 22.3 / 25.1 tokens/s; then 24.5 / 24.6 / 19.4 / 23.3 / 28.3 /
    # 28.5 / 28.6, the rotations' wait still above Little's law just past the budget's bound.
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(ordered)), rates
    for c, replay in REPLAY.items():
        assert rates[c] == pytest.approx(replay, rel=0.10), (c, rates[c])
    # The prompts' capacity: 2 prompts of 4,096 tokens a step of 8,192, 139.5 ms each at most.
    assert max(ordered) <= 4 * 1e3 / 139.4


def test_long_outputs_keep_their_rate() -> None:
    # 512 / 512 tokens at 64 clients: 5,531.9 tokens/s before the change (decode-bound, no queue).
    assert _tokens_per_s(512, 512, 64) == pytest.approx(5531.9, rel=0.01)
