"""Vision towers of multimodal configs (`vision_config`): SigLIP (Gemma 3), the Llama 4 encoder, the
Qwen2.5-VL ViT, Pixtral (Mistral 3) and the Llama 3.2 Vision tiled ViT (in `mllama.py`).

Each counter mirrors the transformers modeling code of its tower plus the projector that maps it into
the text model, and gets the vision config, the outer config and the text hidden size."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from autoparallel.models.families.mllama import VISION_DEFAULTS as _MLLAMA_VISION_DEFAULTS
from autoparallel.models.families.mllama import mllama_vision
from autoparallel.models.parse_common import RawConfig, linear_params

# Defaults of the transformers vision config classes, for keys that published configs omit.
_SIGLIP_DEFAULTS: dict[str, Any] = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_channels": 3,
    "image_size": 224,
    "patch_size": 16,
    "vision_use_head": True,
    "num_attention_heads": 12,
}
_LLAMA4_VISION_DEFAULTS: dict[str, Any] = {
    "hidden_size": 768,
    "num_hidden_layers": 34,
    "num_channels": 3,
    "intermediate_size": 5632,
    "vision_output_dim": 7680,
    "image_size": 448,
    "patch_size": 14,
    "projector_input_dim": 4096,
    "projector_output_dim": 4096,
    "multi_modal_projector_bias": False,
}
_QWEN2_5_VL_VISION_DEFAULTS: dict[str, Any] = {
    "depth": 32,
    "hidden_size": 3584,
    "intermediate_size": 3420,
    "in_channels": 3,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "out_hidden_size": 3584,
}
_PIXTRAL_DEFAULTS: dict[str, Any] = {
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_channels": 3,
    "patch_size": 16,
}
_MISTRAL3_DEFAULTS: dict[str, Any] = {
    "spatial_merge_size": 2,
    "multimodal_projector_bias": False,
    "vision_feature_layer": -1,
}


def _mlp(vh: int, vi: int) -> int:
    """fc1 + fc2, both with bias."""
    return linear_params(vh, vi, True) + linear_params(vi, vh, True)


def _encoder_layer(vh: int, vi: int) -> int:
    """q/k/v/o with biases, the MLP, two LayerNorms (weight + bias)."""
    return 4 * linear_params(vh, vh, True) + _mlp(vh, vi) + 2 * 2 * vh


def _siglip(v: RawConfig, outer: RawConfig, text_hidden: int) -> tuple[int, str]:
    """Gemma 3: SigLIP vision model + multimodal projector."""
    vh, vi, layers = v.num("hidden_size"), v.num("intermediate_size"), v.num("num_hidden_layers")
    p, img, ch = v.num("patch_size"), v.num("image_size"), v.num("num_channels")
    embed = ch * p * p * vh + vh + (img // p) ** 2 * vh
    head = 0
    if v.flag("vision_use_head"):
        # SiglipMultiheadAttentionPoolingHead: probe, MultiheadAttention (in/out proj), LN, MLP
        head = vh + 3 * vh * vh + 3 * vh + vh * vh + vh + 2 * vh + _mlp(vh, vi)
    projector = vh * text_hidden + vh  # mm_input_projection_weight, mm_soft_emb_norm
    total = embed + layers * _encoder_layer(vh, vi) + 2 * vh + head + projector
    return total, "vision counts the SigLIP tower and projector."


def _llama4_vision(v: RawConfig, outer: RawConfig, text_hidden: int) -> tuple[int, str]:
    """Llama 4: vision encoder, pixel-shuffle adapter, multimodal projector."""
    vh, vi, layers = v.num("hidden_size"), v.num("intermediate_size"), v.num("num_hidden_layers")
    p, img, ch = v.num("patch_size"), v.num("image_size"), v.num("num_channels")
    embed = vh + ((img // p) ** 2 + 1) * vh + ch * p * p * vh  # class emb, positions, patch linear
    adapter = vi * v.num("projector_input_dim") + v.num("projector_output_dim") ** 2
    projector = linear_params(v.num("vision_output_dim"), text_hidden, v.flag("multi_modal_projector_bias"))
    total = embed + 4 * vh + layers * _encoder_layer(vh, vi) + adapter + projector
    return total, "vision counts the Llama 4 vision encoder, pixel-shuffle adapter and projector."


def _qwen2_5_vl(v: RawConfig, outer: RawConfig, text_hidden: int) -> tuple[int, str]:
    """Qwen2.5-VL: Conv3d patch embedding, RMSNorm blocks (biased qkv/proj, biased gated MLP), merger."""
    vh, vi = v.num("hidden_size"), v.num("intermediate_size")
    p, tp = v.num("patch_size"), v.num("temporal_patch_size")
    ch = v.num("in_channels")  # published configs also carry `in_chans`, which transformers ignores
    merged = vh * v.num("spatial_merge_size") ** 2
    embed = ch * tp * p * p * vh  # Conv3d, no bias
    block = (
        2 * vh  # norm1, norm2 (RMSNorm)
        + linear_params(vh, 3 * vh, True)
        + linear_params(vh, vh, True)  # qkv, proj
        + 2 * linear_params(vh, vi, True)
        + linear_params(vi, vh, True)
    )  # gate/up, down
    merger = vh + linear_params(merged, merged, True) + linear_params(merged, v.num("out_hidden_size"), True)
    return embed + v.num("depth") * block + merger, "vision counts the Qwen2.5-VL ViT and patch merger."


def _pixtral(v: RawConfig, outer: RawConfig, text_hidden: int) -> tuple[int, str]:
    """Mistral 3: Pixtral encoder and the multimodal projector (RMSNorm, patch merger, 2 linears)."""
    vh, vi, layers = v.num("hidden_size"), v.num("intermediate_size"), v.num("num_hidden_layers")
    p, ch = v.num("patch_size"), v.num("num_channels")
    # patch_conv (no bias), ln_pre; per layer: attention_norm, ffn_norm, q/k/v/o and gated MLP, no biases
    encoder = ch * p * p * vh + vh + layers * (2 * vh + 4 * vh * vh + 3 * vh * vi)
    feature = outer.get("vision_feature_layer")
    n_features = len(feature) if isinstance(feature, list) else 1
    bias = outer.flag("multimodal_projector_bias")
    merge = outer.num("spatial_merge_size")
    projector = (
        vh  # norm
        + vh * merge * merge * vh  # patch_merger.merging_layer, no bias
        + linear_params(vh * n_features, text_hidden, bias)
        + linear_params(text_hidden, text_hidden, bias)
    )
    return encoder + projector, "vision counts the Pixtral encoder and the Mistral 3 projector."


Tower = Callable[[RawConfig, RawConfig, int], tuple[int, str]]

# outer model_type -> (vision model_type, its defaults, outer-config defaults, tower counter)
_TOWERS: dict[str, tuple[str, Mapping[str, Any], Mapping[str, Any], Tower]] = {
    "gemma3": ("siglip_vision_model", _SIGLIP_DEFAULTS, {}, _siglip),
    "llama4": ("llama4_vision_model", _LLAMA4_VISION_DEFAULTS, {}, _llama4_vision),
    "qwen2_5_vl": ("qwen2_5_vl_vision", _QWEN2_5_VL_VISION_DEFAULTS, {}, _qwen2_5_vl),
    "mistral3": ("pixtral", _PIXTRAL_DEFAULTS, _MISTRAL3_DEFAULTS, _pixtral),
    "mllama": ("mllama_vision_model", _MLLAMA_VISION_DEFAULTS, {}, mllama_vision),
}


def vision_params(outer_type: str, cfg: Mapping[str, Any], text_hidden: int, name: str) -> tuple[int, str]:
    """Vision tower + projector parameters, and a note (0 and a note when the tower is unknown)."""
    vcfg = cfg.get("vision_config")
    if not isinstance(vcfg, dict):
        return 0, ""
    tower = _TOWERS.get(outer_type)
    if tower is None:
        return 0, f"vision_config ({vcfg.get('model_type', 'unknown')}) present but its tower is not counted."
    vision_type, defaults, outer_defaults, count = tower
    outer = RawConfig(cfg, outer_defaults, name, outer_type)
    return count(RawConfig(vcfg, defaults, name, vision_type), outer, text_hidden)
