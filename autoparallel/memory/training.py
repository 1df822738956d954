"""Per-GPU training memory for one concrete `TrainingConfig`, in floats (bytes; GiB in reports).

This module is the single source of truth that the CP-SAT training encoder turns into integer tables,
so it exposes its per-layer / per-stage building blocks under stable names:

    layer_state_breakdown / layer_state_bytes   weights + gradients + optimizer of one decoder layer
    embedding_state_bytes / lm_head_state_bytes the same for the embedding (first stage) and LM head
    layer_activation_bytes                       activations one micro-batch leaves on one GPU per layer
    logits_bytes                                 the fp32 logits / cross-entropy buffers on the last stage
    inflight_microbatches                        (micro-batch, model-chunk) passes alive at a stage's peak
    stage_memory_bytes                           everything on one pipeline stage
    training_memory                              the whole report

Sources:
- Model states: Rajbhandari et al. 2020, "ZeRO: Memory Optimizations Toward Training Trillion
  Parameter Models", §3.1 and §5 (2Ψ fp16 weights + 2Ψ fp16 gradients + KΨ optimizer, K = 12 for
  mixed-precision Adam: fp32 master, momentum, variance; P_os: 4Ψ + KΨ/Nd, P_os+g: 2Ψ + 14Ψ/Nd,
  P_os+g+p: 16Ψ/Nd). Megatron distributed optimizer: Megatron-LM docs/source/api-guide/
  dist_optimizer.md table "bf16 param, fp32 grads: 6 + 12/d bytes per parameter".
- Activations: Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
  Models" (arXiv 2205.05198), §4 and Table 2: per layer sbh(34 + 5as/h) bytes without parallelism,
  sbh/t(34 + 5as/h) with tensor + sequence parallelism, 34·sbh/t with selective recompute, 2sbh
  (layer input) with full recompute; §4.2.3 for the pipeline in-flight count.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from autoparallel.configs import Recompute, TrainingConfig, ZeroStage
from autoparallel.models.spec import AttentionKind, LayerSpec, MlpKind, ModelSpec

if TYPE_CHECKING:
    from autoparallel.hardware import GPU
    from autoparallel.memory.margins import MemoryConfig

GIB = float(2**30)

# Bytes per parameter (ZeRO §3.1, mixed-precision Adam): bf16/fp16 weight 2, gradient 2,
# optimizer K = 12 (fp32 master 4 + momentum 4 + variance 4).
WEIGHT_BYTES_PER_PARAM = 2.0
GRAD_BYTES_PER_PARAM = 2.0
OPTIMIZER_BYTES_PER_PARAM = 12.0
# Megatron's distributed optimizer accumulates and reduces gradients in an fp32 `main_grad` buffer
# under bf16 (dist_optimizer.md: "bf16 param, fp32 grads: 6 + 12/d").
MEGATRON_MAIN_GRAD_BYTES_PER_PARAM = 4.0
# Allocator fragmentation when a caller gives none (MemoryConfig's default, memory/margins.py).
DEFAULT_FRAGMENTATION = 0.10


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StateBytes(_Frozen):
    """Model-state bytes on one GPU, split by kind."""

    weights_bytes: float
    """bf16 weights resident on the GPU."""
    gradients_bytes: float
    """Gradients (bf16 for ZeRO, fp32 main_grad for Megatron's distributed optimizer)."""
    optimizer_bytes: float
    """fp32 master weights + Adam momentum + variance (0 when offloaded)."""

    @property
    def total_bytes(self) -> float:
        """All model-state bytes."""
        return self.weights_bytes + self.gradients_bytes + self.optimizer_bytes

    def __add__(self, other: StateBytes) -> StateBytes:
        return StateBytes(
            weights_bytes=self.weights_bytes + other.weights_bytes,
            gradients_bytes=self.gradients_bytes + other.gradients_bytes,
            optimizer_bytes=self.optimizer_bytes + other.optimizer_bytes,
        )


ZERO_STATE = StateBytes(weights_bytes=0.0, gradients_bytes=0.0, optimizer_bytes=0.0)


class StageMemory(_Frozen):
    """Peak memory of one GPU of one pipeline stage, GiB."""

    stage: int
    """Pipeline stage index (0 = first)."""
    layers: int
    """Decoder layers on this stage (all virtual chunks together)."""
    weights_gib: float
    """bf16 weights (ZeRO-3: the rank's shard plus the gathered working layers)."""
    gradients_gib: float
    """Gradients."""
    optimizer_gib: float
    """fp32 master + Adam states."""
    activations_gib: float
    """Saved activations of all micro-batches in flight at the stage's peak."""
    logits_gib: float
    """Logits and cross-entropy buffers (last stage only)."""
    fragmentation_gib: float
    """Allocator fragmentation allowance."""
    total_gib: float
    """Sum of the above."""


class TrainingMemoryReport(_Frozen):
    """Per-GPU training memory of one configuration."""

    stages: tuple[StageMemory, ...]
    """One entry per pipeline stage."""
    peak_gib: float
    """Largest stage total."""
    usable_gib: float
    """Memory the job may use per GPU after margins."""
    fits: bool
    """Every stage fits in `usable_gib`."""
    problems: tuple[str, ...]
    """Human sentences: what does not fit, and by how much."""


# ----- model states --------------------------------------------------------------------------------
def _dense_shard_degree(cfg: TrainingConfig) -> int:
    """Ranks that hold replicas of a dense weight: Megatron's data-parallel-with-CP group (dp × cp)."""
    return cfg.dp * cfg.cp


def expert_tp(cfg: TrainingConfig) -> int:
    """Expert tensor-parallel degree (defaults to tp, as Megatron-Core's `expert_tensor_parallel_size`)."""
    return cfg.tp if cfg.etp is None else cfg.etp


def expert_dp(cfg: TrainingConfig) -> float:
    """Expert-data-parallel degree: tp·dp·cp / (etp·ep) (Megatron-Core's expert mesh: etp × ep × edp × pp
    covers the world); dp·cp/ep when etp = tp."""
    return cfg.tp * cfg.dp * cfg.cp / (expert_tp(cfg) * cfg.ep)


def _state_of_params(params_per_gpu: float, shard: float, cfg: TrainingConfig) -> StateBytes:
    """Model states of `params_per_gpu` parameters (after TP/EP) replicated over `shard` data ranks.

    ZeRO §5 / Figure 1: stage 0: (2 + 2 + 12)Ψ; 1: (2 + 2)Ψ + 12Ψ/Nd; 2: 2Ψ + (2 + 12)Ψ/Nd;
    3: (2 + 2 + 12)Ψ/Nd. Megatron distributed optimizer: 2Ψ + 4Ψ + 12Ψ/d.
    Offload (ZeRO-Offload, Ren et al. 2021): optimizer states (and ZeRO-3 parameters) leave the GPU.
    """
    z = cfg.zero
    w = WEIGHT_BYTES_PER_PARAM * params_per_gpu
    g = GRAD_BYTES_PER_PARAM * params_per_gpu
    o = OPTIMIZER_BYTES_PER_PARAM * params_per_gpu
    if z is ZeroStage.DISTRIBUTED_OPTIMIZER:
        g = MEGATRON_MAIN_GRAD_BYTES_PER_PARAM * params_per_gpu
        o /= shard
    elif z is ZeroStage.OPTIMIZER:
        o /= shard
    elif z is ZeroStage.GRADIENTS:
        g, o = g / shard, o / shard
    elif z is ZeroStage.PARAMETERS:
        w, g, o = w / shard, g / shard, o / shard
        if cfg.offload_params:
            w = 0.0
    if cfg.offload_optimizer:
        o = 0.0
    return StateBytes(weights_bytes=w, gradients_bytes=g, optimizer_bytes=o)


def layer_params_per_gpu(layer: LayerSpec, cfg: TrainingConfig) -> tuple[float, float]:
    """(dense, expert) parameters of one decoder layer held by one GPU before data-parallel sharding.

    Dense: attention, dense MLP and shared experts split over tp (Megatron column/row-parallel
    linears); norms and the router replicated on every TP rank. Experts: routed experts split over
    ep × etp.
    """
    p = layer.params
    dense = (p.attention + p.dense_mlp + p.shared_experts) / cfg.tp + p.norms + p.router
    expert = p.routed_experts / (cfg.ep * expert_tp(cfg))
    return dense, expert


def layer_state_breakdown(model: ModelSpec, layer: LayerSpec, cfg: TrainingConfig) -> StateBytes:
    """Weights, gradients and optimizer states of one decoder layer on one GPU."""
    del model  # part of the stable signature; the layer carries its own counts
    dense, expert = layer_params_per_gpu(layer, cfg)
    state = _state_of_params(dense, _dense_shard_degree(cfg), cfg)
    if expert:
        state = state + _state_of_params(expert, expert_dp(cfg), cfg)
    return state


def layer_state_bytes(model: ModelSpec, layer: LayerSpec, cfg: TrainingConfig) -> float:
    """Bytes of weights + gradients + optimizer states of one decoder layer on one GPU."""
    return layer_state_breakdown(model, layer, cfg).total_bytes


def embedding_state_breakdown(model: ModelSpec, cfg: TrainingConfig) -> StateBytes:
    """Model states of the input embedding (first stage), vocabulary-sharded over tp (Megatron
    `VocabParallelEmbedding`)."""
    return _state_of_params(model.embedding_params / cfg.tp, _dense_shard_degree(cfg), cfg)


def embedding_state_bytes(model: ModelSpec, cfg: TrainingConfig) -> float:
    """Bytes of the input embedding's model states on one GPU of the first stage."""
    return embedding_state_breakdown(model, cfg).total_bytes


def lm_head_state_breakdown(model: ModelSpec, cfg: TrainingConfig) -> StateBytes:
    """Model states of the final norm + LM head (last stage), vocabulary-sharded over tp.

    Tied embeddings with pp > 1: Megatron keeps a copy of the embedding on the last stage
    (`shared_embedding`, gradients all-reduced between the two), so it costs a full head there.
    """
    head = model.lm_head_params
    if model.tie_word_embeddings and cfg.pp > 1:
        head = model.embedding_params
    params = head / cfg.tp + model.final_norm_params
    return _state_of_params(params, _dense_shard_degree(cfg), cfg)


def lm_head_state_bytes(model: ModelSpec, cfg: TrainingConfig) -> float:
    """Bytes of the LM head's (and final norm's) model states on one GPU of the last stage."""
    return lm_head_state_breakdown(model, cfg).total_bytes


def zero3_working_bytes(model: ModelSpec, layer_indices: tuple[int, ...], cfg: TrainingConfig) -> float:
    """ZeRO-3 / FSDP gathers whole layers to compute: the largest layer of the stage, gathered in bf16,
    twice (the current layer and the prefetched next one). DeepSpeed's
    `estimate_zero3_model_states_mem_needs` adds `4 * largest_layer_params` for the same buffers."""
    if cfg.zero is not ZeroStage.PARAMETERS or not layer_indices:
        return 0.0
    largest = max(sum(layer_params_per_gpu(model.layers[i], cfg)) for i in layer_indices)
    return 2.0 * WEIGHT_BYTES_PER_PARAM * largest


# ----- activations ---------------------------------------------------------------------------------
def _attention_bytes_per_token(
    layer: LayerSpec, cfg: TrainingConfig, s: int, flash: bool
) -> tuple[float, float, float]:
    """(tp-split, replicated-without-SP, attention-internal) bytes per token of the attention block.

    Korthikanti §4.1: QKV input 2h (replicated), Q and K 4h and V 2h (split), softmax output 2as,
    its dropout mask as and the dropout output 2as (split, "internal"), projection input 2h (split),
    output dropout mask h (replicated); generalised to GQA (K, V of kv_heads·head_dim), MLA (latents)
    and flash attention (no s² tensors; fp32 log-sum-exp of 4 bytes per head instead).
    """
    att = layer.attention
    t = cfg.tp
    heads = att.num_heads / t
    kv_heads = math.ceil(att.num_kv_heads / t)
    if att.kind is AttentionKind.LINEAR:
        # Gated DeltaNet: q, k of kv_heads·d, v and gate of value_heads·dv, conv inputs: ~2·(2k + 2v).
        k_dim = kv_heads * att.head_dim
        v_dim = att.linear_num_value_heads / t * att.v_head_dim
        return 2.0 * (2 * k_dim + 3 * v_dim), 0.0, 0.0
    q = 2.0 * heads * att.head_dim
    k = 2.0 * kv_heads * att.head_dim
    v = 2.0 * kv_heads * att.v_head_dim
    out = 2.0 * heads * att.v_head_dim
    split = q + k + v + out
    replicated_extra = 0.0
    if att.kind is AttentionKind.MLA:
        # K/V are decompressed per head (counted above with num_kv_heads = num_heads); the latents
        # (q_lora, kv_lora + rope) and their norm inputs are stored too (DeepSeek-V2 §2.1.2).
        replicated_extra = 2.0 * (2 * att.q_lora_rank + 2 * att.kv_lora_rank + att.qk_rope_head_dim)
    ctx = s
    if att.kind in (AttentionKind.SLIDING, AttentionKind.CHUNKED) and att.window_tokens:
        ctx = min(s, att.window_tokens)
    internal = 4.0 * heads if flash else 5.0 * heads * ctx
    return split, replicated_extra, internal


def _mlp_bytes_per_token(layer: LayerSpec, cfg: TrainingConfig) -> float:
    """Bytes per token of the MLP's tp-split tensors (its input is counted with the replicated part).

    Korthikanti §4.1: GeLU input 8h and output 8h for a 4h MLP (2 bytes × 2 tensors of width f); a
    gated (SwiGLU) MLP stores gate and up (2·2f) and their product (2f): 6f bytes. Shared experts the
    same. Routed experts are in `_moe_bytes_per_local_token`.
    """
    mlp = layer.mlp
    per_width = 6.0 if mlp.gated else 4.0
    width = mlp.intermediate_size if mlp.kind is MlpKind.DENSE else 0
    width += mlp.num_shared_experts * mlp.shared_intermediate_size
    return per_width * width / cfg.tp


def _moe_bytes_per_local_token(
    model: ModelSpec, layer: LayerSpec, cfg: TrainingConfig, capacity_factor: float
) -> float:
    """Bytes per token of the sequence shard, for the routed experts on one GPU.

    Tokens reaching one GPU's experts: top-k copies of each token, gathered over etp and balanced
    over ep: s·b·k·etp/(t·cp) tokens (× capacity factor when tokens are padded). Each stores its
    permuted input (2h), the expert output kept for the weighted combine (2h) and the expert's
    intermediate tensors (6f or 4f, split over etp). Router logits and probabilities in fp32: 8E.
    """
    mlp = layer.mlp
    if mlp.kind is not MlpKind.MOE or not mlp.num_experts:
        return 0.0
    h = model.hidden_size
    etp = expert_tp(cfg)
    per_width = 6.0 if mlp.gated else 4.0
    per_routed = 4.0 * h + per_width * mlp.intermediate_size / etp
    tokens = mlp.experts_per_token * capacity_factor * etp
    router = 8.0 * mlp.num_experts
    return tokens * per_routed + router


def layer_activation_bytes(
    model: ModelSpec,
    layer: LayerSpec,
    cfg: TrainingConfig,
    recompute: Recompute,
    *,
    flash_attention: bool = True,
    capacity_factor: float = 1.0,
) -> float:
    """Activation bytes one micro-batch leaves on one GPU for one decoder layer until its backward.

    Korthikanti et al. 2022 Table 2, generalised: the sequence is split over cp (each rank keeps its
    s/cp tokens); tensors inside the TP region are split over tp; the rest (layer-norm inputs, QKV and
    MLP inputs, dropout masks: 10sbh) is split over tp only with sequence parallelism.
      none:      sbh(34 + 5as/h)/t with SP (flash attention: 34·sbh/t + a fp32 log-sum-exp, 4·sb·a/t)
      selective: attention internals (softmax, its dropout) recomputed: 34·sbh/t
      full:      only the layer input is kept: 2sbh (/t with SP, as Megatron stores it scattered)
    """
    h = model.hidden_size
    s = math.ceil(cfg.seq_len / cfg.cp)
    b = cfg.micro_batch
    t = cfg.tp
    sp = cfg.sequence_parallel and t > 1
    rep_div = t if sp else 1
    tokens = float(s * b)
    if recompute is Recompute.FULL:
        return tokens * 2.0 * h / rep_div
    split, att_rep, internal = _attention_bytes_per_token(layer, cfg, s, flash_attention)
    # 2h ln1 input + 2h QKV input + 1h attention dropout mask + 2h ln2 input + 2h MLP input + 1h MLP
    # dropout mask = 10h (Korthikanti §4.1), plus MLA latents.
    replicated = 10.0 * h + att_rep
    split += _mlp_bytes_per_token(layer, cfg)
    moe = _moe_bytes_per_local_token(model, layer, cfg, capacity_factor)
    per_token = replicated / rep_div + split + moe / t
    if recompute is Recompute.NONE:
        per_token += internal
    return tokens * per_token


def logits_bytes(model: ModelSpec, cfg: TrainingConfig) -> float:
    """Logits and cross-entropy buffers of one micro-batch on one GPU of the last stage.

    Megatron's vocab-parallel cross entropy (`_VocabParallelCrossEntropy.forward`) casts the bf16
    logits (2 bytes per vocab entry) to fp32 (4), exponentiates in place and saves that softmax for
    backward; the peak holds both: s·b·v/t·(2 + 4) bytes, with s the rank's s/cp tokens. The final
    norm input and LM-head input (2h + 2h per token, split by SP) are added (Korthikanti §4.3).
    """
    s = math.ceil(cfg.seq_len / cfg.cp)
    tokens = float(s * cfg.micro_batch)
    t = cfg.tp
    rep_div = t if (cfg.sequence_parallel and t > 1) else 1
    return tokens * (6.0 * model.vocab_size / t + 4.0 * model.hidden_size / rep_div)


def embedding_activation_bytes(model: ModelSpec, cfg: TrainingConfig) -> float:
    """Embedding activations of one micro-batch on the first stage: the int64 token ids (8sb) and the
    embedding dropout mask (sbh, split by SP) (Korthikanti §4.3; Megatron-LM
    `theoretical_memory_usage.compute_activation_memory`)."""
    tokens = float(math.ceil(cfg.seq_len / cfg.cp) * cfg.micro_batch)
    rep_div = cfg.tp if (cfg.sequence_parallel and cfg.tp > 1) else 1
    return 8.0 * tokens + tokens * model.hidden_size / rep_div


def inflight_microbatches(cfg: TrainingConfig, stage: int) -> int:
    """(micro-batch, model-chunk) forward passes whose activations are alive at stage `stage`'s peak.

    1F1B (Narayanan et al. 2021 §2.2.1): stage s runs pp − s forwards before its first backward,
    capped by the grad_accum micro-batches of a step. Interleaved 1F1B with vp chunks (Megatron-Core
    `forward_backward_pipelining_with_interleaving`): warm-up = 2(pp − s − 1) + (vp − 1)·pp, plus the
    one in steady state, capped by grad_accum·vp; each pass holds layers/vp layers (Korthikanti §4.2.3:
    the first stage then holds L(1 + (p − 1)/(p·vp)) layers' worth).
    """
    m = max(cfg.grad_accum, 1)
    if cfg.pp == 1:
        return 1
    if cfg.vp == 1:
        return min(cfg.pp - stage, m)
    warmup = 2 * (cfg.pp - stage - 1) + (cfg.vp - 1) * cfg.pp
    return min(warmup + 1, m * cfg.vp)


# ----- stages and report ---------------------------------------------------------------------------
def _margins(gpu: GPU, margins: MemoryConfig | None) -> tuple[float, float]:
    """(usable bytes per GPU, fragmentation fraction) from the shared MemoryConfig."""
    if margins is None:
        from autoparallel.memory.margins import MemoryConfig

        margins = MemoryConfig()
    return float(margins.usable_bytes(gpu)), float(margins.fragmentation)


def stage_memory_bytes(
    model: ModelSpec,
    gpu: GPU,
    cfg: TrainingConfig,
    stage: int,
    layer_indices: tuple[int, ...],
    recompute: Recompute,
    *,
    fragmentation: float = DEFAULT_FRAGMENTATION,
    flash_attention: bool = True,
) -> StageMemory:
    """Peak memory of one GPU of pipeline stage `stage` holding decoder layers `layer_indices`.

    states: Σ layer_state_breakdown (+ embedding on the first stage, + LM head on the last, + the
    ZeRO-3 gathered working layers); activations: inflight_microbatches(stage) × Σ layer activations
    / vp (+ embedding dropout mask on the first stage); logits: one micro-batch's logits on the last
    stage; fragmentation: `fragmentation` × the sum.
    """
    del gpu  # part of the stable signature (per-GPU kernels' workspaces may depend on it later)
    state = ZERO_STATE
    act = 0.0
    for i in layer_indices:
        layer = model.layers[i]
        state = state + layer_state_breakdown(model, layer, cfg)
        act += layer_activation_bytes(model, layer, cfg, recompute, flash_attention=flash_attention)
    inflight = inflight_microbatches(cfg, stage)
    act *= inflight / cfg.vp
    if stage == 0:
        state = state + embedding_state_breakdown(model, cfg)
        act += inflight * embedding_activation_bytes(model, cfg)
    logits = 0.0
    if stage == cfg.pp - 1:
        state = state + lm_head_state_breakdown(model, cfg)
        logits = logits_bytes(model, cfg)
    weights = state.weights_bytes + zero3_working_bytes(model, layer_indices, cfg)
    allocated = weights + state.gradients_bytes + state.optimizer_bytes + act + logits
    frag = fragmentation * allocated
    return StageMemory(
        stage=stage,
        layers=len(layer_indices),
        weights_gib=weights / GIB,
        gradients_gib=state.gradients_bytes / GIB,
        optimizer_gib=state.optimizer_bytes / GIB,
        activations_gib=act / GIB,
        logits_gib=logits / GIB,
        fragmentation_gib=frag / GIB,
        total_gib=(allocated + frag) / GIB,
    )


def stage_layer_indices(model: ModelSpec, cfg: TrainingConfig) -> tuple[tuple[int, ...], ...]:
    """Decoder-layer indices of each pipeline stage (`cfg.stage_layers`; with vp > 1 the layers of a
    stage are its vp chunks, which hold the same count in total)."""
    counts = cfg.stage_layers(model.num_layers)
    out: list[tuple[int, ...]] = []
    start = 0
    for n in counts:
        out.append(tuple(range(start, start + n)))
        start += n
    return tuple(out)


def training_memory(
    model: ModelSpec, gpu: GPU, cfg: TrainingConfig, *, margins: MemoryConfig | None = None
) -> TrainingMemoryReport:
    """Per-GPU memory of every pipeline stage of `cfg`, and whether it fits `gpu` after margins."""
    usable_bytes, frag = _margins(gpu, margins)
    stages = tuple(
        stage_memory_bytes(model, gpu, cfg, s, idx, cfg.recompute_of(s), fragmentation=frag)
        for s, idx in enumerate(stage_layer_indices(model, cfg))
    )
    usable = usable_bytes / GIB
    peak = max(st.total_gib for st in stages)
    problems = tuple(
        f"stage {st.stage} needs {st.total_gib:.2f} GiB per GPU ({st.layers} layers: weights "
        f"{st.weights_gib:.2f}, gradients {st.gradients_gib:.2f}, optimizer {st.optimizer_gib:.2f}, "
        f"activations {st.activations_gib:.2f}, logits {st.logits_gib:.2f} GiB) but {gpu.name} offers "
        f"{usable:.2f} GiB usable: over by {st.total_gib - usable:.2f} GiB"
        for st in stages
        if st.total_gib > usable
    )
    return TrainingMemoryReport(
        stages=stages, peak_gib=peak, usable_gib=usable, fits=not problems, problems=problems
    )


# ----- a model spec from a paper's table -----------------------------------------------------------
def gpt_like_spec(
    layers: int,
    hidden: int,
    heads: int,
    vocab: int,
    seq: int,
    *,
    ffn: int | None = None,
    kv_heads: int | None = None,
    gated: bool = False,
    bias: bool = True,
    learned_positions: bool = True,
    tie_embeddings: bool = True,
    name: str | None = None,
) -> ModelSpec:
    """A decoder-only transformer from the shape a paper's table gives (layers, hidden, heads).

    Defaults are GPT-3 / Megatron-LM's GPT (Brown et al. 2020 Table 2.1; Narayanan et al. 2021 §5.1):
    MHA with biases, a 4h GeLU MLP with biases, two LayerNorms (weight + bias) per layer, learned
    positions (seq × h), tied embeddings; 12·L·h² + 13·L·h + (V + s)·h parameters. Llama-like shapes
    pass `gated=True, bias=False, learned_positions=False, tie_embeddings=False, kv_heads=...`.
    """
    from autoparallel.models.spec import AttentionSpec, MlpSpec, ParamGroups

    h, f = hidden, ffn if ffn is not None else 4 * hidden
    kv = heads if kv_heads is None else kv_heads
    d = h // heads
    b = 1 if bias else 0
    attention = h * (heads + 2 * kv) * d + heads * d * h + b * ((heads + 2 * kv) * d + h)
    mlp = (3 if gated else 2) * h * f + b * ((2 if gated else 1) * f + h)
    norms = (4 if bias else 2) * h
    layer = LayerSpec(
        attention=AttentionSpec(
            kind=AttentionKind.FULL, num_heads=heads, num_kv_heads=kv, head_dim=d, v_head_dim=d
        ),
        mlp=MlpSpec(kind=MlpKind.DENSE, intermediate_size=f, gated=gated),
        params=ParamGroups(attention=attention, dense_mlp=mlp, norms=norms),
    )
    return ModelSpec(
        name=name or f"gpt-like-{layers}x{hidden}",
        model_type="gpt2" if not gated else "llama",
        hidden_size=h,
        vocab_size=vocab,
        max_position_embeddings=seq,
        layers=(layer,) * layers,
        tie_word_embeddings=tie_embeddings,
        embedding_params=vocab * h + (seq * h if learned_positions else 0),
        lm_head_params=0 if tie_embeddings else vocab * h,
        final_norm_params=(2 if bias else 1) * h,
    )
