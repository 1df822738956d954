"""A disaggregated plan's idle GPUs come with their reasons in `plan --json` (and the text), as the
aggregated side's do. Before: `gpus_idle` 8 with no `idle_reasons` key and nothing said."""

from __future__ import annotations

import json

import pytest

from autoparallel.cli import main

ARGV = [
    "plan",
    "Qwen/Qwen3-0.6B",
    "--cluster",
    "1x8xH100+1x8xT4",
    *("--isl", "1024", "--osl", "128", "--ttft-ms", "2000", "--tpot-ms", "10", "--disagg", "on"),
]


def test_idle_reasons_of_a_disaggregated_plan_reach_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*ARGV, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    deployment = out.get("deployment", out)
    found = [d for d in _dicts(deployment) if d.get("mode") == "disaggregated"]
    assert found and found[0]["gpus_idle"] == 8
    assert [r.split(":")[0] for r in found[0]["idle_reasons"]] == ["pool 1 (T4)"]


def _dicts(value: object) -> list[dict[str, object]]:
    """Every dict nested in a JSON value."""
    if isinstance(value, dict):
        return [value, *(d for v in value.values() for d in _dicts(v))]
    if isinstance(value, list):
        return [d for v in value for d in _dicts(v)]
    return []
