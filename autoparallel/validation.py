"""One validation layer: the divisibility, capacity and range rules a configuration must meet.

Every rule answers with a sentence that names the field, its value and the rule
(`tp=3: 32 attention heads are not divisible by tp (tp_divides_heads)`), so the CLI, `evaluate`, the
API and the emitters (vLLM, DeepSpeed, Megatron) refuse the same inputs with the same words.

    serving_problems(model, cluster, config, workload)   -> list[str]   (empty: valid)
    training_problems(model, cluster, config)             -> list[str]
    require_serving(...) / require_training(...)          raise InputError naming every broken rule

The ranges of single numbers (`BOUNDS`, `check_number`) live one layer lower, in `autoparallel.bounds`,
so that the workload and configuration models can use them too.

The rules mirror what the engines enforce at start-up: vLLM's `ModelConfig.verify_with_parallel_config`
and `SchedulerConfig._verify_args`, Megatron-LM's `validate_args` / `TransformerConfig.__post_init__`
(see `frameworks/_megatron_check.py` for the exact citations), DeepSpeed's batch identity.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from autoparallel.configs import ZeroStage, precision_problem
from autoparallel.errors import InputError
from autoparallel.models.spec import AttentionKind, MlpKind

if TYPE_CHECKING:
    from autoparallel.configs import ServingConfig, TrainingConfig
    from autoparallel.hardware import GPU, Cluster
    from autoparallel.models.spec import AttentionSpec, LayerSpec, ModelSpec
    from autoparallel.workload import Serving

__all__ = [
    "MAX_CLUSTER_GPUS",
    "cluster_problems",
    "cp_comm_problem",
    "cp_sequence_problem",
    "expert_grid_problem",
    "fp8_gemm_problem",
    "fp8_token_problem",
    "framework_zero_stages",
    "kv_heads_split_problem",
    "moe_sequence_parallel_problem",
    "require_cluster",
    "require_serving",
    "require_training",
    "require_training_job",
    "serving_problems",
    "sp_sequence_problem",
    "training_problems",
    "zero_stage_problem",
]


# ----- cluster --------------------------------------------------------------------------------------
MAX_CLUSTER_GPUS = 1 << 17
"""131,072 GPUs: above the largest clusters built (about 100k GPUs in 2024-2025)."""
BANDWIDTH_GBPS = (0.01, 1e5)
"""Per-GPU bandwidth range, GB/s one way: from 80 Mbit/s to 100 TB/s (NVLink 5 is 900 GB/s)."""


TrainingFramework = Literal["megatron", "deepspeed"]
"""The training framework a plan is emitted for (`TrainingOptions.framework`, `--engine` with --train)."""


def job_precision(precision: str, gpu: GPU) -> str:
    """The precision a training job runs in on `gpu`: bf16 becomes fp16 (with dynamic loss scaling) on
    GPUs without BF16 tensor cores (V100, T4: the catalog's `bf16_native`), as the frameworks run it
    there; what a plan prices and what its artifacts say."""
    return "fp16" if precision == "bf16" and not gpu.bf16_native else precision


def framework_zero_stages(
    framework: TrainingFramework, model: ModelSpec, *, bf16_grads: bool = False
) -> tuple[ZeroStage, ...]:
    """The sharding modes `framework` runs for `model`, each as priced (`zero_stage_problem` says why
    the others are not).

    - Megatron: its distributed optimizer ("dist"; "1" with bf16 gradients), DDP ("0") and
      Megatron-FSDP ("2", "3"). Under
      bf16 (and fp8, whose parameters are bf16) Megatron accumulates and reduces gradients in fp32
      whatever the sharding (megatron/training/arguments.py: "bfloat16 requires gradient accumulation
      and all-reduce to be done in fp32", `accumulate_allreduce_grads_in_fp32`, which training.py
      passes on as `DistributedDataParallelConfig.grad_reduce_in_fp32`): the distributed optimizer's
      `main_grad` buffer, and Megatron-FSDP's too (megatron_fsdp/param_and_grad_buffer.py allocates
      its main grad buffer in fp32 when `grad_reduce_in_fp32`, else in the gradients' dtype). Only
      "dist" is priced so; ZeRO 0-3 are priced with gradients in bf16, which Megatron runs only with
      `--grad-reduce-in-bf16` (the Megatron-FSDP user guide recommends it: "gradient reduction in
      BF16 precision instead of FP32"). That changes the numerics Megatron chose, so plans keep to
      "dist" unless asked (`bf16_grads`, `TrainingOptions.grad_reduce_in_bf16`); an `evaluate`d
      "0"-"3" emits the flag (`frameworks.megatron`). Under fp16 (`job_precision`) Megatron keeps
      gradients in fp16 whatever the sharding (`accumulate_allreduce_grads_in_fp32` is set for bf16
      only), so every mode is priced as run there (`bf16_grads` True). Plain DDP in fp32 would never
      be lighter or faster than "dist" (the same gradient traffic as a reduce-scatter plus an
      all-gather, Rajbhandari et al. §5).
    - DeepSpeed: ZeRO 0-3, gradients in the model's dtype (`data_types.grad_accum_dtype` defaults to
      it, engine.py `get_data_types`); "dist" is Megatron's. None of stage 3 for a model with MoE
      layers, whose engine refuses its own MoE layers (`deepspeed.moe.layer.MoE`, which
      Megatron-DeepSpeed builds for every expert layer) under ZeRO-3
      (deepspeed/runtime/engine.py `_validate_zero3_moe_compatibility`: "Native DeepSpeed MoE is not
      supported with ZeRO Stage 3. Use AutoEP or choose ZeRO stage 1/2."; AutoEP replaces a Hugging
      Face model's MoE blocks and is not what a ds_config sets up)."""
    return tuple(
        z for z in ZeroStage if zero_stage_problem(framework, model, z, bf16_grads=bf16_grads) is None
    )


def zero_stage_problem(
    framework: TrainingFramework, model: ModelSpec, zero: ZeroStage, *, bf16_grads: bool = False
) -> str | None:
    """Why `framework` does not run sharding mode `zero` for `model` as priced (None: it does);
    `framework_zero_stages` has the sources."""
    if framework == "megatron" and zero is not ZeroStage.DISTRIBUTED_OPTIMIZER and not bf16_grads:
        return (
            f"zero={zero.value}: its bf16 gradients run in Megatron only with --grad-reduce-in-bf16 (what "
            "`evaluate` emits for it); plans keep Megatron's default fp32 gradients (zero=dist) unless "
            "asked with that flag"
        )
    if framework == "deepspeed" and zero is ZeroStage.DISTRIBUTED_OPTIMIZER:
        return "zero=dist: Megatron's distributed optimizer; DeepSpeed's ZeRO-1 is zero=1"
    if framework == "deepspeed" and zero is ZeroStage.PARAMETERS and model.is_moe:
        return f"zero=3: DeepSpeed refuses its MoE layers ({model.num_experts} routed experts) under ZeRO-3"
    return None


def cp_sequence_problem(seq_len: int, cp: int, framework: TrainingFramework = "megatron") -> str | None:
    """Why `seq_len` cannot be split over `cp` ranks (None: it can). Megatron cuts each sequence into
    2·cp chunks for its causal load balance (megatron/core/utils.py `get_batch_on_this_cp_rank`,
    whatever `--cp-comm-type`); DeepSpeed-Ulysses into cp (ulysses_sp.py: "batch's seqlen isn't
    divisible by sp-size")."""
    chunks = 2 * cp if framework == "megatron" else cp
    if cp <= 1 or seq_len % chunks == 0:
        return None
    how = "Megatron's load-balanced context parallelism" if framework == "megatron" else "DeepSpeed-Ulysses"
    return f"seq_len={seq_len}: not a multiple of {chunks}, the chunks {how} cuts it into at cp={cp}"


def sp_sequence_problem(seq_len: int, tp: int, cp: int = 1, sequence_parallel: bool = True) -> str | None:
    """Why Megatron's sequence parallelism cannot split each context-parallel rank's seq_len / cp
    tokens over the `tp` tensor-parallel ranks (None: it can, or it is off, or tp = 1). Between the
    tensor-parallel blocks it keeps activations as [s, b, h] cut along s: the embedding output is
    scattered and every block's output reduce-scattered along the first dimension, which asserts
    "First dimension of the tensor should be divisible by tensor parallel size"
    (megatron/core/tensor_parallel/mappings.py `_split_along_first_dim`,
    `_reduce_scatter_along_first_dim`; the same in Megatron-DeepSpeed, whose mpu gives a DeepSpeed
    plan its tensor parallelism). Under context parallelism each rank holds seq_len / cp tokens
    (`cp_sequence_problem` has the rule on seq_len and cp)."""
    if not sequence_parallel or tp <= 1 or seq_len % cp:
        return None
    local = seq_len // cp
    if local % tp == 0:
        return None
    where = (
        f"each context-parallel rank's seq_len / cp = {seq_len} / {cp} = {local} tokens are"
        if cp > 1
        else f"seq_len={seq_len} is"
    )
    return (
        f"tp={tp}: {where} not a multiple of tp, the parts Megatron's sequence parallelism cuts them "
        "into (its reduce-scatter along the sequence asserts it)"
    )


def kv_heads_split_problem(model: ModelSpec, tp: int, framework: TrainingFramework) -> str | None:
    """Why `framework` cannot build `model`'s attention at tensor-parallel degree `tp` where the model
    rule `tp_kv_heads` (`models.limits.tp_violations`) lets tp replicate the KV heads, tp a multiple
    of them (None: it can). Megatron-Core replicates them there (its TransformerConfig takes a
    tensor-parallel size that divides the query groups or is a multiple of them); Megatron-DeepSpeed,
    whose mpu gives a DeepSpeed plan its tensor parallelism, only splits them: its ParallelAttention
    (megatron/model/transformer.py) sets `num_key_value_heads_per_partition =
    core.utils.divide(num_key_value_heads, world_size)`, which asserts "4 is not divisible by 8" when
    the model is built. MLA layers (one latent, no KV heads to split) and linear-attention layers
    (`tp_divides_linear_heads`) are left to the model rules, as are KV heads that tp neither divides
    nor is a multiple of (`tp_kv_heads`)."""
    if framework != "deepspeed" or tp <= 1:
        return None
    skip = (AttentionKind.MLA, AttentionKind.LINEAR)
    heads = sorted({la.attention.num_kv_heads for la in model.layers if la.attention.kind not in skip})
    bad = [kv for kv in heads if tp > kv and tp % kv == 0]
    if not bad:
        return None
    return (
        f"tp={tp}: Megatron-DeepSpeed splits the {bad[0]} KV heads over the tensor-parallel ranks and "
        "cannot replicate them (megatron/model/transformer.py ParallelAttention divides "
        f"num_key_value_heads by tp), so tp must divide {bad[0]}"
    )


def moe_sequence_parallel_problem(model: ModelSpec, tp: int, sequence_parallel: bool) -> str | None:
    """Why Megatron refuses an MoE model at `tp` > 1 without sequence parallelism (None: it does not):
    megatron/training/arguments.py `validate_args`: "When using MoE and tensor parallelism, sequence
    parallelism must be used." (Megatron-Core's TransformerConfig likewise with expert parallelism)."""
    if not model.is_moe or tp <= 1 or sequence_parallel:
        return None
    return (
        f"sequence_parallel=False with tp={tp}: Megatron requires sequence parallelism for an MoE model "
        "with tensor parallelism (arguments.py validate_args)"
    )


def expert_grid_problem(model: ModelSpec, tp: int, cp: int, dp: int, ep: int, etp: int) -> str | None:
    """Why the expert layout (`ep` expert-parallel ranks, each expert split over `etp`) does not tile a
    pipeline stage's tp × cp × dp ranks (None: it does, or the model has no experts).

    Megatron-Core lays the experts out as their own grid [etp, ep, edp, pp] over the world
    (megatron/core/parallel_state.py `initialize_model_parallel`, the expert `RankGenerator`, which
    raises unless world % (etp·ep·pp) == 0): etp·ep must divide tp·cp·dp. ep need not divide dp·cp;
    with etp = 1 it may take ranks of the tensor-parallel group (tp=8, dp=1, ep=8, etp=1). DeepSpeed
    agrees on both planned degrees (deepspeed/utils/groups.py): etp = tp goes through
    `_create_expert_data_and_model_parallel`, which asserts ep divides the data-parallel size (the
    rule at etp = tp); etp = 1 through `_create_expert_and_data_parallel`, ep consecutive ranks."""
    if not model.is_moe:
        return None
    ranks = tp * cp * dp
    if ranks % (etp * ep):
        return (
            f"ep={ep}: expert grid etp x ep = {etp} x {ep} does not tile the {ranks} ranks of a pipeline "
            "stage, tp x cp x dp (expert_grid)"
        )
    return None


FP8_ROWS_MULTIPLE = 8
"""Transformer Engine FP8 GEMMs: every input's and weight's rows (all dimensions but the last) must be a
multiple of this (transformer_engine/pytorch/utils.py `assert_dim_for_fp8_exec`)."""
FP8_LAST_DIM_MULTIPLE = 16
"""... and their last dimension (the GEMM's reduction dimension, in_features) a multiple of this."""


def _split(total: int, parts: int) -> int | None:
    """total / parts when it divides (None: another rule, e.g. `tp_violations`, refuses the split)."""
    return total // parts if parts >= 1 and total % parts == 0 else None


def _fp8_linears(
    model: ModelSpec, layer: LayerSpec, tp: int, etp: int
) -> list[tuple[str, int | None, int | None]]:
    """(name, out_features, in_features) of each Transformer Engine linear of one Megatron decoder layer
    on one rank, at `tp` (attention, dense MLP, shared experts) and `etp` (routed experts; None where
    the split does not divide). Column-parallel linears split out_features, row-parallel ones
    in_features (Megatron-Core's gpt_layer_specs / MLA / Gated DeltaNet modules); MLA's down-projections
    are duplicated on every rank (`parallel_mode="duplicated"`)."""
    h, att, mlp = model.hidden_size, layer.attention, layer.mlp
    out: list[tuple[str, int | None, int | None]] = []
    if att.kind is AttentionKind.LINEAR:
        # megatron/core/ssm/gated_delta_net.py: in_proj_dim = 2·qk_dim + 2·v_dim + 2·value heads.
        qk, v = att.num_heads * att.head_dim, att.linear_num_value_heads * att.v_head_dim
        out.append(("in_proj", _split(2 * qk + 2 * v + 2 * att.linear_num_value_heads, tp), h))
        out.append(("out_proj", h, _split(v, tp)))
    elif att.kind is AttentionKind.MLA:
        nope = att.head_dim - att.qk_rope_head_dim
        if att.q_lora_rank:
            out.append(("linear_q_down_proj", att.q_lora_rank, h))
            out.append(("linear_q_up_proj", _split(att.num_heads * att.head_dim, tp), att.q_lora_rank))
        else:
            out.append(("linear_q_proj", _split(att.num_heads * att.head_dim, tp), h))
        out.append(("linear_kv_down_proj", att.kv_lora_rank + att.qk_rope_head_dim, h))
        up = att.num_heads * (nope + att.v_head_dim)
        out.append(("linear_kv_up_proj", _split(up, tp), att.kv_lora_rank))
        out.append(("linear_proj", h, _split(att.num_heads * att.v_head_dim, tp)))
    else:
        qkv = att.num_heads * att.head_dim + att.num_kv_heads * (att.head_dim + att.v_head_dim)
        out.append(("linear_qkv", _split(qkv, tp), h))
        out.append(("linear_proj", h, _split(att.num_heads * att.v_head_dim, tp)))
    up = 2 if mlp.gated else 1
    dense = mlp.intermediate_size if mlp.kind is MlpKind.DENSE else 0
    if dense:
        out.append(("linear_fc1", _split(up * dense, tp), h))
        out.append(("linear_fc2", h, _split(dense, tp)))
    shared = mlp.num_shared_experts * mlp.shared_intermediate_size if mlp.kind is MlpKind.MOE else 0
    if shared:
        out.append(("shared_experts.linear_fc1", _split(up * shared, tp), h))
        out.append(("shared_experts.linear_fc2", h, _split(shared, tp)))
    if mlp.kind is MlpKind.MOE and mlp.num_experts:
        out.append(("experts.linear_fc1", _split(up * mlp.intermediate_size, etp), h))
        out.append(("experts.linear_fc2", h, _split(mlp.intermediate_size, etp)))
    return out


def fp8_gemm_problem(model: ModelSpec, tp: int, etp: int) -> str | None:
    """Why Transformer Engine refuses `model`'s FP8 GEMMs at tensor-parallel degree `tp` and expert
    tensor-parallel degree `etp` (None: it runs them). TE's Linear / LayerNormLinear / GroupedLinear
    forward calls `assert_dim_for_fp8_exec(inputmat, weight)` (transformer_engine/pytorch/utils.py):
    every weight's rows (out_features on the rank) a multiple of FP8_ROWS_MULTIPLE and its last
    dimension (in_features on the rank, also the input's last dimension) of FP8_LAST_DIM_MULTIPLE.
    The tokens (the inputs' rows) are `fp8_token_problem`'s rule. Names every refused dimension."""
    bad: list[str] = []
    for layer in dict.fromkeys(model.layers):
        for name, rows, cols in _fp8_linears(model, layer, tp, etp):
            split = "etp" if name.startswith("experts.") else "tp"
            where = f"{name} at {split}={etp if split == 'etp' else tp}"
            if rows is not None and rows % FP8_ROWS_MULTIPLE:
                bad.append(f"{where}: out_features {rows} is not a multiple of {FP8_ROWS_MULTIPLE}")
            if cols is not None and cols % FP8_LAST_DIM_MULTIPLE:
                bad.append(f"{where}: in_features {cols} is not a multiple of {FP8_LAST_DIM_MULTIPLE}")
    if not bad:
        return None
    return (
        f"precision=fp8: {'; '.join(dict.fromkeys(bad))} (Transformer Engine's assert_dim_for_fp8_exec "
        "refuses the GEMM)"
    )


def fp8_token_problem(
    seq_len: int, micro_batch: int, tp: int, cp: int, sequence_parallel: bool = True
) -> str | None:
    """Why Transformer Engine refuses the FP8 GEMM inputs of one micro-batch (None: it runs them): each
    linear's input rows are the rank's tokens, micro_batch × seq_len / cp, split over tp by sequence
    parallelism before the column-parallel linears (their input is the rank's sequence shard, gathered
    inside the GEMM), and TE's `assert_dim_for_fp8_exec` needs them a multiple of FP8_ROWS_MULTIPLE.
    Routed experts are not bound by it: Megatron-Core pads each expert's FP8 tokens
    (`TEGroupedMLP`, `Fp8Padding`)."""
    if seq_len % cp:
        return None  # seq_divides_cp says so
    sp = tp if sequence_parallel and tp > 1 else 1
    tokens = micro_batch * (seq_len // cp)
    if tokens % sp:
        return None  # seq_divides_sp says so
    rows = tokens // sp
    if rows % FP8_ROWS_MULTIPLE == 0:
        return None
    how = f"micro_batch x seq_len / cp = {micro_batch} x {seq_len} / {cp}"
    if sp > 1:
        how += f" / tp {sp} (sequence parallelism)"
    return (
        f"precision=fp8: {how} = {rows} tokens per GEMM input, not a multiple of {FP8_ROWS_MULTIPLE} "
        "(Transformer Engine's assert_dim_for_fp8_exec)"
    )


def cp_comm_problem(
    model: ModelSpec, tp: int, pp: int, cp: int, cp_comm: str, framework: TrainingFramework = "megatron"
) -> str | None:
    """Why context parallelism `cp` cannot exchange as `cp_comm` (`TrainingConfig.cp_comm`) under
    `framework` for `model`'s layers at `tp` (None: it can).

    - Megatron, p2p (ring attention): no head rule, but no sliding-window layers: Transformer
      Engine runs those (and attention sinks, which come with them in the zoo) only with a2a or
      all_gather (`attn_forward_func_with_cp`: "Context parallelism does not support sliding window
      attention with cp_comm_type='p2p'").
    - Megatron, a2a: TE's `AttnFuncWithCPAndQKVOA2A` asserts that each rank's query and key heads
      are divisible by cp ("The number of attention heads needs to be divisible by CP size!"), and
      `attn_forward_func_with_cp` runs keys and values of two head sizes (MLA's 192 / 128) with p2p or
      a2a+p2p only ("The context parallel running configs cannot support MLA!").
    - Megatron, DeepSeek Sparse Attention layers (`AttentionSpec.sparse_topk`, Megatron-LM's
      experimental DSA variant), whatever `cp_comm`: Megatron-Core's `TransformerConfig.__post_init__`
      (megatron/core/transformer/transformer_config.py, `experimental_attention_variant == "dsa"`)
      asserts every cp_comm_type is allgather when context_parallel_size > 1 ("DSAttention context
      parallelism currently supports cp_comm_type=allgather only"); the plans price only p2p and a2a,
      so such a model trains at cp = 1.
    - Megatron, linear-attention (Gated DeltaNet) layers, whatever `cp_comm`: they scatter each
      tensor-parallel rank's key and value heads over cp (megatron/core/ssm/gated_delta_net/gdn.py,
      `feat_dim_split`), so those must divide by cp.
    - DeepSpeed runs only a2a (Ulysses), and only without tensor or pipeline parallelism (Megatron-
      DeepSpeed's examples_deepspeed/sequence_parallel/README.md: "currently incompatible with
      Megatron-LM's tensor or pipeline parallelism"). DeepSpeed's `UlyssesSPAttentionHF`
      (deepspeed/runtime/sequence_parallel/ulysses_sp.py, "Arctic Long Sequence Training") wraps a
      Hugging Face model's attention: it needs the query heads divisible by cp, the KV heads divisible
      by cp or dividing it (then replicated), keys and values of one shape (it asserts
      `key.shape == value.shape`, which MLA's 192 / 128 breaks), and no linear-attention layers
      (they are not attention it wraps)."""
    if cp <= 1:
        return None
    if framework == "deepspeed":
        if cp_comm != "a2a":
            ulysses = next(
                (
                    p
                    for att in dict.fromkeys(x.attention for x in model.layers)
                    if (p := _deepspeed_ulysses_problem(att, cp))
                ),
                None,
            )
            cannot = f", which this model cannot run ({ulysses.split(': ', 1)[1]})" if ulysses else ""
            return f"cp={cp}: DeepSpeed runs context parallelism all-to-all (Ulysses), not {cp_comm}{cannot}"
        if tp > 1 or pp > 1:
            return (
                f"cp={cp} with tp={tp}, pp={pp}: DeepSpeed-Ulysses runs without tensor or pipeline "
                "parallelism (Megatron-DeepSpeed's sequence-parallel README)"
            )
    for att in dict.fromkeys(layer.attention for layer in model.layers):
        problem = (
            _deepspeed_ulysses_problem(att, cp)
            if framework == "deepspeed"
            else _megatron_cp_problem(att, tp, cp, cp_comm)
        )
        if problem is not None:
            return problem
    return None


def _megatron_cp_problem(att: AttentionSpec, tp: int, cp: int, cp_comm: str) -> str | None:
    """`cp_comm_problem` for one Megatron attention block (its docstring has the sources)."""
    if att.sparse_topk:
        return (
            f"cp={cp}: Megatron-LM runs DeepSeek Sparse Attention's context parallelism only with "
            f"cp_comm_type allgather (TransformerConfig.__post_init__), not {cp_comm}, and the planner "
            "prices p2p and a2a only"
        )
    if att.kind is AttentionKind.LINEAR:
        keys, values = max(1, att.num_heads // tp), max(1, att.linear_num_value_heads // tp)
        if keys % cp or values % cp:
            return (
                f"cp={cp}: Megatron's linear-attention layers split each rank's {keys} key and {values} "
                f"value heads (tp={tp}) over cp"
            )
        return None
    if cp_comm == "p2p":
        if att.kind is AttentionKind.SLIDING:
            return (
                f"cp={cp}: ring attention (p2p) does not run sliding-window layers (Transformer Engine: a2a "
                "or all_gather only)"
            )
        return None
    if att.head_dim != att.v_head_dim:
        return (
            f"cp={cp}: all-to-all context parallelism does not run keys and values of two head sizes "
            f"({att.head_dim} and {att.v_head_dim}, multi-latent attention): Transformer Engine runs those "
            "with p2p (or a2a+p2p, which the planner does not price)"
        )
    q_rank, kv_rank = max(1, att.num_heads // tp), max(1, att.num_kv_heads // tp)
    if q_rank % cp or kv_rank % cp:
        return (
            f"cp={cp}: all-to-all context parallelism needs each rank's {q_rank} query and {kv_rank} "
            f"KV heads (tp={tp}) divisible by cp (Transformer Engine)"
        )
    return None


def _deepspeed_ulysses_problem(att: AttentionSpec, cp: int) -> str | None:
    """`cp_comm_problem` for one attention block under DeepSpeed-Ulysses (tp = pp = 1)."""
    if att.kind is AttentionKind.LINEAR:
        return f"cp={cp}: DeepSpeed-Ulysses wraps softmax attention, not linear-attention layers"
    if att.head_dim != att.v_head_dim:
        return (
            f"cp={cp}: DeepSpeed-Ulysses needs keys and values of one head size, not {att.head_dim} and "
            f"{att.v_head_dim} (UlyssesSPAttentionHF)"
        )
    q, kv = att.num_heads, att.num_kv_heads
    if q % cp or (kv % cp and cp % kv):
        return (
            f"cp={cp}: DeepSpeed-Ulysses needs the {q} query heads divisible by cp and the {kv} KV "
            "heads divisible by cp or dividing it (UlyssesSPAttentionHF)"
        )
    return None


def cluster_problems(cluster: Cluster) -> list[str]:
    """Sizes and bandwidths outside what any real cluster has, which would only overflow the arithmetic."""
    out = []
    if cluster.world_size > MAX_CLUSTER_GPUS:
        out.append(
            f"nodes x gpus_per_node = {cluster.nodes:,} x {cluster.gpus_per_node} = "
            f"{cluster.world_size:,} GPUs: at most {MAX_CLUSTER_GPUS:,} (cluster_size)"
        )
    lo, hi = BANDWIDTH_GBPS
    for field, value in (
        ("inter_node_gbps (ib)", cluster.inter_node_gbps),
        ("intra_node_gbps (nvlink)", cluster.intra_node_gbps),
    ):
        if not lo <= value <= hi:
            out.append(f"{field}={value:g} GB/s: must be in [{lo:g}, {hi:g}] GB/s per GPU (bandwidth_range)")
    return out


def require_cluster(cluster: Cluster) -> Cluster:
    """`cluster`, or InputError naming every bound it breaks."""
    problems = cluster_problems(cluster)
    if problems:
        raise InputError(f"cluster {cluster.spec}: " + "; ".join(problems))
    return cluster


# ----- serving --------------------------------------------------------------------------------------
def serving_problems(
    model: ModelSpec,
    cluster: Cluster | None,
    config: ServingConfig,
    workload: Serving | None = None,
    engine: str = "vllm",
) -> list[str]:
    """Every rule a deployment on `engine` breaks, one sentence each (empty: valid)."""
    ep = config.enable_expert_parallel and model.is_moe
    out = [f"tp={config.tp}: {v}" for v in model.tp_violations(config.tp, expert_parallel=ep)]
    out += [f"pp={config.pp}: {v}" for v in model.pp_violations(config.pp)]
    if config.enable_expert_parallel and not model.is_moe:
        out.append(f"enable_expert_parallel: {model.name} has no routed experts (ep_needs_moe)")
    if cluster is not None and config.gpus > cluster.world_size:
        out.append(
            f"tp x pp x replicas = {config.tp} x {config.pp} x {config.replicas} = {config.gpus} GPUs: "
            f"cluster {cluster.spec} has {cluster.world_size} (gpus_le_cluster)"
        )
    if workload is not None and config.max_model_len < workload.isl + workload.osl:
        out.append(
            f"max_model_len={config.max_model_len}: below isl + osl = {workload.isl} + {workload.osl} = "
            f"{workload.isl + workload.osl}; vLLM would reject every request (max_model_len_ge_request)"
        )
    problem = batched_tokens_problem(config.max_num_batched_tokens, config.max_num_seqs, engine)
    if problem is not None:
        out.append(problem)
    return out


def batched_tokens_problem(
    max_num_batched_tokens: int | None, max_num_seqs: int | None, engine: str = "vllm"
) -> str | None:
    """Why a step budget below the running cap cannot run as priced (None: it can, or a value is left to
    the engine's default, which the memory model fills in and checks):
    - vLLM `SchedulerConfig._verify_args`: max_num_batched_tokens >= max_num_seqs, else the engine
      refuses to start (`memory.vllm_problems.start_problems` checks the defaults);
    - TensorRT-LLM: none; it starts, and its micro-batch scheduler decodes at most max_num_tokens of
      the requests a step (cpp/tensorrt_llm/batch_manager/microBatchScheduler.cpp), the running cap
      its pool is priced with (`memory.trtllm.trtllm_kv`);
    - SGLang: none, `--chunked-prefill-size` bounds a step's prompt tokens only."""
    mbt, seqs = max_num_batched_tokens, max_num_seqs
    if engine != "vllm" or mbt is None or seqs is None or mbt >= seqs:
        return None
    return (
        f"max_num_batched_tokens={mbt}: below max_num_seqs={seqs}; vLLM requires "
        "max_num_batched_tokens >= max_num_seqs (batched_tokens_ge_seqs)"
    )


def require_serving(
    model: ModelSpec,
    cluster: Cluster | None,
    config: ServingConfig,
    workload: Serving | None = None,
    engine: str = "vllm",
) -> None:
    """Raise InputError naming every rule `config` breaks on `engine`."""
    problems = serving_problems(model, cluster, config, workload, engine)
    if problems:
        raise InputError("invalid serving configuration: " + "; ".join(problems))


# ----- training -------------------------------------------------------------------------------------
def training_problems(
    model: ModelSpec,
    cluster: Cluster | None,
    config: TrainingConfig,
    gpu: GPU | None = None,
    framework: TrainingFramework = "megatron",
) -> list[str]:
    """Every rule a training layout breaks under `framework`, one sentence each (empty: valid).
    Without a cluster, `gpu` (if given) is checked for the GPU rules alone."""
    gpu = cluster.gpu if cluster is not None else gpu
    out = [f"tp={config.tp}: {v}" for v in model.tp_violations(config.tp)]
    out += [f"pp={config.pp}: {v}" for v in model.pp_violations(config.pp)]
    out += [f"ep={config.ep}: {v}" for v in model.ep_violations(config.ep)]
    if cluster is not None and config.world_size > cluster.world_size:
        out.append(
            f"tp x pp x dp x cp = {config.tp} x {config.pp} x {config.dp} x {config.cp} = "
            f"{config.world_size} GPUs: cluster {cluster.spec} has {cluster.world_size} (gpus_le_cluster)"
        )
    if config.global_batch % (config.micro_batch * config.dp):
        out.append(
            f"global_batch={config.global_batch}: not a multiple of micro_batch x dp = {config.micro_batch} "
            f"x {config.dp} (batch_divides)"
        )
    if (problem := cp_sequence_problem(config.seq_len, config.cp, framework)) is not None:
        out.append(f"{problem} (seq_divides_cp)")
    sp = config.sequence_parallel
    if (problem := sp_sequence_problem(config.seq_len, config.tp, config.cp, sp)) is not None:
        out.append(f"{problem} (seq_divides_sp)")
    if framework == "megatron" and (problem := moe_sequence_parallel_problem(model, config.tp, sp)):
        out.append(f"{problem} (moe_needs_sp)")
    if (problem := kv_heads_split_problem(model, config.tp, framework)) is not None:
        out.append(f"{problem} (ds_tp_divides_kv_heads)")
    etp = config.tp if config.etp is None else config.etp
    grid = expert_grid_problem(model, config.tp, config.cp, config.dp, config.ep, etp)
    if grid is not None:
        out.append(grid)
    stages = config.stage_layers(model.num_layers)
    thin = config.layers_per_stage is None and config.pp > model.num_layers  # pp_le_layers says so
    if len(stages) != config.pp or sum(stages) != model.num_layers or min(stages, default=0) < 1:
        if not thin:
            out.append(
                f"layers_per_stage={list(stages)}: must give each of pp={config.pp} stages at least one "
                f"layer and sum to {model.num_layers} (stages_cover_layers)"
            )
    elif config.vp > 1 and (config.pp == 1 or min(stages) < config.vp):
        out.append(f"vp={config.vp}: needs pp > 1 and at least vp layers on every stage (vp_fits_stages)")
    elif config.vp > 1 and config.grad_accum % config.pp:
        # megatron/core/pipeline_parallel/schedules.py (interleaved 1F1B): micro-batches run in groups of
        # microbatch_group_size_per_vp_stage (default pp); fewer than one group is a ValueError, a last
        # group short of pp a RuntimeError ("dependency bubbles").
        out.append(
            f"vp={config.vp}: the interleaved schedule runs micro-batches in groups of pp={config.pp}; "
            f"grad-accum {config.grad_accum} is not a multiple of it (vp_microbatch_groups)"
        )
    if config.stage_recompute is not None and len(config.stage_recompute) != config.pp:
        out.append(
            f"stage_recompute has {len(config.stage_recompute)} entries: needs one per pipeline stage, "
            f"pp={config.pp} (stage_recompute_per_stage)"
        )
    if gpu is not None and (problem := cp_attention_problem(config.cp, gpu)) is not None:
        out.append(f"{problem} (cp_needs_fused_attention)")
    problem = cp_comm_problem(model, config.tp, config.pp, config.cp, config.cp_comm, framework)
    if problem is not None:
        out.append(f"{problem} (cp_comm_rule)")
    fp8_gpu = fp8_gpu_problem(gpu) if config.precision == "fp8" and gpu is not None else None
    if (problem := precision_problem(config.precision) or fp8_gpu) is not None:
        out.append(problem)
    elif config.precision == "fp8":
        if (problem := fp8_gemm_problem(model, config.tp, etp)) is not None:
            out.append(f"{problem} (fp8_gemm_dims)")
        fp8_rows = fp8_token_problem(config.seq_len, config.micro_batch, config.tp, config.cp, sp)
        if fp8_rows is not None:
            out.append(f"{fp8_rows} (fp8_gemm_dims)")
    return out


def cp_attention_problem(cp: int, gpu: GPU) -> str | None:
    """Why context parallelism `cp` cannot run on `gpu`: its ring attention needs a fused attention
    kernel (`GPU.fused_attention`), which GPUs below sm80 lack. None: it can."""
    if cp <= 1 or gpu.fused_attention:
        return None
    return f"cp={cp}: context parallelism needs a fused attention kernel, which {gpu.name} (below sm80) lacks"


def fp8_gpu_problem(gpu: GPU) -> str | None:
    """Why FP8 training cannot run on `gpu` (it has no FP8 tensor cores), or None."""
    if gpu.fp8_tflops is not None:
        return None
    return f"precision=fp8: {gpu.name} has no FP8 tensor cores; use bf16 (gpu_has_fp8)"


def require_training_job(cluster: Cluster, precision: str) -> None:
    """Raise InputError when the cluster's GPUs cannot run the training precision (before any search)."""
    if precision == "fp8" and (problem := fp8_gpu_problem(cluster.gpu)) is not None:
        raise InputError(problem)


def require_training(
    model: ModelSpec,
    cluster: Cluster | None,
    config: TrainingConfig,
    gpu: GPU | None = None,
    framework: TrainingFramework = "megatron",
) -> None:
    """Raise InputError naming every rule `config` breaks under `framework`."""
    problems = training_problems(model, cluster, config, gpu, framework)
    if problems:
        raise InputError("invalid training configuration: " + "; ".join(problems))
