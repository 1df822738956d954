"""DeepSpeed's expert tensor parallelism, the `evaluate` line of a DeepSpeed front point, and the
training engine names `api.evaluate` takes.

- DeepSpeed splits an MoE layer's experts over the whole tensor-parallel group or not at all
  (deepspeed/utils/groups.py `_create_expert_data_and_model_parallel` sets the expert tensor-parallel
  size to the mpu's tp; deepspeed/moe/layer.py `MoE._create_process_groups` builds whole-expert groups
  otherwise). `evaluate --engine deepspeed --tp 4 --etp 2` priced etp = 2 (2.98 s, 67.4 GiB for
  Mixtral-8x7B on 2x8xH100) and emitted `enable_expert_tensor_parallelism=True`, which runs etp = 4
  (4.26 s, 58.5 GiB).
- `pareto --train --engine deepspeed` gave each point an `evaluate` line without `--engine deepspeed`
  (nor `--tokens`): it re-evaluated the point under Megatron's rules and optimum, without its cost.
- `api.evaluate(..., TrainingConfig, engine="bogus")` called "bogus" a serving engine.
"""

from __future__ import annotations

import json
import shlex

import pytest

from autoparallel import api
from autoparallel.cli import main
from autoparallel.configs import TrainingConfig, ZeroStage
from autoparallel.errors import InputError
from autoparallel.frameworks.deepspeed import deepspeed_config, deepspeed_notes
from autoparallel.models import load_model

MIXTRAL = "mistralai/Mixtral-8x7B-v0.1"
JOB = ["--cluster", "2x8xH100", "--train", "--seq-len", "4096", "--global-batch", "64"]
FLAG = "enable_expert_tensor_parallelism=True"


@pytest.mark.parametrize(
    ("flags", "allowed"),
    [
        (["--tp", "4", "--dp", "4", "--ep", "4", "--etp", "2"], "etp=2 with tp=4"),
        (["--tp", "1", "--dp", "8", "--ep", "4", "--etp", "2"], "etp=2 with tp=1"),
    ],
)
def test_deepspeed_evaluate_refuses_an_expert_split_other_than_1_or_tp(
    flags: list[str], allowed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", MIXTRAL, *JOB, "--engine", "deepspeed", *flags, "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert allowed in err and "DeepSpeed splits experts over the whole tensor-parallel group" in err


def test_deepspeed_evaluate_prices_etp_1_and_tp() -> None:
    """The two splits DeepSpeed runs still evaluate (the API's check is `_require_deepspeed_sharding`)."""
    base = TrainingConfig(tp=4, dp=4, ep=4, seq_len=4096, global_batch=64, zero=ZeroStage.OPTIMIZER)
    for etp in (None, 1, 4):
        plan = api.evaluate(
            MIXTRAL, "2x8xH100", base.model_copy(update={"etp": etp}), engine="deepspeed", compare=False
        )
        assert plan.framework == "deepspeed"
    with pytest.raises(InputError, match="etp=2 with tp=4"):
        api.evaluate(
            MIXTRAL, "2x8xH100", base.model_copy(update={"etp": 2}), engine="deepspeed", compare=False
        )


def test_the_expert_tensor_parallel_flag_is_emitted_only_for_etp_equal_to_tp() -> None:
    model = load_model(MIXTRAL)
    base = TrainingConfig(tp=4, dp=4, ep=4, global_batch=64, zero=ZeroStage.OPTIMIZER)
    for etp in (None, 4):
        notes = " ".join(deepspeed_notes(model, base.model_copy(update={"etp": etp})))
        assert FLAG in notes and "split over the tp=4 tensor-parallel group" in notes
    assert FLAG not in " ".join(deepspeed_notes(model, base.model_copy(update={"etp": 1})))
    one = TrainingConfig(tp=1, dp=16, ep=4, etp=1, global_batch=64, zero=ZeroStage.OPTIMIZER)
    assert FLAG not in " ".join(deepspeed_notes(model, one))
    # etp=2 under tp=4 (a Megatron evaluation's layout): no flag runs it, so the ds_config is refused.
    uneven = base.model_copy(update={"etp": 2})
    notes = " ".join(deepspeed_notes(model, uneven))
    assert FLAG not in notes and "so etp must be 1 or 4" in notes
    with pytest.raises(InputError, match="etp=2 with tp=4"):
        deepspeed_config(model, uneven)


def test_a_deepspeed_fronts_evaluate_line_gives_back_each_points_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The line carries --engine deepspeed and --tokens: run through the CLI it gives the point's
    framework, step time, memory and cost to the token budget."""
    argv = ["Qwen/Qwen3-8B", "--cluster", "1x4xH100", "--train", "--seq-len", "2048", "--global-batch", "16"]
    argv += ["--engine", "deepspeed", "--tokens", "1e9", "--json"]
    assert main(["pareto", *argv]) == 0
    points = json.loads(capsys.readouterr().out)["points"]
    assert points
    for point in (points[0], points[-1]):
        words = shlex.split(point["evaluate"])
        assert words[:2] == ["autoparallel", "evaluate"]
        assert "--engine" in words and words[words.index("--engine") + 1] == "deepspeed"
        assert "--tokens" in words and float(words[words.index("--tokens") + 1]) == 1e9
        assert main([*words[1:], "--json"]) == 0
        got = json.loads(capsys.readouterr().out)
        assert got["framework"] == point["framework"] == "deepspeed"
        assert got["workload"] == point["workload"]
        assert got["config"] == point["config"]
        assert got["perf"]["step_time_s"] == pytest.approx(point["perf"]["step_time_s"])
        assert got["memory"]["peak_gib"] == pytest.approx(point["memory"]["peak_gib"])
        assert got["perf"]["usd_to_train"] == pytest.approx(point["perf"]["usd_to_train"])


@pytest.mark.parametrize("engine", ["bogus", "DeepSpeed", "Megatron"])
def test_an_unknown_training_engine_is_named_as_such(engine: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Names are taken as the CLI's `--engine` choices take them (lower case): `--engine DeepSpeed`
    is refused there, so the API refuses it too, listing the training engines."""
    config = TrainingConfig(dp=8, seq_len=2048, global_batch=16)
    with pytest.raises(InputError) as err:
        api.evaluate("Qwen/Qwen3-8B", "1x8xH100", config, engine=engine, compare=False)
    message = str(err.value)
    assert "serving engine" not in message
    assert f"unknown training engine {engine!r}" in message and "megatron or deepspeed" in message
    with pytest.raises(SystemExit) as exited:  # argparse's choices
        main(["evaluate", "Qwen/Qwen3-8B", "--cluster", "1x8xH100", "--train", "--engine", engine])
    assert exited.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_a_serving_engine_with_a_training_config_is_still_called_one() -> None:
    config = TrainingConfig(dp=8, seq_len=2048, global_batch=16)
    with pytest.raises(InputError, match="'sglang' is a serving engine; a TrainingConfig takes megatron or"):
        api.evaluate("Qwen/Qwen3-8B", "1x8xH100", config, engine="sglang", compare=False)
