"""A plan's printed vLLM line evaluates as planned: `--quantization fp8_per_tensor` (what the vLLM
emitter writes for the planned online fp8) is read as fp8 by evaluate and memory, not refused."""

import json
import subprocess
import sys

import pytest

from autoparallel.configs import ServingConfig


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autoparallel", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("name", ["fp8_per_tensor", "FP8_per_tensor"])
def test_the_emitted_online_fp8_name_is_fp8(name: str) -> None:
    assert ServingConfig(quantization=name).quantization == "fp8"


def test_evaluate_and_memory_take_the_printed_quantization() -> None:
    ev = _cli(
        "evaluate",
        "meta-llama/Llama-3.1-8B",
        "--cluster",
        "1x1xH100",
        "--tp",
        "1",
        "--isl",
        "128",
        "--osl",
        "128",
        "--quantization",
        "fp8_per_tensor",
        "--json",
    )
    assert ev.returncode == 0, ev.stderr
    assert json.loads(ev.stdout)["config"]["quantization"] == "fp8"
    mem = _cli(
        "memory", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--quantization", "fp8_per_tensor", "--json"
    )
    assert mem.returncode == 0, mem.stderr
    assert json.loads(mem.stdout)["weights_gib"] < 9.0
