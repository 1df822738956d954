"""Megatron-FSDP (ZeRO 2 / 3) plans priced bf16 gradients but ran fp32 ones (s45 fA).

`plan meta-llama/Llama-3.1-70B --cluster 4x8xH100 --train --seq-len 4096 --global-batch 512` planned
tp8 dp4 ZeRO 2 with 4.11 GiB of gradients and emitted `--use-megatron-fsdp ... optim_grads` without
`--grad-reduce-in-bf16`. Megatron-LM sets `accumulate_allreduce_grads_in_fp32` under bf16 unless that
flag is given and hands it to Megatron-FSDP as `grad_reduce_in_fp32`, whose main grad buffer is then
fp32 (megatron_fsdp/param_and_grad_buffer.py): 8.21 GiB as run. As for ZeRO 0 / 1: the emitted
arguments carry the flag, and the planner offers ZeRO 2 / 3 for Megatron only when asked."""

from __future__ import annotations

import pytest

import autoparallel as ap
from autoparallel.configs import TrainingConfig, ZeroStage
from autoparallel.frameworks.megatron import megatron_arg_dict, megatron_notes
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.training.space import TrainingOptions, build_space
from autoparallel.validation import framework_zero_stages, zero_stage_problem

LLAMA_70B = "meta-llama/Llama-3.1-70B"
CLUSTER = "4x8xH100"
JOB = ap.Training(seq_len=4096, global_batch=512)
FSDP = (ZeroStage.GRADIENTS, ZeroStage.PARAMETERS)


@pytest.mark.parametrize("precision", ["bf16", "fp8"])
@pytest.mark.parametrize("zero", FSDP)
def test_megatron_fsdp_arguments_reduce_gradients_in_bf16(zero: ZeroStage, precision: str) -> None:
    model = load_model(LLAMA_70B)
    cfg = TrainingConfig(tp=8, dp=4, zero=zero, global_batch=512, seq_len=4096, precision=precision)
    args = megatron_arg_dict(model, cfg, cluster=Cluster.parse(CLUSTER))
    assert args["--use-megatron-fsdp"] is True and args["--grad-reduce-in-bf16"] is True
    note = next(n for n in megatron_notes(model, cfg) if "--grad-reduce-in-bf16" in n)
    assert f"zero={zero.value} is priced with gradients in bf16" in note and "Megatron-FSDP" in note


def test_fp16_and_the_distributed_optimizer_need_no_flag() -> None:
    """fp16 keeps fp16 gradients in Megatron whatever the sharding; zero=dist prices fp32 gradients."""
    model = load_model(LLAMA_70B)
    v100 = Cluster.parse("4x8xV100-SXM2-32G")
    z3 = TrainingConfig(tp=8, dp=4, zero=ZeroStage.PARAMETERS, global_batch=8)
    fp16 = megatron_arg_dict(model, z3, cluster=v100)
    assert fp16["--fp16"] is True and "--grad-reduce-in-bf16" not in fp16
    dist = TrainingConfig(tp=8, dp=4, zero=ZeroStage.DISTRIBUTED_OPTIMIZER, global_batch=8)
    assert "--grad-reduce-in-bf16" not in megatron_arg_dict(model, dist)
    assert not any("--grad-reduce-in-bf16" in n for n in megatron_notes(model, dist))


def test_the_default_megatron_space_keeps_to_the_distributed_optimizer() -> None:
    model = load_model(LLAMA_70B)
    assert framework_zero_stages("megatron", model) == (ZeroStage.DISTRIBUTED_OPTIMIZER,)
    for zero in FSDP:
        problem = zero_stage_problem("megatron", model, zero)
        assert problem is not None and "--grad-reduce-in-bf16" in problem and "FSDP" not in problem
        assert zero_stage_problem("megatron", model, zero, bf16_grads=True) is None
    space = build_space(model, Cluster.parse(CLUSTER), JOB, TrainingOptions())
    assert {m.zero for m in space.state_modes} == {ZeroStage.DISTRIBUTED_OPTIMIZER}
    asked = build_space(model, Cluster.parse(CLUSTER), JOB, TrainingOptions(grad_reduce_in_bf16=True))
    assert set(FSDP) <= {m.zero for m in asked.state_modes}
    # DeepSpeed keeps bf16 gradients: ZeRO 2 / 3 as before
    ds = framework_zero_stages("deepspeed", model)
    assert set(FSDP) <= set(ds)


def test_the_repro_plans_as_run_and_with_the_flag_when_asked() -> None:
    plan = ap.solve(LLAMA_70B, CLUSTER, JOB)
    assert plan.config.zero is ZeroStage.DISTRIBUTED_OPTIMIZER  # was ZeRO 2 at 4.11 GiB of gradients
    assert plan.memory.fits
    asked = ap.solve(LLAMA_70B, CLUSTER, JOB, options=TrainingOptions(grad_reduce_in_bf16=True))
    assert asked.config.zero is ZeroStage.GRADIENTS
    assert "--grad-reduce-in-bf16" in asked.megatron_args
    assert any("--grad-reduce-in-bf16" in n for n in asked.megatron_notes)


def test_a_deepspeed_plans_megatron_arguments_carry_the_flag() -> None:
    plan = ap.solve(LLAMA_70B, CLUSTER, JOB, options=TrainingOptions(framework="deepspeed"))
    assert plan.config.zero in FSDP
    assert plan.deepspeed_config["zero_optimization"]["stage"] == int(plan.config.zero.value)  # type: ignore[index]
    assert "--use-megatron-fsdp" in plan.megatron_args and "--grad-reduce-in-bf16" in plan.megatron_args


def test_evaluate_zero_2_and_3_emit_the_flag() -> None:
    for zero in FSDP:
        cfg = TrainingConfig(tp=8, dp=4, zero=zero, seq_len=4096, global_batch=512)
        plan = ap.evaluate(LLAMA_70B, CLUSTER, cfg, JOB, compare=False)
        assert isinstance(plan, ap.TrainingPlan)
        assert "--grad-reduce-in-bf16" in plan.megatron_args
