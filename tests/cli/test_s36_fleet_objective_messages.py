"""The two refusals of an objective for a fleet name the deployment objectives alike: `--objective ttft`
listed tpot among them, `--objective tpot` on two models then said a fleet optimizes the others."""

from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

RunCli = Callable[..., CompletedProcess[str]]
"""The `run_main` fixture (conftest.py): `run_cli` in this process."""


def _plan(run_main: RunCli, fleet: Path, objective: str) -> str:
    out = run_main("plan", "--fleet", str(fleet), "--cluster", "1x8xH100", "--objective", objective)
    assert out.returncode == 2, out.stdout
    return out.stderr


def test_both_refusals_list_the_same_deployment_objectives(run_main: RunCli, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("models:\n  - model: Qwen/Qwen3-8B\n  - model: Qwen/Qwen3-0.6B\n")
    ttft, tpot = _plan(run_main, fleet, "ttft"), _plan(run_main, fleet, "tpot")
    assert "tpot (of one model)" in ttft
    assert "goodput, throughput, cost, gpus, cost-per-mtok" in ttft
    assert "goodput, throughput, cost, gpus, cost-per-mtok" in tpot
