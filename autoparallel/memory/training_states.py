"""Model states per GPU in training: weights, gradients and optimizer states, in floats (bytes).

    layer_params_per_gpu                            (dense, expert) parameters of one layer on one GPU
    layer_state_breakdown / layer_state_bytes       weights + gradients + optimizer of one decoder layer
    embedding_state_bytes / lm_head_state_bytes     the same for the embedding (first stage) and LM head
                                                    (+ the MTP modules, which sit with it on the last stage)
    mtp_params_per_gpu / mtp_state_breakdown        the multi-token-prediction modules alone
    zero3_working_bytes                             ZeRO-3's gathered working layers

Sources: Rajbhandari et al. 2020, "ZeRO: Memory Optimizations Toward Training Trillion Parameter
Models", §3.1 and §5 (2Ψ fp16 weights + 2Ψ fp16 gradients + KΨ optimizer, K = 12 for mixed-precision
Adam: fp32 master, momentum, variance; P_os: 4Ψ + KΨ/Nd, P_os+g: 2Ψ + 14Ψ/Nd, P_os+g+p: 16Ψ/Nd).
Megatron distributed optimizer: Megatron-LM docs/source/api-guide/dist_optimizer.md table "bf16 param,
fp32 grads: 6 + 12/d bytes per parameter".
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from autoparallel.configs import TrainingConfig, ZeroStage
from autoparallel.models.spec import LayerSpec, ModelSpec

# Bytes per parameter (ZeRO §3.1, mixed-precision Adam): bf16/fp16 weight 2, gradient 2,
# optimizer K = 12 (fp32 master 4 + momentum 4 + variance 4).
WEIGHT_BYTES_PER_PARAM = 2.0
GRAD_BYTES_PER_PARAM = 2.0
OPTIMIZER_BYTES_PER_PARAM = 12.0
# Megatron's distributed optimizer accumulates and reduces gradients in an fp32 `main_grad` buffer
# under bf16 (dist_optimizer.md: "bf16 param, fp32 grads: 6 + 12/d").
MEGATRON_MAIN_GRAD_BYTES_PER_PARAM = 4.0
# FP8 training with Transformer Engine (Hopper, delayed or current scaling): every TE linear keeps an
# FP8 copy of its weight and of its transpose (1 + 1 byte per parameter) across the micro-batches of a
# step (TE `module/linear.py` `_Linear.forward`: `weight_fp8` and `weight_t_fp8` are module workspaces
# filled by `fp8_cast_transpose_fused` when `is_first_microbatch`, which Megatron-Core's TE wrappers
# pass; the transpose is the operand of the dgrad GEMM in backward). Norms, the router and the
# embedding / output layer (not TE linears in Megatron-Core's GPT) have no FP8 copy.
FP8_WEIGHT_CACHE_BYTES_PER_PARAM = 2.0


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


# ----- degrees and parameters per GPU --------------------------------------------------------------
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


def embedding_params_per_gpu(model: ModelSpec, cfg: TrainingConfig) -> float:
    """Input-embedding parameters on one GPU of the first stage, vocabulary-sharded over tp (Megatron
    `VocabParallelEmbedding`)."""
    return model.embedding_params / cfg.tp


def lm_head_params_per_gpu(model: ModelSpec, cfg: TrainingConfig) -> float:
    """Final norm + LM head parameters on one GPU of the last stage, the head vocabulary-sharded over tp.

    Tied embeddings with pp > 1: Megatron keeps a copy of the embedding on the last stage
    (`shared_embedding`, gradients all-reduced between the two), so it costs a full head there.
    """
    head = model.lm_head_params
    if model.tie_word_embeddings and cfg.pp > 1:
        head = model.embedding_params
    return head / cfg.tp + model.final_norm_params


# ----- model states --------------------------------------------------------------------------------
def gradient_bytes_per_param(cfg: TrainingConfig) -> float:
    """Bytes per parameter of the gradients `cfg`'s sharding mode keeps and reduces: Megatron's
    distributed optimizer accumulates and reduces them in an fp32 `main_grad` under bf16 and fp8
    (arguments.py `accumulate_allreduce_grads_in_fp32`, set for bf16 only: fp16 keeps fp16 gradients);
    every other mode in the model's dtype (DeepSpeed's, and Megatron's with `--grad-reduce-in-bf16`,
    which `frameworks.megatron` emits for them). One rule for the memory model and the data-parallel
    sync (`perf.training_schedule.dp_sync_time_s`)."""
    if cfg.zero is ZeroStage.DISTRIBUTED_OPTIMIZER and cfg.precision != "fp16":
        return MEGATRON_MAIN_GRAD_BYTES_PER_PARAM
    return GRAD_BYTES_PER_PARAM


def _state_of_params(params_per_gpu: float, shard: float, cfg: TrainingConfig) -> StateBytes:
    """Model states of `params_per_gpu` parameters (after TP/EP) replicated over `shard` data ranks.

    ZeRO §5 / Figure 1: stage 0: (2 + 2 + 12)Ψ; 1: (2 + 2)Ψ + 12Ψ/Nd; 2: 2Ψ + (2 + 12)Ψ/Nd;
    3: (2 + 2 + 12)Ψ/Nd. Megatron distributed optimizer: 2Ψ + 4Ψ + 12Ψ/d (2Ψ + 2Ψ + 12Ψ/d under fp16,
    where Megatron sets `accumulate_allreduce_grads_in_fp32` for bf16 only: arguments.py).
    Offload (ZeRO-Offload, Ren et al. 2021): optimizer states (and ZeRO-3 parameters) leave the GPU.
    """
    z = cfg.zero
    w = WEIGHT_BYTES_PER_PARAM * params_per_gpu
    g = gradient_bytes_per_param(cfg) * params_per_gpu
    o = OPTIMIZER_BYTES_PER_PARAM * params_per_gpu
    if z in (ZeroStage.DISTRIBUTED_OPTIMIZER, ZeroStage.OPTIMIZER):
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


def fp8_weight_cache_bytes(layer: LayerSpec, cfg: TrainingConfig) -> float:
    """FP8 weight + transpose copies of one decoder layer's GEMM weights on one GPU (FP8 runs only):
    FP8_WEIGHT_CACHE_BYTES_PER_PARAM × the layer's linear parameters held by the GPU (norms and the
    router excluded). Not sharded by ZeRO-1/2 or the distributed optimizer: every rank computes with
    its full TP/EP shard; under ZeRO-3 only the gathered working layers would hold one."""
    if cfg.precision != "fp8" or cfg.zero is ZeroStage.PARAMETERS:
        return 0.0
    dense, expert = layer_params_per_gpu(layer, cfg)
    p = layer.params
    gemm = dense - p.norms - p.router + expert
    return FP8_WEIGHT_CACHE_BYTES_PER_PARAM * max(gemm, 0.0)


def layer_state_breakdown(model: ModelSpec, layer: LayerSpec, cfg: TrainingConfig) -> StateBytes:
    """Weights (+ the FP8 weight copies of FP8 runs, `fp8_weight_cache_bytes`), gradients and optimizer
    states of one decoder layer on one GPU."""
    del model  # part of the stable signature; the layer carries its own counts
    dense, expert = layer_params_per_gpu(layer, cfg)
    state = _state_of_params(dense, _dense_shard_degree(cfg), cfg)
    if expert:
        state = state + _state_of_params(expert, expert_dp(cfg), cfg)
    cache = fp8_weight_cache_bytes(layer, cfg)
    if cache:
        state = state + StateBytes(weights_bytes=cache, gradients_bytes=0.0, optimizer_bytes=0.0)
    return state


def layer_state_bytes(model: ModelSpec, layer: LayerSpec, cfg: TrainingConfig) -> float:
    """Bytes of weights + gradients + optimizer states of one decoder layer on one GPU."""
    return layer_state_breakdown(model, layer, cfg).total_bytes


def embedding_state_breakdown(model: ModelSpec, cfg: TrainingConfig) -> StateBytes:
    """Model states of the input embedding (first stage), vocabulary-sharded over tp
    (`embedding_params_per_gpu`)."""
    return _state_of_params(embedding_params_per_gpu(model, cfg), _dense_shard_degree(cfg), cfg)


def embedding_state_bytes(model: ModelSpec, cfg: TrainingConfig) -> float:
    """Bytes of the input embedding's model states on one GPU of the first stage."""
    return embedding_state_breakdown(model, cfg).total_bytes


def mtp_params_per_gpu(model: ModelSpec, cfg: TrainingConfig) -> tuple[float, float]:
    """(dense, expert) parameters of all MTP modules on one GPU of the last stage, before DP sharding.

    Megatron-Core (`multi_token_prediction.mtp_on_this_rank`: "If no custom layout is provided, assumes
    all MTP layers (if any) are placed on the last pipeline stage") builds them next to the LM head.
    Each module (DeepSeek-V3 §2.2) is one decoder block like the last layer (sharded like it), the
    column-parallel eh_proj (2h → h, split over tp) and three replicated norms (enorm, hnorm, final
    norm); the embedding and output head are shared with the main model (`model.mtp_params`).
    """
    n = model.mtp_layers
    if n <= 0 or not model.mtp_params:
        return 0.0, 0.0
    block = model.layers[-1]
    dense, expert = layer_params_per_gpu(block, cfg)
    norms = 3.0 * model.hidden_size
    eh_proj = model.mtp_params / n - block.params.total - norms
    return n * (dense + eh_proj / cfg.tp + norms), n * expert


def mtp_state_breakdown(model: ModelSpec, cfg: TrainingConfig) -> StateBytes:
    """Model states of the MTP modules on one GPU of the last stage (`mtp_params_per_gpu`); dense
    parts sharded over dp × cp, routed experts over the expert-data-parallel ranks, as a layer's."""
    dense, expert = mtp_params_per_gpu(model, cfg)
    state = _state_of_params(dense, _dense_shard_degree(cfg), cfg)
    if expert:
        state = state + _state_of_params(expert, expert_dp(cfg), cfg)
    return state


def lm_head_state_breakdown(model: ModelSpec, cfg: TrainingConfig) -> StateBytes:
    """Model states of the final norm + LM head (last stage), vocabulary-sharded over tp; a tied
    embedding costs a full head there when pp > 1 (`lm_head_params_per_gpu`); plus the MTP modules
    Megatron places on the same stage (`mtp_state_breakdown`)."""
    head = _state_of_params(lm_head_params_per_gpu(model, cfg), _dense_shard_degree(cfg), cfg)
    return head + mtp_state_breakdown(model, cfg)


def lm_head_state_bytes(model: ModelSpec, cfg: TrainingConfig) -> float:
    """Bytes of the LM head's (final norm's, MTP modules') model states on one GPU of the last stage."""
    return lm_head_state_breakdown(model, cfg).total_bytes


def zero3_working_bytes(model: ModelSpec, layer_indices: tuple[int, ...], cfg: TrainingConfig) -> float:
    """ZeRO-3 / FSDP gathers whole layers to compute: the largest layer of the stage, gathered in bf16,
    twice (the current layer and the prefetched next one). DeepSpeed's
    `estimate_zero3_model_states_mem_needs` adds `4 * largest_layer_params` for the same buffers."""
    if cfg.zero is not ZeroStage.PARAMETERS or not layer_indices:
        return 0.0
    largest = max(sum(layer_params_per_gpu(model.layers[i], cfg)) for i in layer_indices)
    return 2.0 * WEIGHT_BYTES_PER_PARAM * largest
