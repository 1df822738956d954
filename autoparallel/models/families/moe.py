"""Mixture-of-experts decoders with softmax or linear attention: Mixtral, Qwen2-MoE, Qwen3-MoE, Qwen3-Next,
GLM-4.5/4.6, Llama 4 (text) and gpt-oss. (DeepSeek-style MLA MoE models are in `mla.py`.)"""

from __future__ import annotations

from autoparallel.models.parse_common import (
    Family,
    Parts,
    RawConfig,
    add_mtp,
    attention_kind,
    decoder_parts,
    dense_layer,
    gqa_attention,
    layer_kinds,
    moe_layer,
    mtp_module_params,
    read_heads,
    softmax_spec,
)
from autoparallel.models.spec import AttentionKind, AttentionSpec


def build_moe_llama_like(r: RawConfig) -> Parts:
    """Mixtral, Qwen2-MoE, Qwen3-MoE: GQA attention + routed experts (+ Qwen2-MoE shared expert)."""
    mt = r.model_type
    h, nh, nkv, hd = read_heads(r)
    n = r.num("num_hidden_layers")
    vocab = r.num("vocab_size")
    experts = r.num("num_local_experts", "num_experts")
    top_k = r.num("num_experts_per_tok")
    moe_width = mt != "mixtral" and (mt in ("qwen2_moe", "qwen3_moe") or r.has("moe_intermediate_size"))
    expert_i = r.num("moe_intermediate_size") if moe_width else r.num("intermediate_size")
    qkv_bias = (mt == "qwen2_moe" and r.flag("qkv_bias", True)) or r.flag("attention_bias")
    attention = gqa_attention(
        h,
        nh,
        nkv,
        hd,
        qkv_bias=qkv_bias,
        o_bias=r.flag("attention_bias"),
        qk_norm=mt == "qwen3_moe" or r.flag("use_qk_norm"),
    )
    window = r.num("sliding_window") if r.has("sliding_window") else None  # a count of tokens, or null
    use_window = bool(window) and (mt == "mixtral" or r.flag("use_sliding_window"))
    step = r.num("decoder_sparse_step", default=1)
    mlp_only = set(r.get("mlp_only_layers") or [])
    layers = []
    for j in range(n):
        att = softmax_spec(AttentionKind.SLIDING if use_window else AttentionKind.FULL, nh, nkv, hd, window)
        if j in mlp_only or (j + 1) % step:
            layers.append(dense_layer(att, attention, h, r.num("intermediate_size"), 2 * h))
        elif mt == "qwen2_moe":
            shared_i = r.num("shared_expert_intermediate_size")
            layers.append(
                moe_layer(
                    att,
                    attention,
                    h,
                    experts=experts,
                    top_k=top_k,
                    expert_i=expert_i,
                    router=h * experts,
                    norms=2 * h,
                    shared=1,
                    shared_i=shared_i,
                    shared_extra=h,
                )
            )
        else:
            layers.append(
                moe_layer(
                    att,
                    attention,
                    h,
                    experts=experts,
                    top_k=top_k,
                    expert_i=expert_i,
                    router=h * experts,
                    norms=2 * h,
                )
            )
    return decoder_parts(r, layers, vocab, h)


def _gated_deltanet(r: RawConfig, h: int) -> tuple[AttentionSpec, int]:
    """Qwen3-Next linear attention (modeling_qwen3_next.Qwen3NextGatedDeltaNet)."""
    nk, nv = r.num("linear_num_key_heads"), r.num("linear_num_value_heads")
    dk, dv = r.num("linear_key_head_dim"), r.num("linear_value_head_dim")
    kernel = r.num("linear_conv_kernel_dim")
    key_dim, value_dim = nk * dk, nv * dv
    params = (
        h * (2 * key_dim + 2 * value_dim)  # in_proj_qkvz
        + h * 2 * nv  # in_proj_ba
        + (2 * key_dim + value_dim) * kernel  # depthwise conv1d, no bias
        + 2 * nv  # dt_bias, A_log
        + dv  # gated RMSNorm over the value head
        + value_dim * h
    )  # out_proj
    spec = AttentionSpec(
        kind=AttentionKind.LINEAR,
        num_heads=nk,
        num_kv_heads=nk,
        head_dim=dk,
        v_head_dim=dv,
        linear_num_value_heads=nv,
        linear_conv_kernel=kernel,
    )
    return spec, params


def build_qwen3_next(r: RawConfig) -> Parts:
    """Qwen3-Next: Gated DeltaNet linear attention, gated full attention every `full_attention_interval`."""
    h, nh, nkv, hd = read_heads(r)
    n = r.num("num_hidden_layers")
    vocab = r.num("vocab_size")
    interval = r.num("full_attention_interval")
    kinds = layer_kinds(r, n, lambda j: "full_attention" if (j + 1) % interval == 0 else "linear_attention")
    linear_spec, linear = _gated_deltanet(r, h)
    full = gqa_attention(
        h,
        nh,
        nkv,
        hd,
        qkv_bias=r.flag("attention_bias"),
        o_bias=r.flag("attention_bias"),
        qk_norm=True,
        q_gate=True,
    )
    experts = r.num("num_experts")
    top_k = r.num("num_experts_per_tok")
    expert_i = r.num("moe_intermediate_size")
    shared_i = r.num("shared_expert_intermediate_size", default=0, allow_zero=True)
    step = r.num("decoder_sparse_step")
    mlp_only = set(r.get("mlp_only_layers") or [])
    layers = []
    for j in range(n):
        kind = attention_kind(r, kinds[j])
        if kind is AttentionKind.LINEAR:
            att, attention = linear_spec, linear
        else:
            att, attention = softmax_spec(kind, nh, nkv, hd), full
        if j in mlp_only or (j + 1) % step:
            layers.append(dense_layer(att, attention, h, r.num("intermediate_size"), 2 * h))
        else:
            layers.append(
                moe_layer(
                    att,
                    attention,
                    h,
                    experts=experts,
                    top_k=top_k,
                    expert_i=expert_i,
                    router=h * experts,
                    norms=2 * h,
                    shared=1 if shared_i else 0,
                    shared_i=shared_i,
                    shared_extra=h if shared_i else 0,
                )
            )
    parts = decoder_parts(r, layers, vocab, h)
    parts.notes.append("shared_experts includes the 1-output shared_expert_gate.")
    mtp = r.num("num_nextn_predict_layers", "mtp_num_hidden_layers", default=0, allow_zero=True)
    if mtp:
        # Qwen3-Next MTP (vLLM qwen3_next_mtp.py): fc (2h -> h), pre_fc_norm_embedding, pre_fc_norm_hidden,
        # one full-attention MoE layer, final norm; embedding and head shared with the main model.
        block = layers[interval - 1] if n >= interval else layers[-1]
        parts.mtp_layers = mtp
        parts.mtp_params = mtp * mtp_module_params(h, block.params.total)
    return parts


def build_glm4_moe(r: RawConfig) -> Parts:
    """GLM-4.5 / 4.6: GQA (+ qkv bias, optional qk norm), first_k_dense_replace dense layers, MoE, MTP."""
    h, nh, nkv, hd = read_heads(r)
    n = r.num("num_hidden_layers")
    vocab = r.num("vocab_size")
    attention = gqa_attention(
        h, nh, nkv, hd, qkv_bias=r.flag("attention_bias"), qk_norm=r.flag("use_qk_norm")
    )
    att = softmax_spec(AttentionKind.FULL, nh, nkv, hd)
    experts = r.num("n_routed_experts")
    first_dense = r.num("first_k_dense_replace", allow_zero=True)
    shared = r.num("n_shared_experts", default=0, allow_zero=True)
    layers = []
    for j in range(n):
        if j >= first_dense:
            layers.append(
                moe_layer(
                    att,
                    attention,
                    h,
                    experts=experts,
                    top_k=r.num("num_experts_per_tok"),
                    expert_i=r.num("moe_intermediate_size"),
                    router=h * experts + experts,
                    norms=2 * h,
                    shared=shared,
                    shared_i=r.num("moe_intermediate_size"),
                )
            )
        else:
            layers.append(dense_layer(att, attention, h, r.num("intermediate_size"), 2 * h))
    parts = decoder_parts(r, layers, vocab, h)
    parts.notes.append("router includes the e_score_correction_bias of each MoE gate.")
    add_mtp(r, parts, h)
    return parts


def build_llama4(r: RawConfig) -> Parts:
    """Llama 4: chunked attention on RoPE layers (3 of 4), NoPE full layers, MoE every `interleave` step."""
    h, nh, nkv, hd = read_heads(r)
    n = r.num("num_hidden_layers")
    vocab = r.num("vocab_size")
    bias = r.flag("attention_bias")
    attention = gqa_attention(h, nh, nkv, hd, qkv_bias=bias, o_bias=bias)
    step = r.num("interleave_moe_layer_step")
    moe_layers = r.get("moe_layers")
    moe_set = set(moe_layers) if isinstance(moe_layers, list) else set(range(step - 1, n, step))
    no_rope = r.get("no_rope_layers")
    interval = r.num("no_rope_layer_interval")
    if not isinstance(no_rope, list) or len(no_rope) != n:
        no_rope = [int((j + 1) % interval != 0) for j in range(n)]  # 1: RoPE (chunked), 0: NoPE (full)
    chunk = r.num("attention_chunk_size")
    kinds = layer_kinds(r, n, lambda j: "chunked_attention" if no_rope[j] else "full_attention")
    experts = r.num("num_local_experts")
    top_k = r.num("num_experts_per_tok")
    expert_i = r.num("intermediate_size")
    layers = []
    for j in range(n):
        att = softmax_spec(attention_kind(r, kinds[j]), nh, nkv, hd, chunk)
        if j in moe_set:
            layers.append(
                moe_layer(
                    att,
                    attention,
                    h,
                    experts=experts,
                    top_k=top_k,
                    expert_i=expert_i,
                    router=h * experts,
                    norms=2 * h,
                    shared=1,
                    shared_i=expert_i,
                )
            )
        else:
            layers.append(dense_layer(att, attention, h, r.num("intermediate_size_mlp"), 2 * h))
    parts = decoder_parts(r, layers, vocab, h)
    parts.notes.append("Llama 4 qk norm is a weightless L2 norm (no parameters).")
    return parts


def build_gpt_oss(r: RawConfig) -> Parts:
    """gpt-oss: alternating sliding/full attention with sinks and biases, biased experts and router."""
    h, nh, nkv, hd = read_heads(r)
    n = r.num("num_hidden_layers")
    vocab = r.num("vocab_size")
    window = r.num("sliding_window")
    kinds = layer_kinds(r, n, lambda j: "sliding_attention" if j % 2 == 0 else "full_attention")
    bias = r.flag("attention_bias")
    attention = gqa_attention(h, nh, nkv, hd, qkv_bias=bias, o_bias=bias, sinks=True)
    experts = r.num("num_local_experts")
    top_k = r.num("num_experts_per_tok", "experts_per_token")
    expert_i = r.num("intermediate_size")
    layers = [
        moe_layer(
            softmax_spec(attention_kind(r, kinds[j]), nh, nkv, hd, window),
            attention,
            h,
            experts=experts,
            top_k=top_k,
            expert_i=expert_i,
            router=h * experts + experts,
            norms=2 * h,
            expert_bias=True,
        )
        for j in range(n)
    ]
    parts = decoder_parts(r, layers, vocab, h)
    parts.notes.append("attention includes one sink logit per head; router includes its bias.")
    return parts


_QWEN_MOE_COMMON = {
    "tie_word_embeddings": False,
    "decoder_sparse_step": 1,
    "mlp_only_layers": [],
    "max_position_embeddings": 32768,
}

FAMILIES: dict[str, Family] = {
    "mixtral": Family(
        build_moe_llama_like,
        {
            "tie_word_embeddings": False,
            "sliding_window": None,
            "num_local_experts": 8,
            "num_experts_per_tok": 2,
            "max_position_embeddings": 131072,
        },
    ),
    "qwen2_moe": Family(build_moe_llama_like, {**_QWEN_MOE_COMMON, "qkv_bias": True}),
    "qwen3_moe": Family(build_moe_llama_like, {**_QWEN_MOE_COMMON, "attention_bias": False}),
    "qwen3_next": Family(
        build_qwen3_next,
        {
            **_QWEN_MOE_COMMON,
            "attention_bias": False,
            "full_attention_interval": 4,
            "head_dim": 256,
            "linear_conv_kernel_dim": 4,
            "linear_key_head_dim": 128,
            "linear_value_head_dim": 128,
            "linear_num_key_heads": 16,
            "linear_num_value_heads": 32,
        },
    ),
    "glm4_moe": Family(
        build_glm4_moe,
        {
            "tie_word_embeddings": False,
            "attention_bias": False,
            "first_k_dense_replace": 1,
            "n_shared_experts": 1,
            "use_qk_norm": False,
            "num_nextn_predict_layers": 1,
            "max_position_embeddings": 131072,
        },
    ),
    "llama4_text": Family(
        build_llama4,
        {
            "tie_word_embeddings": False,
            "attention_bias": False,
            "interleave_moe_layer_step": 1,
            "no_rope_layer_interval": 4,
            "attention_chunk_size": 8192,
            "num_local_experts": 16,
            "num_experts_per_tok": 1,
            "intermediate_size_mlp": 16384,
            "head_dim": 128,
            "max_position_embeddings": 131072,
        },
    ),
    "gpt_oss": Family(
        build_gpt_oss,
        {
            "tie_word_embeddings": False,
            "attention_bias": True,
            "sliding_window": 128,
            "head_dim": 64,
            "num_local_experts": 128,
            "num_experts_per_tok": 4,
            "max_position_embeddings": 131072,
        },
    ),
}
"""model_type -> builder and transformers config-class defaults."""
