"""The deployment planner's rate unit is fine enough for slow engines (units.py's 0.1 % tolerance).

Milli-requests/s rounded 16.3 and 8.3 tokens/s at 8,192 output tokens both to 1 unit, so the
"Whole cluster" section picked tp2 pp2 and called it OPTIMAL; engines under 0.001 req/s were dropped.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoparallel.cli import main
from autoparallel.solvers.deployment.space import MIN_RATE_UNITS, rate_scale_for


def _plan(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main([*args, "--disagg", "off", "--json"]) == 0
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


@pytest.mark.parametrize(
    "args",
    [
        ["meta-llama/Llama-3.1-70B", "--cluster", "1x4xL40S", "--isl", "1024", "--osl", "8192"],
        ["meta-llama/Llama-3.1-8B", "--cluster", "1x2xH100", "--isl", "1000", "--osl", "100000"],
    ],
)
def test_whole_cluster_matches_the_single_engine_plan_within_tolerance(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    concurrency = "1" if "1x4xL40S" in args else "2"
    d = _plan(["plan", *args, "--concurrency", concurrency], capsys)
    single = d["perf"]["output_tokens_per_s"]  # type: ignore[index]
    whole = d["deployment"]["throughput_tokens_per_s"]  # type: ignore[index]
    assert whole >= single * (1 - 1e-3), (whole, single)


def test_an_engine_under_a_milli_request_per_second_is_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        "models:\n  - model: meta-llama/Llama-3.1-8B\n    isl: 1000\n    osl: 100000\n    concurrency: 1\n"
    )
    assert main(["plan", "--fleet", str(fleet), "--cluster", "1x2xL40S"]) == 0
    assert "goodput" in capsys.readouterr().out


def test_rate_scale_gives_the_slowest_engine_enough_units() -> None:
    assert rate_scale_for(16_250_000, 1024) == 1  # 15.9 req/s: milli-requests/s suffice
    d = rate_scale_for(8_300, 8192)  # 8.3 tokens/s at 8,192 output tokens
    assert 8192 % d == 0 and 8_300 * d // 8192 >= MIN_RATE_UNITS
    assert rate_scale_for(50, 100_003) == 100_003  # below 1 token/s: one unit is a milli-token/s


def test_a_slow_engines_rate_is_printed_with_its_digits() -> None:
    """At osl 100,000 an engine carries 0.0005 req/s, which the report printed as "0.00 req/s each"."""
    from autoparallel.workload import rps_text as _rps

    assert _rps(0.000511) == "0.000511" and _rps(4.1) == "4.10" and _rps(0.25) == "0.25"
