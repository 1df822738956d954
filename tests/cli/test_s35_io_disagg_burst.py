"""A burst under a TTFT limit gets no disaggregated plan (`roles.burst_problem`): `--disagg on` and
`--disagg auto` gave the false reason "the cluster has 8 GPUs, fewer than two of the smallest engine
(8 GPUs)" (disagg.py `_compare` ran the size check, which took the aggregated engine's size, before
the burst one) and never named the burst (s35 bug 3)."""

from __future__ import annotations

import json

import pytest

from autoparallel.cli import main

ARGV = ["plan", "meta-llama/Llama-3.1-8B", "--cluster", "1x8xH100", "--num-prompts", "100"]


def test_disagg_on_names_the_burst(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*ARGV, "--disagg", "on"]) == 1
    err = capsys.readouterr().err
    assert "100 prompts sent at once at TTFT 2000 ms" in err
    assert "fewer than two of the smallest engine" not in err


def test_disagg_auto_says_the_burst_is_why_aggregated_wins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*ARGV, "--disagg", "auto", "--json"]) == 0
    comparison = json.loads(capsys.readouterr().out)["comparison"]
    assert comparison["winner"] == "aggregated"
    assert comparison["why"].startswith("no disaggregated deployment: 100 prompts sent at once")
    assert "smallest engine" not in comparison["why"]
