"""A fleet's rates in text are rounded down (`workload.rps_text`), as JSON's `capacity_rps` is
(`plan.round_floats`), and an unmet rate is never printed as 0.00.

Llama-3.1-8B at TTFT 300 ms / TPOT 30 ms carries 14.8092 req/s on one H100 (JSON `capacity_rps`); the
text said `capacity 14.81 req/s`, and that rate fed back (`plan --fleet` of a file at 14.81) printed
`UNMET 0.000703 req/s`, and with `--objective cost` exited 1."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from autoparallel.cli import main

ENTRY = "{model: meta-llama/Llama-3.1-8B, request_rate: %s, ttft_ms: 300, tpot_ms: 30}"


def _fleet(tmp_path: Path, rate: str) -> str:
    path = tmp_path / f"fleet_{rate}.yaml"
    path.write_text("models:\n  - " + ENTRY % rate + "\n")
    return str(path)


@pytest.mark.parametrize(
    ("value", "down", "up"),
    [
        (14.8092, "14.80", "14.81"),  # printed 14.81 (to nearest)
        (14.81, "14.81", "14.81"),  # a float a hair below 14.81 stays 14.81 (repr)
        (2.675, "2.67", "2.68"),
        (0.0007031, "0.000703", "0.000704"),  # three significant digits below 1 req/s
        (0.9999, "0.999", "1.00"),
        (0.5, "0.5", "0.5"),
        (0.0, "0", "0"),
        (1e27, f"{1e27:.2f}", f"{1e27:.2f}"),  # more digits than decimal's default 28
    ],
)
def test_rates_are_rounded_down_and_a_shortfall_up(value: float, down: str, up: str) -> None:
    from autoparallel.workload import rps_text

    assert rps_text(value) == down
    assert rps_text(value, up=True) == up


def test_the_printed_capacity_fed_back_is_carried(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cluster = ["--cluster", "1x1xH100"]
    assert main(["plan", "--fleet", _fleet(tmp_path, "7"), *cluster, "--json"]) == 0
    (engine,) = json.loads(capsys.readouterr().out)["deployment"]["engines"]
    assert main(["plan", "--fleet", _fleet(tmp_path, "7"), *cluster]) == 0
    out = capsys.readouterr().out
    shown = re.search(r"capacity ([0-9.]+) req/s each", out)
    assert shown is not None
    assert float(shown.group(1)) <= engine["capacity_rps"]  # printed 14.81 of 14.8092
    assert f"capacity {shown.group(1)} req/s on 1 GPUs" in out
    fed = _fleet(tmp_path, shown.group(1))
    assert main(["plan", "--fleet", fed, *cluster]) == 0
    assert "UNMET" not in capsys.readouterr().out  # printed UNMET 0.000703 req/s
    assert main(["plan", "--fleet", fed, *cluster, "--objective", "cost"]) == 0  # exited 1
    capsys.readouterr()


def test_an_unmet_rate_is_printed_with_its_digits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--fleet", _fleet(tmp_path, "14.81"), "--cluster", "1x1xH100"]) == 0
    out = capsys.readouterr().out
    unmet = re.search(r"UNMET ([0-9.e-]+) req/s", out)
    assert unmet is not None and float(unmet.group(1)) > 0
    assert "capacity 14.80 req/s on 1 GPUs" in out  # the unmet rate is the rate less the capacity


def test_the_unmet_note_names_a_shortfall_with_its_digits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The note said `UNMET 0.00 of 14.81 req/s (carried 14.81 on 1 GPUs)`, and `--objective cost`
    `(14.81 req/s each, 1 GPUs); pool 0 holds 1 (14.81 req/s)` of 14.8092."""
    fleet = _fleet(tmp_path, "14.81")
    assert main(["plan", "--fleet", fleet, "--cluster", "1x1xH100"]) == 0
    err = capsys.readouterr().err
    assert "UNMET 0.00 " not in err and "carried 14.81 " not in err
    assert "UNMET 0.000704 of 14.81 req/s (carried 14.80 on 1 GPUs)" in err
    assert main(["plan", "--fleet", fleet, "--cluster", "1x1xH100", "--objective", "cost"]) == 1
    err = capsys.readouterr().err
    assert "(14.80 req/s each, 1 GPUs); pool 0 holds 1 (14.80 req/s)" in err
