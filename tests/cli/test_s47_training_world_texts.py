"""Training texts about the GPUs a job uses.

- `evaluate --train` of a layout on 64 of an NVL72 rack's 72 GPUs, 8.2% faster than the planner's
  optimum, said it was "a value off its grid or past its memory margins": the optimum fills the
  cluster, and the line now says so and names `--world-sizes`.
- `plan --train` on 72 GPUs listed no `gpus:` line, though 72 = 8 x 9 narrows the degrees (64 GPUs ran
  8% faster): a cluster whose size is not a power of two now gets one.
- `evaluate --train --tp 3` on 32 GPUs rounded dp down to 10 and blamed the global batch.
- A runner-up whose step takes half the time was "50.0% faster"; it is 2.00x as fast."""

from __future__ import annotations

import pytest

from autoparallel.cli import main

RACK = ["--cluster", "1x72xGB200", "--seq-len", "4096", "--global-batch", "64"]


def test_evaluate_names_the_gpus_it_leaves_out(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["evaluate", "meta-llama/Llama-3.1-8B", "--train", *RACK, "--tp", "2", "--dp", "32"]
    assert main([*argv, "--micro-batch", "2", "--recompute", "none"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "solver:" in x)
    assert "above the planner's optimum" in line and "it uses 64 of the cluster's 72 GPUs" in line
    assert "--world-sizes 64,72" in line and "off its grid" not in line


def test_a_plan_on_72_gpus_names_the_whole_cluster_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "meta-llama/Llama-3.1-8B", "--train", *RACK]) == 0
    out = capsys.readouterr().out
    assert "gpus: all 72 GPUs, the default: the odd factor 9 of 72 does not divide the global batch 64" in out
    assert main(["plan", "meta-llama/Llama-3.1-8B", "--train", "--cluster", "1x8xH100", *RACK[2:]]) == 0
    assert "gpus: all" not in capsys.readouterr().out
    # 6 GPUs at a global batch of 96: 3 divides it, nothing is narrowed, no line
    argv = ["plan", "meta-llama/Llama-3.1-8B", "--train", "--cluster", "1x6xH100", "--seq-len", "4096"]
    assert main([*argv, "--global-batch", "96"]) == 0
    assert "gpus: all" not in capsys.readouterr().out


def test_evaluate_says_the_layout_exceeds_the_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["evaluate", "meta-llama/Llama-3.1-8B", "--train", "--cluster", "1x8xH100", "--seq-len", "4096"]
    assert main([*argv, "--global-batch", "64", "--tp", "16"]) == 2
    err = capsys.readouterr().err
    assert "= 16 GPUs, but the cluster has 8" in err and "pass --dp" not in err


def test_evaluate_says_the_layout_does_not_divide_the_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "evaluate",
        "mistralai/Mixtral-8x7B-v0.1",
        "--train",
        "--cluster",
        "4x8xH100",
        "--seq-len",
        "4096",
    ]
    assert main([*argv, "--global-batch", "512", "--tp", "3"]) == 2
    err = capsys.readouterr().err
    assert "tp × pp × cp = 3 × 1 × 1 = 3 does not divide the cluster's 32 GPUs" in err
    assert "global-batch" not in err


def test_a_runner_up_twice_as_fast_is_said_so() -> None:
    from types import SimpleNamespace
    from typing import Any

    from autoparallel.solvers.training.decoder import why_lost

    best: Any = SimpleNamespace(step_time_s=6.726)
    other: Any = SimpleNamespace(step_time_s=3.365)
    text = why_lost(best, other, gpus=(8, 32))
    assert text.endswith("its step is 2.00x as fast") and "50.0% faster" not in text
    assert why_lost(other, best, gpus=(32, 8)).endswith("its step is 99.9% slower")
