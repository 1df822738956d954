"""Quantization names: `--quantization FP8` planned as fp8 in `memory` but was refused by `plan` (vLLM's
parser takes lower case only), and an unknown name (`foo`) was said to "need a checkpoint quantized that
way". A vLLM method in any case is read in its lower case (`configs.canonical_quantization`), and a name
vLLM 0.32 does not know is said to be one, with its choices."""

from __future__ import annotations

import pytest

from autoparallel.cli import main
from autoparallel.configs import canonical_quantization


def test_a_method_in_any_case_is_its_lower_case() -> None:
    assert canonical_quantization("FP8") == "fp8"
    assert canonical_quantization(" AWQ ") == "awq"
    assert canonical_quantization("FP8_PER_TENSOR") == "fp8"
    assert canonical_quantization("Foo") == "Foo" and canonical_quantization(None) is None


@pytest.mark.parametrize("command", [["memory", "--gpu", "H100"], ["plan", "--cluster", "1x1xH100"]])
def test_upper_case_fp8_plans_as_fp8_everywhere(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [command[0], "meta-llama/Llama-3.1-8B", *command[1:], "--quantization", "FP8"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert command[0] == "memory" or "--quantization fp8_per_tensor" in out


@pytest.mark.parametrize("command", [["memory", "--gpu", "H100"], ["plan", "--cluster", "1x1xH100"]])
def test_an_unknown_name_is_said_to_be_unknown(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [command[0], "meta-llama/Llama-3.1-8B", *command[1:], "--quantization", "foo"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "'foo' is not a vLLM 0.32 --quantization method" in err and "checkpoint quantized" not in err
