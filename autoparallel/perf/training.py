"""Training step time, throughput and MFU of one concrete `TrainingConfig`, in floats (seconds).

The CP-SAT training encoder turns these building blocks into integer tables (µs), so their names
are stable:

    layer_time_breakdown / layer_time_s   fwd+bwd of one decoder layer, one micro-batch, one GPU
    embedding_time_s / lm_head_time_s     the same for the embedding (first stage) and LM head (last)
    stage_time_s                          one micro-batch through one pipeline stage (+ p2p hops)
    pipeline_step_time_s                  1F1B / interleaved schedule over the stage times
    dp_sync_time_s                        exposed gradient / parameter synchronisation per step
    training_perf                         the whole TrainingPerf
    model_flops_per_step / cost_to_tokens

Sources: model FLOPs as Narayanan et al. 2021 ("Efficient Large-Scale Language Model Training on GPU
Clusters Using Megatron-LM", §5.1 eq. 3: 72·B·s·l·h²(1 + s/6h + V/12lh) without recompute, i.e.
3 × forward with non-causal attention FLOPs; the count NVIDIA's and MosaicML's MFU tables use);
hardware FLOPs add the recomputed forward (their 96·B·s·l·h² count under full recompute).
Communication volumes: Megatron-LM TP (Shoeybi et al. 2019 §3: 2 all-reduces forward, 2 backward
per layer; with sequence parallelism all-gather + reduce-scatter pairs, Korthikanti et al. 2022 §4.2.2);
ring attention for CP (Liu et al. 2023); EP dispatch/combine all-to-all (Lepikhin et al. 2020);
pipeline schedule and bubble (p − 1)/(m·v) from Narayanan et al. 2021 §2.2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from autoparallel.configs import Recompute, TrainingConfig, ZeroStage
from autoparallel.errors import InputError
from autoparallel.memory.training import expert_tp, layer_params_per_gpu, stage_layer_indices
from autoparallel.models.spec import AttentionKind, LayerSpec, ModelSpec
from autoparallel.perf import comm
from autoparallel.perf.efficiency import Efficiency, efficiency_for

if TYPE_CHECKING:
    from autoparallel.hardware import GPU, Cluster

TP_COMM_EXPOSED = 0.12
"""Fraction of TP collective time not hidden behind GEMMs (Megatron/TE overlap part of it:
`--tp-comm-overlap`, and NCCL kernels share the GPU with GEMMs); calibrated with the efficiency
factors on the training runs of shared/reference (see perf/efficiency.py)."""
DP_OVERLAP_FRACTION = 0.8
"""Fraction of the last micro-batch's backward that gradient reduce-scatter can hide behind
(`--overlap-grad-reduce`; the last bucket is always exposed)."""
ZERO3_OVERLAP_FRACTION = 0.8
"""Fraction of a layer's compute that ZeRO-3 / FSDP parameter prefetch can hide behind."""
RECOMPUTE_TIME_FRACTION = 1.0
"""Time of a recomputed forward relative to the original forward."""
_UNFUSED_SOFTMAX_BYTES = 30.0
"""HBM bytes per attention score, forward + backward, of unfused softmax attention: the fp16
scores, softmax, dropout mask and output written and read back (Korthikanti §4.1 lists 5 bytes
stored per score; each is written once and read about twice, forward and backward)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LayerTime(_Frozen):
    """Time of one decoder layer for one micro-batch (forward + backward) on one GPU, s."""

    compute_s: float
    """GEMMs + attention core + memory-bound kernels, with recomputation."""
    tp_comm_s: float
    """Exposed tensor-parallel collectives."""
    cp_comm_s: float
    """Exposed context-parallel ring exchange of K/V."""
    ep_comm_s: float
    """Expert-parallel all-to-all dispatch and combine."""
    zero3_comm_s: float
    """Exposed ZeRO-3 / FSDP parameter all-gathers and gradient reduce-scatter of this layer."""

    @property
    def total_s(self) -> float:
        """Sum of the parts."""
        return self.compute_s + self.tp_comm_s + self.cp_comm_s + self.ep_comm_s + self.zero3_comm_s


class TrainingPerf(_Frozen):
    """Predicted step time and throughput of one training configuration."""

    step_time_s: float
    """One optimizer step (global batch)."""
    compute_s: float
    """Compute time of the slowest stage over the step (all its micro-batches)."""
    tp_comm_s: float
    """Exposed TP communication of the slowest stage over the step."""
    cp_comm_s: float
    """Exposed CP communication of the slowest stage over the step."""
    ep_comm_s: float
    """EP all-to-all of the slowest stage over the step."""
    pp_bubble_s: float
    """Pipeline fill/drain idle time (+ p2p hops)."""
    dp_comm_exposed_s: float
    """Exposed data-parallel sync (gradient reduce, parameter gather, ZeRO-3 traffic)."""
    optimizer_s: float
    """Optimizer update of the rank's shard."""
    tokens_per_s: float
    """Training tokens per second, whole job."""
    tokens_per_s_per_gpu: float
    """Training tokens per second per GPU."""
    tflops_per_gpu: float
    """Model TFLOP/s per GPU (Narayanan et al. 2021 count, no recomputation)."""
    hfu: float
    """Hardware FLOPs utilisation (recomputation counted) against the precision's dense peak."""
    mfu: float
    """Model FLOPs utilisation against the precision's dense peak."""
    stage_times_s: tuple[float, ...]
    """Per pipeline stage: one micro-batch forward + backward, s."""


# ----- FLOPs ---------------------------------------------------------------------------------------
def _local_tokens(cfg: TrainingConfig) -> float:
    """Tokens of one micro-batch on one GPU's sequence shard: b · s / cp."""
    return float(cfg.micro_batch * math.ceil(cfg.seq_len / cfg.cp))


def _attention_core_flops(layer: LayerSpec, cfg: TrainingConfig, *, causal: bool) -> float:
    """Forward QKᵀ + PV FLOPs of one micro-batch on one GPU: 2·tokens·(a/t)·(d_qk + d_v)·context.

    The context is the full sequence (Narayanan's non-causal count) unless `causal`, where each
    token attends to half of it on average (what flash attention actually computes); sliding
    windows cap it. The local sequence shard attends to the whole sequence under CP.
    """
    att = layer.attention
    if att.kind is AttentionKind.LINEAR:
        return 4.0 * _local_tokens(cfg) * att.linear_num_value_heads / cfg.tp * att.head_dim * att.v_head_dim
    ctx = float(cfg.seq_len)
    if att.kind in (AttentionKind.SLIDING, AttentionKind.CHUNKED) and att.window_tokens:
        ctx = min(ctx, float(att.window_tokens))
    elif causal:
        ctx /= 2.0
    return 2.0 * _local_tokens(cfg) * att.num_heads / cfg.tp * (att.head_dim + att.v_head_dim) * ctx


def _gemm_flops(layer: LayerSpec, cfg: TrainingConfig) -> float:
    """Forward weight-matmul FLOPs of one micro-batch on one GPU: 2·tokens·active params / tp.

    Routed experts: with balanced routing every GPU of the tp × dp × cp grid does 1/tp of its
    replica's top-k expert work, whatever ep and etp are.
    """
    return 2.0 * _local_tokens(cfg) * (layer.active_params - layer.params.norms) / cfg.tp


def model_flops_per_step(model: ModelSpec, cfg: TrainingConfig) -> float:
    """Model FLOPs of one optimizer step: 3 × forward (Narayanan et al. 2021 eq. 3 without the
    recompute term; attention non-causal, LM head included even when tied to the embedding, as
    their 6·B·s·h·V term and llm-foundry's 6·N count it; embedding lookup excluded)."""
    per_token = model.forward_flops_per_token(cfg.seq_len)
    if model.tie_word_embeddings:
        per_token += 2.0 * model.vocab_size * model.hidden_size
    return 3.0 * cfg.global_batch * cfg.seq_len * per_token


def recompute_flops_per_step(model: ModelSpec, cfg: TrainingConfig) -> float:
    """Extra forward FLOPs of recomputation per step (full: every layer again; selective: attention
    core), counted like the model FLOPs."""
    per_seq = 0.0
    for stage, idx in enumerate(stage_layer_indices(model, cfg)):
        mode = cfg.recompute_of(stage)
        for i in idx:
            layer = model.layers[i]
            core = _attention_core_flops(layer, cfg, causal=False) * cfg.tp / cfg.micro_batch * cfg.cp
            if mode is Recompute.FULL:
                per_seq += _gemm_flops(layer, cfg) * cfg.tp / cfg.micro_batch * cfg.cp + core
            elif mode is Recompute.SELECTIVE:
                per_seq += core
    return per_seq * cfg.global_batch


# ----- per layer -----------------------------------------------------------------------------------
def _peak_flops(gpu: GPU, cfg: TrainingConfig) -> float:
    """Dense peak FLOP/s of the precision's GEMMs."""
    if cfg.precision == "fp8" and gpu.fp8_tflops:
        return gpu.fp8_tflops * 1e12
    return gpu.bf16_tflops * 1e12


def _gemm_rate(gpu: GPU, cfg: TrainingConfig, eff: Efficiency) -> float:
    if cfg.precision == "fp8" and gpu.fp8_tflops:
        return gpu.fp8_tflops * 1e12 * eff.gemm_fp8
    return gpu.bf16_tflops * 1e12 * eff.gemm


def _attention_s(layer: LayerSpec, gpu: GPU, cfg: TrainingConfig, eff: Efficiency, flash: bool) -> float:
    """Forward attention-core time on one GPU.

    Flash attention: causal FLOPs at `eff.attention` of the bf16 peak (it runs in bf16 even in FP8
    recipes). Without it (Megatron-LM before 2022): the full s² score and context GEMMs at the GEMM
    rate, plus the memory traffic of the s² tensors Korthikanti §4.1 lists (scores, softmax, its
    dropout mask and output: ~10 bytes per score forward), `_UNFUSED_SOFTMAX_BYTES` in all.
    """
    if flash:
        return _attention_core_flops(layer, cfg, causal=True) / (gpu.bf16_tflops * 1e12 * eff.attention)
    gemm = _attention_core_flops(layer, cfg, causal=False) / (gpu.bf16_tflops * 1e12 * eff.gemm)
    att = layer.attention
    scores = _local_tokens(cfg) * att.num_heads / cfg.tp * cfg.seq_len
    return gemm + _UNFUSED_SOFTMAX_BYTES / 3.0 * scores / (gpu.hbm_tbps * 1e12)


def _compute_s(
    model: ModelSpec, layer: LayerSpec, gpu: GPU, cfg: TrainingConfig, recompute: Recompute, flash: bool
) -> float:
    """GEMMs and attention core (forward 1 + backward 2, the usual 3× rule), memory-bound kernels
    (`elementwise_bytes_per_h`, forward one third of it), plus the recomputed forward parts at
    RECOMPUTE_TIME_FRACTION of their forward time."""
    eff = efficiency_for(gpu.arch)
    gemm_fwd = _gemm_flops(layer, cfg) / _gemm_rate(gpu, cfg, eff)
    att_fwd = _attention_s(layer, gpu, cfg, eff, flash)
    sp_div = cfg.tp if (cfg.sequence_parallel and cfg.tp > 1) else 1
    hbm = gpu.hbm_tbps * 1e12
    elem = eff.elementwise_bytes_per_h * model.hidden_size * _local_tokens(cfg) / sp_div / hbm
    total = 3.0 * (gemm_fwd + att_fwd) + elem
    if recompute is Recompute.FULL:
        total += RECOMPUTE_TIME_FRACTION * (gemm_fwd + att_fwd + elem / 3.0)
    elif recompute is Recompute.SELECTIVE:
        total += RECOMPUTE_TIME_FRACTION * att_fwd
    return total


def _activation_message_bytes(model: ModelSpec, cfg: TrainingConfig) -> float:
    """One micro-batch's hidden states on one rank's sequence shard, bf16: b·(s/cp)·h·2."""
    return _local_tokens(cfg) * model.hidden_size * 2.0


def layer_time_breakdown(
    model: ModelSpec,
    layer: LayerSpec,
    cluster: Cluster,
    cfg: TrainingConfig,
    recompute: Recompute,
    *,
    flash_attention: bool = True,
) -> LayerTime:
    """Forward + backward of one decoder layer for one micro-batch on one GPU, by part."""
    gpu = cluster.gpu
    compute = _compute_s(model, layer, gpu, cfg, recompute, flash_attention)
    msg = _activation_message_bytes(model, cfg)
    fwd_passes = 2 if recompute is Recompute.FULL else 1
    # TP: 2 all-reduces (or all-gather + reduce-scatter pairs with SP: same volume) per pass.
    tp = 0.0
    if cfg.tp > 1:
        link = comm.group_link(cluster, cfg.tp)
        tp = (fwd_passes + 1) * 2 * comm.all_reduce_s(msg, cfg.tp, link) * TP_COMM_EXPOSED
    # CP ring attention: each rank receives the other cp − 1 K/V chunks forward, and K/V + their
    # gradients backward; overlapped with the attention core, only the excess is exposed.
    cp = 0.0
    if cfg.cp > 1:
        att = layer.attention
        kv_bytes = (
            _local_tokens(cfg) * math.ceil(att.num_kv_heads / cfg.tp) * (att.head_dim + att.v_head_dim) * 2
        )
        link = comm.group_link(cluster, cfg.cp, stride=cfg.tp)
        ring = (cfg.cp - 1) * comm.p2p_s(kv_bytes, link) * (fwd_passes + 2)
        att_s = 3.0 * _attention_s(layer, gpu, cfg, efficiency_for(gpu.arch), flash_attention)
        cp = max(0.0, ring - att_s)
    # EP: dispatch + combine all-to-all per pass (forward, backward, recompute).
    ep = 0.0
    if layer.mlp.num_experts and cfg.ep > 1:
        routed = msg / cfg.tp * layer.mlp.experts_per_token * expert_tp(cfg)
        link = comm.group_link(cluster, cfg.ep, stride=cfg.tp)
        ep = (fwd_passes + 1) * 2 * comm.all_to_all_s(routed, cfg.ep, link)
    zero3 = 0.0
    if cfg.zero is ZeroStage.PARAMETERS and cfg.dp * cfg.cp > 1:
        n = cfg.dp * cfg.cp
        link = comm.group_link(cluster, n, stride=cfg.tp)
        full = 2.0 * sum(layer_params_per_gpu(layer, cfg))
        gathers = (fwd_passes + 1) * comm.all_gather_s(full, n, link) + comm.reduce_scatter_s(full, n, link)
        zero3 = max(0.0, gathers - ZERO3_OVERLAP_FRACTION * compute)
    return LayerTime(compute_s=compute, tp_comm_s=tp, cp_comm_s=cp, ep_comm_s=ep, zero3_comm_s=zero3)


def layer_time_s(
    model: ModelSpec,
    layer: LayerSpec,
    cluster: Cluster,
    cfg: TrainingConfig,
    recompute: Recompute,
    *,
    flash_attention: bool = True,
) -> float:
    """Forward + backward of one decoder layer for one micro-batch on one GPU, s."""
    return layer_time_breakdown(
        model, layer, cluster, cfg, recompute, flash_attention=flash_attention
    ).total_s


def embedding_time_s(model: ModelSpec, cluster: Cluster, cfg: TrainingConfig) -> float:
    """Embedding lookup, its gradient scatter and the TP all-reduce of the vocab-parallel lookup."""
    gpu = cluster.gpu
    msg = _activation_message_bytes(model, cfg)
    memory_s = 3.0 * msg / (gpu.hbm_tbps * 1e12)
    tp = comm.all_reduce_s(msg, cfg.tp, comm.group_link(cluster, cfg.tp)) * TP_COMM_EXPOSED
    return memory_s + tp


def lm_head_time_s(model: ModelSpec, cluster: Cluster, cfg: TrainingConfig) -> float:
    """Final norm + LM head GEMM (fwd + bwd) + vocab-parallel cross entropy on fp32 logits."""
    gpu = cluster.gpu
    eff = efficiency_for(gpu.arch)
    tokens = _local_tokens(cfg)
    vocab = model.vocab_size / cfg.tp
    gemm = 3.0 * 2.0 * tokens * model.hidden_size * vocab / _gemm_rate(gpu, cfg, eff)
    # Cross entropy reads/writes the fp32 logits ~6 times (cast, max, exp, sum, grad) : 24 bytes each.
    ce = 24.0 * tokens * vocab / (gpu.hbm_tbps * 1e12)
    return gemm + ce


# ----- stages, pipeline, data parallel -------------------------------------------------------------
def stage_time_s(
    model: ModelSpec,
    cluster: Cluster,
    cfg: TrainingConfig,
    stage: int,
    layer_indices: Sequence[int],
    recompute: Recompute,
    *,
    flash_attention: bool = True,
) -> float:
    """One micro-batch forward + backward through pipeline stage `stage` (all its vp chunks), with
    the p2p sends of activations forward and gradients backward at each chunk boundary."""
    total = sum(
        layer_time_s(model, model.layers[i], cluster, cfg, recompute, flash_attention=flash_attention)
        for i in layer_indices
    )
    if stage == 0:
        total += embedding_time_s(model, cluster, cfg)
    if stage == cfg.pp - 1:
        total += lm_head_time_s(model, cluster, cfg)
    if cfg.pp > 1:
        sp_div = cfg.tp if (cfg.sequence_parallel and cfg.tp > 1) else 1
        link = comm.group_link(cluster, cfg.pp, stride=cfg.tp * cfg.cp * cfg.dp)
        total += 2 * cfg.vp * comm.p2p_s(_activation_message_bytes(model, cfg) / sp_div, link)
    return total


def pipeline_step_time_s(stage_times_s: Sequence[float], cfg: TrainingConfig) -> float:
    """Forward + backward of all grad_accum micro-batches through the pipeline.

    1F1B: (m − 1)·max + Σ stages (= (m + p − 1)·t for equal stages, Narayanan et al. 2021 §2.2.1);
    interleaved with vp chunks: the fill/drain part shrinks by vp (bubble (p − 1)/(m·vp), §2.2.2).
    """
    m = max(cfg.grad_accum, 1)
    slowest = max(stage_times_s)
    return m * slowest + (sum(stage_times_s) - slowest) / cfg.vp


def _stage_params_per_gpu(
    model: ModelSpec, cfg: TrainingConfig, stage: int, layer_indices: Sequence[int]
) -> tuple[float, float]:
    """(dense, expert) parameters of a stage on one GPU before data-parallel sharding."""
    dense = expert = 0.0
    for i in layer_indices:
        d, e = layer_params_per_gpu(model.layers[i], cfg)
        dense, expert = dense + d, expert + e
    if stage == 0:
        dense += model.embedding_params / cfg.tp
    if stage == cfg.pp - 1:
        head = model.embedding_params if (model.tie_word_embeddings and cfg.pp > 1) else model.lm_head_params
        dense += head / cfg.tp + model.final_norm_params
    return dense, expert


def dp_sync_time_s(
    model: ModelSpec,
    cluster: Cluster,
    cfg: TrainingConfig,
    stage: int,
    layer_indices: Sequence[int],
    overlap_window_s: float,
) -> float:
    """Exposed data-parallel synchronisation of one stage per step.

    ZeRO-0: all-reduce of the gradients; ZeRO-1/2 and Megatron's distributed optimizer:
    reduce-scatter of the gradients + all-gather of the updated bf16 parameters (ZeRO §5: the same
    volume as one all-reduce); gradients in fp32 under Megatron (`main_grad`), bf16 under ZeRO. The
    dense group is dp × cp (stride tp), the expert group the expert-data-parallel ranks. Overlap
    (`--overlap-grad-reduce`, `--overlap-param-gather`) hides up to DP_OVERLAP_FRACTION of
    `overlap_window_s` (one micro-batch's forward + backward); one layer's share is always exposed.
    ZeRO-3 traffic is per micro-batch and counted in `layer_time_breakdown`.
    """
    if cfg.zero is ZeroStage.PARAMETERS:
        return 0.0
    grad_bytes = 4.0 if cfg.zero is ZeroStage.DISTRIBUTED_OPTIMIZER else 2.0
    dense, expert = _stage_params_per_gpu(model, cfg, stage, layer_indices)
    total = 0.0
    groups = (
        (dense, cfg.dp * cfg.cp, cfg.tp),
        (expert, round(cfg.tp * cfg.dp * cfg.cp / (cfg.ep * expert_tp(cfg))), cfg.tp * cfg.ep),
    )
    for params, n, stride in groups:
        if params <= 0 or n <= 1:
            continue
        link = comm.group_link(cluster, n, stride=stride)
        if cfg.zero is ZeroStage.NONE:
            total += comm.all_reduce_s(params * grad_bytes, n, link)
        else:
            total += comm.reduce_scatter_s(params * grad_bytes, n, link) + comm.all_gather_s(
                params * 2.0, n, link
            )
    floor = total / max(len(layer_indices), 1)
    return max(total - DP_OVERLAP_FRACTION * overlap_window_s, floor)


def optimizer_step_s(
    model: ModelSpec, gpu: GPU, cfg: TrainingConfig, stage: int, layer_indices: Sequence[int]
) -> float:
    """Adam update of the rank's optimizer shard: memory-bound, ~36 bytes per parameter read and
    written (fp32 master, m, v, fp32 grad read + write back, bf16 weight write; Megatron's fused
    multi-tensor Adam)."""
    dense, expert = _stage_params_per_gpu(model, cfg, stage, layer_indices)
    if cfg.zero is ZeroStage.NONE:
        shard = dense + expert
    else:
        edp = cfg.tp * cfg.dp * cfg.cp / (cfg.ep * expert_tp(cfg))
        shard = dense / (cfg.dp * cfg.cp) + expert / edp
    if cfg.offload_optimizer:
        return 0.0
    return 36.0 * shard / (gpu.hbm_tbps * 1e12)


def training_perf(
    model: ModelSpec, cluster: Cluster, cfg: TrainingConfig, *, flash_attention: bool = True
) -> TrainingPerf:
    """Step time, throughput and utilisation of `cfg` on `cluster` (`flash_attention=False`: the
    unfused softmax attention of Megatron-LM before 2022)."""
    if cfg.global_batch < cfg.micro_batch * cfg.dp:
        raise InputError(
            f"global_batch ({cfg.global_batch}) is smaller than micro_batch × dp "
            f"({cfg.micro_batch} × {cfg.dp}); raise global_batch or lower micro_batch / dp"
        )
    m = max(cfg.grad_accum, 1)
    stages = stage_layer_indices(model, cfg)
    stage_times = tuple(
        stage_time_s(model, cluster, cfg, s, idx, cfg.recompute_of(s), flash_attention=flash_attention)
        for s, idx in enumerate(stages)
    )
    pipe = pipeline_step_time_s(stage_times, cfg)
    slow = max(range(cfg.pp), key=lambda s: stage_times[s])
    dp = max(dp_sync_time_s(model, cluster, cfg, s, idx, stage_times[s]) for s, idx in enumerate(stages))
    opt = max(optimizer_step_s(model, cluster.gpu, cfg, s, idx) for s, idx in enumerate(stages))
    step = pipe + dp + opt
    parts = [
        layer_time_breakdown(
            model, model.layers[i], cluster, cfg, cfg.recompute_of(slow), flash_attention=flash_attention
        )
        for i in stages[slow]
    ]
    zero3 = m * sum(p.zero3_comm_s for p in parts)
    world = cfg.world_size
    tokens = float(cfg.global_batch * cfg.seq_len)
    model_flops = model_flops_per_step(model, cfg)
    hw_flops = model_flops + recompute_flops_per_step(model, cfg)
    peak = _peak_flops(cluster.gpu, cfg)
    return TrainingPerf(
        step_time_s=step,
        compute_s=m * sum(p.compute_s for p in parts),
        tp_comm_s=m * sum(p.tp_comm_s for p in parts),
        cp_comm_s=m * sum(p.cp_comm_s for p in parts),
        ep_comm_s=m * sum(p.ep_comm_s for p in parts),
        pp_bubble_s=pipe - m * stage_times[slow],
        dp_comm_exposed_s=dp + zero3,
        optimizer_s=opt,
        tokens_per_s=tokens / step,
        tokens_per_s_per_gpu=tokens / step / world,
        tflops_per_gpu=model_flops / step / world / 1e12,
        hfu=hw_flops / step / world / peak,
        mfu=model_flops / step / world / peak,
        stage_times_s=stage_times,
    )


class TrainingCost(_Frozen):
    """Time and money to train on a token budget."""

    tokens: float
    """Training tokens."""
    time_s: float
    """Wall-clock time, s."""
    gpu_hours: float
    """GPU-hours (time × GPUs)."""
    usd: float
    """Cost at the GPU's `usd_per_hour`."""


def cost_to_tokens(
    model: ModelSpec,
    cluster: Cluster,
    cfg: TrainingConfig,
    tokens: float,
    *,
    perf: TrainingPerf | None = None,
) -> TrainingCost:
    """Time, GPU-hours and US$ to train `tokens` tokens with `cfg` on `cluster`."""
    p = training_perf(model, cluster, cfg) if perf is None else perf
    time_s = tokens / p.tokens_per_s
    gpu_hours = time_s / 3600.0 * cfg.world_size
    return TrainingCost(
        tokens=tokens, time_s=time_s, gpu_hours=gpu_hours, usd=gpu_hours * cluster.gpu.usd_per_hour
    )
