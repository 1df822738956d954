"""Context parallelism for multi-latent attention (keys 192 wide, values 128).

`evaluate --train --cp-comm-type a2a` priced DeepSeek-Coder-V2-Lite at tp=2 cp=2 with no problem, but
Transformer Engine's `attn_forward_func_with_cp` asserts that keys and values of two head sizes run
only with p2p or a2a+p2p ("The context parallel running configs cannot support MLA!"), so the job
fails at its first attention call. And the DeepSpeed "not expressible" line for an MLA plan at cp > 1
pointed at `plan --train --engine deepspeed` and `evaluate --cp-comm-type a2a`, both of which refuse
MLA under Ulysses: it now says the model cannot run it, and why."""

from __future__ import annotations

import pytest

from autoparallel.cli import main
from autoparallel.configs import Recompute, TrainingConfig, ZeroStage
from autoparallel.errors import InputError
from autoparallel.frameworks.deepspeed import deepspeed_config
from autoparallel.models import load_model
from autoparallel.validation import cp_comm_problem

MLA = "deepseek-ai/DeepSeek-Coder-V2-Lite-Base"


def test_megatron_all_to_all_refuses_keys_and_values_of_two_head_sizes() -> None:
    model = load_model(MLA)
    problem = cp_comm_problem(model, 2, 1, 2, "a2a")
    assert problem is not None and "192 and 128" in problem and "with p2p (or a2a+p2p" in problem
    assert cp_comm_problem(model, 2, 1, 2, "p2p") is None
    assert cp_comm_problem(load_model("meta-llama/Llama-3.1-8B"), 2, 1, 2, "a2a") is None


def test_evaluate_refuses_mla_all_to_all(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "evaluate", MLA, "--train", "--cluster", "1x8xH100", "--seq-len", "32768", "--global-batch", "32",
        "--tp", "2", "--cp", "2", "--cp-comm-type", "a2a", "--recompute", "full",
    ]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "192 and 128" in err and "Traceback" not in err


def test_the_deepspeed_line_of_an_mla_plan_says_ulysses_cannot_run_it() -> None:
    model = load_model(MLA)
    config = TrainingConfig(
        tp=4, pp=1, dp=1, cp=2, ep=8, cp_comm="p2p", micro_batch=1, global_batch=16, seq_len=65536,
        zero=ZeroStage.NONE, recompute=Recompute.NONE,
    )  # fmt: skip
    with pytest.raises(InputError) as caught:
        deepspeed_config(model, config)
    text = str(caught.value)
    assert "cannot run" in text and "one head size" in text
    assert "plans for it" not in text


def test_deepspeeds_ring_refusal_says_ulysses_cannot_run_mla(capsys: pytest.CaptureFixture[str]) -> None:
    """`evaluate --engine deepspeed --cp 2` (p2p by default) said DeepSpeed runs all-to-all, sending the
    user to `--cp-comm-type a2a`, which then refused the model's two head sizes."""
    argv = [
        "evaluate", "deepseek-ai/DeepSeek-V2-Lite", "--train", "--cluster", "1x8xH100", "--seq-len", "32768",
        "--global-batch", "64", "--engine", "deepspeed", "--cp", "2", "--tp", "1", "--ep", "1",
    ]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "not p2p, which this model cannot run" in err and "one head size" in err


def test_the_deepspeed_line_names_no_other_model(capsys: pytest.CaptureFixture[str]) -> None:
    """An alias (DeepSeek-V2-Lite is the zoo's DeepSeek-Coder-V2-Lite-Base) was named by the zoo id."""
    argv = [
        "plan", "deepseek-ai/DeepSeek-V2-Lite", "--train", "--cluster", "1x8xH100", "--seq-len", "32768",
        "--global-batch", "64",
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "which this model cannot run" in out and "Coder" not in out
