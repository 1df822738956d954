"""A rate no deployment carries names what each planner carries, not the single engine's alone."""

from collections.abc import Callable
from subprocess import CompletedProcess

RunCli = Callable[..., CompletedProcess[str]]
"""The `run_main` fixture (conftest.py): `run_cli` in this process."""


def test_the_infeasible_rate_names_the_deployments_capacities(run_main: RunCli) -> None:
    out = run_main(
        "plan",
        "meta-llama/Llama-3.1-8B",
        "--cluster",
        "1x2xH100",
        "--request-rate",
        "5000",
        "--isl",
        "1024",
        "--osl",
        "256",
        "--ttft-ms",
        "2000",
        "--tpot-ms",
        "50",
    )
    assert out.returncode == 1, out.stdout
    # the single engine's own figure, rated with its TTFT limit holding (s42 f5)
    assert "the best plan that fits and meets TPOT ≤ 50 ms carries" in out.stderr
    assert "the whole-cluster deployment (several engines) carries" in out.stderr
