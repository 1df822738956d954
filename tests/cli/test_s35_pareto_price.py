"""`pareto` takes `--price` and `--gpus-file` as `plan` and `evaluate` do, so a cost front is priced at
the user's rates. Before: "unrecognized arguments: --price H100=10" (exit 2)."""

from __future__ import annotations

import json

import pytest

from autoparallel.cli import main

ARGV = ["pareto", "Qwen/Qwen3-0.6B", "--cluster", "1x1xH100", "--objectives", "throughput,cost", "--json"]


def _usd_per_mtok(capsys: pytest.CaptureFixture[str], *extra: str) -> float:
    assert main([*ARGV, *extra]) == 0
    point = json.loads(capsys.readouterr().out)["points"][0]
    return float(point["perf"]["usd_per_million_tokens"])


def test_a_cost_front_is_priced_at_the_given_rate(capsys: pytest.CaptureFixture[str]) -> None:
    default, mine = _usd_per_mtok(capsys), _usd_per_mtok(capsys, "--price", "H100=10")
    from autoparallel.hardware import Cluster

    listed = Cluster.parse("1x1xH100").gpu.usd_per_hour
    assert mine / default == pytest.approx(10 / listed, rel=1e-3)
