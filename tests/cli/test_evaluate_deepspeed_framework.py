"""`evaluate --train --engine deepspeed` checks the layout by DeepSpeed's rules, not Megatron's.

DeepSpeed's `UlyssesSPAttentionHF` replicates KV heads (kv_replication_factor = world_size //
kv_head_count), so gemma-3-1b-it's one KV head runs cp=2 under Ulysses, where Transformer Engine's
all-to-all context parallelism refuses it; evaluate refused the DeepSpeed plan's own layout.
"""

from __future__ import annotations

import json

import pytest

from autoparallel.cli import main

JOB = [
    "google/gemma-3-1b-it",
    "--cluster",
    "2x1xH200",
    "--train",
    "--seq-len",
    "8192",
    "--global-batch",
    "32",
]
LAYOUT = ["--cp", "2", "--cp-comm-type", "a2a", "--zero", "3", "--recompute", "full"]


def _json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main([*args, "--json"]) == 0
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


def test_the_deepspeed_plan_evaluates_to_its_own_figures(capsys: pytest.CaptureFixture[str]) -> None:
    plan = _json(["plan", *JOB, "--engine", "deepspeed", "--objective", "memory"], capsys)
    config = plan["config"]
    assert isinstance(config, dict) and (config["cp"], config["cp_comm"], config["zero"]) == (2, "a2a", "3")
    ev = _json(["evaluate", *JOB, *LAYOUT, "--engine", "deepspeed"], capsys)
    assert ev["config"] == config
    for key in ("tokens_per_s", "step_time_s"):
        assert ev["perf"][key] == pytest.approx(plan["perf"][key], rel=1e-9)  # type: ignore[index]
    assert ev["memory"]["peak_gib"] == pytest.approx(plan["memory"]["peak_gib"])  # type: ignore[index]


def test_megatron_stays_the_default_and_refuses_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", *JOB, *LAYOUT]) == 2
    assert "Transformer Engine" in capsys.readouterr().err
    assert main(["evaluate", *JOB, *LAYOUT, "--engine", "megatron"]) == 2


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ([*JOB, *LAYOUT, "--engine", "vllm"], "is a serving engine"),
        (["Qwen/Qwen3-0.6B", "--cluster", "1x1xH100", "--engine", "deepspeed"], "is a training framework"),
    ],
)
def test_the_wrong_kind_of_engine_is_a_one_line_error(
    args: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert said in err and len(err.splitlines()) == 1


_EV = ["evaluate", "meta-llama/Llama-3.1-8B", "--cluster", "1x8xH100", "--train", "--seq-len", "4096"]
_EV += ["--global-batch", "256", "--tp", "1"]


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--pp", "2", "--dp", "4", "--zero", "2"], "zero=2 with pp=2: DeepSpeed's PipelineEngine"),
        (["--pp", "1", "--dp", "8", "--zero", "dist"], "zero=dist: Megatron's distributed optimizer"),
        (["--pp", "2", "--dp", "4", "--layers-per-stage", "²,30"], "expected layer counts"),
    ],
)
def test_deepspeed_rules_and_stage_counts_are_one_line_errors(
    extra: list[str], match: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """DeepSpeed layouts it does not run were priced (exit 0/1 with a ds_config "not expressible"), and
    a superscript stage count was an internal error (exit 3)."""
    engine = [] if "--layers-per-stage" in extra else ["--engine", "deepspeed"]
    assert main([*_EV, *extra, *engine]) == 2
    assert match in capsys.readouterr().err


def test_deepspeed_defaults_to_its_zero_1(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --zero, evaluate priced Megatron's distributed optimizer and emitted a ZeRO-1 ds_config."""
    assert main([*_EV, "--pp", "1", "--dp", "8", "--engine", "deepspeed"]) == 0
    assert "ZeRO 1;" in capsys.readouterr().out
