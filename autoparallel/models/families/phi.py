"""Phi-1 / Phi-1.5 / Phi-2 (`model_type: phi`): parallel attention + MLP behind one LayerNorm per block.

Mirrors transformers' `modeling_phi`: q/k/v/dense projections with biases (GQA when
`num_key_value_heads` < heads), optional per-head q/k LayerNorms (`qk_layernorm`), a 2-matrix MLP
(fc1/fc2, biases), one `input_layernorm` (weight + bias) feeding both branches, a final LayerNorm and an
LM head with a bias. Rotary embeddings cover `partial_rotary_factor` of each head and add no weights.
"""

from __future__ import annotations

from autoparallel.models.parse_common import (
    LAYER_KEYS,
    Family,
    Parts,
    RawConfig,
    dense_layer,
    gqa_attention,
    read_heads,
    softmax_spec,
)
from autoparallel.models.spec import AttentionKind


def build_phi(r: RawConfig) -> Parts:
    """Phi-1/1.5/2: biased MHA (or GQA), fc1/fc2 MLP with biases, one LayerNorm per block, biased head."""
    h, nh, nkv, hd = read_heads(r)
    n = r.num(*LAYER_KEYS)
    i = r.num("intermediate_size")
    vocab = r.num("vocab_size")
    attention = gqa_attention(h, nh, nkv, hd, qkv_bias=True, o_bias=True)
    if r.flag("qk_layernorm"):
        attention += 2 * 2 * hd  # q_layernorm and k_layernorm over head_dim, weight + bias each
    att = softmax_spec(AttentionKind.FULL, nh, nkv, hd)
    layers = [dense_layer(att, attention, h, i, 2 * h, gated=False, mlp_bias=True) for _ in range(n)]
    head = (0 if r.flag("tie_word_embeddings") else vocab * h) + vocab  # the LM head's bias is never tied
    parts = Parts(layers=layers, embedding=vocab * h, lm_head=head, final_norm=2 * h)
    parts.notes.append(
        "Phi: one LayerNorm (weight + bias) per block feeds attention and MLP in parallel; "
        "lm_head includes its bias; partial rotary embeddings add no parameters."
    )
    return parts


FAMILIES: dict[str, Family] = {
    "phi": Family(
        build_phi,
        {
            "vocab_size": 51200,
            "hidden_size": 2048,
            "intermediate_size": 8192,
            "num_hidden_layers": 24,
            "num_attention_heads": 32,
            "max_position_embeddings": 2048,
            "tie_word_embeddings": False,
            "qk_layernorm": False,
        },
    ),
}
"""model_type -> builder and transformers config-class defaults (`configuration_phi.PhiConfig`)."""
