"""`plan --train --world-sizes`: the GPU counts a training plan may use; with cost or mfu it weighs
GPUs × step time over them (Llama-3.1-8B at global batch 7 on 8x8xH100: 7 GPUs for $97 where the
whole cluster cost $158). Without it those objectives rank the step time on the whole cluster."""

from __future__ import annotations

import json

import pytest

from autoparallel.cli import main

JOB = ["plan", "meta-llama/Llama-3.1-8B", "--train", "--cluster", "8x8xH100", "--seq-len", "8192"]
JOB += ["--global-batch", "7", "--tokens", "1e9", "--objective", "cost", "--json"]


def test_world_sizes_let_cost_weigh_fewer_gpus(capsys: pytest.CaptureFixture[str]) -> None:
    # 7 GPUs at ZeRO-3, which Megatron runs as priced with bf16 gradient reduction (asked for); its
    # default fp32 gradients (zero=dist) need 16
    assert main([*JOB, "--world-sizes", "7,16,64", "--grad-reduce-in-bf16"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["world_size"] == 7
    assert main([*JOB, "--world-sizes", "7,16,64"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["world_size"] == 16
    assert main(JOB) == 0
    assert json.loads(capsys.readouterr().out)["config"]["world_size"] == 64


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--world-sizes", "7,x"], "--world-sizes '7,x': give GPU counts like 8,16,64"),
        (["--world-sizes", "0"], "GPU counts of 1 or more"),
    ],
)
def test_bad_world_sizes_are_one_line(
    extra: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*JOB, *extra]) == 2
    assert said in capsys.readouterr().err


def test_world_sizes_is_a_training_flag(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "meta-llama/Llama-3.1-8B", "--cluster", "1x8xH100", "--world-sizes", "8"]
    assert main(argv) == 2
    assert "--world-sizes does not apply to serving" in capsys.readouterr().err
