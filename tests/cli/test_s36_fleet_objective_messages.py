"""The two refusals of an objective for a fleet name the deployment objectives alike: `--objective ttft`
listed tpot among them, `--objective tpot` on two models then said a fleet optimizes the others."""

import subprocess
import sys
from pathlib import Path


def _plan(fleet: Path, objective: str) -> str:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "autoparallel",
            "plan",
            "--fleet",
            str(fleet),
            "--cluster",
            "1x8xH100",
            "--objective",
            objective,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2, out.stdout
    return out.stderr


def test_both_refusals_list_the_same_deployment_objectives(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("models:\n  - model: Qwen/Qwen3-8B\n  - model: Qwen/Qwen3-0.6B\n")
    ttft, tpot = _plan(fleet, "ttft"), _plan(fleet, "tpot")
    assert "tpot (of one model)" in ttft
    assert "goodput, throughput, cost, gpus, cost-per-mtok" in ttft
    assert "goodput, throughput, cost, gpus, cost-per-mtok" in tpot
