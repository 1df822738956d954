"""Idle GPUs of a disaggregated deployment say why with the round-robin mechanism and numbers, not
"the plan CP-SAT returned ... leaves them idle" (Qwen3-235B-A22B on 32x8xH200: 4 GPUs left that hold
one more prefill or decode engine, neither of which alone raises the carried rate)."""

from collections.abc import Callable
from subprocess import CompletedProcess

RunCli = Callable[..., CompletedProcess[str]]
"""The `run_cli` fixture (conftest.py)."""


def test_leftover_gpus_of_a_disaggregated_plan_name_the_roles(run_cli: RunCli) -> None:
    out = run_cli("plan", "Qwen/Qwen3-235B-A22B", "--cluster", "32x8xH200", "--disagg", "on")
    assert out.returncode == 0, out.stderr
    idle = [line for line in out.stdout.splitlines() if "GPUs idle" in line]
    assert idle and not any("the plan CP-SAT returned" in line for line in idle)
    assert any("one more engine of one role alone does not raise the carried rate" in line for line in idle)
