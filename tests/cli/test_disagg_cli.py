"""`plan --disagg` where the deployment planner plans: mixed pools compare, a fleet file says why not;
the verdict's words without a TTFT limit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoparallel.cli import main

QWEN_MIXED = [
    "plan",
    "Qwen/Qwen3-0.6B",
    "--cluster",
    "1x2xH100+1x2xA100-80G",
    "--isl",
    "1024",
    "--osl",
    "128",
]


def test_mixed_pools_run_the_comparison(capsys: pytest.CaptureFixture[str]) -> None:
    """`--disagg auto` on a mixed cluster exited 0 with no comparison and no note (`on` exited 2),
    though `compare_disagg` plans mixed clusters."""
    assert main([*QWEN_MIXED, "--tpot-ms", "20", "--disagg", "auto", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["comparison"]["aggregated"] is not None and d["comparison"]["disaggregated"] is not None
    assert d["deployment"]["mode"] == d["comparison"]["winner"]


def test_mixed_pools_on_prints_the_deployment_then_the_disaggregated_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([*QWEN_MIXED, "--tpot-ms", "20", "--disagg", "on"]) == 0
    out = capsys.readouterr().out
    assert (
        out.index("Deployment on") < out.index("Aggregated vs disaggregated") < out.index("-> disaggregated")
    )


def test_mixed_pools_off_is_the_deployment_alone(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*QWEN_MIXED, "--disagg", "off"]) == 0
    assert "Aggregated vs disaggregated" not in capsys.readouterr().out


def test_a_fleet_file_says_it_is_not_compared(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("models:\n  - model: Qwen/Qwen3-0.6B\n    isl: 1024\n    osl: 128\n")
    assert main(["plan", "--fleet", str(fleet), "--cluster", "1x2xH100", "--disagg", "auto"]) == 0
    captured = capsys.readouterr()
    notes = [line for line in captured.err.splitlines() if "--disagg auto" in line]
    assert len(notes) == 1 and "no disaggregation comparison for a --fleet file" in notes[0]
    assert "Aggregated vs disaggregated" not in captured.out


def test_no_ttft_limit_is_not_said_to_be_kept(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --ttft-ms the aggregated side's verdict said the prefill ranks are "held below full load to
    keep TTFT" while the TTFT column read "unbounded"."""
    argv = [
        "plan",
        "Qwen/Qwen3-0.6B",
        "--cluster",
        "1x4xH100",
        "--isl",
        "512",
        "--osl",
        "32",
        "--disagg",
        "on",
    ]
    assert main(argv) == 0
    verdict = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("  -> "))
    assert "though aggregated would win" in verdict
    assert "to keep TTFT" not in verdict and "rated at full load without a --ttft-ms" in verdict
