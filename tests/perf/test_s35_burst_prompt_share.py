"""A burst's first-wave prompts share a prefill step no larger than the wave: 8 prompts never share a
step of 64. Before: `evaluate Qwen/Qwen3-0.6B --cluster 1x1xH100 --isl 128 --osl 128 --num-prompts 8`
priced a prompt's share of a step of ⌊budget / isl⌋ prompts, so max_num_seqs 8 / 16 / 256 (each
running the same 8) gave different TTFTs (51.44 / ... / 51.28 ms) and `plan --objective ttft` lost to
`evaluate --max-num-seqs 256` (encoder.oversized assumes equal times at an equal running share)."""

from __future__ import annotations

import json

import pytest

from autoparallel.cli import main

ARGV = ["evaluate", "Qwen/Qwen3-0.6B", "--cluster", "1x1xH100", "--isl", "128", "--osl", "128"]


def _perf(capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, float]:
    assert main([*ARGV, *extra, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    perf: dict[str, float] = out.get("perf", out)
    return perf


def test_the_same_wave_prices_the_same_prompt_share_at_any_max_num_seqs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    seen = [_perf(capsys, "--num-prompts", "8", "--max-num-seqs", b) for b in ("8", "16", "256")]
    assert len({p["prompt_ms"] for p in seen}) == 1
    assert len({p["ttft_ms"] for p in seen}) == 1


def test_a_wave_of_two_shares_less_weight_read_than_a_wave_of_eight(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The share of a step of 2 prompts is larger than of 8 (the weight read splits fewer ways)."""
    two = _perf(capsys, "--num-prompts", "2", "--max-num-seqs", "8")
    eight = _perf(capsys, "--num-prompts", "8", "--max-num-seqs", "8")
    assert two["prompt_ms"] > eight["prompt_ms"]
