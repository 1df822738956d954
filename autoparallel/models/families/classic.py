"""Classic MHA decoders: GPT-2, GPT-NeoX, OPT, BLOOM (biases everywhere, 2-matrix MLP, LayerNorm)."""

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


def _mlp_width_and_positions(r: RawConfig, h: int) -> tuple[int, int]:
    """(MLP width, learned position-table parameters) of one classic family."""
    mt = r.model_type
    if mt == "gpt2":
        return r.num("n_inner", default=4 * h), r.num("n_positions") * h
    if mt == "opt":
        i = r.num("ffn_dim")
        return i, (r.num("max_position_embeddings") + 2) * h  # OPTLearnedPositionalEmbedding offset 2
    if mt == "gpt_neox":
        return r.num("intermediate_size"), 0
    return 4 * h, 0  # bloom: ALiBi, no positions


def build_classic(r: RawConfig) -> Parts:
    """GPT-2, GPT-NeoX, OPT, BLOOM: MHA with biases, 2-matrix MLP with biases, LayerNorm with bias."""
    mt = r.model_type
    h, nh, _, hd = read_heads(r)
    n = r.num(*LAYER_KEYS)
    vocab = r.num("vocab_size")
    i, positions = _mlp_width_and_positions(r, h)
    bias = mt != "gpt_neox" or r.flag("attention_bias")
    ln = 2 * h
    attention = gqa_attention(h, nh, nh, hd, qkv_bias=bias, o_bias=bias)
    att = softmax_spec(AttentionKind.FULL, nh, nh, hd)
    layers = [dense_layer(att, attention, h, i, 2 * ln, gated=False, mlp_bias=True) for _ in range(n)]
    embed_dim = h
    extra = 0
    if mt == "opt":
        embed_dim = r.num("word_embed_proj_dim", default=h)
        if embed_dim != h:
            extra = 2 * embed_dim * h  # project_in / project_out, no bias
    emb = vocab * embed_dim + positions + extra + (ln if mt == "bloom" else 0)
    head = 0 if r.flag("tie_word_embeddings") else vocab * h
    final = ln
    if mt == "opt" and (not r.flag("do_layer_norm_before") or r.flag("_remove_final_layer_norm")):
        final = 0
    parts = Parts(layers=layers, embedding=emb, lm_head=head, final_norm=final)
    if positions:
        parts.notes.append("embedding includes the learned position table.")
    if mt == "bloom":
        parts.notes.append("embedding includes word_embeddings_layernorm (weight + bias).")
    return parts


FAMILIES: dict[str, Family] = {
    "gpt2": Family(
        build_classic,
        {
            "tie_word_embeddings": True,
            "n_inner": None,
            "n_positions": 1024,
            "resid_pdrop": 0.1,
            "embd_pdrop": 0.1,
            "attn_pdrop": 0.1,
        },
    ),
    "gpt_neox": Family(
        build_classic, {"tie_word_embeddings": False, "attention_bias": True, "max_position_embeddings": 2048}
    ),
    "opt": Family(
        build_classic,
        {
            "tie_word_embeddings": True,
            "enable_bias": True,
            "do_layer_norm_before": True,
            "_remove_final_layer_norm": False,
            "layer_norm_elementwise_affine": True,
            "max_position_embeddings": 2048,
            "dropout": 0.1,
        },
    ),
    "bloom": Family(build_classic, {"tie_word_embeddings": True}),
}
"""model_type -> builder and transformers config-class defaults (dropout: GPT2Config resid / embd / attn_pdrop
0.1, OPTConfig dropout 0.1; GPTNeoXConfig and BloomConfig default every dropout to 0.0)."""
