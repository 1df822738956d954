"""`plan`: the runner-up names its engine when it is not the plan's; the single-engine plan and the
"Whole cluster" deployment launch one plan at one gpu_memory_utilization."""

from __future__ import annotations

import re

import pytest

from autoparallel.cli import main

MOE = "Qwen/Qwen3-30B-A3B"
QWEN3_MOE = ["plan", MOE, "--cluster", "1x2xH100", "--workload", "chatbot", "--disagg", "off"]


def _runner_up(out: str) -> str:
    lines = [x for x in out.splitlines() if x.startswith("runner-up (")]
    assert len(lines) == 1, out
    return lines[0]


def test_a_vllm_runner_up_of_a_tensorrt_plan_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    """The engine comparison picks TensorRT-LLM; the runner-up (JSON `runner_up.engine` "vllm") was
    printed as `runner-up (tp=2, pp=2, replicas=1)`, read as a TensorRT-LLM layout."""
    assert main([*QWEN3_MOE, "--engine", "auto"]) == 0
    out = capsys.readouterr().out
    assert "\nengine: TensorRT-LLM\n" in out
    assert _runner_up(out).startswith("runner-up (vLLM, tp=")


@pytest.mark.parametrize("engine", ["vllm", "trtllm"])
def test_a_runner_up_of_the_plans_engine_goes_unnamed(
    engine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """One engine: the runner-up is the plan's engine, which the `engine:` line already names."""
    assert main([*QWEN3_MOE, "--engine", engine]) == 0
    assert re.match(r"runner-up \(tp=\d+, ", _runner_up(capsys.readouterr().out))


def _utils(out: str) -> list[str]:
    """--gpu-memory-utilization of every launch line: the plan's, then the deployment's."""
    return re.findall(r"vllm serve .*--gpu-memory-utilization ([0-9.]+)", out)


@pytest.mark.parametrize(
    "argv",
    [
        [
            "plan", "meta-llama/Llama-3.1-70B", "--cluster", "1x8xH100", "--workload", "chatbot",
            "--gpu-memory-utilization", "0.8,0.9", "--concurrency", "100", "--disagg", "off",
        ],
        [  # the deployment's TPOT objective plans through the mixed front (deployment/mixed.py)
            "plan", "meta-llama/Llama-3.1-70B", "--cluster", "1x8xH100", "--workload", "chatbot",
            "--gpu-memory-utilization", "0.8,0.9", "--concurrency", "100", "--disagg", "off",
            "--objective", "tpot",
        ],
        [
            "plan", "Qwen/Qwen2.5-7B", "--cluster", "1x1xA100-80G", "--isl", "6000", "--osl", "400",
            "--concurrency", "16", "--max-model-len", "8192", "--gpu-memory-utilization", "0.85,0.9,0.95",
            "--disagg", "off",
        ],
    ],
)  # fmt: skip
def test_plan_and_deployment_launch_one_memory_setting(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Equal-throughput memory settings: the plan launched at the largest, the whole-cluster deployment
    of the same engine at the smallest (0.9 vs 0.8, 0.95 vs 0.85)."""
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Whole cluster" in out
    utils = _utils(out)
    assert len(utils) == 2, out
    assert utils[0] == utils[1] == argv[argv.index("--gpu-memory-utilization") + 1].split(",")[-1]
