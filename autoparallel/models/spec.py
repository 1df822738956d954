"""ModelSpec: what is parallelized, in numbers.

A ModelSpec is parsed from a Hugging Face `config.json` (see `parse.py`) and holds the architecture
as a tuple of per-layer specs, so that pipeline stages can sum exactly the layers they own.
Everything derived (parameter groups, KV bytes per token, FLOPs, weight bytes) is a property or a
method; nothing is written back.

Units: parameters are counts, memory is bytes, compute is FLOPs.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from enum import Enum
from functools import cached_property
from typing import Any, Self

from pydantic import BaseModel, ConfigDict

from autoparallel.memo import Memo, drop_cached_properties, memoized
from autoparallel.models.quant import QuantSpec


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy whose cached properties are computed afresh (`memo.drop_cached_properties`)."""
        copy = super().model_copy(update=update, deep=deep)
        drop_cached_properties(copy)
        return copy


class AttentionKind(str, Enum):
    """How a layer mixes tokens; decides its KV cache."""

    FULL = "full"
    """Softmax attention over the whole context; KV cache grows with the context."""
    SLIDING = "sliding"
    """Softmax attention over the last `window_tokens` tokens (Gemma 2/3, gpt-oss, Mistral v0.1)."""
    CHUNKED = "chunked"
    """Softmax attention inside fixed chunks of `window_tokens` tokens (Llama 4 local layers)."""
    MLA = "mla"
    """DeepSeek multi-head latent attention: one compressed latent per token, shared by all heads."""
    LINEAR = "linear"
    """Linear attention / state-space layer (Qwen3-Next Gated DeltaNet): a fixed state per sequence."""


class MlpKind(str, Enum):
    """The feed-forward block of a layer."""

    DENSE = "dense"
    """One MLP applied to every token."""
    MOE = "moe"
    """Routed experts (top-k of `num_experts`) plus optional shared experts."""


class ParamGroups(_Frozen):
    """Parameter counts by group. Sums are exact integers."""

    embedding: int = 0
    """Token (and position) embedding table."""
    attention: int = 0
    """Q/K/V/O projections (MLA down/up projections, linear-attention projections), their biases and
    per-head norms."""
    dense_mlp: int = 0
    """Dense feed-forward blocks (all tokens use them)."""
    routed_experts: int = 0
    """Routed MoE experts (each token uses top-k of them)."""
    shared_experts: int = 0
    """Shared MoE experts (every token uses them) and their gates."""
    router: int = 0
    """MoE router (gate) weights and routing biases."""
    norms: int = 0
    """Layer norms / RMS norms (decoder layers and final norm)."""
    lm_head: int = 0
    """Output projection to the vocabulary (0 when tied to the embedding)."""
    mtp: int = 0
    """Multi-token-prediction modules (DeepSeek-V3 / GLM-4.5 `num_nextn_predict_layers`)."""
    vision: int = 0
    """Vision tower and projector of a multimodal model."""

    def __add__(self, other: ParamGroups) -> ParamGroups:
        # Sums of validated counts are valid: skip validation (the float model adds these per layer).
        return ParamGroups.model_construct(
            **{k: getattr(self, k) + getattr(other, k) for k in ParamGroups.model_fields}
        )

    def times(self, n: int) -> ParamGroups:
        """`n` copies of these counts (n identical layers)."""
        return ParamGroups.model_construct(**{k: getattr(self, k) * n for k in ParamGroups.model_fields})

    @property
    def total(self) -> int:
        """All parameters (memoized per object: the counts are frozen)."""
        hit = _TOTALS.get((id(self),))  # `memoized`'s own look-up, inlined on this hot path
        if hit is not None and hit[0][0] is self:
            return hit[1]
        return memoized(
            _TOTALS,
            (self,),
            (),
            lambda: sum(getattr(self, k) for k in ParamGroups.model_fields),
            max_entries=4096,
        )


class AttentionSpec(_Frozen):
    """The attention (token-mixing) block of one decoder layer."""

    kind: AttentionKind
    """Full, sliding-window, chunked, MLA or linear."""
    num_heads: int
    """Query heads."""
    num_kv_heads: int
    """Key/value heads (GQA groups). MLA: equal to `num_heads` (heads of the decompressed K/V).
    Linear: key heads of the linear-attention layer."""
    head_dim: int
    """Query/key head dimension (MLA: qk_nope_head_dim + qk_rope_head_dim)."""
    v_head_dim: int
    """Value head dimension (equals head_dim except for MLA and linear attention)."""
    window_tokens: int | None = None
    """Sliding window or chunk size in tokens, for SLIDING and CHUNKED."""
    kv_lora_rank: int = 0
    """MLA: rank of the compressed KV latent (cached per token)."""
    qk_rope_head_dim: int = 0
    """MLA: decoupled RoPE key dimension (cached per token, shared by heads)."""
    q_lora_rank: int = 0
    """MLA: rank of the compressed query (0 = no query compression)."""
    sparse_topk: int = 0
    """DeepSeek Sparse Attention (MLA, DeepSeek-V3.2 `index_topk`): each query attends only to the
    `sparse_topk` earlier tokens its lightning indexer selects (0: dense attention)."""
    indexer_heads: int = 0
    """DeepSeek Sparse Attention: heads of the lightning indexer (`index_n_heads`)."""
    indexer_head_dim: int = 0
    """DeepSeek Sparse Attention: head dimension of the indexer (`index_head_dim`); its single key
    head is cached per token."""
    linear_num_value_heads: int = 0
    """Linear attention: value heads."""
    linear_conv_kernel: int = 0
    """Linear attention: short convolution width (its state is cached per sequence)."""

    @property
    def kv_bytes_per_token_per_element(self) -> int:
        """Cached elements per token for this layer, all ranks together (multiply by dtype bytes)."""
        if self.kind is AttentionKind.LINEAR:
            return 0
        if self.kind is AttentionKind.MLA:
            return self.kv_lora_rank + self.qk_rope_head_dim
        return self.num_kv_heads * (self.head_dim + self.v_head_dim)

    def kv_elements_per_token_per_rank(self, tp: int) -> int:
        """Cached elements per token on one of `tp` tensor-parallel ranks.

        Softmax attention: ceil(kv_heads / tp) heads (vLLM replicates KV heads when tp > kv_heads).
        MLA: the whole latent on every rank (it is not split across heads).
        """
        if self.kind is AttentionKind.LINEAR:
            return 0
        if self.kind is AttentionKind.MLA:
            return self.kv_lora_rank + self.qk_rope_head_dim
        return math.ceil(self.num_kv_heads / tp) * (self.head_dim + self.v_head_dim)

    @property
    def indexer_key_bytes_per_token(self) -> int:
        """DeepSeek Sparse Attention: bytes the indexer caches per token, on every rank: its key in
        FP8 plus one fp32 scale per 128 elements (vLLM's `DeepseekV32IndexerCache`, SGLang's
        `index_k_with_scale` buffer: 128 + 4 = 132 B for V3.2), whatever the KV-cache dtype."""
        if not self.indexer_head_dim:
            return 0
        return self.indexer_head_dim + 4 * math.ceil(self.indexer_head_dim / 128)

    def _sparse_fp8_latent_bytes(self, element_bytes: float) -> float | None:
        """A sparse MLA layer's FP8 latent in FlashMLA's FP8 layout, the one its sparse decode kernel
        reads (vLLM `fp8_ds_mla`, SGLang's NSA FP8 pool): the latent in FP8, one fp32 scale per 128
        elements, the RoPE part in BF16 (656 B for V3.2); None when that layout does not apply."""
        if not self.sparse_topk or element_bytes != 1:
            return None
        return self.kv_lora_rank + 4 * math.ceil(self.kv_lora_rank / 128) + 2 * self.qk_rope_head_dim

    def kv_bytes_per_token_per_rank(self, tp: int, element_bytes: float) -> float:
        """Cached bytes per token on one of `tp` ranks: the KV elements at `element_bytes` each, plus
        the sparse-attention indexer's key."""
        fp8 = self._sparse_fp8_latent_bytes(element_bytes)
        kv = self.kv_elements_per_token_per_rank(tp) * element_bytes if fp8 is None else fp8
        return kv + self.indexer_key_bytes_per_token

    def kv_bytes_per_token(self, element_bytes: float) -> float:
        """Cached bytes per token, all ranks together (one copy of MLA's latent)."""
        fp8 = self._sparse_fp8_latent_bytes(element_bytes)
        kv = self.kv_bytes_per_token_per_element * element_bytes if fp8 is None else fp8
        return kv + self.indexer_key_bytes_per_token

    def context_flops_per_token(self, context_tokens: float) -> tuple[float, float]:
        """(attention, indexer) FLOPs of one token of this softmax / MLA layer over `context_tokens`
        earlier tokens, all ranks together: the score and value products, 2·heads·(qk + v) per
        attended token (the context capped by the window on sliding / chunked layers); on a sparse
        layer the indexer scores every earlier token (one dot product per indexer head) and attention
        runs over the top-k it keeps (DeepSeek-V3.2 report, §2.1)."""
        ctx = context_tokens
        if self.kind in (AttentionKind.SLIDING, AttentionKind.CHUNKED) and self.window_tokens:
            ctx = min(ctx, self.window_tokens)
        indexer = 2.0 * self.indexer_heads * self.indexer_head_dim * ctx
        if self.sparse_topk:
            ctx = min(ctx, self.sparse_topk)
        return 2.0 * self.num_heads * (self.head_dim + self.v_head_dim) * ctx, indexer

    @property
    def linear_state_elements(self) -> int:
        """Linear attention: recurrent state elements per sequence (SSM state + conv state)."""
        return self.linear_ssm_elements + self.linear_conv_elements

    @property
    def linear_ssm_elements(self) -> int:
        """Linear attention: elements of the recurrent (SSM) state per sequence, value heads × key dim
        × value dim."""
        if self.kind is not AttentionKind.LINEAR:
            return 0
        return self.linear_num_value_heads * self.head_dim * self.v_head_dim

    @property
    def linear_conv_elements(self) -> int:
        """Linear attention: elements of the short-convolution state per sequence, (kernel − 1) ×
        (2 key dims + value dims)."""
        if self.kind is not AttentionKind.LINEAR:
            return 0
        k_dim = self.num_kv_heads * self.head_dim
        v_dim = self.linear_num_value_heads * self.v_head_dim
        return (self.linear_conv_kernel - 1) * (2 * k_dim + v_dim)


class MlpSpec(_Frozen):
    """The feed-forward block of one decoder layer."""

    kind: MlpKind
    """Dense or MoE."""
    intermediate_size: int
    """Dense: the MLP width. MoE: the width of one routed expert."""
    gated: bool = True
    """SwiGLU/GeGLU (gate, up, down: 3 matrices) rather than 2 matrices."""
    num_experts: int = 0
    """MoE: routed experts."""
    experts_per_token: int = 0
    """MoE: experts each token is routed to (top-k)."""
    num_shared_experts: int = 0
    """MoE: shared experts every token passes through."""
    shared_intermediate_size: int = 0
    """MoE: width of one shared expert."""


class LayerSpec(_Frozen):
    """One decoder layer: its attention, its MLP and its exact parameter counts."""

    attention: AttentionSpec
    """Token mixing."""
    mlp: MlpSpec
    """Feed-forward."""
    params: ParamGroups
    """Parameters of this layer by group (attention, dense_mlp, routed/shared experts, router, norms)."""

    @property
    def active_params(self) -> int:
        """Parameters one token uses in this layer (top-k of the routed experts); memoized per object
        (a frozen layer)."""
        hit = _LAYER_ACTIVE.get((id(self),))  # `memoized`'s own look-up, inlined on this hot path
        if hit is not None and hit[0][0] is self:
            return hit[1]
        return memoized(_LAYER_ACTIVE, (self,), (), self._active_params, max_entries=4096)

    def _active_params(self) -> int:
        p = self.params
        routed = 0
        if self.mlp.num_experts:
            routed = p.routed_experts * self.mlp.experts_per_token // self.mlp.num_experts
        return p.total - p.routed_experts + routed


class RopeCache(_Frozen):
    """One rotary cos/sin cache a serving engine keeps on the GPU: vLLM's `get_rope` builds one per
    distinct (head size, rotary dim, max position, base, scaling parameters) and shares it between the
    layers that ask for the same one (`rotary_embedding/__init__.py` `_ROPE_DICT`)."""

    rotary_dim: int
    """Rotated dimensions per head (head size × `partial_rotary_factor`; MLA: `qk_rope_head_dim`)."""
    rows: int
    """Positions the cache holds: `max_position` for default / Llama 3 / mRoPE scaling, × `factor` for
    linear and dynamic scaling, `original_max_position_embeddings` × `factor` for YaRN and DeepSeek
    YaRN, `original_max_position_embeddings` + `max_position` for LongRoPE (short and long caches)."""
    layers: tuple[int, ...]
    """Decoder layers that use it."""


class LimitRule(_Frozen):
    """One architecture rule on a parallel degree, with the reason it holds."""

    name: str
    """Short identifier, e.g. `tp_divides_heads`."""
    reason: str
    """Human sentence: why the rule holds (and what vLLM/Megatron does)."""


class ModelSpec(_Frozen):
    """A decoder-only (optionally multimodal) transformer, as the planner needs it."""

    name: str
    """Canonical id, e.g. `meta-llama/Llama-3.1-70B`."""
    model_type: str
    """Hugging Face `model_type` of the text model (e.g. `llama`, `deepseek_v3`)."""
    architecture: str = ""
    """The checkpoint's `architectures[0]` (e.g. `LlamaForCausalLM`): the class a serving engine
    looks its implementation up by; empty when the config names none."""
    hidden_size: int
    """Model width."""
    vocab_size: int
    """Vocabulary size (rows of the embedding and LM head)."""
    max_position_embeddings: int
    """Longest context the engines serve the config with, as vLLM derives it (`parse.context_limit`:
    the least of its length keys, times a linear or dynamic RoPE scaling factor); a longer
    max_model_len is refused."""
    default_max_model_len: int | None = None
    """The max_model_len vLLM serves the config with when none is given, where it is below
    `max_position_embeddings` (LongRoPE: `original_max_position_embeddings`, `parse.vllm_default_len`);
    None: the limit itself. Read through `vllm_default_max_model_len`."""
    layers: tuple[LayerSpec, ...]
    """Decoder layers in order (excluding MTP modules)."""
    tie_word_embeddings: bool
    """The LM head shares the embedding matrix."""
    embedding_params: int
    """Embedding parameters (vocab × hidden, plus learned positions where present)."""
    lm_head_params: int
    """LM head parameters (0 when tied)."""
    final_norm_params: int
    """Final norm before the LM head."""
    mtp_layers: int = 0
    """Multi-token-prediction modules (not counted in `layers`)."""
    mtp_params: int = 0
    """Parameters of all MTP modules together."""
    vision_params: int = 0
    """Vision tower + projector parameters (0 for text-only)."""
    vision_layers: int | None = None
    """`vision_config.num_hidden_layers` as the config writes it; None: no vision config, or none
    written (Qwen2-VL and Qwen2.5-VL write `depth`, which transformers 4.57.1, SGLang 0.5.6's pin, has
    no alias for, so SGLang's `adjust_mem_fraction_for_vlm` reads its default of 24 there)."""
    vision_hidden_size: int | None = None
    """`vision_config.hidden_size` as the config writes it (None: absent)."""
    rope_caches: tuple[RopeCache, ...] = ()
    """The rotary cos/sin caches vLLM builds for the decoder layers (`parse.rope_caches`); empty: one
    cache of `max_position_embeddings` rows per distinct head size (a spec built by hand)."""
    dtype_bytes: int = 2
    """Bytes per unquantized weight in the checkpoint (bf16/fp16: 2, fp32: 4)."""
    dropout: bool = False
    """The checkpoint's config trains with dropout > 0: attention, hidden/residual or embedding dropout;
    decides whether training keeps dropout masks (PyTorch's dropout with p = 0 returns its input and
    allocates no mask)."""
    quantization: QuantSpec | None = None
    """Weight quantization of the checkpoint, if any."""
    published_total_params: int | None = None
    """Total parameters as published by the authors (for cross-checks)."""
    published_active_params: int | None = None
    """Active parameters per token as published (MoE)."""
    notes: str = ""
    """How counts differ from the published ones, and why."""
    source: str | None = None
    """The local folder the config was read from, as the user spelled it (what `vllm serve` and the
    other engines load); `loader.NO_MODEL_ID` for an in-memory config without `_name_or_path` (a
    placeholder the launch lines carry); None for a zoo or hub config."""

    # ----- shape helpers -------------------------------------------------------------------------
    @property
    def vllm_default_max_model_len(self) -> int:
        """vLLM's max_model_len without `--max-model-len`: `default_max_model_len` where set, capped at
        the limit, else `max_position_embeddings` (vLLM 0.32 `config/model.py` `_get_and_verify_max_len`)."""
        limit = self.max_position_embeddings
        return limit if self.default_max_model_len is None else min(self.default_max_model_len, limit)

    @property
    def num_layers(self) -> int:
        """Decoder layers (excluding MTP)."""
        return len(self.layers)

    @property
    def num_heads(self) -> int:
        """Query heads of the first softmax-attention layer."""
        return self._first_softmax.attention.num_heads

    @property
    def num_kv_heads(self) -> int:
        """KV heads of the first softmax-attention layer."""
        return self._first_softmax.attention.num_kv_heads

    @property
    def head_dim(self) -> int:
        """Head dimension of the first softmax-attention layer."""
        return self._first_softmax.attention.head_dim

    @property
    def _first_softmax(self) -> LayerSpec:
        for layer in self.layers:
            if layer.attention.kind is not AttentionKind.LINEAR:
                return layer
        return self.layers[0]

    @cached_property
    def is_moe(self) -> bool:
        """Any layer has routed experts."""
        return any(layer.mlp.kind is MlpKind.MOE for layer in self.layers)

    @cached_property
    def num_experts(self) -> int:
        """Routed experts per MoE layer (0 for dense models)."""
        return max((layer.mlp.num_experts for layer in self.layers), default=0)

    @cached_property
    def experts_per_token(self) -> int:
        """Top-k of the MoE layers (0 for dense models)."""
        return max((layer.mlp.experts_per_token for layer in self.layers), default=0)

    @cached_property
    def is_mla(self) -> bool:
        """Uses multi-head latent attention (DeepSeek-V2/V3, Kimi-K2)."""
        return any(layer.attention.kind is AttentionKind.MLA for layer in self.layers)

    @cached_property
    def has_sparse_attention(self) -> bool:
        """Any layer uses DeepSeek Sparse Attention (a lightning indexer and top-k MLA: V3.2)."""
        return any(layer.attention.sparse_topk for layer in self.layers)

    # ----- parameters ----------------------------------------------------------------------------
    @cached_property
    def params(self) -> ParamGroups:
        """Parameters of the whole model by group."""
        total = ParamGroups(
            embedding=self.embedding_params,
            lm_head=self.lm_head_params,
            norms=self.final_norm_params,
            mtp=self.mtp_params,
            vision=self.vision_params,
        )
        for layer in self.layers:
            total = total + layer.params
        return total

    @property
    def total_params(self) -> int:
        """All parameters, MTP and vision included."""
        return self.params.total

    @property
    def served_params(self) -> ParamGroups:
        """The parameter groups a serving engine loads without speculative decoding: all but the MTP
        modules (vLLM 0.32 `deepseek_v2.py` `load_weights`: "skip spec decode layers for main model";
        `memory.vllm_profile.stage_params_per_rank` likewise)."""
        return self.params.model_copy(update={"mtp": 0}) if self.mtp_params else self.params

    @property
    def active_params(self) -> int:
        """Parameters used per text token: embedding, LM head, all non-expert weights, top-k experts.

        Excludes MTP modules and the vision tower (they do not run for a normal decoded token).
        """
        return (
            self.embedding_params
            + self.lm_head_params
            + self.final_norm_params
            + sum(layer.active_params for layer in self.layers)
        )

    # ----- KV cache -------------------------------------------------------------------------------
    def kv_bytes_per_token(self, kv_dtype_bytes: float | None = None) -> float:
        """KV-cache bytes one token adds across all attention layers of the model (no TP split).

        Sliding/chunked layers count fully here (per-token cost while inside the window);
        linear-attention layers add nothing per token (see `state_bytes_per_sequence`).
        """
        b = self.kv_dtype_default_bytes if kv_dtype_bytes is None else kv_dtype_bytes
        return sum(layer.attention.kv_bytes_per_token(b) for layer in self.layers)

    def kv_bytes_per_token_by_kind(self, kv_dtype_bytes: float | None = None) -> dict[str, float]:
        """KV bytes per token summed per attention kind (`full`, `sliding`, `chunked`, `mla`)."""
        b = self.kv_dtype_default_bytes if kv_dtype_bytes is None else kv_dtype_bytes
        out: dict[str, float] = {}
        for layer in self.layers:
            kind = layer.attention.kind
            if kind is AttentionKind.LINEAR:
                continue
            out[kind.value] = out.get(kind.value, 0.0) + layer.attention.kv_bytes_per_token(b)
        return out

    def kv_bytes_per_sequence(self, context_tokens: int, kv_dtype_bytes: float | None = None) -> float:
        """KV bytes one sequence of `context_tokens` needs (windows capped, linear state added)."""
        b = self.kv_dtype_default_bytes if kv_dtype_bytes is None else kv_dtype_bytes
        total = 0.0
        for layer in self.layers:
            att = layer.attention
            tokens = context_tokens
            if att.kind in (AttentionKind.SLIDING, AttentionKind.CHUNKED) and att.window_tokens:
                tokens = min(context_tokens, att.window_tokens)
            total += att.kv_bytes_per_token(b) * tokens
        return total + self.state_bytes_per_sequence()

    def state_bytes_per_sequence(self) -> float:
        """Recurrent state bytes per sequence of linear-attention layers (kept in the model dtype)."""
        return self.linear_state_bytes()

    def linear_state_bytes(
        self, tp: int = 1, *, conv_bytes: float | None = None, ssm_bytes: float | None = None
    ) -> float:
        """Recurrent state of one sequence's linear-attention layers on one of `tp` ranks (both parts
        split over the heads): the short-convolution state at `conv_bytes` and the SSM state at
        `ssm_bytes` per element (None: the model's dtype)."""
        conv_b = self.dtype_bytes if conv_bytes is None else conv_bytes
        ssm_b = self.dtype_bytes if ssm_bytes is None else ssm_bytes
        total = 0.0
        for layer in self.layers:
            att = layer.attention
            if att.kind is AttentionKind.LINEAR:
                total += math.ceil(att.linear_conv_elements / tp) * conv_b
                total += math.ceil(att.linear_ssm_elements / tp) * ssm_b
        return total

    @property
    def kv_dtype_default_bytes(self) -> float:
        """Bytes per cached element with `kv_cache_dtype=auto`: the model's activation dtype."""
        return float(self.dtype_bytes)

    # ----- compute --------------------------------------------------------------------------------
    @property
    def lm_head_flops(self) -> float:
        """Forward FLOPs of the LM head for one token that is sampled: 2 · vocabulary · hidden."""
        return 2.0 * self.vocab_size * self.hidden_size

    def forward_flops_per_token(self, context_tokens: int) -> float:
        """Forward FLOPs for one token attending to `context_tokens` earlier tokens.

        2 FLOPs per active matmul weight (embedding lookup excluded, LM head included, also when tied
        to the embedding: its GEMM runs with the embedding's matrix, `lm_head_flops`), plus the
        attention score and value products: 2·heads·(qk_dim + v_dim)·context per softmax layer
        (context capped by the window on sliding/chunked layers; sparse layers add their indexer and
        attend to the top-k, `AttentionSpec.context_flops_per_token`). Linear-attention layers add
        2·heads·k_dim·v_dim·2 for the state update and read. (Kaplan et al. 2020, §2.1; PaLM App. B.)
        """
        flops = memoized(_WEIGHT_FLOPS, (self,), (), self._weight_flops_per_token)
        for layer in self.layers:
            att = layer.attention
            if att.kind is AttentionKind.LINEAR:
                flops += 4.0 * att.linear_num_value_heads * att.head_dim * att.v_head_dim
                continue
            flops += sum(att.context_flops_per_token(context_tokens))
        return flops

    def _weight_flops_per_token(self) -> float:
        """The weights' part of `forward_flops_per_token`, which no context changes (memoized per
        model object: the float model asks for thousands of contexts)."""
        matmul = self.active_params - self.embedding_params
        return 2.0 * matmul + (0.0 if self.lm_head_params else self.lm_head_flops)

    # ----- weights --------------------------------------------------------------------------------
    def weight_bytes(self, groups: ParamGroups | None = None, layers: Collection[int] | None = None) -> float:
        """Bytes to hold `groups` (default: the whole model) under the checkpoint's quantization;
        `layers`: the decoder layers `groups` were summed from (a pipeline stage's, one layer's), which
        price a group whose layers are stored differently (`QuantSpec.group_layer_mix`); None: all."""
        g = self.params if groups is None else groups
        if self.quantization is None:
            return float(g.total * self.dtype_bytes)
        return self.quantization.group_bytes(g, self.dtype_bytes, layers)

    # ----- limits ---------------------------------------------------------------------------------
    def tp_violations(self, tp: int, *, expert_parallel: bool = False) -> list[str]:
        """Reasons tensor-parallel degree `tp` is invalid for this model (empty = valid).

        Rules follow vLLM: query heads divide evenly; KV heads either divide evenly or are
        replicated (tp a multiple of KV heads); MLP and expert widths split evenly (routed experts
        only without `expert_parallel`, which keeps them whole); quantized row-parallel shards keep
        whole quantization groups / blocks.
        """
        from autoparallel.models.limits import tp_violations

        # Memoized per model object (a frozen spec): the memory check asks it at every point of a table.
        found = memoized(
            _TP_VIOLATIONS,
            (self,),
            (tp, expert_parallel),
            lambda: tuple(tp_violations(self, tp, expert_parallel=expert_parallel)),
        )
        return list(found)

    def pp_violations(self, pp: int) -> list[str]:
        """Reasons pipeline degree `pp` is invalid (more stages than layers)."""
        from autoparallel.models.limits import pp_violations

        return pp_violations(self, pp)

    def ep_violations(self, ep: int) -> list[str]:
        """Reasons expert-parallel degree `ep` is invalid (dense model, experts not divisible)."""
        from autoparallel.models.limits import ep_violations

        return ep_violations(self, ep)

    def limit_rules(self) -> tuple[LimitRule, ...]:
        """Every architecture rule that constrains a parallel degree, with its reason."""
        from autoparallel.models.limits import limit_rules

        return tuple(LimitRule(name=name, reason=reason) for name, reason in limit_rules(self))


_WEIGHT_FLOPS: Memo[float] = {}
"""`ModelSpec._weight_flops_per_token` per model object."""

_TOTALS: Memo[int] = {}
"""`ParamGroups.total` per object (4,096 at most: sums of layers' counts are short-lived objects)."""

_LAYER_ACTIVE: Memo[int] = {}
"""`LayerSpec.active_params` per object."""

_TP_VIOLATIONS: Memo[tuple[str, ...]] = {}
"""`ModelSpec.tp_violations` per model object, tp and expert_parallel."""
