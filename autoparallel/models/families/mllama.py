"""Llama 3.2 Vision (`model_type: mllama`): a Llama 3.1 decoder with interleaved cross-attention layers,
and its tiled ViT vision model. Mirrors transformers' `modeling_mllama`.

Text (`mllama_text_model`): `embed_tokens` has `vocab_size + 8` rows (the image token and 7 spare rows);
layers listed in `cross_attention_layers` replace self-attention with cross-attention to the image
states (q/k/v/o without biases, q/k RMSNorms over head_dim, tanh gates on attention and MLP); every
layer has a gated MLP and two RMSNorms.

Vision (`mllama_vision_model`): Conv2d patch embedding (no bias), class embedding, gated position
embedding (positions + per-aspect-ratio tile positions + a gate), pre/post tile embeddings (gated),
pre/post LayerNorms, `num_hidden_layers` local and `num_global_layers` gated global encoder layers
(q/k/v/o without biases, fc1/fc2 with biases, two LayerNorms); then the multimodal projector
(`vision_output_dim` -> text hidden, with bias).
"""

from __future__ import annotations

from typing import Any

from autoparallel.errors import InputError
from autoparallel.models.parse_common import (
    Family,
    Parts,
    RawConfig,
    dense_layer,
    gqa_attention,
    linear_params,
    read_heads,
    softmax_spec,
)
from autoparallel.models.spec import AttentionKind

_CROSS_DEFAULT = [3, 8, 13, 18, 23, 28, 33, 38]
_ASPECT_DEFAULT = [[1, 1], [1, 2], [1, 3], [1, 4], [2, 1], [2, 2], [3, 1], [4, 1]]

VISION_DEFAULTS: dict[str, Any] = {
    "hidden_size": 1280,
    "num_hidden_layers": 32,
    "num_global_layers": 8,
    "num_channels": 3,
    "intermediate_size": 5120,
    "vision_output_dim": 7680,
    "image_size": 448,
    "patch_size": 14,
    "max_num_tiles": 4,
    "supported_aspect_ratios": _ASPECT_DEFAULT,
}
"""`MllamaVisionConfig` defaults."""


def _cross_layers(r: RawConfig, n: int) -> set[int]:
    raw = r.get("cross_attention_layers")
    if not isinstance(raw, list) or not all(isinstance(j, int) and not isinstance(j, bool) for j in raw):
        raise InputError(f"{r.name}: `cross_attention_layers` must be a list of layer indices, got {raw!r}")
    bad = [j for j in raw if not 0 <= j < n]
    if bad:
        raise InputError(f"{r.name}: `cross_attention_layers` {bad} outside the {n} decoder layers")
    return set(raw)


def build_mllama_text(r: RawConfig) -> Parts:
    """Llama 3.2 Vision text model: self-attention layers plus cross-attention layers to image states."""
    h, nh, nkv, hd = read_heads(r)
    n = r.num("num_hidden_layers")
    i = r.num("intermediate_size")
    vocab = r.num("vocab_size")
    cross = _cross_layers(r, n)
    self_attention = gqa_attention(h, nh, nkv, hd)
    cross_attention = gqa_attention(h, nh, nkv, hd, qk_norm=True) + 2  # + attn and mlp tanh gates
    att = softmax_spec(AttentionKind.FULL, nh, nkv, hd)
    layers = [
        dense_layer(att, cross_attention if j in cross else self_attention, h, i, 2 * h) for j in range(n)
    ]
    head = 0 if r.flag("tie_word_embeddings") else vocab * h
    parts = Parts(layers=layers, embedding=(vocab + 8) * h, lm_head=head, final_norm=h)
    parts.notes.append(
        f"mllama: {len(cross)} cross-attention layers (q/k/v/o, q/k norms, 2 tanh gates in attention) "
        "attend to the image states; their KV cache is modelled like a full-attention layer's, as vLLM V0 "
        "allocates it; the embedding has vocab_size + 8 rows."
    )
    return parts


def _vision_layer(vh: int, vi: int) -> int:
    """q/k/v/o without biases, fc1/fc2 with biases, two LayerNorms (weight + bias)."""
    return 4 * vh * vh + linear_params(vh, vi, True) + linear_params(vi, vh, True) + 4 * vh


def mllama_vision(v: RawConfig, outer: RawConfig, text_hidden: int) -> tuple[int, str]:
    """Llama 3.2 Vision: tiled ViT (local + gated global encoder) and the multimodal projector."""
    vh, vi = v.num("hidden_size"), v.num("intermediate_size")
    p, img, ch = v.num("patch_size"), v.num("image_size"), v.num("num_channels")
    tiles = v.num("max_num_tiles")
    ratios = v.get("supported_aspect_ratios")
    if not isinstance(ratios, list) or not ratios:
        raise InputError(f"{v.name}: vision_config `supported_aspect_ratios` must be a non-empty list")
    rows = len(ratios) + 1  # aspect-ratio ids 0..max_aspect_ratio_id
    patches = (img // p) ** 2 + 1
    embed = (
        ch * p * p * vh  # patch_embedding (Conv2d, no bias)
        + vh  # class_embedding
        + 1
        + patches * vh
        + rows * tiles * patches * vh  # gated positional + tile positional
        + 2 * (rows * tiles * vh + 1)  # pre/post tile positional embeddings + gates
        + 2 * 2 * vh
    )  # layernorm_pre, layernorm_post
    local = v.num("num_hidden_layers") * _vision_layer(vh, vi)
    global_ = v.num("num_global_layers") * (_vision_layer(vh, vi) + 2)  # + gate_attn, gate_ffn
    projector = linear_params(v.num("vision_output_dim"), text_hidden, True)
    return embed + local + global_ + projector, (
        "vision counts the Llama 3.2 Vision tiled ViT (local + gated global layers) and projector."
    )


FAMILIES: dict[str, Family] = {
    "mllama_text_model": Family(
        build_mllama_text,
        {
            "vocab_size": 128256,
            "hidden_size": 4096,
            "num_hidden_layers": 40,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "intermediate_size": 14336,
            "max_position_embeddings": 131072,
            "tie_word_embeddings": False,
            "cross_attention_layers": _CROSS_DEFAULT,
        },
    ),
}
"""model_type -> builder and transformers config-class defaults (`MllamaTextConfig`)."""
