"""Sequence parallelism is off at tp 1 in every training config, as Megatron's `validate_args` sets it."""

import json
from collections.abc import Callable
from subprocess import CompletedProcess

from autoparallel.configs import TrainingConfig

RunCli = Callable[..., CompletedProcess[str]]
"""The `run_main` fixture (conftest.py): `run_cli` in this process."""


def test_config_turns_sequence_parallel_off_at_tp1() -> None:
    assert TrainingConfig().sequence_parallel is False
    assert TrainingConfig(tp=1, sequence_parallel=True).sequence_parallel is False
    assert TrainingConfig(tp=2).sequence_parallel is True
    assert TrainingConfig(tp=2, sequence_parallel=False).sequence_parallel is False


def test_plan_json_at_tp1_says_no_sequence_parallel(run_main: RunCli) -> None:
    out = run_main(
        "plan",
        "Qwen/Qwen3-0.6B",
        "--cluster",
        "1x1xH100",
        "--train",
        "--seq-len",
        "2048",
        "--global-batch",
        "8",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    cfg = json.loads(text)
    found = []

    def walk(x: object) -> None:
        if isinstance(x, dict):
            if "sequence_parallel" in x and x.get("tp") == 1:
                found.append(x["sequence_parallel"])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(cfg)
    assert found and not any(found)
