"""A Megatron plan DeepSpeed cannot express has no ds_config, and so no `deepspeed` line: the launcher
line passes `--deepspeed_config ds_config.json`, a file that would not exist."""

from __future__ import annotations

import pytest

from autoparallel.api import evaluate
from autoparallel.configs import TrainingConfig, ZeroStage
from autoparallel.errors import InputError
from autoparallel.frameworks.deepspeed import deepspeed_command, deepspeed_config
from autoparallel.hardware import Cluster
from autoparallel.models import load_model

LLAMA_70B = "meta-llama/Llama-3.1-70B"
# the hunter's plan: `plan meta-llama/Llama-3.1-70B --cluster 4x8xA100 --train --seq-len 32768
# --global-batch 64` keeps to Megatron with ring-attention context parallelism
RING_CP = TrainingConfig(
    tp=8,
    cp=4,
    cp_comm="p2p",
    global_batch=64,
    seq_len=32768,
    zero=ZeroStage.PARAMETERS,
    sequence_parallel=True,
)


def test_the_launcher_line_refuses_what_the_config_refuses() -> None:
    model, cluster = load_model(LLAMA_70B), Cluster.parse("4x8xA100")
    with pytest.raises(InputError, match="ring attention") as config_refusal:
        deepspeed_config(model, RING_CP, cluster=cluster)
    with pytest.raises(InputError, match="ring attention") as line_refusal:
        deepspeed_command(model, RING_CP, cluster=cluster)
    assert str(line_refusal.value) == str(config_refusal.value)


def test_a_plans_json_says_why_instead_of_a_line() -> None:
    plan = evaluate(LLAMA_70B, "4x8xA100", RING_CP, compare=False)
    ds = plan.to_dict()["deepspeed"]
    assert set(ds["config"]) == {"unavailable"}
    assert ds["command"] == ds["config"]  # no `deepspeed ... --deepspeed_config ds_config.json`
    assert "not expressible" in plan.explain().split("DeepSpeed:")[1].splitlines()[1]
