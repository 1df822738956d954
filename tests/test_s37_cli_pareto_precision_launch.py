"""pareto --engine with --disagg off (cli/pareto_cmd.cmd_pareto), --precision fp16 on the CLI
(configs.TRAINING_PRECISIONS), and the launch refusal of ranks that do not fill whole hosts
(frameworks/_common.node_shape)."""

from __future__ import annotations

import json

import pytest

from autoparallel.cli import main


def test_pareto_plans_trtllm_deployments_with_disagg_off(capsys: pytest.CaptureFixture[str]) -> None:
    """`--disagg off` asks for no disaggregation; the deployment planner plans TensorRT-LLM engines. It
    was refused as "--engine trtllm does not apply"."""
    argv = ["pareto", "Qwen/Qwen3-8B", "--cluster", "1x2xH100", "--request-rate", "5"]
    assert (
        main([*argv, "--objectives", "throughput,gpus", "--engine", "trtllm", "--disagg", "off", "--json"])
        == 0
    )
    points = json.loads(capsys.readouterr().out)["points"]
    assert points and {e["engine"] for p in points for e in p["engines"]} == {"trtllm"}
    assert main([*argv, "--engine", "sglang", "--disagg", "auto"]) == 2  # prefill/decode: vLLM's (NIXL)
    assert "--disagg auto plans vLLM prefill/decode engines" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["plan", "evaluate", "pareto"])
def test_the_cli_takes_fp16_training_as_the_api_does(command: str) -> None:
    """--precision offered bf16 and fp8 only, while the API and sweep take fp16 (Megatron --fp16)."""
    from autoparallel.cli import build_parser

    argv = [command, "meta-llama/Llama-3.1-8B", "--cluster", "1x8xH100", "--train", "--precision", "fp16"]
    assert build_parser().parse_args(argv).precision == "fp16"  # argparse exited 2 ("invalid choice")


def test_evaluate_fp16_training_emits_megatrons_fp16(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["evaluate", "meta-llama/Llama-3.1-8B", "--cluster", "1x8xH100", "--train", "--seq-len", "4096"]
    assert main([*argv, "--global-batch", "64", "--tp", "2", "--precision", "fp16"]) == 0
    assert " --fp16 " in capsys.readouterr().out


def test_ranks_over_part_of_a_node_are_refused_for_the_true_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """12 GPUs on 2x8: "a launcher starts the same number of processes on every host" was offered as
    the obstacle, though 2 hosts x 6 is the same number on each. The cost model prices 8 + 4 (ranks
    node-major), which one count per host cannot start; 2 x 6 splits ranks 6-7 off the first host."""
    argv = ["evaluate", "meta-llama/Llama-3.1-8B", "--cluster", "2x8xH100", "--train", "--seq-len", "4096"]
    assert main([*argv, "--global-batch", "63", "--tp", "4", "--dp", "3"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert "places the ranks node-major, 8 + 4" in err
    assert "2 x 6, the same count on each, is another placement (ranks 6-7 would leave the first host)" in err
