"""Multi-head latent attention MoE decoders: DeepSeek-V2/V3/R1, DeepSeek-V3.2 (V3 plus DeepSeek Sparse
Attention's indexer) and Kimi-K2 (a DeepSeek-V3 config)."""

from __future__ import annotations

from autoparallel.models.parse_common import (
    Family,
    Parts,
    RawConfig,
    add_mtp,
    decoder_parts,
    dense_layer,
    linear_params,
    moe_layer,
)
from autoparallel.models.spec import AttentionKind, AttentionSpec


def _mla_attention(r: RawConfig, h: int, nh: int) -> tuple[AttentionSpec, int]:
    """DeepSeek multi-head latent attention (modeling_deepseek_v3.DeepseekV3Attention)."""
    q_lora = r.get("q_lora_rank")
    q_lora = 0 if q_lora is None else r.num("q_lora_rank", allow_zero=True)
    kv_lora = r.num("kv_lora_rank")
    nope, rope, v = r.num("qk_nope_head_dim"), r.num("qk_rope_head_dim"), r.num("v_head_dim")
    qk = nope + rope
    bias = r.flag("attention_bias")
    # with query compression: q_a_proj, q_a_layernorm, q_b_proj; without: q_proj
    q = linear_params(h, q_lora, bias) + q_lora + q_lora * nh * qk if q_lora else h * nh * qk
    kv = linear_params(h, kv_lora + rope, bias) + kv_lora + kv_lora * nh * (nope + v)
    o = linear_params(nh * v, h, bias)
    topk = r.num("index_topk", default=0, allow_zero=True)
    ih = ihd = indexer = 0
    if topk:
        # DeepSeek Sparse Attention's lightning indexer (DeepSeek-V3.2 inference/model.py `Indexer`):
        # wq_b (query latent -> heads x dim), wk (hidden -> one key head), k_norm (LayerNorm, weight
        # and bias), weights_proj (hidden -> one weight per head); no biases.
        ih, ihd = r.num("index_n_heads"), r.num("index_head_dim")
        indexer = (q_lora or h) * ih * ihd + h * ihd + 2 * ihd + h * ih
    spec = AttentionSpec(
        kind=AttentionKind.MLA,
        num_heads=nh,
        num_kv_heads=nh,
        head_dim=qk,
        v_head_dim=v,
        kv_lora_rank=kv_lora,
        qk_rope_head_dim=rope,
        q_lora_rank=q_lora,
        sparse_topk=topk,
        indexer_heads=ih,
        indexer_head_dim=ihd,
    )
    return spec, q + kv + o + indexer


def build_deepseek(r: RawConfig) -> Parts:
    """DeepSeek-V2/V3/R1, Kimi-K2: MLA, first_k_dense_replace dense layers, shared + routed experts, MTP."""
    h = r.num("hidden_size")
    nh = r.num("num_attention_heads")
    n = r.num("num_hidden_layers")
    vocab = r.num("vocab_size")
    att, attention = _mla_attention(r, h, nh)
    experts = r.num("n_routed_experts", default=0, allow_zero=True)
    first_dense = r.num("first_k_dense_replace", allow_zero=True)
    freq = r.num("moe_layer_freq")
    shared = r.num("n_shared_experts", default=0, allow_zero=True)
    has_bias = r.get("topk_method") == "noaux_tc"  # e_score_correction_bias (V3 routing)
    layers = []
    for j in range(n):
        if experts and j >= first_dense and j % freq == 0:
            layers.append(
                moe_layer(
                    att,
                    attention,
                    h,
                    experts=experts,
                    top_k=r.num("num_experts_per_tok"),
                    expert_i=r.num("moe_intermediate_size"),
                    router=h * experts + (experts if has_bias else 0),
                    norms=2 * h,
                    shared=shared,
                    shared_i=r.num("moe_intermediate_size"),
                )
            )
        else:
            layers.append(dense_layer(att, attention, h, r.num("intermediate_size"), 2 * h))
    parts = decoder_parts(r, layers, vocab, h)
    if has_bias:
        parts.notes.append("router includes the e_score_correction_bias of each MoE gate.")
    add_mtp(r, parts, h)
    return parts


_MLA_COMMON = {
    "tie_word_embeddings": False,
    "attention_bias": False,
    "moe_layer_freq": 1,
    "kv_lora_rank": 512,
    "q_lora_rank": 1536,
    "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64,
    "v_head_dim": 128,
    "num_nextn_predict_layers": 0,
}
_DEEPSEEK_V3 = Family(
    build_deepseek,
    {
        **_MLA_COMMON,
        "first_k_dense_replace": 3,
        "n_shared_experts": 1,
        "topk_method": "noaux_tc",
        "max_position_embeddings": 4096,
    },
)

FAMILIES: dict[str, Family] = {
    "deepseek_v2": Family(
        build_deepseek,
        {
            **_MLA_COMMON,
            "first_k_dense_replace": 0,
            "n_shared_experts": 2,
            "topk_method": "greedy",
            "max_position_embeddings": 2048,
        },
    ),
    "deepseek_v3": _DEEPSEEK_V3,
    "deepseek_v32": Family(
        build_deepseek,
        {**_DEEPSEEK_V3.defaults, "index_topk": 2048, "index_n_heads": 64, "index_head_dim": 128},
    ),
    "kimi_k2": _DEEPSEEK_V3,
}
"""model_type -> builder and transformers config-class defaults."""
