"""A plan's printed vLLM line evaluates as planned: `--quantization fp8_per_tensor` (what the vLLM
emitter writes for the planned online fp8) is read as fp8 by evaluate and memory, not refused."""

import json
from collections.abc import Callable
from subprocess import CompletedProcess

import pytest

from autoparallel.configs import ServingConfig

RunCli = Callable[..., CompletedProcess[str]]
"""The `run_main` fixture (conftest.py): `run_cli` in this process."""


@pytest.mark.parametrize("name", ["fp8_per_tensor", "FP8_per_tensor"])
def test_the_emitted_online_fp8_name_is_fp8(name: str) -> None:
    assert ServingConfig(quantization=name).quantization == "fp8"


def test_evaluate_and_memory_take_the_printed_quantization(run_main: RunCli) -> None:
    ev = run_main(
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
    mem = run_main(
        "memory", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--quantization", "fp8_per_tensor", "--json"
    )
    assert mem.returncode == 0, mem.stderr
    assert json.loads(mem.stdout)["weights_gib"] < 9.0
