"""Parse a raw Hugging Face `config.json` dict into a ModelSpec, without transformers.

Every count is exact: each family's builder mirrors the parameter shapes of its transformers
modeling code (checked module by module on the meta device in tests/models/test_meta_device.py).
Keys a family's configs may omit are filled from that family's transformers config-class defaults
(`transformers/models/<family>/configuration_<family>.py`); a key without a family default is
required and its absence raises InputError naming it.

Multimodal configs (`vision_config`, with a nested `text_config` or flat text keys: Gemma 3, Llama 4,
Qwen2.5-VL, Mistral 3, Llama 3.2 Vision) are parsed from their text config; the vision tower and its
projector are counted in the `vision` group where their modeling is known. A nested text config without
`tie_word_embeddings` takes the outer config's value.

This module dispatches on model_type; the builders live in `autoparallel.models.families`, the shared
config access and layer shapes in `parse_common`, quantization parsing in `parse_quant`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from autoparallel.bounds import clean_text, input_error
from autoparallel.errors import InputError
from autoparallel.models.families import classic, llama_like, mla, mllama, moe, phi, starcoder2
from autoparallel.models.families.vision import vision_params
from autoparallel.models.parse_common import (
    CONFIG_LIMITS,
    HIDDEN_KEYS,
    Family,
    Parts,
    RawConfig,
    check_key_type,
    trains_with_dropout,
)
from autoparallel.models.parse_quant import quant_from_config
from autoparallel.models.spec import AttentionKind, LayerSpec, MlpKind, ModelSpec, RopeCache

__all__ = ["KNOWN_MODEL_TYPES", "known_family", "quant_from_config", "spec_from_config"]


def _all(value: object, softmax: object) -> bool:
    return isinstance(value, list) and all(v == softmax for v in value)


# Keys by which a config declares layers other than softmax attention + MLP (linear / lightning
# attention, state-space blocks), with the values that still mean softmax attention in every layer, as
# vLLM 0.32 `config/model.py` `get_num_layers_by_block_type` counts them: MiniMax `attn_type_list`
# (1: softmax; MiniMax-Text-01 / M1's 0s are lightning attention, MiniMax-M2's list is all 1s), Jamba /
# Zamba `layers_block_type` ("attention"), RecurrentGemma `block_types`, Nemotron-H
# `hybrid_override_pattern` (Mamba "M", attention-only "*" and MLP-only "-" layers), Kimi-Linear
# `linear_attn_config`, Jamba's `attn_layer_period`, Bamba's `attn_layer_indices` (attention at the listed
# layers, Mamba-2 at the rest: vLLM `bamba.py` `BambaModel` picks each layer's mixer by it).
_HYBRID_KEYS: dict[str, Callable[[object], bool]] = {
    "attn_type_list": lambda v: _all(v, 1),
    "layers_block_type": lambda v: _all(v, "attention"),
    "block_types": lambda v: _all(v, "attention"),
    "hybrid_override_pattern": lambda v: False,
    "linear_attn_config": lambda v: False,
    "attn_layer_period": lambda v: v == 1,
    "attn_layer_indices": lambda v: False,
}
# Key prefix of a state-space mixer's sizes (Bamba, Jamba, Zamba2, Falcon-H1, Nemotron-H: `mamba_d_state`,
# `mamba_n_heads`, `mamba_expand`, ...): a config that sizes Mamba blocks has them.
_MAMBA_PREFIX = "mamba_"
_GENERIC_LAYER_TYPES = ("full_attention", "sliding_attention")


def _hybrid_key(r: RawConfig) -> str | None:
    """The first key by which the config declares non-softmax layers (`_HYBRID_KEYS`, then any set
    `mamba_*` key), None when it declares none."""
    for key, softmax_only in _HYBRID_KEYS.items():
        if r.has(key) and not softmax_only(r.get(key)):
            return key
    return next((k for k in sorted(r.cfg) if k.startswith(_MAMBA_PREFIX) and r.has(k)), None)


def _refuse_hybrid(r: RawConfig) -> None:
    """An unknown model_type whose config declares per-layer mixers the generic parse cannot price (a
    linear-attention or state-space layer holds a recurrent state, not a KV cache, and other projections)
    is refused, naming the key, rather than priced as that many softmax-attention layers."""
    if (key := _hybrid_key(r)) is not None:
        raise InputError(
            f"{r.name}: model_type {r.model_type!r} is not a known family and its config declares "
            f"per-layer attention types in `{clean_text(key, 60)}` (linear attention or state-space "
            "layers), which the generic llama-like parse cannot price"
        )
    types = r.get("layer_types")
    if isinstance(types, list) and (other := sorted({str(t) for t in types} - set(_GENERIC_LAYER_TYPES))):
        raise InputError(
            f"{r.name}: model_type {r.model_type!r} is not a known family and its `layer_types` hold "
            f"{clean_text(', '.join(other), 80)}, which the generic llama-like parse cannot price "
            f"(it prices {' and '.join(_GENERIC_LAYER_TYPES)})"
        )


def _generic(r: RawConfig) -> Parts:
    """Unknown model_type: a llama-like decoder, with routed experts when the config names any; refused
    where the config declares layers it cannot price (`_refuse_hybrid`)."""
    _refuse_hybrid(r)
    experts = r.num("num_local_experts", "num_experts", "n_routed_experts", default=0, allow_zero=True)
    parts = moe.build_moe_llama_like(r) if experts else llama_like.build_llama_like(r)
    parts.notes.append(
        f"model_type {r.model_type!r} is not a known family: parsed as a generic llama-like "
        f"{'MoE ' if experts else ''}decoder from its raw keys: a gated (3-matrix) MLP, RMSNorm, embeddings "
        "tied unless the config says otherwise; a 2-matrix MLP is over-counted and family-specific "
        "parameters (e.g. linear attention, MTP) are not counted."
    )
    return parts


# model_type -> builder + defaults; anything else is parsed by `_generic` without defaults.
_FAMILIES: dict[str, Family] = {
    **llama_like.FAMILIES,
    **moe.FAMILIES,
    **mla.FAMILIES,
    **classic.FAMILIES,
    **phi.FAMILIES,
    **mllama.FAMILIES,
    **starcoder2.FAMILIES,
}
_GENERIC = Family(_generic, {})

# Outer multimodal model_type -> model_type of its text model.
_TEXT_TYPE = {
    "gemma3": "gemma3_text",
    "llama4": "llama4_text",
    "qwen2_5_vl": "qwen2_5_vl_text",
    "mistral3": "mistral",
    "mllama": "mllama_text_model",
}

KNOWN_MODEL_TYPES: tuple[str, ...] = tuple(sorted({*_FAMILIES, *_TEXT_TYPE}))
"""model_type values parsed with exact family rules (others: a generic llama-like parse)."""


def known_family(model_type: str) -> bool:
    """A ModelSpec's (text) `model_type` was parsed by a family of ours, not by the generic llama-like
    fallback (`_generic`), which is all autoparallel knows of an architecture it has no family for."""
    return model_type in _FAMILIES


_DTYPE_BYTES = {
    "bfloat16": 2,
    "float16": 2,
    "half": 2,
    "fp16": 2,
    "bf16": 2,
    "float32": 4,
    "float": 4,
    "fp32": 4,
}


def _vision_int(cfg: Mapping[str, Any], key: str) -> int | None:
    """`vision_config[key]` when it is a positive integer below 2^20 (None otherwise)."""
    vision = cfg.get("vision_config")
    value = vision.get(key) if isinstance(vision, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 1 << 20:
        return None
    return value


def _dtype_bytes(cfg: Mapping[str, Any], text: Mapping[str, Any], name: str) -> int:
    """Bytes per weight element from `torch_dtype` / `dtype` (outer config first); 2 when unset. Every
    value set must name a floating dtype of `_DTYPE_BYTES` (transformers turns the string into
    `getattr(torch, name)`; vLLM's `_get_and_verify_dtype` resolves that torch dtype): anything else, a
    number or a name such as "int3", raises InputError naming the key and the value."""
    found: list[int] = []
    for where, config in (("", cfg), ("text_config.", text)):
        for key in ("torch_dtype", "dtype"):
            value = config.get(key)
            if value is None:
                continue
            dtype = value.removeprefix("torch.") if isinstance(value, str) else None
            if dtype not in _DTYPE_BYTES:
                raise InputError(
                    f"{name}: `{where}{key}` must be one of {', '.join(_DTYPE_BYTES)}, "
                    f"got {clean_text(repr(value), 40)}"
                )
            found.append(_DTYPE_BYTES[dtype])
    return found[0] if found else 2


_RUNNER_BY_SUFFIX: tuple[tuple[str, str | None], ...] = (
    ("ForCausalLM", None),
    ("ForConditionalGeneration", None),
    ("ChatModel", None),
    ("LMHeadModel", None),
    ("ForTextEncoding", "an embedding model"),
    ("EmbeddingModel", "an embedding model"),
    ("ForSequenceClassification", "a sequence classifier"),
    ("ForTokenClassification", "a token classifier"),
    ("ForAudioClassification", "an audio classifier"),
    ("ForImageClassification", "an image classifier"),
    ("ForVideoClassification", "a video classifier"),
    ("ClassificationModel", "a classifier"),
    ("ForRewardModeling", "a reward model"),
    ("RewardModel", "a reward model"),
    ("Model", "an embedding model (a bare decoder, no LM head)"),
)
"""vLLM 0.32 `config/model.py` `_SUFFIX_TO_DEFAULTS`, in its order (the first suffix an architecture
ends with decides): None where vLLM runs the generate runner, else what its pooling runner serves
(embeddings, classes or rewards: no generated tokens)."""

GENERATORS_NAMED_MODEL = frozenset(
    {
        "ChatGLMModel",
        "AquilaModel",
        "LlavaLlamaModel",
        "UltravoxModel",
        "Qwen2_5OmniModel",
        "MiDashengLMModel",
    }
)
"""Generators whose class name ends in `Model`: vLLM's registry lists ChatGLM's and Aquila's among its
text-generation models and Ultravox's, Qwen2.5-Omni's and MiDashengLM's among its multimodal ones (the
registry decides before the suffix rule); TensorRT-LLM runs VILA's."""


def pooling_kind(architecture: str, wrapper: bool = False) -> str | None:
    """What a non-generative `architecture` is (vLLM's pooling runner: "a sequence classifier", "an
    embedding model", ...), or None for a generator (or no architecture named). `wrapper`: the config
    nests its language model's (`text_config`, ...), so a `*Model` name is no bare decoder but a
    multimodal model's class, which vLLM's registry names before its suffix rule applies."""
    if not architecture or architecture in GENERATORS_NAMED_MODEL:
        return None
    kind = next(((suffix, kind) for suffix, kind in _RUNNER_BY_SUFFIX if architecture.endswith(suffix)), None)
    if kind is None or (wrapper and kind[0] == "Model"):
        return None
    return kind[1]


def _architecture(cfg: Mapping[str, Any], name: str) -> str:
    """`architectures[0]`, empty when the config names none; `architectures` must be a list of strings
    (transformers' `PreTrainedConfig.architectures: list[str]`; vLLM looks each entry up in its model
    registry), else InputError naming it."""
    names = cfg.get("architectures")
    if names is None:
        return ""
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InputError(
            f"{name}: `architectures` must be a list of class names (strings), "
            f"got {clean_text(repr(names), 60)}"
        )
    return names[0] if names else ""


def _linear_groups(layers: Sequence[LayerSpec], mtp_params: int) -> tuple[str, ...]:
    """The linear parameter groups the decoder layers (and MTP modules) have: what a quantization
    config's per-group rules must cover (`parse_quant.quant_from_config`)."""
    counts = {"attention": 0, "dense_mlp": 0, "routed_experts": 0, "shared_experts": 0}
    for layer in layers:
        for group in counts:
            counts[group] += getattr(layer.params, group)
    return tuple(g for g, n in counts.items() if n) + (("mtp",) if mtp_params else ())


def _text_model(cfg: Mapping[str, Any], name: str) -> tuple[str, Mapping[str, Any]]:
    """(model_type, config dict) of the text model: `text_config` when nested, else the config itself."""
    for key in ("model_type", "text_config", "quantization_config"):  # what transformers would refuse
        value = cfg.get(key)
        kind = str if key == "model_type" else dict
        if value is not None and not isinstance(value, kind):
            raise InputError(
                f"{name}: `{key}` must be {'a string' if kind is str else 'an object'}, "
                f"got {type(value).__name__}"
            )
    if cfg.get("tie_word_embeddings") is not None:
        check_key_type(name, "tie_word_embeddings", cfg["tie_word_embeddings"])
    outer_type = str(cfg.get("model_type") or "")
    text = cfg.get("text_config")
    if isinstance(text, dict):
        text_type = str(text.get("model_type") or _TEXT_TYPE.get(outer_type, outer_type))
        text_cfg: Mapping[str, Any] = text
        if text.get("tie_word_embeddings") is None and cfg.get("tie_word_embeddings") is not None:
            text_cfg = {**text, "tie_word_embeddings": cfg["tie_word_embeddings"]}
    else:
        text_type = _TEXT_TYPE.get(outer_type, outer_type)
        text_cfg = cfg
    if not text_type:
        raise InputError(f"{name}: config.json has no `model_type`")
    return text_type, text_cfg


def _check_structure(parts: Parts, name: str) -> None:
    """Head and expert counts every engine needs: KV heads (GQA groups) divide the query heads, and a
    token is routed to at most the experts there are."""
    seen: set[tuple[int, int, int, int, str]] = set()
    for layer in parts.layers:
        att, mlp = layer.attention, layer.mlp
        key = (att.num_heads, att.num_kv_heads, mlp.num_experts, mlp.experts_per_token, att.kind.value)
        if key in seen:
            continue
        seen.add(key)
        if att.kind not in (AttentionKind.MLA, AttentionKind.LINEAR):
            if att.num_kv_heads > att.num_heads:
                raise InputError(
                    f"{name}: num_key_value_heads {att.num_kv_heads} exceeds "
                    f"num_attention_heads "
                    f"{att.num_heads} (each KV head serves a group of query heads)"
                )
            if att.num_heads % att.num_kv_heads:
                raise InputError(
                    f"{name}: num_key_value_heads {att.num_kv_heads} does not divide "
                    f"num_attention_heads {att.num_heads} (GQA groups must be equal)"
                )
        if mlp.kind is MlpKind.MOE and not 1 <= mlp.experts_per_token <= mlp.num_experts:
            raise InputError(
                f"{name}: num_experts_per_tok {mlp.experts_per_token} must be between 1 and the "
                f"{mlp.num_experts} routed experts"
            )


# vLLM 0.32's length keys (`ModelArchConfigConvertor.derive_max_model_len_and_key`): the least wins.
_LENGTH_KEYS = (
    "max_position_embeddings",
    "n_positions",
    "max_seq_len",
    "seq_length",
    "model_max_length",
    "max_target_positions",
    "max_sequence_length",
    "max_seq_length",
    "seq_len",
)
# RoPE types whose `factor` is already counted in max_position_embeddings (vLLM 0.32 config/model.py
# `_get_and_verify_max_len`: "YaRN variants leave max_position_embeddings already scaled, as
# Transformers' _compute_yarn_parameters assumes"; later releases changed this, 0.32 is the target).
_PRESCALED_ROPE = ("su", "longrope", "llama3", "yarn", "deepseek_yarn", "deepseek_llama_scaling")


# RoPE types vLLM 0.32's `get_rope` (model_executor/layers/rotary_embedding/__init__.py) builds a rotary
# embedding for, and the legacy names `patch_rope_parameters_dict` (transformers_utils/config.py) renames
# before it ("su" -> "longrope", "mrope" -> "default"); any other type raises "Unknown RoPE scaling type"
# when the model is built.
_ROPE_TYPES = (
    "default",
    "linear",
    "dynamic",
    "ntk",
    "yarn",
    "deepseek_yarn",
    "deepseek_llama_scaling",
    "llama3",
    "longrope",
    "mllama4",
    "xdrope",
    "openpangu",
    "su",
    "mrope",
)


def rope_type(rope: Mapping[str, Any], name: str) -> str:
    """A RoPE parameter set's type (`rope_type`, else the legacy `type`, else "default"), one of
    `_ROPE_TYPES`; another raises InputError naming it, as vLLM's `get_rope` refuses it at start-up."""
    value = rope.get("rope_type")
    key = "rope_type"
    if value is None and rope.get("type") is not None:
        value, key = rope.get("type"), "type"
    if value is None:
        return "default"
    if not isinstance(value, str) or value not in _ROPE_TYPES:
        raise InputError(
            f"{name}: unknown RoPE scaling `{key}` {clean_text(repr(value), 40)} (vLLM's get_rope knows "
            f"{', '.join(_ROPE_TYPES)})"
        )
    return value


def _rope_dicts(raw: RawConfig) -> list[Mapping[str, Any]]:
    """The config's RoPE parameter sets (`rope_parameters` or the legacy `rope_scaling`; one per layer
    type where nested), as vLLM's `iter_rope_parameters` yields them."""
    key = "rope_parameters" if raw.get("rope_parameters") else "rope_scaling"
    rope = raw.get(key)
    if not rope:
        return []
    if not isinstance(rope, Mapping):  # transformers and vLLM read it as a dict (`rope_type`, `factor`)
        raise InputError(f"{raw.name}: `{key}` must be a mapping, got {clean_text(repr(rope), 40)}")
    nested = [v for v in rope.values() if isinstance(v, Mapping) and v]
    return nested if nested else [rope]


def context_limit(raw: RawConfig, outer_type: str) -> int:
    """The longest context vLLM 0.32 serves the config with (`_get_and_verify_max_len`): the least of
    its length keys (`model_max_length` wins where set, as for Command-R; 2048 with none), times the
    `factor` of a RoPE scaling that has not already counted it in that length (linear, dynamic; not
    YaRN, Llama 3, LongRoPE; never for Gemma 3, whose length "is already scaled by RoPE scaling")."""
    lengths = {k: raw.num(k) for k in _LENGTH_KEYS if raw.has(k)}
    limit = lengths.get("model_max_length") or min(lengths.values(), default=2048)
    ropes = _rope_dicts(raw)
    kinds = [rope_type(rope, raw.name) for rope in ropes]  # an unknown type is refused first
    if "gemma3" in outer_type or "gemma3" in raw.model_type:
        return limit
    factor = 1.0
    for rope, kind in zip(ropes, kinds, strict=True):
        value = rope.get("factor")
        if value is None:
            continue  # vLLM: a null factor falls back to 1.0
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e6:
            raise InputError(  # every scaling's rotary embedding reads it (YaRN's too)
                f"{raw.name}: RoPE scaling `factor` must be a number from 0 to 1e6, "
                f"got {clean_text(repr(value), 40)}"
            )
        if kind not in _PRESCALED_ROPE:
            factor = float(value)
    scaled = int(limit * factor)
    if scaled < 1 or scaled > CONFIG_LIMITS["max_position_embeddings"]:
        raise InputError(
            f"{raw.name}: the context length {limit:,} x RoPE scaling factor {factor:g} is outside 1 to "
            f"{CONFIG_LIMITS['max_position_embeddings']:,} tokens"
        )
    return scaled


_LONGROPE = ("longrope", "su")  # "su": LongRoPE's legacy name (vLLM 0.32 `patch_legacy_rope_type`)


def vllm_default_len(raw: RawConfig, limit: int) -> int | None:
    """The max_model_len vLLM 0.32 serves a LongRoPE config with when none is given
    (`_get_and_verify_max_len`: "For LongRoPE, default to original_max_position_embeddings to avoid
    performance degradation for shorter sequences"; the limit stays the scaled length): the config's
    `original_max_position_embeddings` (Phi-3's config class default 4096; Phi-3.5-MoE's class copies it
    from its RoPE parameters), where it is below `limit`. None otherwise: the limit is the default."""
    ropes = _rope_dicts(raw)
    if not any(rope_type(rope, raw.name) in _LONGROPE for rope in ropes):
        return None
    key = "original_max_position_embeddings"
    found = [raw.get(key), *(rope.get(key) for rope in ropes)]
    original = next((v for v in found if v is not None), None)
    if original is None:
        return None
    value = RawConfig({key: original}, {}, raw.name, raw.model_type).num(key)
    return value if value < limit else None


# Config-class defaults of the RoPE keys vLLM reads per layer where a family's card may omit them
# (transformers `Gemma3TextConfig`: rope_theta 1e6 for global layers, rope_local_base_freq 1e4 for
# sliding ones); elsewhere `get_rope`'s own default base, 10000.
_ROPE_BASE_DEFAULTS: dict[str, dict[str, float]] = {
    "gemma3_text": {"rope_theta": 1_000_000.0, "rope_local_base_freq": 10_000.0},
}
_LAYER_TYPE_KEYS = {
    AttentionKind.SLIDING: "sliding_attention",
    AttentionKind.CHUNKED: "chunked_attention",
    AttentionKind.FULL: "full_attention",
    AttentionKind.MLA: "full_attention",
}


def _rope_number(value: object, low: float, high: float) -> float | None:
    """`value` when it is a real number in (low, high], else None (the key is then ignored)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value <= high:
        return None
    return float(value)


def _layer_rope(raw: RawConfig, layer: LayerSpec) -> Mapping[str, Any]:
    """The RoPE parameters vLLM hands `get_rope` for one layer: a nested per-layer-type set where the
    config has one (`rope_parameters` keyed by `sliding_attention` / `full_attention`); for Gemma 3
    (`gemma3.py` `Gemma3Attention`) sliding layers `{"rope_type": "default"}` at `rope_local_base_freq`
    and global layers `rope_scaling` at `rope_theta`; else the model's one set."""
    defaults = _ROPE_BASE_DEFAULTS.get(raw.model_type, {})
    theta = raw.get("rope_theta", defaults.get("rope_theta", 10000.0))
    rope = raw.get("rope_parameters") or raw.get("rope_scaling")
    kind = _LAYER_TYPE_KEYS.get(layer.attention.kind, "full_attention")
    if isinstance(rope, Mapping) and isinstance(rope.get(kind), Mapping):
        return {"rope_theta": theta, **rope[kind]}
    if raw.model_type == "gemma3_text" and layer.attention.kind is AttentionKind.SLIDING:
        local = raw.get("rope_local_base_freq", defaults.get("rope_local_base_freq", theta))
        return {"rope_type": "default", "rope_theta": local}
    flat = dict(rope) if isinstance(rope, Mapping) else {}
    return {"rope_theta": theta, **flat}


def _rope_rows(rope: Mapping[str, Any], max_position: int, raw: RawConfig) -> int:
    """Positions of the cos/sin cache vLLM builds for `rope` (`get_rope`'s class per `rope_type`, its
    `_compute_cos_sin_cache`): linear (`LinearScalingRotaryEmbedding`: one block of max_position ×
    factor rows per factor) and dynamic NTK with a factor, max_position × factor; YaRN and DeepSeek
    YaRN, original_max_position_embeddings × factor; LongRoPE (`Phi3LongRoPEScaledRotaryEmbedding`),
    a short cache of original_max_position_embeddings rows and a long one of max_position; default,
    Llama 3, mRoPE and the rest, max_position."""
    kind = rope_type(rope, raw.name)
    factors = rope.get("factor")
    factor_list = factors if isinstance(factors, list) else [factors]
    valid = [f for f in (_rope_number(x, 0.0, 1e6) for x in factor_list) if f is not None]
    factor = valid[0] if valid else None
    original_raw = rope.get("original_max_position_embeddings", raw.get("original_max_position_embeddings"))
    original = _rope_number(original_raw, 0.0, float(1 << 30))
    if kind == "linear" and valid:
        return sum(math.ceil(max_position * f) for f in valid)
    if kind == "dynamic" and factor is not None and "alpha" not in rope:
        return math.ceil(max_position * factor)
    if kind in ("yarn", "deepseek_yarn", "deepseek_llama_scaling") and factor is not None:
        return math.ceil((original or max_position) * factor)
    if kind in ("longrope", "su") and original is not None:
        return int(original) + max_position
    return max_position


def rope_caches(raw: RawConfig, layers: list[LayerSpec], limit: int) -> tuple[RopeCache, ...]:
    """The rotary caches vLLM builds for `layers`: one per distinct (head size, rotary dim, base,
    RoPE parameters) as `get_rope` memoizes them (`_ROPE_DICT`), each sized by its scaling type
    (`_rope_rows`). `max_position` is the config's `max_position_embeddings` (what the model classes
    pass), `limit` where the config names none. Linear-attention layers have no rotary embedding;
    MLA rotates `qk_rope_head_dim` dimensions; other layers `head_dim` × `partial_rotary_factor`."""
    max_position = raw.num("max_position_embeddings", default=limit)
    partial_default = _rope_number(raw.get("partial_rotary_factor", raw.get("rotary_pct")), 0.0, 1.0) or 1.0
    found: dict[tuple[object, ...], tuple[int, int, list[int]]] = {}
    for i, layer in enumerate(layers):
        att = layer.attention
        if att.kind is AttentionKind.LINEAR:
            continue
        rope = _layer_rope(raw, layer)
        if att.kind is AttentionKind.MLA:
            head = rotary = att.qk_rope_head_dim
        else:
            head = att.head_dim
            partial = _rope_number(rope.get("partial_rotary_factor"), 0.0, 1.0) or partial_default
            rotary = int(head * partial)
        if rotary <= 0:
            continue
        params = tuple(sorted((str(k), repr(v)) for k, v in rope.items()))
        key = (head, rotary, params)
        if key not in found:
            found[key] = (rotary, _rope_rows(rope, max_position, raw), [])
        found[key][2].append(i)
    return tuple(RopeCache(rotary_dim=d, rows=n, layers=tuple(idx)) for d, n, idx in found.values())


def spec_from_config(
    cfg: dict[str, Any],
    *,
    name: str,
    published_total: int | None = None,
    published_active: int | None = None,
    notes: str = "",
) -> ModelSpec:
    """Build a ModelSpec from a raw `config.json` dict (no transformers import).

    Args:
        cfg: the parsed `config.json` (multimodal configs with `text_config` are accepted).
        name: canonical id of the model.
        published_total: published total parameters (cross-check only).
        published_active: published active parameters per token (cross-check only).
        notes: extra notes (e.g. from the zoo entry), prepended to the parser's own.

    Raises:
        InputError: a required field is missing, a size is zero/negative, or a value is malformed.
    """
    name = clean_text(name, 200).replace("\n", "?")
    if not isinstance(cfg, dict):
        raise InputError(f"{name}: a config must be a JSON object, got {type(cfg).__name__}")
    try:
        return _spec_from_config(cfg, name, published_total, published_active, notes)
    except InputError:
        raise
    except ValidationError as exc:
        raise input_error(exc, f"{name}: malformed config") from None
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
        # A value of the wrong kind deep in a family's keys (a string where a count belongs, a nested
        # object where a list does): the config is malformed, and the message names what broke.
        detail = clean_text(str(exc), 160)
        raise InputError(f"{name}: malformed config ({type(exc).__name__}: {detail})") from None


def _spec_from_config(
    cfg: dict[str, Any], name: str, published_total: int | None, published_active: int | None, notes: str
) -> ModelSpec:
    text_type, text_cfg = _text_model(cfg, name)
    family = _FAMILIES.get(text_type, _GENERIC)
    nested = isinstance(cfg.get("text_config"), dict)
    raw = RawConfig(text_cfg, family.defaults, name, text_type, outer=cfg if nested else None)
    parts = family.build(raw)
    if not parts.layers:
        raise InputError(f"{name}: the config has no decoder layers")
    _check_structure(parts, name)
    hidden = raw.num(*HIDDEN_KEYS)
    limit = context_limit(raw, str(cfg.get("model_type") or ""))
    vision, vision_note = vision_params(str(cfg.get("model_type") or ""), cfg, hidden, name)
    architecture = _architecture(cfg, name)
    wrapper = any(  # a nested model config (text_config, thinker_config, ...), not quantization_config
        k.endswith("_config") and isinstance(v, Mapping) and ("model_type" in v or "hidden_size" in v)
        for k, v in cfg.items()
    )
    if (kind := pooling_kind(architecture, wrapper)) is not None:
        raise InputError(
            f"{name}: architecture {architecture} is {kind}: vLLM runs it with its pooling runner, "
            "which generates no tokens; autoparallel plans causal-LM generation (serving) and "
            "pre-training of a *ForCausalLM / *ForConditionalGeneration checkpoint"
        )
    quant = quant_from_config(
        cfg,
        name,
        _linear_groups(parts.layers, parts.mtp_params),
        [layer.params for layer in parts.layers],
        parts.mtp_layers,
    )
    all_notes = [notes] if notes else []
    all_notes += parts.notes
    if vision_note:
        all_notes.append(vision_note)
    return ModelSpec(
        name=name,
        model_type=text_type,
        architecture=architecture,
        hidden_size=hidden,
        vocab_size=raw.num("vocab_size"),
        max_position_embeddings=limit,
        default_max_model_len=vllm_default_len(raw, limit),
        layers=tuple(parts.layers),
        tie_word_embeddings=parts.lm_head == 0,
        embedding_params=parts.embedding,
        lm_head_params=parts.lm_head,
        final_norm_params=parts.final_norm,
        mtp_layers=parts.mtp_layers,
        mtp_params=parts.mtp_params,
        vision_params=vision,
        vision_layers=_vision_int(cfg, "num_hidden_layers"),
        vision_hidden_size=_vision_int(cfg, "hidden_size"),
        rope_caches=rope_caches(raw, parts.layers, limit),
        dtype_bytes=_dtype_bytes(cfg, text_cfg, name),
        dropout=trains_with_dropout(raw),
        quantization=quant,
        published_total_params=published_total,
        published_active_params=published_active,
        notes=" ".join(all_notes),
    )
