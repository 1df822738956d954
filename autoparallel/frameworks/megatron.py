"""Megatron-LM / Megatron-Core arguments for a decided training configuration, and the torchrun line.

Flag names, choices and constraints follow Megatron-LM's `megatron/training/arguments.py` and
`megatron/core/transformer/transformer_config.py` at commit d98e8a6 (2026-08), where most flags are
generated from the config dataclasses (`--tensor-model-parallel-size` from
`ModelParallelConfig.tensor_model_parallel_size`, `--fp8-format` from `TransformerConfig.fp8`).

Pipeline stages: Megatron splits layers evenly unless told otherwise. An uneven plan maps onto
  - `--decoder-first-pipeline-num-layers` / `--decoder-last-pipeline-num-layers` when only the first
    and/or last stage differ (the middle stages must then be equal), else
  - `--pipeline-model-parallel-layout` ("Et*5|t*6|...|t*5L": E embedding, t decoder layer, m MTP
    layer, L loss; stages split by `|`), which expresses any split, interleaved chunks included.

Usage:
    >>> args = megatron_args(model, TrainingConfig(tp=8, pp=4, dp=4, global_batch=512), cluster=c)
    >>> torchrun_command(model, config, cluster=c)
    'CUDA_DEVICE_MAX_CONNECTIONS=1 torchrun --nnodes 16 --nproc-per-node 8 ...'
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from autoparallel.configs import Recompute, ZeroStage
from autoparallel.errors import InputError
from autoparallel.frameworks._common import effective_precision, node_shape, vision_tower_note
from autoparallel.frameworks._megatron_model import architecture_args, architecture_notes
from autoparallel.memory.training_states import expert_dp
from autoparallel.models.spec import AttentionKind
from autoparallel.validation import require_training, sp_sequence_problem

if TYPE_CHECKING:
    from autoparallel.configs import TrainingConfig
    from autoparallel.hardware import Cluster
    from autoparallel.models.spec import ModelSpec

MASTER_PORT = 6000
"""torchrun rendezvous port (the port Megatron-LM's example scripts use)."""

_SHARDING = {
    ZeroStage.GRADIENTS: "optim_grads",
    ZeroStage.PARAMETERS: "optim_grads_params",
}
"""Megatron-FSDP `--data-parallel-sharding-strategy` for ZeRO-2 / ZeRO-3 style sharding."""

FSDP_PIPELINE_NOTE = (
    "zero={zero} with pp={pp} runs on Megatron-FSDP, which Megatron-LM documents and tests without "
    "pipeline parallelism: validate_args does not refuse it, but the Megatron-FSDP guide "
    "(docs/user-guide/parallelism-guide.md) names TP, CP and EP, its tests and examples keep pp=1, and "
    "--megatron-fsdp-version 2 refuses pp > 1 (mcore_fsdp_adapter.py `_validate_config`); the planner "
    "leaves it out (rule zero_pipeline), so this layout is priced but not known to run."
)
"""Megatron's note on ZeRO-2/3 (Megatron-FSDP) with pipeline parallelism."""

ArgDict = dict[str, object]


def megatron_arg_dict(model: ModelSpec, config: TrainingConfig, *, cluster: Cluster | None = None) -> ArgDict:
    """Megatron flags -> values, in emission order; `True` marks a switch (store_true flag).

    Raises:
        InputError: batch or layer split that Megatron cannot run, or more GPUs than the cluster has.
    """
    _validate(model, config, cluster)
    args: ArgDict = {
        "--tensor-model-parallel-size": config.tp,
        "--pipeline-model-parallel-size": config.pp,
        "--context-parallel-size": config.cp,
    }
    if config.cp > 1 and config.cp_comm != "p2p":
        args["--cp-comm-type"] = config.cp_comm
    if model.is_moe:
        args["--expert-model-parallel-size"] = config.ep
        if config.etp is not None:
            args["--expert-tensor-parallel-size"] = config.etp
        args.update(_moe_args(config, cluster))
    if config.sequence_parallel and config.tp > 1:
        args["--sequence-parallel"] = True
    args.update(_pipeline_args(model, config))
    args.update(_recompute_args(model, config))
    precision = effective_precision(config.precision, cluster)
    args.update(_optimizer_args(config, precision))
    args.update(_precision_args(precision))
    args["--micro-batch-size"] = config.micro_batch
    args["--global-batch-size"] = config.global_batch
    args["--seq-length"] = config.seq_len
    args.update(architecture_args(model, config))
    from autoparallel.frameworks._megatron_check import consistency_problems

    problems = consistency_problems(args, model, config.world_size)
    if problems:  # never hand out arguments Megatron's own start-up checks would refuse
        raise InputError("Megatron would refuse these arguments: " + "; ".join(problems))
    return args


def megatron_args(model: ModelSpec, config: TrainingConfig, *, cluster: Cluster | None = None) -> list[str]:
    """The same flags as `megatron_arg_dict`, as an argv list (switches without values)."""
    argv: list[str] = []
    for flag, value in megatron_arg_dict(model, config, cluster=cluster).items():
        argv.append(flag)
        if value is not True:
            argv.append(str(value))
    return argv


def megatron_env(config: TrainingConfig, cluster: Cluster | None = None) -> dict[str, str]:
    """Environment Megatron requires: CUDA_DEVICE_MAX_CONNECTIONS=1 with tp > 1 or cp > 1 before
    Blackwell (arguments.py asserts it so that TP/CP communication kernels are scheduled in order),
    except under Megatron-FSDP, which asserts the opposite (> 1 or unset)."""
    blackwell = cluster is not None and cluster.gpu.arch == "blackwell"
    fsdp = config.zero in _SHARDING
    if (config.tp > 1 or config.cp > 1) and not blackwell and not fsdp:
        return {"CUDA_DEVICE_MAX_CONNECTIONS": "1"}
    return {}


def megatron_notes(model: ModelSpec, config: TrainingConfig) -> list[str]:
    """Where the arguments only approximate the plan, or what the user must add, in sentences."""
    notes = [
        "add the data and tokenizer arguments (--data-path / --mock-data, --tokenizer-type ...), the "
        "optimizer schedule (--lr, --train-iters ...) and model options the shapes do not fix "
        "(rope base and scaling, norm epsilon) from the model's recipe."
    ]
    modes = _stage_modes(config)
    if len(set(modes)) > 1:
        notes.append(
            f"per-stage recompute {tuple(m.value for m in modes)} is not expressible in Megatron "
            f"(one setting for all stages); emitted: {_recompute_summary(model, config)}."
        )
    if config.tp > 1 and not config.sequence_parallel:
        why = sp_sequence_problem(config.seq_len, config.tp, config.cp)
        because = f"at {why}" if why else f"at tp={config.tp}: the configuration turns it off"
        notes.append(
            f"no --sequence-parallel {because}; priced so, with the norm and dropout activations whole "
            "on every tensor-parallel rank."
        )
    if config.offload_params:
        notes.append("offload_params has no Megatron-Core equivalent; parameters stay on the GPU.")
    if config.zero in _SHARDING and config.pp > 1:
        notes.append(FSDP_PIPELINE_NOTE.format(zero=config.zero.value, pp=config.pp))
    if _bf16_grads(config, config.precision):
        notes.append(
            f"zero={config.zero.value} is priced with gradients in bf16, so the arguments carry "
            "--grad-reduce-in-bf16; Megatron's default under bf16 accumulates and reduces gradients in "
            "fp32 (4 bytes per parameter, Megatron-FSDP's main grad buffer included), which only "
            "zero=dist prices."
        )
    if (vision := vision_tower_note(model)) is not None:
        notes.append(vision)
    notes += architecture_notes(model)
    kinds = {layer.attention.kind for layer in model.layers}
    if AttentionKind.LINEAR in kinds:
        notes.append(
            "linear-attention layers need Megatron's hybrid model (--hybrid-layer-pattern); "
            "the arguments describe a plain GPT stack."
        )
    return notes


def torchrun_command(
    model: ModelSpec,
    config: TrainingConfig,
    *,
    cluster: Cluster,
    node_rank: int | None = None,
    master_addr: str = "${MASTER_ADDR}",
    master_port: int = MASTER_PORT,
    script: str = "pretrain_gpt.py",
) -> str:
    """`[ENV=...] torchrun --nnodes N --nproc-per-node G --node-rank R --master-addr A --master-port P
    pretrain_gpt.py ARGS`. `node_rank=None` writes `${NODE_RANK}` so one line serves every node.

    Raises:
        InputError: as `megatron_arg_dict`, or GPUs that do not fill whole hosts (`_common.node_shape`:
            N hosts of G GPUs, 18 of 4 for a GB200 NVL72 rack).
    """
    nodes, per_node = node_shape(config.world_size, cluster)
    if nodes == 1:
        node_rank, master_addr = 0, "localhost"
    env = " ".join(f"{k}={v}" for k, v in megatron_env(config, cluster).items())
    rank = "${NODE_RANK}" if node_rank is None else str(node_rank)
    addr = master_addr if master_addr.startswith("${") else shlex.quote(master_addr)
    parts = [env] if env else []
    parts += [
        "torchrun",
        "--nnodes",
        str(nodes),
        "--nproc-per-node",
        str(per_node),
        "--node-rank",
        rank,
        "--master-addr",
        addr,
        "--master-port",
        str(master_port),
        shlex.quote(script),
    ]
    parts += [shlex.quote(a) for a in megatron_args(model, config, cluster=cluster)]
    return " ".join(parts)


def check_megatron_consistency(
    args: list[str] | ArgDict, model: ModelSpec, cluster: Cluster, *, world_size: int | None = None
) -> list[str]:
    """Problems Megatron would raise for `args` on `world_size` GPUs (default: the whole cluster).

    Checks the products of the parallel degrees against the world size, the layer split against the
    model's layers, the global batch against micro-batch × data-parallel size, head and query-group
    divisibility by tp, the expert grid, and sequence length against context parallelism.
    """
    from autoparallel.frameworks._megatron_check import consistency_problems

    parsed = _parse_argv(args) if isinstance(args, list) else dict(args)
    world = cluster.world_size if world_size is None else world_size
    return consistency_problems(parsed, model, world)


# ----- sections -------------------------------------------------------------------------------------


def _stage_modes(config: TrainingConfig) -> tuple[Recompute, ...]:
    return tuple(config.recompute_of(s) for s in range(config.pp))


def _pipeline_args(model: ModelSpec, config: TrainingConfig) -> ArgDict:
    """Uneven stages and interleaving: first/last-stage flags when they suffice, else a layout string."""
    stages = config.stage_layers(model.num_layers)
    pp, vp = config.pp, config.vp
    even = len(set(stages)) == 1
    middle_even = len(set(stages[1:-1])) <= 1
    if vp == 1:
        if even:
            return {}
        if middle_even:
            return _first_last(stages)
        return {"--pipeline-model-parallel-layout": pipeline_layout(stages, vp, model.mtp_layers)}
    if even and stages[0] % vp == 0:
        return {"--num-layers-per-virtual-pipeline-stage": stages[0] // vp}
    middle_ok = pp == 2 or stages[1] % vp == 0
    if middle_even and stages[0] % vp == 0 and stages[-1] % vp == 0 and middle_ok:
        return {"--num-virtual-stages-per-pipeline-rank": vp, **_first_last(stages)}
    return {"--pipeline-model-parallel-layout": pipeline_layout(stages, vp, model.mtp_layers)}


def _moe_args(config: TrainingConfig, cluster: Cluster | None) -> ArgDict:
    """The expert path the cost model prices (perf/training_moe.py), which Megatron-Core's defaults
    are not (TransformerConfig: moe_grouped_gemm False, a loop over the local experts;
    moe_token_dispatcher_type "allgather"): grouped GEMMs (where the GPU runs them, `GPU.sm80`),
    all-to-all dispatch, and the capacity factor with padding or the EP all-to-all overlap where the
    configuration has them."""
    args: ArgDict = {}
    if cluster is None or cluster.gpu.sm80:
        args["--moe-grouped-gemm"] = True
    args["--moe-token-dispatcher-type"] = "alltoall"
    if config.moe_capacity_factor is not None:
        args["--moe-expert-capacity-factor"] = config.moe_capacity_factor
        args["--moe-pad-expert-input-to-capacity"] = True
    if config.ep_overlap:
        args["--overlap-moe-expert-parallel-comm"] = True
    return args


def _first_last(stages: tuple[int, ...]) -> ArgDict:
    """--decoder-first/last-pipeline-num-layers for the stages that differ from the middle ones."""
    if len(stages) == 2:
        return {
            "--decoder-first-pipeline-num-layers": stages[0],
            "--decoder-last-pipeline-num-layers": stages[1],
        }
    middle = stages[1]
    out: ArgDict = {}
    if stages[0] != middle:
        out["--decoder-first-pipeline-num-layers"] = stages[0]
    if stages[-1] != middle:
        out["--decoder-last-pipeline-num-layers"] = stages[-1]
    return out


def pipeline_layout(stages: tuple[int, ...], vp: int = 1, mtp_layers: int = 0) -> str:
    """Megatron `--pipeline-model-parallel-layout` for `stages[b]` decoder layers on pipeline rank b.

    With interleaving each rank's layers are cut into `vp` chunks (earlier chunks take the remainder);
    Megatron orders the pp·vp virtual stages as index a·pp + b (chunk a of rank b). Embedding (E)
    starts the first virtual stage; MTP layers (m) and the loss (L) end the last.
    """
    pp = len(stages)
    chunks = [[n // vp + (1 if a < n % vp else 0) for a in range(vp)] for n in stages]
    cells = []
    for a in range(vp):
        for b in range(pp):
            text = "E" if (a, b) == (0, 0) else ""
            n = chunks[b][a]
            text += "t" if n == 1 else (f"t*{n}" if n else "")
            if (a, b) == (vp - 1, pp - 1):
                text += "m" * mtp_layers + "L"
            cells.append(text)
    return "|".join(cells)


def _recompute_args(model: ModelSpec, config: TrainingConfig) -> ArgDict:
    """Full: uniform over each layer; several stages full and others not: block over the largest
    full stage's layers (Megatron applies one count to every stage); selective: Megatron's default
    module list (core attention)."""
    modes = set(_stage_modes(config))
    if Recompute.FULL in modes:
        if modes == {Recompute.FULL}:
            return {
                "--recompute-granularity": "full",
                "--recompute-method": "uniform",
                "--recompute-num-layers": 1,
            }
        stages = config.stage_layers(model.num_layers)
        n = max(stages[s] for s, m in enumerate(_stage_modes(config)) if m is Recompute.FULL)
        return {
            "--recompute-granularity": "full",
            "--recompute-method": "block",
            # Per model chunk (vp of them per stage): the largest chunk of a fully recomputed stage
            # holds ceil(n / vp) layers, all of which the plan prices as recomputed.
            "--recompute-num-layers": -(-n // config.vp),
        }
    if Recompute.SELECTIVE in modes:
        return {"--recompute-granularity": "selective"}
    return {}


def _recompute_summary(model: ModelSpec, config: TrainingConfig) -> str:
    return " ".join(f"{k} {v}" for k, v in _recompute_args(model, config).items()) or "no recompute"


def _optimizer_args(config: TrainingConfig, precision: str) -> ArgDict:
    """ZeRO-1 / distributed optimizer, Megatron-FSDP for ZeRO-2/3, the data-parallel overlap the cost
    model prices (`_overlap_args`), optimizer CPU offload; `precision`: the one the job runs in
    (`effective_precision`)."""
    args: ArgDict = {}
    if _bf16_grads(config, precision):
        args["--grad-reduce-in-bf16"] = True
    if config.zero in (ZeroStage.OPTIMIZER, ZeroStage.DISTRIBUTED_OPTIMIZER):
        args["--use-distributed-optimizer"] = True
    elif config.zero in _SHARDING:
        args["--use-megatron-fsdp"] = True
        args["--use-distributed-optimizer"] = True  # Megatron-FSDP v1 requires it
        args["--data-parallel-sharding-strategy"] = _SHARDING[config.zero]
        args["--ckpt-format"] = "fsdp_dtensor"  # arguments.py: Megatron-FSDP requires it
    args.update(_overlap_args(config))
    if config.offload_optimizer:
        # megatron/core/optimizer/cpu_offloading/README.md: offload needs the precision-aware optimizer.
        args["--optimizer-cpu-offload"] = True
        args["--optimizer-offload-fraction"] = 1.0
        args["--use-precision-aware-optimizer"] = True
        args["--overlap-cpu-optimizer-d2h-h2d"] = True
    return args


def _bf16_grads(config: TrainingConfig, precision: str) -> bool:
    """Whether the job needs `--grad-reduce-in-bf16` to run as priced: ZeRO 0-3 are priced with
    gradients in the model's dtype (DeepSpeed's default); under bf16 and fp8 Megatron accumulates and
    reduces them in fp32 unless told otherwise (arguments.py `accumulate_allreduce_grads_in_fp32`, the
    DDP config's `grad_reduce_in_fp32`), in the distributed optimizer's main_grad buffer and in
    Megatron-FSDP's (megatron_fsdp/param_and_grad_buffer.py), which only zero=dist prices. Under fp16
    Megatron keeps fp16 gradients (`validation.framework_zero_stages`)."""
    return config.zero is not ZeroStage.DISTRIBUTED_OPTIMIZER and precision != "fp16"


def _overlap_args(config: TrainingConfig) -> ArgDict:
    """The data-parallel overlap perf/training_schedule.py prices as hidden behind compute, which
    Megatron's DDP leaves off by default (arguments.py: both flags store_true, default False;
    DistributedDataParallelConfig likewise): `--overlap-grad-reduce` wherever a data-parallel group
    (dense dp × cp, or the experts' expert-data-parallel one) has more than one rank, and
    `--overlap-param-gather` where the updated parameters are all-gathered (distributed optimizer,
    ZeRO-2), which validate_args allows only with the distributed optimizer or Megatron-FSDP and
    together with `--overlap-grad-reduce`. Without interleaving validate_args turns
    `align_param_gather` off itself; with it, its default (every stage gathers at once) stands.
    Megatron-FSDP turns on both for `optim_grads_params` and the gradient one for `optim_grads`
    itself (megatron_fsdp.py `MegatronFSDP.__init__`), so ZeRO-3 needs neither flag and ZeRO-2
    only the parameter one (with the gradient one validate_args asks beside it)."""
    if config.dp * config.cp == 1 and expert_dp(config) <= 1:
        return {}  # neither group has a second rank: nothing to reduce or gather
    if config.zero is ZeroStage.PARAMETERS:
        return {}
    args: ArgDict = {"--overlap-grad-reduce": True}
    if config.zero in (ZeroStage.OPTIMIZER, ZeroStage.DISTRIBUTED_OPTIMIZER, ZeroStage.GRADIENTS):
        args["--overlap-param-gather"] = True
    return args


def _precision_args(precision: str) -> ArgDict:
    """bf16; fp8 = bf16 weights with FP8 GEMMs (E4M3 forward, E5M2 gradients: `hybrid`); fp16."""
    if precision == "fp8":
        return {"--bf16": True, "--fp8-format": "hybrid"}
    if precision == "fp16":
        return {"--fp16": True}
    return {"--bf16": True}


def _validate(model: ModelSpec, config: TrainingConfig, cluster: Cluster | None) -> None:
    stages = config.stage_layers(model.num_layers)
    if len(stages) != config.pp or sum(stages) != model.num_layers or min(stages) < 1:
        raise InputError(
            f"layers_per_stage={stages} must give each of pp={config.pp} stages at least one layer and sum "
            f"to the model's {model.num_layers} layers"
        )
    if config.vp > 1 and (config.pp == 1 or min(stages) < config.vp):
        raise InputError(
            f"vp={config.vp} needs pp > 1 and at least vp layers on every stage; stages={stages}"
        )
    if config.global_batch % (config.micro_batch * config.dp):
        raise InputError(
            f"global_batch={config.global_batch} is not a multiple of micro_batch={config.micro_batch} x "
            f"dp={config.dp} (Megatron: global batch = micro x data-parallel size x micro-batches)"
        )
    etp = config.tp if config.etp is None else config.etp
    if model.is_moe and (config.tp * config.cp * config.dp) % (etp * config.ep):
        raise InputError(
            f"expert grid etp={etp} x ep={config.ep} does not tile the {config.tp * config.cp * config.dp} "
            "ranks of a pipeline stage (tp x cp x dp); Megatron-Core carves experts out of those ranks"
        )
    if config.offload_optimizer and config.zero is ZeroStage.NONE:
        raise InputError(
            "offload_optimizer needs the distributed optimizer (zero=dist or ZeRO >= 1) in Megatron"
        )
    if cluster is not None and config.world_size > cluster.world_size:
        raise InputError(
            f"the plan needs {config.world_size} GPUs but cluster {cluster.spec} has {cluster.world_size}"
        )
    if config.ep_overlap and (refused := _ep_overlap_problems(model, config)):
        raise InputError(
            "ep_overlap: Megatron-Core refuses --overlap-moe-expert-parallel-comm here: "
            f"{'; '.join(refused)} (transformer_config.py; DeepSeek-V3's DualPipe, which ep_overlap "
            "also prices, is not in Megatron-LM)"
        )
    require_training(model, cluster, config)


def _ep_overlap_problems(model: ModelSpec, config: TrainingConfig) -> list[str]:
    """What Megatron-Core's TransformerConfig asserts under overlap_moe_expert_parallel_comm
    (transformer_config.py `__post_init__`): expert parallelism, no full recomputation, virtual
    stages when pp > 1, at most one MTP layer (the alltoall dispatcher is what `_moe_args` sets);
    and what its interleaved schedule asserts: no Megatron-FSDP model chunks
    (pipeline_parallel/combined_1f1b.py `combined_1f1b_schedule_for_interleaved_pipelining`)."""
    out = []
    if not model.is_moe or config.ep < 2:
        out.append(f"it needs expert parallelism (ep={config.ep})")
    if Recompute.FULL in _stage_modes(config):
        out.append("full recomputation")
    if config.pp > 1 and config.vp < 2:
        out.append(f"pp={config.pp} without virtual stages (vp={config.vp})")
    if config.zero in _SHARDING and config.vp > 1:
        out.append(
            f"Megatron-FSDP (zero={config.zero.value}) with the interleaved pipeline (vp={config.vp}): "
            "combined_1f1b.py asserts 'EP overlap 1F1B with FSDP is not supported for interleaved "
            "pipeline parallelism'"
        )
    if model.mtp_layers > 1:
        out.append(f"{model.mtp_layers} MTP layers (at most one)")
    return out


def _parse_argv(argv: list[str]) -> ArgDict:
    """argv -> {flag: value or True}."""
    out: ArgDict = {}
    i = 0
    while i < len(argv):
        flag = argv[i]
        if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            out[flag] = argv[i + 1]
            i += 2
        else:
            out[flag] = True
            i += 1
    return out
