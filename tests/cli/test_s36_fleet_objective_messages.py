"""The two refusals of an objective for a fleet name the deployment objectives alike: `--objective ttft`
listed tpot among them, `--objective tpot` on two models then said a fleet optimizes the others."""

from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

RunCli = Callable[..., CompletedProcess[str]]
"""The `run_cli` fixture (conftest.py)."""


def _plan(run_cli: RunCli, fleet: Path, objective: str) -> str:
    out = run_cli("plan", "--fleet", str(fleet), "--cluster", "1x8xH100", "--objective", objective)
    assert out.returncode == 2, out.stdout
    return out.stderr


def test_both_refusals_list_the_same_deployment_objectives(run_cli: RunCli, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("models:\n  - model: Qwen/Qwen3-8B\n  - model: Qwen/Qwen3-0.6B\n")
    ttft, tpot = _plan(run_cli, fleet, "ttft"), _plan(run_cli, fleet, "tpot")
    assert "tpot (of one model)" in ttft
    assert "goodput, throughput, cost, gpus, cost-per-mtok" in ttft
    assert "goodput, throughput, cost, gpus, cost-per-mtok" in tpot
