"""benchmarks/fixed_length_checks.py runs, and its decode-heavy runs land (checks, never fitted)."""

from __future__ import annotations

import importlib

import pytest


def test_fixed_length_checks_print_every_run(capsys: pytest.CaptureFixture[str]) -> None:
    bench = importlib.import_module("benchmarks.fixed_length_checks")
    assert bench.main() == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + len(bench.RUNS)
    for run in bench.RUNS:
        if run.osl == 2000:  # decode-heavy: the decode step model alone
            got = bench.predict(run)
            assert 0.8 <= got.mean_tpot_ms / run.tpot_ms <= 1.2, (run, got.mean_tpot_ms)


def test_sglang_attention_dp_prompt_heavy_burst_matches_a_published_run() -> None:
    """A check on a run no constant was fitted to: the page's SGLang 0.5.6 server (`--tp-size 8
    --dp-size 8 --enable-dp-attention`, `fa3` + `fa3`, `--context-length 32768`), 500 random prompts
    of 2,000 tokens with 100 output tokens sent at once: 37.89 s, P99 TTFT 32.14 s (the page's lines
    beside the mean ones in `RUNS`). Its prompt steps are what SGLang runs: block-FP8 experts in
    Triton's fused-MoE kernel at Triton's block-FP8 rate, and every layer's gather and scatter over
    the DP ranks as two all-reduces of the gathered buffer. Charged as vLLM's DeepGEMM path and an
    all-to-all, the run took 21.4 s (P99 TTFT 17.1 s, TPOT 127 ms)."""
    bench = importlib.import_module("benchmarks.fixed_length_checks")
    (run,) = [r for r in bench.RUNS if r.engine == "sglang" and r.isl == 2000]
    got = bench.predict(run)
    assert 0.8 <= got.duration_s / 37.89 <= 1.2, got.duration_s
    assert 0.8 <= got.p99_ttft_ms / 32138.0 <= 1.2, got.p99_ttft_ms
    assert 0.8 <= got.mean_tpot_ms / run.tpot_ms <= 1.2, got.mean_tpot_ms


def test_vllm_tp8_decode_heavy_burst_matches_a_published_run() -> None:
    """A check on a run no constant was fitted to: gpustack's DeepSeek-V3.2 H200 page ("Other
    Benchmark Cases", vLLM 0.13 `-tp 8`, 100 random prompts of 1,000 tokens with 2,000 output tokens
    sent at once) measured mean TPOT 45.72 ms and 2,075 output tokens/s. Fixed lengths, so no length
    distribution is guessed; the decode steps are the FP8 decode kernel at 128 padded heads."""
    bench = importlib.import_module("benchmarks.fixed_length_checks")
    (run,) = [r for r in bench.RUNS if r.engine == "vllm" and r.osl == 2000]
    got = bench.predict(run)
    assert 0.8 <= got.mean_tpot_ms / run.tpot_ms <= 1.2, got.mean_tpot_ms
    assert 0.8 <= got.output_tokens_per_s / run.tokens_per_s <= 1.2, got.output_tokens_per_s
