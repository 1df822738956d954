"""A `ModelSpec` from the shape a paper's table gives, for published GPT-like training runs.

Lives here until autoparallel/models/ takes it; `autoparallel.memory.training` re-exports it.
"""

from __future__ import annotations

from autoparallel.models.spec import (
    AttentionKind,
    AttentionSpec,
    LayerSpec,
    MlpKind,
    MlpSpec,
    ModelSpec,
    ParamGroups,
)


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
    dropout: bool = True,
    name: str | None = None,
) -> ModelSpec:
    """A decoder-only transformer from the shape a paper's table gives (layers, hidden, heads).

    Defaults are GPT-3 / Megatron-LM's GPT (Brown et al. 2020 Table 2.1; Narayanan et al. 2021 §5.1):
    MHA with biases, a 4h GeLU MLP with biases, two LayerNorms (weight + bias) per layer, learned
    positions (seq × h), tied embeddings, dropout 0.1 (Megatron-LM's `--hidden-dropout` /
    `--attention-dropout` defaults, kept by the papers' GPT runs: dropout masks are stored);
    12·L·h² + 13·L·h + (V + s)·h parameters. Llama-like shapes pass `gated=True, bias=False,
    learned_positions=False, tie_embeddings=False, kv_heads=...`; runs trained without dropout pass
    `dropout=False`.
    """
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
        dropout=dropout,
    )
