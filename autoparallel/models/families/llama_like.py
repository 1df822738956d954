"""Dense llama-like decoders: Llama 1-3.3, Mistral, Qwen2/2.5 (and the Qwen2.5-VL text model), Qwen3,
Phi-3/4, Gemma 1/2/3.

GQA attention (optional qkv bias, per-head q/k norms, sliding-window layers), gated MLP, RMSNorm.
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

_QWEN2_TYPES = ("qwen2", "qwen2_5_vl_text")
"""Qwen2 attention (q/k/v biases, no o bias) and its `use_sliding_window` / `max_window_layers` rule."""


def build_llama_like(r: RawConfig) -> Parts:
    """Llama 1-3.3, Mistral, Qwen2/2.5, Qwen3, Phi-3/4, Gemma 1/2/3 and unknown llama-like types."""
    mt = r.model_type
    h, nh, nkv, hd = read_heads(r)
    n = r.num(*LAYER_KEYS)
    i = r.num("intermediate_size")
    vocab = r.num("vocab_size")
    qkv_bias = r.flag("attention_bias") or mt in _QWEN2_TYPES or r.flag("qkv_bias")
    o_bias = r.flag("attention_bias") and mt not in _QWEN2_TYPES
    qk_norm = mt in ("qwen3", "gemma3_text")
    norms = (4 if mt in ("gemma2", "gemma3_text") else 2) * h
    window = r.num("sliding_window") if r.has("sliding_window") else None  # a count of tokens, or null
    if mt == "gemma3_text":
        pattern = r.num("sliding_window_pattern", "_sliding_window_pattern")
        kinds = layer_kinds(r, n, lambda j: "sliding_attention" if (j + 1) % pattern else "full_attention")
    elif mt == "gemma2":
        kinds = layer_kinds(r, n, lambda j: "sliding_attention" if j % 2 == 0 else "full_attention")
    elif mt in (*_QWEN2_TYPES, "qwen3"):
        use = r.flag("use_sliding_window") and window
        mwl = r.num("max_window_layers", default=n, allow_zero=True)
        kinds = layer_kinds(r, n, lambda j: "sliding_attention" if use and j >= mwl else "full_attention")
    else:
        # vLLM `ModelConfig.get_hf_config_sliding_window`: a config that sets `use_sliding_window` false
        # (Qwen2-VL's and other Qwen-derived configs carry it next to a `sliding_window` size) has none.
        use = window and r.flag("use_sliding_window", True)
        kinds = layer_kinds(r, n, lambda j: "sliding_attention" if use else "full_attention")
    attention = gqa_attention(h, nh, nkv, hd, qkv_bias=qkv_bias, o_bias=o_bias, qk_norm=qk_norm)
    layers = [
        dense_layer(
            softmax_spec(attention_kind(r, kinds[j]), nh, nkv, hd, window),
            attention,
            h,
            i,
            norms,
            mlp_bias=r.flag("mlp_bias"),
        )
        for j in range(n)
    ]
    parts = decoder_parts(r, layers, vocab, h)
    if mt.startswith("gemma"):
        parts.notes.append("Gemma norms are RMSNorm(1 + w): one weight vector each.")
    return parts


FAMILIES: dict[str, Family] = {
    "llama": Family(
        build_llama_like,
        {
            "tie_word_embeddings": False,
            "attention_bias": False,
            "mlp_bias": False,
            "max_position_embeddings": 2048,
        },
    ),
    "mistral": Family(
        build_llama_like,
        {"tie_word_embeddings": False, "sliding_window": 4096, "max_position_embeddings": 131072},
    ),
    "qwen2": Family(
        build_llama_like,
        {"tie_word_embeddings": False, "use_sliding_window": False, "max_position_embeddings": 32768},
    ),
    # Qwen2.5-VL's text model (`Qwen2_5_VLTextConfig`): Qwen2 layers; the vision tower is in `vision.py`.
    "qwen2_5_vl_text": Family(
        build_llama_like,
        {
            "vocab_size": 152064,
            "hidden_size": 8192,
            "intermediate_size": 29568,
            "num_hidden_layers": 80,
            "num_attention_heads": 64,
            "num_key_value_heads": 8,
            "max_position_embeddings": 32768,
            "tie_word_embeddings": False,
            "use_sliding_window": False,
            "sliding_window": 4096,
            "max_window_layers": 80,
        },
    ),
    "qwen3": Family(
        build_llama_like,
        {
            "tie_word_embeddings": False,
            "use_sliding_window": False,
            "attention_bias": False,
            "max_position_embeddings": 32768,
        },
    ),
    "phi3": Family(
        build_llama_like,
        {
            "tie_word_embeddings": False,
            "sliding_window": None,
            "max_position_embeddings": 4096,
            "original_max_position_embeddings": 4096,
        },
    ),
    "gemma": Family(
        build_llama_like,
        {"tie_word_embeddings": True, "attention_bias": False, "max_position_embeddings": 8192},
    ),
    "gemma2": Family(
        build_llama_like,
        {
            "tie_word_embeddings": True,
            "attention_bias": False,
            "sliding_window": 4096,
            "head_dim": 256,
            "max_position_embeddings": 8192,
        },
    ),
    "gemma3_text": Family(
        build_llama_like,
        {
            "vocab_size": 262_208,
            "hidden_size": 2304,
            "intermediate_size": 9216,
            "num_hidden_layers": 26,
            "num_attention_heads": 8,
            "num_key_value_heads": 4,
            "head_dim": 256,
            "max_position_embeddings": 131_072,
            "tie_word_embeddings": True,
            "attention_bias": False,
            "sliding_window": 4096,
            "sliding_window_pattern": 6,
        },
    ),
}
"""model_type -> builder and transformers config-class defaults."""
