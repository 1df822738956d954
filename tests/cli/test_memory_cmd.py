"""`autoparallel memory`: breakdown, JSON, exit codes and input errors (parser built locally)."""

from __future__ import annotations

import argparse
import json

import pytest

from autoparallel.cli import main
from autoparallel.cli.memory_cmd import add_memory_parser, cmd_memory
from autoparallel.errors import InputError


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="autoparallel")
    add_memory_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["memory", *argv])
    return int(args.func(args))


def test_breakdown_and_exit_zero_when_it_fits(capsys: pytest.CaptureFixture[str]) -> None:
    rc = _run(["meta-llama/Llama-3.1-8B", "--gpu", "H100", "--max-model-len", "8192"])
    out = capsys.readouterr().out
    assert rc == 0
    for word in ("weights", "activation", "non-torch", "CUDA graphs", "KV cache", "KV tokens", "concurrency"):
        assert word in out
    assert "fits: yes" in out


def test_json_has_every_key(capsys: pytest.CaptureFixture[str]) -> None:
    rc = _run(
        [
            "meta-llama/Llama-3.1-8B",
            "--gpu",
            "H100",
            "--tp",
            "2",
            "--pp",
            "2",
            "--json",
            "--vllm-version",
            "0.19",
            "--gpu-memory-utilization",
            "0.95",
            "--kv-cache-dtype",
            "fp8",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert rc == 0
    for key in (
        "weights_gib",
        "activation_peak_gib",
        "non_torch_gib",
        "cuda_graph_gib",
        "kv_cache_gib",
        "kv_cache_tokens",
        "max_concurrency",
        "kv_bytes_per_token_per_gpu",
        "stage",
        "fits",
        "problems",
    ):
        assert key in data
    assert len(data["stages"]) == 2 and data["tp"] == 2 and data["kv_cache_dtype"] == "fp8"


def test_cannot_start_prints_the_reason_and_exits_one(capsys: pytest.CaptureFixture[str]) -> None:
    rc = _run(["meta-llama/Llama-3.1-70B", "--gpu", "H100", "--tp", "2", "--max-model-len", "131072"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "cannot start" in out and "estimated maximum model length" in out and "fix: use" in out


def test_pipeline_breakdown_marks_the_limiting_stage(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["meta-llama/Llama-3.1-8B", "--gpu", "H100", "--pp", "2", "--enforce-eager"]) == 0
    out = capsys.readouterr().out
    assert "stage 1" in out and "limits KV" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["meta-llama/Llama-3.1-8B", "--gpu", "NoSuchGPU"],
        ["meta-llama/Llama-3.1-8B", "--gpu", "H100", "--tp", "3"],
        ["meta-llama/Llama-3.1-8B", "--gpu", "H100", "--kv-cache-dtype", "int2"],
        ["meta-llama/Llama-3.1-8B", "--gpu", "H100", "--vllm-version", "latest"],
    ],
)
def test_bad_input_raises_input_error(argv: list[str]) -> None:
    with pytest.raises(InputError):
        _run(argv)


def test_fewer_batched_tokens_than_sequences_is_refused_as_evaluate_refuses_it() -> None:
    """vLLM's SchedulerConfig._verify_args refuses max_num_batched_tokens < max_num_seqs; `memory`
    said "fits: yes" (exit 0) where `evaluate` exits 2 (validation.batched_tokens_problem)."""
    argv = ["Qwen/Qwen3-8B", "--gpu", "H100", "--max-num-seqs", "1024"]
    with pytest.raises(InputError, match=r"max_num_batched_tokens=16: below max_num_seqs=1024.*ge_seqs"):
        _run([*argv, "--max-num-batched-tokens", "16"])
    assert _run([*argv, "--max-num-batched-tokens", "1024"]) == 0


def test_out_of_range_utilization_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        _run(["meta-llama/Llama-3.1-8B", "--gpu", "H100", "--gpu-memory-utilization", "1.5"])
    assert info.value.code == 2
    assert "argument --gpu-memory-utilization: got 1.5: must be in" in capsys.readouterr().err


def test_cmd_memory_is_the_registered_handler() -> None:
    parser = argparse.ArgumentParser(prog="autoparallel")
    add_memory_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["memory", "x", "--gpu", "H100"])
    assert args.func is cmd_memory


def test_memory_says_vllm_cannot_start_a_model_its_kernels_do_not_run_on_the_gpu(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The memory fits, but vLLM refuses the format or the attention on that GPU: gpt-oss (MXFP4,
    least compute capability 8.0) on T4s, DeepSeek-V3.2 (sparse-attention kernels on Hopper and
    Blackwell) on A100s. `memory` says it cannot start, with the reason, and exits 1."""
    assert _run(["openai/gpt-oss-20b", "--gpu", "T4", "--tp", "2", "--max-model-len", "4096"]) == 1
    out = capsys.readouterr().out
    assert "fits: NO" in out and "compute capability 8.0" in out
    args = ["deepseek-ai/DeepSeek-V3.2", "--gpu", "A100-80G", "--tp", "8", "--pp", "2", "--json"]
    assert _run([*args, "--max-model-len", "4096"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["fits"] is False and "Sparse Attention" in report["problems"][0]
    assert _run(["openai/gpt-oss-20b", "--gpu", "A100-80G", "--max-model-len", "4096"]) == 0


@pytest.mark.parametrize(
    ("version", "noted"), [("0.33", True), ("1.0", True), ("0.32.4", False), ("0.19", False)]
)
def test_a_release_after_the_modelled_one_is_said_to_get_its_rules(
    version: str, noted: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--vllm-version 9.9` printed "vLLM 9.9.0 (V1)" over 0.32's accounting as if 9.9 were modelled;
    a later minor series is now named as given 0.32's rules (a 0.32 patch release is not)."""
    assert _run(["meta-llama/Llama-3.1-8B", "--gpu", "H100", "--vllm-version", version]) == 0
    err = capsys.readouterr().err
    assert (f"note: vLLM {version} is newer than 0.32" in err) is noted


def test_quantization_none_is_no_quantization_in_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    """`plan --quantization none,fp8` reads none as unquantized; evaluate and memory refused it."""
    assert main(["memory", "Qwen/Qwen3-8B", "--gpu", "H100", "--quantization", "none"]) == 0
    assert main(["evaluate", "Qwen/Qwen3-8B", "--cluster", "1x1xH100", "--quantization", "none"]) == 0
    capsys.readouterr()


def test_dp_on_an_moe_model_without_ep_says_what_it_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    """`memory --dp 2` on Qwen3-30B-A3B printed one engine's weights with no word that vLLM's
    --data-parallel-size would shard the experts over both GPUs (evaluate says so)."""
    assert main(["memory", "Qwen/Qwen3-30B-A3B", "--gpu", "H100", "--dp", "2"]) == 0
    assert "would instead shard the experts over all 2 GPUs" in capsys.readouterr().err
    assert main(["memory", "Qwen/Qwen3-8B", "--gpu", "H100", "--dp", "2"]) == 0
    assert "shard the experts" not in capsys.readouterr().err
