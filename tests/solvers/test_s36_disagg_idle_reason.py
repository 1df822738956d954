"""Idle GPUs of a disaggregated deployment say why with the round-robin mechanism and numbers, not
"the plan CP-SAT returned ... leaves them idle" (Qwen3-235B-A22B on 32x8xH200 left 4 GPUs that hold one
more prefill or decode engine, neither of which alone raises the carried rate; since its prefill ranks
are one queue it fills the cluster. Llama-3.1-70B on 2x8xH100 leaves 2 such GPUs)."""

from collections.abc import Callable
from subprocess import CompletedProcess

RunCli = Callable[..., CompletedProcess[str]]
"""The `run_main` fixture (conftest.py): `run_cli` in this process."""


def test_leftover_gpus_of_a_disaggregated_plan_name_the_roles(run_main: RunCli) -> None:
    out = run_main("plan", "meta-llama/Llama-3.1-70B-Instruct", "--cluster", "2x8xH100", "--disagg", "on")
    assert out.returncode == 0, out.stderr
    idle = [line for line in out.stdout.splitlines() if "GPUs idle" in line]
    assert idle and not any("the plan CP-SAT returned" in line for line in idle)
    assert any("one more engine of one role alone does not raise the carried rate" in line for line in idle)
