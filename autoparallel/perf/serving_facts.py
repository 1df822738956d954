"""Per-model facts the serving step model needs (weight bytes, KV bytes, FLOPs per token), memoized.

The sums over a model's layers depend only on the model, its weight quantization, the KV-cache dtype
and the TP degree, so they are computed once per model object and reused for every batch, workload
and degree the solvers try.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autoparallel.memo import Memo, memoized
from autoparallel.memory.sglang import linear_state_bytes as sglang_state_bytes
from autoparallel.memory.vllm_config import apply_dtype_and_quant, kv_dtype_bytes
from autoparallel.models.quant import QuantMethod
from autoparallel.models.spec import AttentionKind, MlpKind, ModelSpec, ParamGroups


@dataclass(frozen=True)
class ModelFacts:
    """Whole-model sums the step formula needs (bytes, counts), for one weight quantization."""

    layers: int
    hidden: int
    dense_bytes: float  # all non-routed decoder weights (attention, dense MLP, shared experts, router, norms)
    mlp_bytes: float  # of those, the dense MLPs and shared experts (SGLang's attention DP shards them wider)
    head_bytes: float  # LM head (the embedding when tied), read every step
    expert_groups: tuple[tuple[int, int, int, float], ...]  # (layers, experts, top_k, bytes per expert)
    moe_layers: int
    fp8_compute: bool
    int8_compute: bool  # INT8 W8A8 weights (compressed-tensors): INT8 GEMMs on INT8 tensor cores
    fp4_compute: bool  # NVFP4 weights: FP4 tensor cores where the GPU has them (W4A4), else BF16 (Marlin)
    block_fp8: bool  # FP8 weights with per-block (e.g. 128×128) scales, dequantized inside the GEMM
    expert_params_per_token: float  # routed-expert weights one token multiplies (top-k per MoE layer)


_FACTS: Memo[ModelFacts] = {}
_KV_RANK: Memo[tuple[float, tuple[tuple[int, float], ...]]] = {}
_STATE: Memo[float] = {}
_FLOPS: Memo[float] = {}


def model_facts(model: ModelSpec, quantization: str | None, dtype: str = "auto") -> ModelFacts:
    """The `ModelFacts` of `model` as the engine holds it under `quantization` and `--dtype` `dtype`
    (`vllm_config.load_dtype`), memoized per model object."""
    return memoized(_FACTS, (model,), (quantization, dtype), lambda: _model_facts(model, quantization, dtype))


def _model_facts(model: ModelSpec, quantization: str | None, dtype: str) -> ModelFacts:
    eff = apply_dtype_and_quant(model, dtype, quantization)
    groups: dict[tuple[int, int, float], int] = {}
    dense = mlp = 0.0
    expert_params = 0.0
    for i, layer in enumerate(eff.layers):
        p, at = layer.params, (i,)  # `at`: this layer's own storage where rules name layers by index
        dense += eff.weight_bytes(p.model_copy(update={"routed_experts": 0}), at)
        mlp += eff.weight_bytes(ParamGroups(dense_mlp=p.dense_mlp, shared_experts=p.shared_experts), at)
        if layer.mlp.kind is MlpKind.MOE and layer.mlp.num_experts:
            per = eff.weight_bytes(ParamGroups(routed_experts=p.routed_experts), at) / layer.mlp.num_experts
            gkey = (layer.mlp.num_experts, layer.mlp.experts_per_token, per)
            expert_params += p.routed_experts * layer.mlp.experts_per_token / layer.mlp.num_experts
            groups[gkey] = groups.get(gkey, 0) + 1
    head = eff.weight_bytes(ParamGroups(lm_head=eff.lm_head_params or eff.embedding_params))
    q = eff.quantization
    return ModelFacts(
        layers=eff.num_layers,
        hidden=eff.hidden_size,
        dense_bytes=dense,
        mlp_bytes=mlp,
        head_bytes=head,
        expert_groups=tuple((n, e, k, per) for (e, k, per), n in sorted(groups.items())),
        moe_layers=sum(groups.values()),
        fp8_compute=q is not None and q.method is QuantMethod.FP8,
        int8_compute=q is not None and q.method is QuantMethod.INT8 and not q.weight_only,
        fp4_compute=q is not None and q.method is QuantMethod.NVFP4,
        block_fp8=q is not None and q.method is QuantMethod.FP8 and bool(q.block_n and q.block_k),
        expert_params_per_token=expert_params,
    )


def _kv_rank(
    model: ModelSpec, kv_cache_dtype: str, tp: int, engine: str
) -> tuple[float, tuple[tuple[int, float], ...]]:
    """KV bytes per context token on one TP rank (all layers) as `engine` stores them: full layers,
    and (window, bytes) pairs.

    Softmax layers hold ceil(kv_heads / tp) heads per rank; MLA holds the whole latent on every rank.
    """

    def compute() -> tuple[float, tuple[tuple[int, float], ...]]:
        kvb = kv_dtype_bytes(model, kv_cache_dtype, engine=engine)
        full = 0.0
        windows: dict[int, float] = {}
        for layer in model.layers:
            att = layer.attention
            per = att.kv_bytes_per_token_per_rank(tp, kvb)
            if att.kind in (AttentionKind.SLIDING, AttentionKind.CHUNKED) and att.window_tokens:
                windows[att.window_tokens] = windows.get(att.window_tokens, 0.0) + per
            else:
                full += per
        return full, tuple(sorted(windows.items()))

    return memoized(_KV_RANK, (model,), (kv_cache_dtype, tp, engine), compute)


def flops_per_token(model: ModelSpec, context_tokens: float) -> float:
    """`ModelSpec.forward_flops_per_token`, memoized on the integer context."""
    ctx = round(context_tokens)
    hit = _FLOPS.get((id(model), ctx))  # `memoized`'s own look-up, inlined on this hot path
    if hit is not None and hit[0][0] is model:
        return hit[1]
    return memoized(_FLOPS, (model,), (ctx,), lambda: model.forward_flops_per_token(ctx))


@dataclass(frozen=True)
class KvLayout:
    """KV bytes per context token on one GPU of the fullest pipeline stage, as an engine stores them
    (`kv_layout`)."""

    full: float  # bytes per context token of the full-attention layers, on one TP rank
    windows: tuple[tuple[int, float], ...]  # (window, bytes per token) of the windowed layers, one TP rank
    stage_fraction: float  # share of the layers on the fullest pipeline stage

    def bytes_per_sequence(self, context_tokens: float) -> float:
        """KV bytes one sequence of `context_tokens` reads (a windowed layer: at most its window)."""
        if not self.windows:  # no windowed layers: the same sum without its empty generator
            return (self.full * context_tokens + 0.0) * self.stage_fraction
        per_rank = self.full * context_tokens + sum(b * min(context_tokens, w) for w, b in self.windows)
        return per_rank * self.stage_fraction


def kv_layout(model: ModelSpec, kv_cache_dtype: str, tp: int, pp: int, *, engine: str) -> KvLayout:
    """The `KvLayout` of `model` at `tp` × `pp` as `engine` stores its KV cache in `kv_cache_dtype`."""
    full, windows = _kv_rank(model, kv_cache_dtype, tp, engine)
    return KvLayout(full, windows, stage_fraction(model.num_layers, pp))


def kv_bytes_per_sequence_per_gpu(
    model: ModelSpec, kv_cache_dtype: str, tp: int, pp: int, context_tokens: float, *, engine: str
) -> float:
    """KV bytes one sequence of `context_tokens` reads on one GPU of the fullest pipeline stage, as
    `engine` stores them."""
    return kv_layout(model, kv_cache_dtype, tp, pp, engine=engine).bytes_per_sequence(context_tokens)


def linear_state_bytes_per_sequence_per_gpu(model: ModelSpec, tp: int, pp: int, *, engine: str) -> float:
    """Recurrent state of one sequence's linear-attention layers (Gated DeltaNet, Mamba) on one GPU of
    the fullest pipeline stage, as `engine` keeps it: a decode step reads all of it and writes it
    back (the recurrent update of every token). SGLang keeps its SSM part in float32
    (`memory.sglang.linear_state_bytes`); vLLM (`mamba_ssm_cache_dtype` auto,
    `MambaStateDtypeCalculator`) and TensorRT-LLM (auto: the model config) the model's dtype. 0 for
    models without such layers."""

    def compute() -> float:
        return sglang_state_bytes(model, tp) if engine == "sglang" else model.linear_state_bytes(tp)

    per_rank = memoized(_STATE, (model,), (tp, engine), compute)
    return per_rank * stage_fraction(model.num_layers, pp)


def stage_fraction(layers: int, pp: int) -> float:
    """Share of the decoder layers on the fullest pipeline stage: ceil(L / pp) / L."""
    return math.ceil(layers / pp) / layers


def unique_experts(experts: int, top_k: int, tokens: float) -> float:
    """Expected distinct experts `tokens` routed tokens touch: E·(1 − (1 − k/E)^tokens)."""
    if tokens <= 0:
        return 0.0
    return experts * (1.0 - (1.0 - top_k / experts) ** tokens)
