"""StarCoder2 (`model_type: starcoder2`): GQA attention and a 2-matrix MLP, biases, LayerNorm, tied head.

Mirrors transformers' `modeling_starcoder2`: q/k/v/o projections with biases (`use_bias`), a non-gated
MLP (`c_fc` h -> i, `c_proj` i -> h, biases with `use_bias`), `input_layernorm` and
`post_attention_layernorm` LayerNorms (weight + bias) per block, a final LayerNorm and an LM head without a
bias, tied to the embedding by default (`Starcoder2Config.tie_word_embeddings` True). Every layer slides
over `sliding_window` tokens where the config sets one (vLLM `ModelConfig.get_hf_config_sliding_window`).
"""

from __future__ import annotations

from autoparallel.models.parse_common import (
    LAYER_KEYS,
    Family,
    Parts,
    RawConfig,
    attention_kind,
    decoder_parts,
    dense_layer,
    gqa_attention,
    layer_kinds,
    read_heads,
    softmax_spec,
)


def build_starcoder2(r: RawConfig) -> Parts:
    """StarCoder2 3B / 7B / 15B: biased GQA attention, biased c_fc / c_proj MLP, LayerNorms with bias."""
    h, nh, nkv, hd = read_heads(r)
    n = r.num(*LAYER_KEYS)
    i = r.num("intermediate_size")
    vocab = r.num("vocab_size")
    bias = r.flag("use_bias")
    window = r.num("sliding_window") if r.has("sliding_window") else None
    kinds = layer_kinds(r, n, lambda j: "sliding_attention" if window else "full_attention")
    attention = gqa_attention(h, nh, nkv, hd, qkv_bias=bias, o_bias=bias)
    layers = [
        dense_layer(
            softmax_spec(attention_kind(r, kinds[j]), nh, nkv, hd, window),
            attention,
            h,
            i,
            2 * 2 * h,  # two LayerNorms, weight + bias each
            gated=False,
            mlp_bias=bias,
        )
        for j in range(n)
    ]
    parts = decoder_parts(r, layers, vocab, h)
    parts.final_norm = 2 * h  # LayerNorm: weight + bias
    parts.notes.append("StarCoder2: non-gated c_fc/c_proj MLP; LayerNorms carry a bias.")
    return parts


FAMILIES: dict[str, Family] = {
    "starcoder2": Family(
        build_starcoder2,
        {
            "vocab_size": 49152,
            "hidden_size": 3072,
            "intermediate_size": 12288,
            "num_hidden_layers": 30,
            "num_attention_heads": 24,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "sliding_window": None,
            "use_bias": True,
            "tie_word_embeddings": True,
            "attention_dropout": 0.0,
            "residual_dropout": 0.0,
            "embedding_dropout": 0.0,
        },
    ),
}
"""model_type -> builder and transformers config-class defaults
(`configuration_starcoder2.Starcoder2Config`)."""
