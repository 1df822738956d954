"""Time of one decoder layer (and the embedding / LM head) for one micro-batch on one GPU, in floats (s).

    layer_time_breakdown / layer_time_s   fwd+bwd of one decoder layer, one micro-batch, one GPU
    embedding_time_s / lm_head_time_s     the same for the embedding (first stage) and LM head (last,
                                          + the MTP modules, `mtp_time_s`)
    attention_core_flops / gemm_flops     the forward FLOPs those times (and the MFU count) are built on

Sources: forward FLOPs as Narayanan et al. 2021 ("Efficient Large-Scale Language Model Training on GPU
Clusters Using Megatron-LM", §5.1 eq. 3: 2·tokens·params for the GEMMs, non-causal attention), backward
twice the forward. Communication volumes: Megatron-LM TP (Shoeybi et al. 2019 §3: 2 all-reduces
forward, 2 backward per layer; with sequence parallelism all-gather + reduce-scatter pairs, Korthikanti
et al. 2022 §4.2.2); ring attention for CP (Liu et al. 2023); EP dispatch/combine all-to-all (Lepikhin
et al. 2020) and Megatron-Core's expert-TP token all-gather / reduce-scatter (perf/training_moe.py);
ZeRO-3 / FSDP parameter gathers and ZeRO-2's per-micro-batch gradient reduce-scatter
(Rajbhandari et al. 2020 §5).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from autoparallel.configs import Recompute, TrainingConfig, ZeroStage
from autoparallel.memory.training_activations import local_tokens, sequence_parallel_divisor
from autoparallel.memory.training_states import expert_dp, expert_tp, layer_params_per_gpu
from autoparallel.models.spec import AttentionKind, LayerSpec, MlpKind, ModelSpec
from autoparallel.perf import comm
from autoparallel.perf import training_moe as moe
from autoparallel.perf.efficiency import Efficiency, attention_shape_factor, efficiency_for, kernel_speedup

if TYPE_CHECKING:
    from autoparallel.hardware import GPU, Cluster

TP_COMM_EXPOSED = 0.073
"""Fraction of TP collective time not hidden behind GEMMs (Megatron/TE overlap part of it:
`--tp-comm-overlap`, and NCCL kernels share the GPU with GEMMs); calibrated with the efficiency
factors on the training runs of shared/reference (see perf/efficiency.py)."""
ZERO3_OVERLAP_FRACTION = 0.8
"""Fraction of a layer's compute that ZeRO-3 / FSDP parameter prefetch can hide behind (of its
backward pass, for ZeRO-2's per-micro-batch gradient reduce-scatter)."""
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
    """MoE token communication: the expert-parallel all-to-all dispatch and combine (exposed part) and
    the expert-tensor-parallel all-gather / reduce-scatter around the experts (`training_moe`)."""
    zero3_comm_s: float
    """Exposed per-micro-batch data-parallel traffic of this layer: ZeRO-3 / FSDP parameter
    all-gathers and gradient reduce-scatter, or ZeRO-2's gradient reduce-scatter of the step's
    micro-batches before the last (averaged over them all)."""

    @property
    def total_s(self) -> float:
        """Sum of the parts."""
        return self.compute_s + self.tp_comm_s + self.cp_comm_s + self.ep_comm_s + self.zero3_comm_s


# ----- FLOPs ---------------------------------------------------------------------------------------
def attention_core_flops(layer: LayerSpec, cfg: TrainingConfig, *, causal: bool) -> float:
    """Forward QKᵀ + PV FLOPs of one micro-batch on one GPU: 2·tokens·(a/t)·(d_qk + d_v)·context.

    The context is the full sequence (Narayanan's non-causal count) unless `causal`, where each
    token attends to half of it on average (what flash attention actually computes); sliding
    windows cap it. The local sequence shard attends to the whole sequence under CP.
    """
    att = layer.attention
    if att.kind is AttentionKind.LINEAR:
        return 4.0 * local_tokens(cfg) * att.linear_num_value_heads / cfg.tp * att.head_dim * att.v_head_dim
    ctx = float(cfg.seq_len)
    if att.kind in (AttentionKind.SLIDING, AttentionKind.CHUNKED) and att.window_tokens:
        ctx = min(ctx, float(att.window_tokens))
    elif causal:
        ctx /= 2.0
    return 2.0 * local_tokens(cfg) * att.num_heads / cfg.tp * (att.head_dim + att.v_head_dim) * ctx


def gemm_flops(layer: LayerSpec, cfg: TrainingConfig) -> float:
    """Forward weight-matmul FLOPs of one micro-batch on one GPU: 2·tokens·active params / tp.

    Routed experts: with balanced routing every GPU of the tp × dp × cp grid does 1/tp of its
    replica's top-k expert work, whatever ep and etp are.
    """
    return 2.0 * local_tokens(cfg) * (layer.active_params - layer.params.norms) / cfg.tp


def peak_flops(gpu: GPU, cfg: TrainingConfig) -> float:
    """Dense peak FLOP/s of the precision's GEMMs."""
    if cfg.precision == "fp8" and gpu.fp8_tflops:
        return gpu.fp8_tflops * 1e12
    return gpu.bf16_tflops * 1e12


def _gemm_rate(gpu: GPU, cfg: TrainingConfig, eff: Efficiency) -> float:
    """Achieved GEMM FLOP/s: the precision's dense peak × its calibrated GEMM efficiency."""
    if cfg.precision == "fp8" and gpu.fp8_tflops:
        return peak_flops(gpu, cfg) * eff.gemm_fp8
    return peak_flops(gpu, cfg) * eff.gemm


# ----- per layer -----------------------------------------------------------------------------------
def _attention_s(
    layer: LayerSpec, gpu: GPU, cfg: TrainingConfig, eff: Efficiency, flash: bool, kernel: str = "te"
) -> float:
    """Forward attention-core time on one GPU.

    Flash attention: causal FLOPs at `eff.attention` of the bf16 peak (it runs in bf16 even in FP8
    recipes). Without it (Megatron-LM before 2022): the full s² score and context GEMMs at the GEMM
    rate, plus the memory traffic of the s² tensors Korthikanti §4.1 lists (scores, softmax, its
    dropout mask and output: ~10 bytes per score forward), `_UNFUSED_SOFTMAX_BYTES` in all.
    """
    if flash:
        att = layer.attention
        # The kernel runs over the rank's sequence chunk (each ring step of CP attends s/cp queries to
        # s/cp keys), capped by a sliding window; Megatron/TE's causal load balancing (`cp_causal_imbalance`)
        # gives every rank the same causal work.
        ctx = float(math.ceil(cfg.seq_len / cfg.cp))
        if att.kind in (AttentionKind.SLIDING, AttentionKind.CHUNKED) and att.window_tokens:
            ctx = min(ctx, float(att.window_tokens))
        shape = attention_shape_factor(eff, (att.head_dim + att.v_head_dim) / 2.0, ctx)
        rate = gpu.bf16_tflops * 1e12 * eff.attention * shape * kernel_speedup(eff, kernel)
        return attention_core_flops(layer, cfg, causal=True) * cp_causal_imbalance(cfg.cp) / rate
    gemm = attention_core_flops(layer, cfg, causal=False) / (gpu.bf16_tflops * 1e12 * eff.gemm)
    att = layer.attention
    scores = local_tokens(cfg) * att.num_heads / cfg.tp * cfg.seq_len
    return gemm + _UNFUSED_SOFTMAX_BYTES / 3.0 * scores / (gpu.hbm_tbps * 1e12)


FP8_CAST_BYTES_PER_ELEMENT = 4.0
"""HBM bytes per element of one Transformer Engine FP8 cast-transpose: the bf16 tensor read (2), its
FP8 copy and FP8 transpose written (1 + 1) (TE `fp8_cast_transpose_fused`, `_Linear.forward` for each
GEMM input; `grad_output_preprocess` for each GEMM's output gradient in backward)."""


def fp8_cast_s(model: ModelSpec, layer: LayerSpec, gpu: GPU, cfg: TrainingConfig, sp_div: int) -> float:
    """Forward + backward FP8 cast traffic of one layer per micro-batch on one GPU (FP8 runs only).

    Every TE linear casts its input forward and its output gradient backward (cast + transpose,
    FP8_CAST_BYTES_PER_ELEMENT each): per token, the inputs QKV h, projection a·d_v/t, FC1 h, FC2 f/t
    and the outputs QKV (a·d + 2·kv·d)/t, projection h, FC1 (gated: 2)f/t, FC2 h; the h-wide ones
    split by SP; routed experts per routed copy (h + f/etp in, (gated: 2)f/etp + h out).
    Memory-bound: it does not shrink with FP8's doubled FLOP rate, so small models (h ≈ 2k) keep
    less of FP8's speed-up than large ones, where it is a smaller share of each GEMM's time.
    """
    if cfg.precision != "fp8":
        return 0.0
    h = model.hidden_size
    att, mlp = layer.attention, layer.mlp
    t = cfg.tp
    up = 2.0 if mlp.gated else 1.0
    width = mlp.intermediate_size if mlp.kind is MlpKind.DENSE else 0
    width += mlp.num_shared_experts * mlp.shared_intermediate_size
    per_token = 4.0 * h / sp_div  # QKV and FC1 inputs, projection and FC2 outputs
    if att.kind is not AttentionKind.LINEAR:
        per_token += (att.num_heads * att.v_head_dim + att.num_heads * att.head_dim) / t
        per_token += 2.0 * att.num_kv_heads * att.head_dim / t
    per_token += (1.0 + up) * width / t
    if mlp.kind is MlpKind.MOE and mlp.num_experts:
        etp = expert_tp(cfg)
        f = mlp.intermediate_size / etp
        per_token += mlp.experts_per_token * etp / t * (2.0 * h + (1.0 + up) * f)
    return FP8_CAST_BYTES_PER_ELEMENT * per_token * local_tokens(cfg) / (gpu.hbm_tbps * 1e12)


def cp_causal_imbalance(cp: int, *, balanced: bool = True) -> float:
    """Causal attention work of the busiest CP rank over the average.

    Megatron-Core / Transformer Engine split the sequence into 2·cp chunks and give rank r chunks r
    and 2cp − 1 − r (`get_batch_on_this_cp_rank`; TE `attn_forward_func_with_cp` expects that
    layout), so each rank's causal work is the same: 1. A contiguous split (`balanced=False`) gives
    the last rank keys 0..s, i.e. (2cp − 1)/cp of the average (Liu et al. 2023's plain ring)."""
    if cp <= 1 or balanced:
        return 1.0
    return (2.0 * cp - 1.0) / cp


def _compute_s(
    model: ModelSpec,
    layer: LayerSpec,
    gpu: GPU,
    cfg: TrainingConfig,
    recompute: Recompute,
    flash: bool,
    kernel: str = "te",
) -> tuple[float, float]:
    """(forward + backward, forward) of one layer: GEMMs and attention core (forward 1 + backward 2,
    the usual 3× rule), memory-bound kernels (`elementwise_bytes_per_h`, forward one third of it),
    plus the recomputed forward parts at RECOMPUTE_TIME_FRACTION of their forward time, which run in
    the backward pass."""
    eff = efficiency_for(gpu.arch)
    rate = _gemm_rate(gpu, cfg, eff)
    # Routed experts run as grouped GEMMs over their tokens per expert (perf/training_moe.py).
    dense_flops = gemm_flops(layer, cfg) - 2.0 * local_tokens(cfg) * moe.routed_active_params(layer) / cfg.tp
    gemm_fwd = dense_flops / rate + moe.grouped_gemm_fwd_s(model, layer, gpu, cfg, rate)
    att_fwd = _attention_s(layer, gpu, cfg, eff, flash, kernel)
    sp_div = sequence_parallel_divisor(cfg)
    hbm = gpu.hbm_tbps * 1e12
    elem = eff.elementwise_bytes_per_h * model.hidden_size * local_tokens(cfg) / sp_div / hbm
    elem += moe.permute_router_s(model, layer, gpu, cfg, sp_div)
    elem += fp8_cast_s(model, layer, gpu, cfg, sp_div)
    forward = gemm_fwd + att_fwd + elem / 3.0
    total = 3.0 * (gemm_fwd + att_fwd) + elem
    if recompute is Recompute.FULL:
        total += RECOMPUTE_TIME_FRACTION * forward
    elif recompute is Recompute.SELECTIVE:
        total += RECOMPUTE_TIME_FRACTION * att_fwd
    return total, forward


def activation_message_bytes(model: ModelSpec, cfg: TrainingConfig) -> float:
    """One micro-batch's hidden states on one rank's sequence shard, bf16: b·(s/cp)·h·2."""
    return local_tokens(cfg) * model.hidden_size * 2.0


def cp_all_to_all_s(layer: LayerSpec, cluster: Cluster, cfg: TrainingConfig, fwd_passes: int) -> float:
    """All-to-all context parallelism (`cp_comm="a2a"`: DeepSpeed-Ulysses, Jacobs et al. 2023; TE's
    `AttnFuncWithCPAndQKVOA2A`; Megatron's Gated DeltaNet layers under any cp): each forward pass
    sends Q, K and V from the rank's sequence shard to the ranks owning their heads and the output
    back (4 all-to-alls), the backward pass their 4 gradients. Nothing overlaps them: the attention
    (or the delta rule) waits for its inputs. KV heads that cp replicates (UlyssesSPAttentionHF,
    cp > KV heads) are sent once per replica; a linear-attention layer sends its key heads as Q and K
    and its value heads as V and the output."""
    att = layer.attention
    tokens = local_tokens(cfg)
    if att.kind is AttentionKind.LINEAR:
        q_heads = kv_heads = att.num_heads / cfg.tp
        v_heads = out_heads = att.linear_num_value_heads / cfg.tp
    else:
        q_heads = out_heads = att.num_heads / cfg.tp
        kv_heads = v_heads = max(att.num_kv_heads / cfg.tp, cfg.cp)
    link = comm.all_to_all_link(cluster, cfg.cp, stride=cfg.tp)
    sends = (
        q_heads * att.head_dim,
        kv_heads * att.head_dim,
        v_heads * att.v_head_dim,
        out_heads * att.v_head_dim,
    )
    per_pass = sum(comm.all_to_all_s(tokens * width * 2.0, cfg.cp, link) for width in sends)
    return (fwd_passes + 1) * per_pass


def layer_time_breakdown(
    model: ModelSpec,
    layer: LayerSpec,
    cluster: Cluster,
    cfg: TrainingConfig,
    recompute: Recompute,
    *,
    flash_attention: bool | None = None,
    attention_kernel: str = "te",
) -> LayerTime:
    """Forward + backward of one decoder layer for one micro-batch on one GPU, by part
    (`attention_kernel`: see `perf/efficiency.py` ATTENTION_KERNELS; `flash_attention` None: whether
    the GPU runs a fused attention kernel, `GPU.fused_attention`)."""
    gpu = cluster.gpu
    if flash_attention is None:
        flash_attention = gpu.fused_attention
    compute, forward = _compute_s(model, layer, gpu, cfg, recompute, flash_attention, attention_kernel)
    msg = activation_message_bytes(model, cfg)
    fwd_passes = 2 if recompute is Recompute.FULL else 1
    # TP: 2 all-reduces (or all-gather + reduce-scatter pairs with SP: same volume) per pass.
    tp = 0.0
    if cfg.tp > 1:
        link = comm.group_link(cluster, cfg.tp)
        tp = (fwd_passes + 1) * 2 * comm.all_reduce_s(msg, cfg.tp, link) * TP_COMM_EXPOSED
    cp = 0.0
    if cfg.cp > 1 and (cfg.cp_comm == "a2a" or layer.attention.kind is AttentionKind.LINEAR):
        cp = cp_all_to_all_s(layer, cluster, cfg, fwd_passes)
    elif cfg.cp > 1:
        # CP ring attention: each rank receives the other cp − 1 K/V chunks forward, and K/V + their
        # gradients backward; overlapped with the attention core, only the excess is exposed. Each
        # step is a send / recv with the ring neighbours (TE's `AttnFuncWithCPAndKVP2P`,
        # batch_isend_irecv), so a ring across nodes waits for its cross-node pair at one NIC.
        att = layer.attention
        kv_bytes = (
            local_tokens(cfg) * math.ceil(att.num_kv_heads / cfg.tp) * (att.head_dim + att.v_head_dim) * 2
        )
        link = comm.p2p_link(cluster, cfg.cp, stride=cfg.tp)
        ring = (cfg.cp - 1) * comm.p2p_s(kv_bytes, link) * (fwd_passes + 2)
        att_s = 3.0 * _attention_s(
            layer, gpu, cfg, efficiency_for(gpu.arch), flash_attention, attention_kernel
        )
        cp = max(0.0, ring - att_s)
    # EP: dispatch + combine all-to-all per pass (forward, backward, recompute), and the expert-TP
    # all-gather + reduce-scatter of the routed tokens around the experts, perf/training_moe.py.
    ep = moe.ep_all_to_all_s(model, layer, cluster, cfg, recompute, compute)
    ep += moe.etp_gather_s(model, layer, cluster, cfg, recompute)
    zero3 = 0.0
    if cfg.zero is ZeroStage.PARAMETERS:
        # Each parameter is gathered over its own data-parallel group: dense weights over dp × cp, routed
        # experts over the expert-data-parallel ranks (Megatron-FSDP `mcore_fsdp_adapter.py` shards
        # experts on `get_expert_data_parallel_group()`), each on that group's link.
        gathers = 0.0
        for params, n, stride in dp_groups(cfg, *layer_params_per_gpu(layer, cfg)):
            if params <= 0 or n <= 1:
                continue
            link = comm.group_link(cluster, n, stride=stride)
            full = 2.0 * params
            gathers += (fwd_passes + 1) * comm.all_gather_s(full, n, link)
            gathers += comm.reduce_scatter_s(full, n, link)
        zero3 = max(0.0, gathers - ZERO3_OVERLAP_FRACTION * compute)
    elif cfg.zero is ZeroStage.GRADIENTS and cfg.grad_accum > 1:
        # ZeRO-2 reduce-scatters every micro-batch's gradients, not only the last one's: DeepSpeed's
        # engine.py `allreduce_gradients` ("ZeRO stage >= 2 communicates during non gradient
        # accumulation boundaries as well"), Megatron-FSDP's `optim_grads` (megatron_fsdp.py
        # `grad_reduce_every_bprop`). Each bucket goes as its gradients are ready, hidden behind the
        # backward pass (recomputation included) as ZeRO-3's traffic hides behind its layer. The
        # last micro-batch's is the step-end sync ZeRO-1 also pays (`dp_sync_time_s`); the others'
        # are spread over the step's grad_accum micro-batches here.
        scatter = 0.0
        for params, n, stride in dp_groups(cfg, *layer_params_per_gpu(layer, cfg)):
            if params > 0 and n > 1:
                scatter += comm.reduce_scatter_s(2.0 * params, n, comm.group_link(cluster, n, stride=stride))
        exposed = max(0.0, scatter - ZERO3_OVERLAP_FRACTION * (compute - forward))
        zero3 = exposed * (cfg.grad_accum - 1) / cfg.grad_accum
    return LayerTime(compute_s=compute, tp_comm_s=tp, cp_comm_s=cp, ep_comm_s=ep, zero3_comm_s=zero3)


def dp_groups(cfg: TrainingConfig, dense: float, expert: float) -> tuple[tuple[float, int, int], ...]:
    """(parameters, ranks, stride) of the two data-parallel groups that shard or reduce a GPU's
    `dense` and `expert` parameters: dense ones over dp × cp, tp apart; routed experts over the
    expert-data-parallel ranks (`expert_dp`), etp × ep apart (Megatron-Core's expert mesh
    etp × ep × edp × pp). The link of each is `comm.group_link(cluster, ranks, stride)`."""
    return (
        (dense, cfg.dp * cfg.cp, cfg.tp),
        (expert, round(expert_dp(cfg)), expert_tp(cfg) * cfg.ep),
    )


def layer_time_s(
    model: ModelSpec,
    layer: LayerSpec,
    cluster: Cluster,
    cfg: TrainingConfig,
    recompute: Recompute,
    *,
    flash_attention: bool | None = None,
    attention_kernel: str = "te",
) -> float:
    """Forward + backward of one decoder layer for one micro-batch on one GPU, s."""
    return layer_time_breakdown(
        model,
        layer,
        cluster,
        cfg,
        recompute,
        flash_attention=flash_attention,
        attention_kernel=attention_kernel,
    ).total_s


def embedding_time_s(model: ModelSpec, cluster: Cluster, cfg: TrainingConfig) -> float:
    """Embedding lookup, its gradient scatter and the TP all-reduce of the vocab-parallel lookup."""
    gpu = cluster.gpu
    msg = activation_message_bytes(model, cfg)
    memory_s = 3.0 * msg / (gpu.hbm_tbps * 1e12)
    tp = comm.all_reduce_s(msg, cfg.tp, comm.group_link(cluster, cfg.tp)) * TP_COMM_EXPOSED
    return memory_s + tp


def _head_time_s(model: ModelSpec, cluster: Cluster, cfg: TrainingConfig) -> float:
    """One LM head GEMM (fwd + bwd) + vocab-parallel cross entropy on fp32 logits."""
    gpu = cluster.gpu
    eff = efficiency_for(gpu.arch)
    tokens = local_tokens(cfg)
    vocab = model.vocab_size / cfg.tp
    gemm = 3.0 * 2.0 * tokens * model.hidden_size * vocab / _gemm_rate(gpu, cfg, eff)
    # Cross entropy reads/writes the fp32 logits ~6 times (cast, max, exp, sum, grad) : 24 bytes each.
    ce = 24.0 * tokens * vocab / (gpu.hbm_tbps * 1e12)
    return gemm + ce


def mtp_time_s(model: ModelSpec, cluster: Cluster, cfg: TrainingConfig) -> float:
    """Forward + backward of the MTP modules (last stage) for one micro-batch on one GPU.

    Per module: its decoder block as the last layer (compute + TP / CP / EP communication, without
    recomputation, matching `mtp_activation_bytes`; ZeRO-3 gathers of the block are not charged),
    the eh_proj GEMM (2h → h, split over tp: 3 × 2·tokens·2h·h/tp) and its own LM head + cross
    entropy (`_head_time_s`).
    """
    n = model.mtp_layers
    if n <= 0 or not model.mtp_params:
        return 0.0
    part = layer_time_breakdown(model, model.layers[-1], cluster, cfg, Recompute.NONE)
    block = part.compute_s + part.tp_comm_s + part.cp_comm_s + part.ep_comm_s
    h = model.hidden_size
    rate = _gemm_rate(cluster.gpu, cfg, efficiency_for(cluster.gpu.arch))
    eh_proj = 3.0 * 2.0 * local_tokens(cfg) * 2.0 * h * h / cfg.tp / rate
    return n * (block + eh_proj + _head_time_s(model, cluster, cfg))


def lm_head_time_s(model: ModelSpec, cluster: Cluster, cfg: TrainingConfig) -> float:
    """Final norm + LM head GEMM (fwd + bwd) + vocab-parallel cross entropy on fp32 logits, plus the
    MTP modules Megatron places on the last stage (`mtp_time_s`)."""
    return _head_time_s(model, cluster, cfg) + mtp_time_s(model, cluster, cfg)
