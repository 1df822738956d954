"""Vision towers of multimodal configs (`vision_config`): SigLIP (Gemma 3) and the Llama 4 encoder."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from autoparallel.models.parse_common import RawConfig, linear_params

# Defaults of the transformers vision config classes, for keys that published configs omit.
_SIGLIP_DEFAULTS: dict[str, Any] = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                                    "num_channels": 3, "image_size": 224, "patch_size": 16,
                                    "vision_use_head": True, "num_attention_heads": 12}
_LLAMA4_VISION_DEFAULTS: dict[str, Any] = {
    "hidden_size": 768, "num_hidden_layers": 34, "num_channels": 3, "intermediate_size": 5632,
    "vision_output_dim": 7680, "image_size": 448, "patch_size": 14, "projector_input_dim": 4096,
    "projector_output_dim": 4096, "multi_modal_projector_bias": False}


def _mlp(vh: int, vi: int) -> int:
    """fc1 + fc2, both with bias."""
    return linear_params(vh, vi, True) + linear_params(vi, vh, True)


def _encoder_layer(vh: int, vi: int) -> int:
    """q/k/v/o with biases, the MLP, two LayerNorms (weight + bias)."""
    return 4 * linear_params(vh, vh, True) + _mlp(vh, vi) + 2 * 2 * vh


def _siglip(v: RawConfig, text_hidden: int) -> tuple[int, str]:
    """Gemma 3: SigLIP vision model + multimodal projector."""
    vh, vi, layers = v.num("hidden_size"), v.num("intermediate_size"), v.num("num_hidden_layers")
    p, img, ch = v.num("patch_size"), v.num("image_size"), v.num("num_channels")
    embed = ch * p * p * vh + vh + (img // p) ** 2 * vh
    head = 0
    if v.flag("vision_use_head"):
        # SiglipMultiheadAttentionPoolingHead: probe, MultiheadAttention (in/out proj), LN, MLP
        head = vh + 3 * vh * vh + 3 * vh + vh * vh + vh + 2 * vh + _mlp(vh, vi)
    projector = vh * text_hidden + vh   # mm_input_projection_weight, mm_soft_emb_norm
    total = embed + layers * _encoder_layer(vh, vi) + 2 * vh + head + projector
    return total, "vision counts the SigLIP tower and projector."


def _llama4_vision(v: RawConfig, text_hidden: int) -> tuple[int, str]:
    """Llama 4: vision encoder, pixel-shuffle adapter, multimodal projector."""
    vh, vi, layers = v.num("hidden_size"), v.num("intermediate_size"), v.num("num_hidden_layers")
    p, img, ch = v.num("patch_size"), v.num("image_size"), v.num("num_channels")
    embed = vh + ((img // p) ** 2 + 1) * vh + ch * p * p * vh   # class emb, positions, patch linear
    adapter = vi * v.num("projector_input_dim") + v.num("projector_output_dim") ** 2
    projector = linear_params(v.num("vision_output_dim"), text_hidden, v.flag("multi_modal_projector_bias"))
    total = embed + 4 * vh + layers * _encoder_layer(vh, vi) + adapter + projector
    return total, "vision counts the Llama 4 vision encoder, pixel-shuffle adapter and projector."


# outer model_type -> (vision model_type, its defaults, tower counter)
_TOWERS: dict[str, tuple[str, Mapping[str, Any], Callable[[RawConfig, int], tuple[int, str]]]] = {
    "gemma3": ("siglip_vision_model", _SIGLIP_DEFAULTS, _siglip),
    "llama4": ("llama4_vision_model", _LLAMA4_VISION_DEFAULTS, _llama4_vision),
}


def vision_params(outer_type: str, cfg: Mapping[str, Any], text_hidden: int, name: str) -> tuple[int, str]:
    """Vision tower + projector parameters, and a note (0 and a note when the tower is unknown)."""
    vcfg = cfg.get("vision_config")
    if not isinstance(vcfg, dict):
        return 0, ""
    tower = _TOWERS.get(outer_type)
    if tower is None:
        return 0, f"vision_config ({vcfg.get('model_type', 'unknown')}) present but its tower is not counted."
    vision_type, defaults, count = tower
    return count(RawConfig(vcfg, defaults, name, vision_type), text_hidden)
