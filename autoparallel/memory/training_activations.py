"""Activation inventory of training: the bytes one micro-batch leaves on one GPU until its backward.

    layer_activation_bytes        activations one micro-batch leaves on one GPU per decoder layer
    logits_bytes                  the fp32 logits / cross-entropy buffers on the last stage (+ MTP)
    mtp_activation_bytes          what the multi-token-prediction modules add there
    embedding_activation_bytes    token ids and the embedding dropout mask (with dropout) on the first stage
    inflight_microbatches         (micro-batch, model-chunk) passes alive at a stage's peak

Sources: Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models"
(arXiv 2205.05198), §4 and Table 2: per layer sbh(34 + 5as/h) bytes without parallelism,
sbh/t(34 + 5as/h) with tensor + sequence parallelism, 34·sbh/t with selective recompute, 2sbh (layer
input) with full recompute; §4.2.3 for the pipeline in-flight count.

Dropout masks (1 byte per element: after attention, after the MLP, after the embedding; the attention
dropout's mask and output inside an unfused softmax) are kept only when `model.dropout`: ATen's
`dropout` returns its input without a mask when p = 0 (`_dropout_impl`: `if (p == 0 || !train || ...)
return input;`), which Megatron's bias-dropout-add reaches too. Without them Table 2's 34 becomes 32 and
5as/h becomes 2as/h (the softmax output alone). Korthikanti's GPT runs use dropout 0.1.
"""

from __future__ import annotations

import math

from autoparallel.configs import Recompute, TrainingConfig
from autoparallel.memory.training_states import expert_tp
from autoparallel.models.spec import AttentionKind, LayerSpec, MlpKind, ModelSpec


def local_tokens(cfg: TrainingConfig) -> float:
    """Tokens of one micro-batch on one rank's sequence shard: b·⌈s/cp⌉."""
    return float(math.ceil(cfg.seq_len / cfg.cp) * cfg.micro_batch)


def sequence_parallel_divisor(cfg: TrainingConfig) -> int:
    """What the tensors outside the TP region (layer-norm inputs, dropout masks) are split by: tp with
    Megatron sequence parallelism and tp > 1, else 1 (replicated)."""
    return cfg.tp if (cfg.sequence_parallel and cfg.tp > 1) else 1


def _attention_bytes_per_token(
    layer: LayerSpec, cfg: TrainingConfig, s: int, flash: bool, dropout: bool = True
) -> tuple[float, float, float]:
    """(tp-split, replicated-without-SP, attention-internal) bytes per token of the attention block.

    Korthikanti §4.1: QKV input 2h (replicated), Q and K 4h and V 2h (split), softmax output 2as,
    its dropout mask as and the dropout output 2as (split, "internal"; softmax output alone, 2as,
    without dropout), projection input 2h (split), output dropout mask h (replicated, counted by the
    caller); generalised to GQA (K, V of kv_heads·head_dim), MLA (latents)
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
    internal = 4.0 * heads if flash else (5.0 if dropout else 2.0) * heads * ctx
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


def fp8_saved_input_bytes_per_token(
    model: ModelSpec, layer: LayerSpec, cfg: TrainingConfig, *, part: str, capacity_factor: float = 1.0
) -> float:
    """Bytes per token an FP8 run saves less than bf16 on the inputs of one layer's linears.

    Transformer Engine (`module/linear.py` `_Linear.forward`, and LayerNormLinear / LayerNormMLP /
    GroupedLinear alike) casts a linear's input to FP8 for the forward GEMM and saves that FP8 tensor
    (or its FP8 transpose) for the weight-gradient GEMM instead of the bf16 input: one byte per
    element is saved, not two. Inputs of non-linear ops keep their precision: layer-norm inputs,
    Q/K/V for the bf16 flash attention, the FC1 output (the activation function's input), dropout
    masks. Per `part` (the terms of `layer_activation_bytes`):
      replicated: QKV input h + MLP input h (the LN outputs: SP-scattered like the other 10h);
      split:      attention projection input a·d_v/t + FC2 input f/t (dense MLP and shared experts);
      experts:    per routed token, the permuted expert input h + the expert FC2 input f/etp.
    Linear attention (Gated DeltaNet) layers keep their QKV/projection inputs in the same way.
    """
    h = model.hidden_size
    att, mlp = layer.attention, layer.mlp
    if part == "replicated":
        return 2.0 * h
    if part == "split":
        width = mlp.intermediate_size if mlp.kind is MlpKind.DENSE else 0
        width += mlp.num_shared_experts * mlp.shared_intermediate_size
        heads = att.linear_num_value_heads if att.kind is AttentionKind.LINEAR else att.num_heads
        return (heads * att.v_head_dim + width) / cfg.tp
    if mlp.kind is not MlpKind.MOE or not mlp.num_experts:
        return 0.0
    etp = expert_tp(cfg)
    return mlp.experts_per_token * capacity_factor * etp * (h + mlp.intermediate_size / etp)


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
    MLP inputs, dropout masks: 10sbh; 8sbh without dropout) is split over tp only with sequence
    parallelism. With dropout (`model.dropout`; without it 34 → 32 and 5as/h → 2as/h):
      none:      sbh(34 + 5as/h)/t with SP (flash attention: 34·sbh/t + a fp32 log-sum-exp, 4·sb·a/t)
      selective: attention internals (softmax, its dropout) recomputed: 34·sbh/t
      full:      only the layer input is kept: 2sbh (/t with SP, as Megatron stores it scattered)
    FP8 runs save the linears' inputs in FP8 (`fp8_saved_input_bytes_per_token`): without dropout
    and with a 4h GeLU MLP, 32 → 32 − 2 − 1 − 4 = 25 (QKV, MLP, projection and FC2 inputs).
    """
    h = model.hidden_size
    rep_div = sequence_parallel_divisor(cfg)
    tokens = local_tokens(cfg)
    if recompute is Recompute.FULL:
        return tokens * 2.0 * h / rep_div
    s = math.ceil(cfg.seq_len / cfg.cp)
    split, att_rep, internal = _attention_bytes_per_token(layer, cfg, s, flash_attention, model.dropout)
    # 2h ln1 input + 2h QKV input + 1h attention dropout mask + 2h ln2 input + 2h MLP input + 1h MLP
    # dropout mask = 10h (Korthikanti §4.1; 8h without dropout), plus MLA latents.
    replicated = (10.0 if model.dropout else 8.0) * h + att_rep
    split += _mlp_bytes_per_token(layer, cfg)
    moe = _moe_bytes_per_local_token(model, layer, cfg, capacity_factor)
    if cfg.precision == "fp8":
        # Transformer Engine saves each linear's input in FP8 (1 byte, not 2): QKV input and MLP
        # input (replicated part), projection input and FC2 input (split part), routed experts' too.
        replicated -= fp8_saved_input_bytes_per_token(model, layer, cfg, part="replicated")
        split -= fp8_saved_input_bytes_per_token(model, layer, cfg, part="split")
        moe -= fp8_saved_input_bytes_per_token(
            model, layer, cfg, part="experts", capacity_factor=capacity_factor
        )
    per_token = replicated / rep_div + split + moe / cfg.tp
    if recompute is Recompute.NONE:
        per_token += internal
    return tokens * per_token


def _head_bytes(model: ModelSpec, cfg: TrainingConfig) -> float:
    """One LM head's logits + cross-entropy buffers and its inputs for one micro-batch on one GPU."""
    rep_div = sequence_parallel_divisor(cfg)
    return local_tokens(cfg) * (6.0 * model.vocab_size / cfg.tp + 4.0 * model.hidden_size / rep_div)


def mtp_activation_bytes(model: ModelSpec, cfg: TrainingConfig) -> float:
    """Activations one micro-batch leaves in the MTP modules on one GPU of the last stage.

    Each module (DeepSeek-V3 §2.2; Megatron-Core `MultiTokenPredictionLayer`): its decoder block (as
    the last layer, counted without recomputation whatever the stage's mode: an upper bound under
    full recompute, kept recompute-independent like the logits), the enorm / hnorm inputs (2h + 2h)
    and the eh_proj input (their concatenation, 4h; split by SP like the QKV input), and its own
    logits + cross-entropy buffers (`_head_bytes`: the depth's loss is computed in the same forward
    and its fp32 softmax kept for backward, alive alongside the main head's).
    """
    n = model.mtp_layers
    if n <= 0 or not model.mtp_params:
        return 0.0
    block = layer_activation_bytes(model, model.layers[-1], cfg, Recompute.NONE)
    proj = local_tokens(cfg) * 8.0 * model.hidden_size / sequence_parallel_divisor(cfg)
    return n * (block + proj + _head_bytes(model, cfg))


def logits_bytes(model: ModelSpec, cfg: TrainingConfig) -> float:
    """Logits and cross-entropy buffers of one micro-batch on one GPU of the last stage.

    Megatron's vocab-parallel cross entropy (`_VocabParallelCrossEntropy.forward`) casts the bf16
    logits (2 bytes per vocab entry) to fp32 (4), exponentiates in place and saves that softmax for
    backward; the peak holds both: s·b·v/t·(2 + 4) bytes, with s the rank's s/cp tokens. The final
    norm input and LM-head input (2h + 2h per token, split by SP) are added (Korthikanti §4.3). MTP
    modules on the last stage add `mtp_activation_bytes` (one micro-batch: the last stage keeps one
    in flight under 1F1B).
    """
    return _head_bytes(model, cfg) + mtp_activation_bytes(model, cfg)


def embedding_activation_bytes(model: ModelSpec, cfg: TrainingConfig) -> float:
    """Embedding activations of one micro-batch on the first stage: the int64 token ids (8sb) and the
    embedding dropout mask (sbh, split by SP; none without dropout) (Korthikanti §4.3; Megatron-LM
    `theoretical_memory_usage.compute_activation_memory`)."""
    tokens = local_tokens(cfg)
    mask = tokens * model.hidden_size / sequence_parallel_divisor(cfg) if model.dropout else 0.0
    return 8.0 * tokens + mask


def inflight_microbatches(cfg: TrainingConfig, stage: int) -> int:
    """(micro-batch, model-chunk) forward passes whose activations are alive at stage `stage`'s peak.

    1F1B (Narayanan et al. 2021 §2.2.1): stage s runs pp − s forwards before its first backward,
    capped by the grad_accum micro-batches of a step. Interleaved 1F1B with vp chunks (Megatron-Core
    `forward_backward_pipelining_with_interleaving`): warm-up = 2(pp − s − 1) + (vp − 1)·pp, plus the
    one in steady state, capped by grad_accum·vp; each pass holds layers/vp layers (Korthikanti §4.2.3:
    the first stage then holds L(1 + (p − 1)/(p·vp)) layers' worth). Megatron-Core's
    `get_pp_rank_microbatches`: the warm-up uses `microbatch_group_size_per_vp_stage` (default pp)
    per extra chunk, one more forward with `overlap_moe_expert_parallel_comm` (`cfg.ep_overlap`: the
    merged 1F1B step needs an independent forward), and all of them are warm-up when that reaches
    grad_accum·vp.
    """
    m = max(cfg.grad_accum, 1)
    if cfg.pp == 1:
        return 1
    if cfg.vp == 1:
        return min(cfg.pp - stage, m)
    warmup = 2 * (cfg.pp - stage - 1) + (cfg.vp - 1) * cfg.pp + (1 if cfg.ep_overlap else 0)
    return min(warmup + 1, m * cfg.vp)
