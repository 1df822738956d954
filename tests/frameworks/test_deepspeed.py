"""DeepSpeed emitter: golden ds_configs, DeepSpeed's rules, the launcher line, and (opt-in) DeepSpeed's
own config parser via ../shared/tools/validate_ds_config.py with $DS_CHECK_PYTHON."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fw_golden import SHARED_TOOLS, check_golden, run_json_checker

from autoparallel.configs import Recompute, TrainingConfig, ZeroStage
from autoparallel.errors import InputError
from autoparallel.frameworks.deepspeed import deepspeed_command, deepspeed_config, deepspeed_notes
from autoparallel.hardware import Cluster
from autoparallel.models import load_model

LLAMA_8B = "meta-llama/Llama-3.1-8B"
LLAMA_70B = "meta-llama/Llama-3.1-70B"

# name -> (model id, config, cluster)
CASES: dict[str, tuple[str, TrainingConfig, str]] = {
    "ds_llama8b_zero0_ddp": (
        LLAMA_8B,
        TrainingConfig(dp=8, zero=ZeroStage.NONE, micro_batch=4, global_batch=64, recompute=Recompute.NONE),
        "1x8xH100",
    ),
    "ds_llama8b_zero1_fp16": (
        LLAMA_8B,
        TrainingConfig(dp=8, zero=ZeroStage.OPTIMIZER, micro_batch=2, global_batch=128, precision="fp16"),
        "1x8xH100",
    ),
    "ds_llama8b_zero2_offload": (
        LLAMA_8B,
        TrainingConfig(
            dp=16,
            zero=ZeroStage.GRADIENTS,
            micro_batch=1,
            global_batch=256,
            offload_optimizer=True,
            recompute=Recompute.FULL,
        ),
        "2x8xH100",
    ),
    "ds_llama70b_zero3_offload_all": (
        LLAMA_70B,
        TrainingConfig(
            dp=32,
            zero=ZeroStage.PARAMETERS,
            micro_batch=1,
            global_batch=512,
            offload_optimizer=True,
            offload_params=True,
            recompute=Recompute.FULL,
        ),
        "4x8xH100",
    ),
    "ds_llama70b_tp8_pp4_zero1": (
        LLAMA_70B,
        TrainingConfig(
            tp=8,
            pp=4,
            dp=2,
            zero=ZeroStage.DISTRIBUTED_OPTIMIZER,
            micro_batch=1,
            global_batch=64,
            recompute=Recompute.FULL,
            precision="fp8",
        ),
        "8x8xH100",
    ),
}


def _artifacts(model_id: str, config: TrainingConfig, cluster_spec: str) -> dict[str, object]:
    cluster = Cluster.parse(cluster_spec)
    model = load_model(model_id)
    return {
        "ds_config": deepspeed_config(model, config, cluster=cluster),
        "command": deepspeed_command(model, config, cluster=cluster),
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    check_golden(name, _artifacts(*CASES[name]))


@pytest.mark.parametrize("name", sorted(CASES))
def test_batch_arithmetic(name: str) -> None:
    model_id, cfg, cluster = CASES[name]
    ds = deepspeed_config(load_model(model_id), cfg, cluster=Cluster.parse(cluster))
    micro, accum = ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"]
    assert ds["train_batch_size"] == cfg.global_batch == micro * accum * cfg.dp  # type: ignore[operator]


def test_stage_mapping_and_bucket_sizes_follow_hidden() -> None:
    model = load_model(LLAMA_8B)  # hidden 4096
    h2 = 4096 * 4096
    for zero, stage in [
        (ZeroStage.NONE, 0),
        (ZeroStage.OPTIMIZER, 1),
        (ZeroStage.DISTRIBUTED_OPTIMIZER, 1),
        (ZeroStage.GRADIENTS, 2),
        (ZeroStage.PARAMETERS, 3),
    ]:
        z = deepspeed_config(model, TrainingConfig(dp=8, global_batch=8, zero=zero))["zero_optimization"]
        assert z["stage"] == stage  # type: ignore[index]
    z3 = deepspeed_config(model, TrainingConfig(dp=8, global_batch=8, zero=ZeroStage.PARAMETERS))
    zero3 = z3["zero_optimization"]
    assert zero3 == {
        "stage": 3,
        "overlap_comm": True,
        "contiguous_gradients": True,
        "reduce_bucket_size": h2,
        "stage3_prefetch_bucket_size": int(0.9 * h2),
        "stage3_param_persistence_threshold": 40960,
    }


def test_activation_checkpointing_respects_deepspeed_asserts() -> None:
    """deepspeed.checkpointing.configure: contiguous memory needs partitioned activations and the count."""
    model = load_model(LLAMA_70B)
    ds = deepspeed_config(model, TrainingConfig(tp=8, pp=4, dp=1, global_batch=8, recompute=Recompute.FULL))
    ac = ds["activation_checkpointing"]
    assert ac == {
        "partition_activations": True,
        "contiguous_memory_optimization": True,
        "cpu_checkpointing": False,
        "number_checkpoints": 20,
    }
    ds1 = deepspeed_config(model, TrainingConfig(dp=8, global_batch=8, recompute=Recompute.FULL))
    assert ds1["activation_checkpointing"]["contiguous_memory_optimization"] is False  # type: ignore[index]
    assert "number_checkpoints" not in ds1["activation_checkpointing"]  # type: ignore[operator]
    assert "activation_checkpointing" not in deepspeed_config(model, TrainingConfig(dp=8, global_batch=8))


def test_pipeline_section_only_with_pp() -> None:
    model = load_model(LLAMA_70B)
    assert "pipeline" not in deepspeed_config(model, TrainingConfig(dp=8, global_batch=8))
    # only the keys PipelineEngine reads: no "stages" / "partition" (get_pipeline_config stores them,
    # nothing reads them), no interval 0 (applied only above 0)
    piped = TrainingConfig(pp=4, dp=2, global_batch=8, zero=ZeroStage.NONE)
    assert "pipeline" not in deepspeed_config(model, piped)
    full = piped.model_copy(update={"recompute": Recompute.FULL})
    assert deepspeed_config(model, full)["pipeline"] == {"activation_checkpoint_interval": 1}


@pytest.mark.parametrize(
    ("config", "match"),
    [
        (TrainingConfig(dp=8, micro_batch=3, global_batch=64), "not a multiple of micro_batch=3"),
        (
            TrainingConfig(dp=8, global_batch=8, zero=ZeroStage.NONE, offload_optimizer=True),
            "ZeRO stage 1, 2 or 3",
        ),
        (TrainingConfig(dp=8, global_batch=8, zero=ZeroStage.GRADIENTS, offload_params=True), "needs ZeRO-3"),
        (TrainingConfig(pp=2, dp=4, global_batch=8, zero=ZeroStage.GRADIENTS), "incompatible with pipeline"),
        (TrainingConfig(dp=8, global_batch=8, precision="int4"), "precision='int4'"),
        (TrainingConfig(dp=64, global_batch=64), "needs 64 GPUs"),
    ],
)
def test_rejects_what_deepspeed_rejects(config: TrainingConfig, match: str) -> None:
    with pytest.raises(InputError, match=match):
        deepspeed_config(load_model(LLAMA_8B), config, cluster=Cluster.parse("2x8xH100"))


def test_launcher_line() -> None:
    model = load_model(LLAMA_8B)
    one = deepspeed_command(model, TrainingConfig(dp=4, global_batch=4), cluster=Cluster.parse("2x8xH100"))
    assert (
        one == "deepspeed --num_nodes 1 --num_gpus 4 train.py --deepspeed --deepspeed_config ds_config.json"
    )
    two = deepspeed_command(
        model,
        TrainingConfig(dp=16, global_batch=16),
        cluster=Cluster.parse("2x8xH100"),
        script="pretrain_gpt.py",
        ds_config_path="cfg/ds.json",
    )
    assert two == (
        "deepspeed --num_nodes 2 --num_gpus 8 --hostfile hostfile pretrain_gpt.py --deepspeed "
        "--deepspeed_config cfg/ds.json"
    )
    with pytest.raises(InputError, match="whole nodes"):
        deepspeed_command(model, TrainingConfig(dp=12, global_batch=12), cluster=Cluster.parse("2x8xH100"))


# ----- DeepSpeed's own parser (opt-in) --------------------------------------------------------------

DS_CHECK_PYTHON = os.environ.get("DS_CHECK_PYTHON")
VALIDATOR = SHARED_TOOLS / "validate_ds_config.py"


def _validation_grid() -> list[tuple[str, TrainingConfig]]:
    grid = [(f"golden:{name}", cfg) for name, (_, cfg, _) in sorted(CASES.items())]
    for zero in ZeroStage:
        for offload in (False, True):
            if offload and zero is ZeroStage.NONE:
                continue
            grid.append(
                (
                    f"zero={zero.value} offload={offload}",
                    TrainingConfig(
                        dp=4,
                        zero=zero,
                        micro_batch=2,
                        global_batch=32,
                        offload_optimizer=offload,
                        offload_params=offload and zero is ZeroStage.PARAMETERS,
                        recompute=Recompute.FULL if offload else Recompute.SELECTIVE,
                    ),
                )
            )
    grid.append(
        (
            "pp=4 tp=2 zero=1 full recompute",
            TrainingConfig(
                tp=2, pp=4, dp=1, zero=ZeroStage.OPTIMIZER, global_batch=16, recompute=Recompute.FULL
            ),
        )
    )
    grid.append(
        (
            "pp=2 uneven stages (layers_per_stage in the pipeline section)",
            TrainingConfig(pp=2, dp=4, zero=ZeroStage.NONE, global_batch=32, layers_per_stage=(15, 17)),
        )
    )
    grid.append(
        (
            "cp=8 Ulysses (sequence_parallel_size: the world is dp x cp)",
            TrainingConfig(
                cp=8, dp=2, zero=ZeroStage.PARAMETERS, global_batch=8, seq_len=65536, cp_comm="a2a"
            ),
        )
    )
    grid.append(
        (
            "pp=2 zero=0 fp16 stage recompute",
            TrainingConfig(
                pp=2,
                dp=4,
                zero=ZeroStage.NONE,
                global_batch=32,
                precision="fp16",
                stage_recompute=(Recompute.FULL, Recompute.NONE),
            ),
        )
    )
    return grid


@pytest.mark.skipif(
    not DS_CHECK_PYTHON,
    reason="set DS_CHECK_PYTHON to the Python of a venv with torch==2.13.0 "
    "and DeepSpeed (~/.dscheck/bin/python, see ../shared/tools/README.md)",
)
@pytest.mark.skipif(not VALIDATOR.exists(), reason=f"{VALIDATOR} not found (../shared/tools beside the repo)")
@pytest.mark.parametrize(
    ("label", "config"), _validation_grid(), ids=lambda x: x if isinstance(x, str) else ""
)
def test_deepspeed_accepts_config(label: str, config: TrainingConfig, tmp_path: Path) -> None:
    assert DS_CHECK_PYTHON is not None
    path = tmp_path / "ds_config.json"
    path.write_text(json.dumps(deepspeed_config(load_model(LLAMA_8B), config)), encoding="utf-8")
    result = run_json_checker(
        [DS_CHECK_PYTHON, str(VALIDATOR), str(path), "--world-size", str(config.dp * config.cp), "--json"],
        timeout=300,
    )
    assert result["valid"], f"{label}: {result['errors']}"
    assert result["warnings"] == [], f"{label}: {result['warnings']}"
    assert result["derived"]["train_batch_size"] == config.global_batch


def test_precision_follows_the_gpus() -> None:
    model = load_model(LLAMA_8B)
    cfg = TrainingConfig(dp=8, global_batch=8)
    assert deepspeed_config(model, cfg, cluster=Cluster.parse("1x8xV100-SXM2-32G"))["fp16"] == {
        "enabled": True,
        "loss_scale": 0,
    }
    assert "fp16" not in deepspeed_config(model, cfg, cluster=Cluster.parse("1x8xA100-80G"))
    with pytest.raises(InputError, match="FP8 tensor cores"):
        deepspeed_config(
            model,
            TrainingConfig(dp=8, global_batch=8, precision="fp8"),
            cluster=Cluster.parse("1x8xA100-80G"),
        )


def test_moe_under_zero3_is_refused_as_deepspeed_refuses_it() -> None:
    """DeepSpeed's engine asserts on its MoE layers under ZeRO-3 (engine.py
    `_validate_zero3_moe_compatibility`); the ds_config of such a plan was emitted as if it ran."""
    moe, cluster = load_model("Qwen/Qwen3-30B-A3B"), Cluster.parse("2x8xH100")
    three = TrainingConfig(dp=16, ep=8, global_batch=64, zero=ZeroStage.PARAMETERS)
    with pytest.raises(InputError, match="ZeRO stage 3 with 128 routed experts"):
        deepspeed_config(moe, three, cluster=cluster)
    two = deepspeed_config(moe, three.model_copy(update={"zero": ZeroStage.GRADIENTS}), cluster=cluster)
    assert two["zero_optimization"]["stage"] == 2  # type: ignore[index]
    dense = TrainingConfig(dp=16, global_batch=64, zero=ZeroStage.PARAMETERS)
    assert deepspeed_config(load_model(LLAMA_8B), dense)["zero_optimization"]["stage"] == 3  # type: ignore[index]


def test_pipeline_section_names_uneven_stages_instead_of_calling_them_uniform() -> None:
    """`partition: uniform` documented a PipelineModule split the plan's uneven stages are not; the
    split is the PipelineModule's (deepspeed_notes), not a ds_config key DeepSpeed never reads."""
    model = load_model(LLAMA_70B)
    even = TrainingConfig(pp=2, dp=4, global_batch=8, zero=ZeroStage.NONE)
    uneven = even.model_copy(update={"layers_per_stage": (39, 41)})
    assert "pipeline" not in deepspeed_config(model, uneven)
    assert "partition_method='type:transformer'" in " ".join(deepspeed_notes(model, even))


def test_notes_say_what_the_script_builds_beside_the_ds_config() -> None:
    """The ds_config carries batch, precision, ZeRO and checkpointing only: the groups, the experts,
    an uneven split, FP8 layers and context parallelism (Ulysses) are the script's, and a plan said
    nothing of them."""
    from autoparallel.frameworks.deepspeed import deepspeed_notes

    assert deepspeed_notes(load_model(LLAMA_8B), TrainingConfig(dp=8, global_batch=8)) == []
    moe = TrainingConfig(tp=2, pp=2, dp=2, ep=4, global_batch=8, precision="fp8")
    notes = " ".join(deepspeed_notes(load_model("Qwen/Qwen3-30B-A3B"), moe))
    for part in (
        "tensor-parallel groups of 2",
        "PipelineModule of 2 stages",
        "MoE(num_experts=128, ep_size=4, enable_expert_tensor_parallelism=True)",  # experts split over tp
        "Transformer Engine",
    ):
        assert part in notes
    whole = " ".join(deepspeed_notes(load_model("Qwen/Qwen3-30B-A3B"), moe.model_copy(update={"etp": 1})))
    assert "MoE(num_experts=128, ep_size=4) " in whole
    ulysses = TrainingConfig(cp=4, dp=2, global_batch=8, cp_comm="a2a")
    assert "UlyssesSPAttentionHF" in " ".join(deepspeed_notes(load_model(LLAMA_8B), ulysses))
    uneven = TrainingConfig(pp=2, dp=4, global_batch=8, layers_per_stage=(39, 41))
    assert "partition the layers as [39, 41]" in " ".join(deepspeed_notes(load_model(LLAMA_70B), uneven))


def test_ulysses_and_moe_pipelines_carry_their_keys() -> None:
    """DeepSpeed takes its data-parallel size as world / sequence_parallel_size only when the config
    says so (no mpu: a Hugging Face model under zero.Init), else the batch identity fails; and an MoE
    pipeline's stages pass the aux loss, which PipelineEngine refuses to partition (on by default)."""
    ulysses = TrainingConfig(cp=16, dp=1, global_batch=16, seq_len=131072, cp_comm="a2a")
    assert deepspeed_config(load_model(LLAMA_8B), ulysses)["sequence_parallel_size"] == 16
    assert "sequence_parallel_size" not in deepspeed_config(
        load_model(LLAMA_8B), TrainingConfig(dp=8, global_batch=8)
    )
    moe = TrainingConfig(tp=8, pp=4, dp=1, global_batch=8, zero=ZeroStage.NONE)
    pipe = deepspeed_config(load_model("mistralai/Mixtral-8x7B-v0.1"), moe)["pipeline"]
    assert pipe["pipe_partitioned"] is False and pipe["grad_partitioned"] is False  # type: ignore[index]
    assert "pipeline" not in deepspeed_config(load_model(LLAMA_70B), moe)


def test_a_plan_deepspeed_cannot_express_has_no_deepspeed_notes() -> None:
    """The notes told how to build groups and wrap attention for a ds_config that was refused."""
    import autoparallel as ap

    plan = ap.solve(
        "meta-llama/Llama-3.1-8B",
        "1x8xH100",
        ap.Training(seq_len=65536, global_batch=8),
        options=ap.TrainingOptions(cp_values=(2,), tp_values=(4,)),
    )
    assert plan.config.cp == 2 and "unavailable" in plan.to_dict()["deepspeed"]["config"]
    assert plan.deepspeed_notes == [] and plan.megatron_notes
