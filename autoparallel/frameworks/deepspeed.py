"""DeepSpeed artifacts for a decided training configuration: the `ds_config` dict and the launcher line.

The config is the JSON `deepspeed.initialize(config=...)` reads (checked in the tests with
DeepSpeed's own `DeepSpeedConfig`). Tensor, pipeline and context parallel groups are built by the
training script (Megatron-DeepSpeed's mpu, a PipelineModule); the config carries what DeepSpeed owns:
batch arithmetic, precision, ZeRO sharding and offload, activation checkpointing, pipeline options.

DeepSpeed's batch rule (deepspeed/runtime/config.py `_configure_train_batch_size`):
    train_batch_size = train_micro_batch_size_per_gpu × gradient_accumulation_steps × data-parallel size,
where the data-parallel size is the mpu's (world / (tp·pp) for Megatron-DeepSpeed), i.e. `config.dp`.

Usage:
    >>> cfg = deepspeed_config(model, TrainingConfig(dp=8, micro_batch=2, global_batch=256), cluster=c)
    >>> cfg["gradient_accumulation_steps"]
    16
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from autoparallel.configs import Recompute, ZeroStage, even_split
from autoparallel.errors import InputError
from autoparallel.frameworks._common import effective_precision, gpus_per_host, node_shape, vision_tower_note
from autoparallel.validation import cp_comm_problem, require_training, zero_stage_problem

if TYPE_CHECKING:
    from autoparallel.configs import TrainingConfig
    from autoparallel.hardware import Cluster
    from autoparallel.models.spec import ModelSpec

ZERO_STAGE_NUMBER: dict[ZeroStage, int] = {
    ZeroStage.NONE: 0,
    ZeroStage.OPTIMIZER: 1,
    ZeroStage.GRADIENTS: 2,
    ZeroStage.PARAMETERS: 3,
    ZeroStage.DISTRIBUTED_OPTIMIZER: 1,  # fp32 master + Adam states sharded over dp: ZeRO-1
}
"""DeepSpeed `zero_optimization.stage` for each sharding choice."""

STEPS_PER_PRINT = 100
"""Steps between DeepSpeed's progress lines (its default, 10, floods long runs' logs)."""

GRADIENT_CLIPPING = 1.0
"""Global gradient-norm clip, the usual value for LLM pre-training (GPT-3, Llama, Megatron's default)."""


def deepspeed_config(
    model: ModelSpec, config: TrainingConfig, *, cluster: Cluster | None = None
) -> dict[str, object]:
    """The `ds_config` dict for `config`.

    Bucket sizes follow DeepSpeed's "auto" values (as Hugging Face's DeepSpeed integration fills
    them): reduce and all-gather buckets hidden², ZeRO-3 prefetch 0.9·hidden², ZeRO-3 parameters
    below 10·hidden elements kept unpartitioned.

    Raises:
        InputError: the global batch does not split into micro-batches over dp, offload with a stage
            that cannot offload, ZeRO-2/3 with pipeline parallelism (DeepSpeed's PipelineEngine refuses
            them), ZeRO-3 with MoE layers (`validation.framework_zero_stages`), an expert
            tensor-parallel degree other than 1 or tp (`expert_tp_problem`), tp above the KV heads
            (Megatron-DeepSpeed splits them, `validation.kv_heads_split_problem`), an unknown
            precision, or more GPUs than the cluster has.
    """
    stage = ZERO_STAGE_NUMBER[config.zero]
    _validate(config, stage, cluster, model)
    ds: dict[str, object] = {
        "train_batch_size": config.micro_batch * config.grad_accum * config.dp,
        "train_micro_batch_size_per_gpu": config.micro_batch,
        "gradient_accumulation_steps": config.grad_accum,
        **_precision(effective_precision(config.precision, cluster)),
        "zero_optimization": _zero_section(model, config, stage),
        "gradient_clipping": GRADIENT_CLIPPING,
        "steps_per_print": STEPS_PER_PRINT,
        "wall_clock_breakdown": False,
    }
    if Recompute.FULL in _stage_modes(config):
        ds["activation_checkpointing"] = _activation_checkpointing(model, config)
    if config.pp > 1 and (pipeline := _pipeline_section(model, config)):
        ds["pipeline"] = pipeline
    if config.cp > 1:
        # Ulysses without an mpu (a Hugging Face model under zero.Init): DeepSpeed takes the data-
        # parallel size as world / sequence_parallel_size from here (deepspeed/runtime/config.py),
        # else as the whole world, and the batch identity above fails.
        ds["sequence_parallel_size"] = config.cp
    return ds


def deepspeed_command(
    model: ModelSpec,
    config: TrainingConfig,
    *,
    cluster: Cluster,
    script: str = "train.py",
    ds_config_path: str = "ds_config.json",
    hostfile: str = "hostfile",
) -> str:
    """The `deepspeed` launcher line: `deepspeed --num_nodes N --num_gpus G [--hostfile H] SCRIPT
    --deepspeed --deepspeed_config ds_config.json`.

    `--num_gpus` is per host (the launcher uses GPUs [0, G) on each of the first N hosts of the
    hostfile, `<hostname> slots=G` each); a single-host run needs no hostfile.

    Raises:
        InputError: as `deepspeed_config` (the line launches that config: where DeepSpeed cannot
            express the plan, e.g. a Megatron plan's ring-attention cp, there is no config to pass and
            so no line), or the plan's GPUs do not fill whole hosts (the launcher takes one GPU count
            for all; `_common.node_shape`: a GB200 NVL72 rack is 18 hosts of 4 GPUs).
    """
    deepspeed_config(model, config, cluster=cluster)  # its refusal is the line's: same checks, one place
    nodes, per_node = node_shape(config.world_size, cluster)
    parts = ["deepspeed", "--num_nodes", str(nodes), "--num_gpus", str(per_node)]
    if nodes > 1:
        parts += ["--hostfile", shlex.quote(hostfile)]
    parts += [shlex.quote(script), "--deepspeed", "--deepspeed_config", shlex.quote(ds_config_path)]
    return " ".join(parts)


def deepspeed_notes(model: ModelSpec, config: TrainingConfig, *, cluster: Cluster | None = None) -> list[str]:
    """What the training script must build beside the ds_config for this plan, in sentences (the
    config carries batch, precision, ZeRO, offload and checkpointing, nothing of the groups); with
    `cluster`, also the hostfile the launcher line reads when it spans several hosts."""
    notes = []
    if cluster is not None and config.world_size <= cluster.world_size:
        hosts, per_host = node_shape(config.world_size, cluster)
        if hosts > 1:
            notes.append(
                f"the hostfile lists the {hosts} hosts, one line each: `<hostname> slots={per_host}`"
                + (
                    f" ({cluster.gpu.name}: {per_host} GPUs per host, {hosts} hosts to its NVLink domain"
                    f" of {cluster.gpus_per_node})."
                    if gpus_per_host(cluster) < cluster.gpus_per_node
                    else "."
                )
            )
    # Priced with Megatron's sequence parallelism where the configuration has it: Megatron-DeepSpeed's
    # --sequence-parallel, with the same seq_len / cp divisibility by tp (`validation.sp_sequence_problem`).
    sp = (
        " with sequence parallelism (Megatron-DeepSpeed's --sequence-parallel)"
        if config.sequence_parallel
        else ""
    )
    groups = [f"tensor-parallel groups of {config.tp}{sp}"] * (config.tp > 1)
    groups += [f"a PipelineModule of {config.pp} stages"] * (config.pp > 1)
    if groups:
        notes.append(
            f"{' and '.join(groups)} come from the script (Megatron-DeepSpeed's model-parallel unit, mpu)."
        )
    if config.vp > 1:
        notes.append(
            f"vp={config.vp} is priced as Megatron's interleaved schedule (bubble (pp - 1)/(m x vp)); "
            "DeepSpeed's PipelineEngine runs only its TrainSchedule, 1F1B over the pp stages "
            "(deepspeed/runtime/pipe/schedule.py), so the run's fill/drain bubble is about "
            f"{config.vp} times the priced one (`evaluate --vp 1` prices it)."
        )
    notes += pipeline_notes(model, config)
    if config.cp > 1 and config.cp_comm == "a2a":
        notes.append(
            f"cp={config.cp} runs as DeepSpeed-Ulysses sequence parallelism, an all-to-all over attention "
            "heads: the script wraps the model's attention in "
            "deepspeed.runtime.sequence_parallel.UlyssesSPAttentionHF (the ds_config carries "
            "sequence_parallel_size)."
        )
    if model.is_moe:
        # DeepSpeed's MoE keeps whole experts on every tensor-parallel rank unless asked to split them
        # (deepspeed/moe/layer.py: enable_expert_tensor_parallelism=False by default), and then splits
        # them over the whole tensor-parallel group (`expert_tp_problem`): the flag is etp = tp > 1.
        split = config.tp > 1 and config.etp in (None, config.tp)
        flag = ", enable_expert_tensor_parallelism=True" if split else ""
        notes.append(
            f"experts: deepspeed.moe.layer.MoE(num_experts={model.num_experts}, ep_size={config.ep}{flag}) "
            "in the model code, with the MoE parameter groups DeepSpeed's optimizer needs "
            "(split_params_into_different_moe_groups_for_optimizer)"
            + (
                f"; each expert is split over the tp={config.tp} tensor-parallel group, which DeepSpeed "
                "takes from the mpu passed to deepspeed.initialize (without one it keeps whole experts)."
                if split
                else "."
            )
        )
        if (problem := expert_tp_problem(model, config)) is not None:
            notes.append(problem)
    if (vision := vision_tower_note(model)) is not None:
        notes.append(vision)
    if config.precision == "fp8":
        notes.append("FP8 GEMMs come from Transformer Engine layers in the model code (no ds_config key).")
    return notes


# ----- sections -------------------------------------------------------------------------------------


def _precision(precision: str) -> dict[str, object]:
    """bf16 (also the parameter dtype of FP8 training: FP8 GEMMs come from Transformer Engine in the
    model code, DeepSpeed has no FP8 switch) or fp16 with dynamic loss scaling (loss_scale 0)."""
    if precision == "fp16":
        return {"fp16": {"enabled": True, "loss_scale": 0}}
    return {"bf16": {"enabled": True}}


def _zero_section(model: ModelSpec, config: TrainingConfig, stage: int) -> dict[str, object]:
    """zero_optimization: stage, overlap/contiguity, buckets sized from hidden, offload targets."""
    zero: dict[str, object] = {"stage": stage}
    if stage == 0:
        return zero
    h2 = model.hidden_size * model.hidden_size
    zero["overlap_comm"] = True
    zero["contiguous_gradients"] = True
    zero["reduce_bucket_size"] = h2
    if stage < 3:
        zero["allgather_bucket_size"] = h2
    else:
        zero["stage3_prefetch_bucket_size"] = int(0.9 * h2)
        zero["stage3_param_persistence_threshold"] = 10 * model.hidden_size
    if config.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if config.offload_params:
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    return zero


def _activation_checkpointing(model: ModelSpec, config: TrainingConfig) -> dict[str, object]:
    """DeepSpeed's checkpointing options, used by code that calls deepspeed.checkpointing.checkpoint.

    Partitioning the saved layer inputs across tensor-parallel ranks only helps when tp > 1;
    contiguous buffers need partitioning and the number of checkpoints (one per layer on the
    largest stage) — both are asserted in deepspeed.checkpointing.configure.
    """
    partition = config.tp > 1
    section: dict[str, object] = {
        "partition_activations": partition,
        "contiguous_memory_optimization": partition,
        "cpu_checkpointing": False,
    }
    if partition:
        section["number_checkpoints"] = max(config.stage_layers(model.num_layers))
    return section


def _pipeline_section(model: ModelSpec, config: TrainingConfig) -> dict[str, object]:
    """The pipeline keys DeepSpeed's PipelineEngine reads (deepspeed/runtime/pipe/engine.py), where
    they differ from its defaults: `activation_checkpoint_interval` 1 when every stage recomputes
    fully (the engine applies it only when above 0: below, the PipelineModule's own interval stands,
    `pipeline_notes`), and `pipe_partitioned` / `grad_partitioned` off for MoE. Not `stages` or
    `partition`: runtime/config.py `get_pipeline_config` stores them but nothing reads them; the
    PipelineModule's `num_stages` and `partition_method` split the layers (`pipeline_notes`)."""
    section: dict[str, object] = {}
    if all(mode is Recompute.FULL for mode in _stage_modes(config)):
        section["activation_checkpoint_interval"] = 1
    if model.is_moe:
        # MoE stages pass a second tensor that needs a gradient (the aux loss), which PipelineEngine
        # refuses to partition (pipe/engine.py); DeepSpeed partitions both by default (runtime/config.py)
        # and Megatron-DeepSpeed asserts they are off for MoE with tp > 1 (gpt_model.py).
        section |= {"pipe_partitioned": False, "grad_partitioned": False}
    return section


def pipeline_notes(model: ModelSpec, config: TrainingConfig) -> list[str]:
    """What the script's PipelineModule sets for the plan's stages (pp > 1; none otherwise).

    Its `partition_method` splits the layer specs (deepspeed/runtime/pipe/module.py
    `_partition_layers`): 'uniform' counts every spec, the embedding, final norm and LM head among
    them, so the stages holding those get fewer decoder layers than the plan prices (the default,
    'parameters', balances parameter counts, embedding and head included); 'type:REGEX' weighs the
    specs whose class name matches by 1 and the others by 0 and balances them with runtime/utils.py
    `partition_balanced` (least spread between the largest and smallest stage, ties to the later
    cut), which gives the decoder layers the even split with the remainder on the first stages,
    `configs.even_split`, what the plan prices (checked against a port of it in
    tests/frameworks/test_s34_training_emitters.py).
    Megatron-DeepSpeed's GPTModelPipe passes 'type:transformer' (its ParallelTransformerLayerPipe)."""
    if config.pp == 1:
        return []
    stages = list(config.stage_layers(model.num_layers))
    if stages != list(even_split(model.num_layers, config.pp)):
        split = f"partition the layers as {stages} per stage: no partition_method gives it."
    else:
        split = (
            f"build the PipelineModule with num_stages={config.pp} and partition_method='type:transformer' "
            "(Megatron-DeepSpeed's GPTModelPipe does; in a script of one's own 'type:' and a regex of the "
            f"decoder layer's class name): it balances the decoder layers alone, {stages} per stage as "
            "priced, where 'uniform' also counts the embedding, norm and head specs."
        )
    notes = [split]
    if any(mode is not Recompute.FULL for mode in _stage_modes(config)):
        notes.append(
            "keep the PipelineModule's activation_checkpoint_interval at 0 (no full recomputation is "
            "priced): the engine applies the ds_config's interval only when it is above 0."
        )
    return notes


# ----- checks ---------------------------------------------------------------------------------------


def expert_tp_problem(model: ModelSpec, config: TrainingConfig) -> str | None:
    """Why DeepSpeed cannot run `config`'s expert tensor-parallel degree (None: it can). DeepSpeed
    splits an MoE layer's experts over the whole tensor-parallel group or not at all: with
    `enable_expert_tensor_parallelism` and an mpu, deepspeed/utils/groups.py
    `_create_expert_data_and_model_parallel` sets expert_tensor_parallel_world_size to the mpu's
    tensor-parallel size; otherwise deepspeed/moe/layer.py `MoE._create_process_groups` builds expert
    groups without one (whole experts). So etp is 1 or tp (`space._etp_domain` plans only these)."""
    if not model.is_moe or config.etp is None or config.etp in (1, config.tp):
        return None
    allowed = " or ".join(dict.fromkeys(("1", str(config.tp))))
    return (
        f"etp={config.etp} with tp={config.tp}: DeepSpeed splits experts over the whole tensor-parallel "
        f"group or not at all (deepspeed/utils/groups.py sets the expert tensor-parallel size to tp), "
        f"so etp must be {allowed}"
    )


def _stage_modes(config: TrainingConfig) -> tuple[Recompute, ...]:
    """Recompute mode of every pipeline stage."""
    return tuple(config.recompute_of(s) for s in range(config.pp))


def _validate(
    config: TrainingConfig, stage: int, cluster: Cluster | None, model: ModelSpec | None = None
) -> None:
    """Reject what DeepSpeed would reject at initialize time, naming the fields."""
    if config.global_batch % (config.micro_batch * config.dp):
        raise InputError(
            f"global_batch={config.global_batch} is not a multiple of micro_batch={config.micro_batch} x "
            f"dp={config.dp}; DeepSpeed needs train_batch_size = micro x grad_accum x dp exactly"
        )
    if config.offload_optimizer and stage == 0:
        raise InputError("offload_optimizer needs ZeRO stage 1, 2 or 3 (DeepSpeed offloads sharded states)")
    if config.offload_params and stage != 3:
        raise InputError(f"offload_params needs ZeRO-3 (parameter partitioning); zero is stage {stage}")
    if config.pp > 1 and stage >= 2:
        raise InputError(
            f"ZeRO stage {stage} with pp={config.pp}: DeepSpeed's PipelineEngine accepts only ZeRO 0 or 1 "
            "(deepspeed/runtime/pipe/engine.py: 'ZeRO-2 and ZeRO-3 are incompatible with pipeline "
            "parallelism')"
        )
    if (
        model is not None
        and config.zero is ZeroStage.PARAMETERS
        and zero_stage_problem("deepspeed", model, config.zero)
    ):
        raise InputError(
            f"ZeRO stage {stage} with {model.num_experts} routed experts: DeepSpeed's engine refuses its MoE "
            "layers under ZeRO-3 (deepspeed/runtime/engine.py: 'Native DeepSpeed MoE is not supported with "
            "ZeRO Stage 3'); `plan --train --engine deepspeed` plans for what DeepSpeed runs"
        )
    if model is not None and (problem := expert_tp_problem(model, config)) is not None:
        raise InputError(problem)
    if config.cp > 1 and config.cp_comm != "a2a":
        ring = f"cp={config.cp} is priced as ring attention ({config.cp_comm}); DeepSpeed runs context"
        if model is not None and (ulysses := cp_comm_problem(model, 1, 1, config.cp, "a2a", "deepspeed")):
            raise InputError(
                f"{ring} parallelism only as Ulysses all-to-all, which this model cannot run ({ulysses})"
            )
        raise InputError(
            f"{ring} parallelism only as Ulysses all-to-all: `plan --train --engine deepspeed` plans for it, "
            "`evaluate --train --cp-comm-type a2a` prices it"
        )
    if cluster is not None and config.world_size > cluster.world_size:
        raise InputError(
            f"the plan needs {config.world_size} GPUs (tp x pp x dp x cp) but cluster {cluster.spec} has "
            f"{cluster.world_size}"
        )
    if model is not None:
        require_training(model, cluster, config, framework="deepspeed")
