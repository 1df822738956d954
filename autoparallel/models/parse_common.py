"""What every family parser shares: validated config access, the builder contract, shared layer shapes.

`RawConfig` reads one config dict with its family's defaults and raises InputError naming a missing or
malformed key. A family registers a `Family` (builder + defaults) per model_type; its builder returns
`Parts`. The shape helpers count parameters the way transformers' modeling code lays them out.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from autoparallel.bounds import clean_text
from autoparallel.errors import InputError
from autoparallel.models.spec import (
    AttentionKind,
    AttentionSpec,
    LayerSpec,
    MlpKind,
    MlpSpec,
    ParamGroups,
)

_MISSING: Any = object()

HIDDEN_KEYS = ("hidden_size", "n_embd", "n_embed", "d_model")
"""Aliases of the hidden size, in lookup order."""
LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers")
"""Aliases of the decoder layer count, in lookup order."""


MAX_CONFIG_INT = 1 << 40
"""The largest integer any config key may hold (about 10^12)."""

CONFIG_LIMITS: dict[str, int] = {
    **dict.fromkeys(LAYER_KEYS, 4096),
    **dict.fromkeys(HIDDEN_KEYS, 1 << 20),
    **dict.fromkeys(("num_attention_heads", "n_head", "num_heads", "num_key_value_heads"), 1 << 16),
    **dict.fromkeys(("num_local_experts", "num_experts", "n_routed_experts", "num_experts_per_tok"), 1 << 16),
    "vocab_size": 1 << 24,
    "head_dim": 1 << 16,
    "intermediate_size": 1 << 24,
    "moe_intermediate_size": 1 << 24,
    "max_position_embeddings": 1 << 30,
}
"""Bounds on the keys that size loops or tables, far above any published model (the largest have ~128
layers, hidden 18k, vocabularies of 256k, 512 experts), so a hostile config is refused before any work."""


def _is_bool(value: object) -> bool:
    return isinstance(value, bool)


def _is_index_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


KEY_TYPES: dict[str, tuple[Callable[[object], bool], str]] = {
    "tie_word_embeddings": (_is_bool, "true or false"),
    "mlp_only_layers": (_is_index_list, "a list of layer indices (integers)"),
    "moe_layers": (_is_index_list, "a list of layer indices (integers)"),
    "no_rope_layers": (_is_index_list, "a list of integers (1: RoPE, 0: NoPE per layer)"),
}
"""Config keys with a fixed JSON type that the family builders read through `RawConfig.get`, with the
type in words: transformers' config classes type them so (`PreTrainedConfig.tie_word_embeddings: bool`,
`Qwen3MoeConfig.mlp_only_layers: list[int]`, `Llama4TextConfig.moe_layers` / `no_rope_layers:
list[int]`), and vLLM's model code tests layer membership in them (`qwen3_moe.py` `Qwen3MoeDecoderLayer`:
`layer_idx not in config.mlp_only_layers`, a TypeError on a string). A value of another type is refused
(`RawConfig.get`), as a string `hidden_size` is, rather than read by Python truthiness or iterated as
characters."""


def check_key_type(name: str, key: str, value: object) -> None:
    """InputError naming `key` and `value` unless `value` has the type `KEY_TYPES` gives `key`."""
    rule = KEY_TYPES.get(key)
    if rule is not None and not rule[0](value):
        raise InputError(f"{name}: `{key}` must be {rule[1]}, got {clean_text(repr(value), 40)}")


class RawConfig:
    """Typed, validated access to one config dict (plus family defaults)."""

    def __init__(
        self,
        cfg: Mapping[str, Any],
        defaults: Mapping[str, Any],
        name: str,
        model_type: str,
        *,
        outer: Mapping[str, Any] | None = None,
    ) -> None:
        self.cfg = cfg
        self.defaults = defaults
        self.name = name
        self.model_type = model_type
        self.outer = outer
        """The whole config.json where `cfg` is its nested `text_config` (None: `cfg` is the whole
        config): a missing key is then named where it was looked for, and where it is instead."""

    def get(self, key: str, default: Any = None) -> Any:
        """The config's value (an explicit null means "unset": `default`), else the family default; a
        value of another type than `KEY_TYPES` gives its key raises InputError."""
        if key in self.cfg:
            value = self.cfg[key]
            if value is None:
                return default
            check_key_type(self.name, key, value)
            return value
        if key in self.defaults:
            return self.defaults[key]
        return default

    def has(self, key: str) -> bool:
        return self.get(key) is not None

    def num(self, *keys: str, default: Any = _MISSING, allow_zero: bool = False) -> int:
        """The first present key among `keys` (aliases), validated as a positive integer."""
        for key in keys:
            value = self.get(key)
            if value is not None:
                return self._check(key, value, allow_zero)
        if default is _MISSING:
            raise InputError(self._missing(keys))
        return int(default)

    def _missing(self, keys: tuple[str, ...]) -> str:
        """The message for a required key absent under all its aliases `keys`: where the text model's
        keys are read from a nested `text_config` (multimodal configs: Llama 4, Gemma 3, Qwen-VL,
        Mistral 3), the key is named there, and a top-level one is said to be read from there, not
        the top level (a flat llama config with a stray `text_config` was "missing" a key it held)."""
        at = "text_config." if self.outer is not None else ""
        also = f" (also looked for {', '.join(f'`{at}{k}`' for k in keys[1:])})" if len(keys) > 1 else ""
        head = f"{self.name}: config.json (model_type {self.model_type!r}) is missing `{at}{keys[0]}`{also}"
        top = next((k for k in keys if self.outer is not None and self.outer.get(k) is not None), None)
        if top is None:
            return head + "; add it to the config"
        return (
            f"{head}; its `{top}` is at the top level, but the text model's keys are read from "
            "`text_config` when one is present (as transformers' `get_text_config` does): move them "
            "into `text_config`, or remove `text_config` from a flat config"
        )

    def _check(self, key: str, value: Any, allow_zero: bool) -> int:
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not (isinstance(value, numbers.Integral) or float(value).is_integer())
        ):
            raise InputError(f"{self.name}: `{key}` must be an integer, got {clean_text(repr(value), 40)}")
        v = int(float(value)) if not isinstance(value, numbers.Integral) else int(value)
        if v < 0 or (v == 0 and not allow_zero):
            raise InputError(f"{self.name}: `{key}` must be {'>= 0' if allow_zero else 'positive'}, got {v}")
        limit = CONFIG_LIMITS.get(key, MAX_CONFIG_INT)
        if v > limit:
            raise InputError(
                f"{self.name}: `{key}` = {clean_text(str(v), 40)} is above {limit:,}, the most "
                "autoparallel plans for (config_bounds)"
            )
        return v

    def flag(self, key: str, default: bool = False) -> bool:
        """A boolean key (null or absent: `default`); any other JSON type raises InputError naming it
        (transformers' config classes type these flags `bool`; a string "yes" or a 5 is no answer)."""
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise InputError(f"{self.name}: `{key}` must be true or false, got {clean_text(repr(value), 40)}")
        return value


DROPOUT_KEYS = (
    "attention_dropout",
    "hidden_dropout",
    "resid_pdrop",
    "embd_pdrop",
    "emb_pdrop",
    "attn_pdrop",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "dropout",
    "activation_dropout",
    "ffn_dropout",
    "residual_dropout",
    "embedding_dropout",
)
"""Dropout probabilities of the text model, under the names families use (Llama / Qwen / Mistral /
BLOOM / NeoX: attention_dropout, hidden_dropout; GPT-2 / Phi: resid_pdrop, embd_pdrop, attn_pdrop;
MPT / DBRX: resid_pdrop, emb_pdrop and attn_config.attn_pdrop; OPT: dropout, attention_dropout,
activation_dropout; BERT-style: hidden_dropout_prob, attention_probs_dropout_prob; StarCoder2:
attention_dropout, residual_dropout, embedding_dropout)."""


def trains_with_dropout(r: RawConfig) -> bool:
    """Any dropout probability of the config (or its family default) is > 0; `attn_config` (MPT,
    DBRX) is looked into. Non-numeric values are ignored."""
    nested = r.get("attn_config")
    values = [r.get(k) for k in DROPOUT_KEYS]
    if isinstance(nested, Mapping):
        values += [nested.get(k) for k in DROPOUT_KEYS]
    return any(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in values)


@dataclass
class Parts:
    """What a family builder returns."""

    layers: list[LayerSpec]
    embedding: int
    lm_head: int
    final_norm: int
    mtp_layers: int = 0
    mtp_params: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Family:
    """How one model_type is parsed: its builder, and the transformers config-class defaults for keys
    that published configs omit (`transformers/models/<family>/configuration_<family>.py`)."""

    build: Callable[[RawConfig], Parts]
    defaults: Mapping[str, Any]


# ----- shared shapes ------------------------------------------------------------------------------
def linear_params(n_in: int, n_out: int, bias: bool = False) -> int:
    return n_in * n_out + (n_out if bias else 0)


def gqa_attention(
    h: int,
    nh: int,
    nkv: int,
    hd: int,
    *,
    qkv_bias: bool = False,
    o_bias: bool = False,
    qk_norm: bool = False,
    q_gate: bool = False,
    sinks: bool = False,
) -> int:
    """q/k/v/o projections (+ biases, per-head q/k norms, output gate, attention sinks)."""
    q_out = nh * hd * (2 if q_gate else 1)
    n = (
        linear_params(h, q_out, qkv_bias)
        + 2 * linear_params(h, nkv * hd, qkv_bias)
        + linear_params(nh * hd, h, o_bias)
    )
    if qk_norm:
        n += 2 * hd
    if sinks:
        n += nh
    return n


def mlp_params(h: int, i: int, gated: bool = True, bias: bool = False) -> int:
    if gated:
        return 3 * h * i + (2 * i + h if bias else 0)
    return linear_params(h, i, bias) + linear_params(i, h, bias)


def dense_layer(
    att: AttentionSpec,
    attention: int,
    h: int,
    i: int,
    norms: int,
    *,
    gated: bool = True,
    mlp_bias: bool = False,
) -> LayerSpec:
    return LayerSpec(
        attention=att,
        mlp=MlpSpec(kind=MlpKind.DENSE, intermediate_size=i, gated=gated),
        params=ParamGroups(attention=attention, dense_mlp=mlp_params(h, i, gated, mlp_bias), norms=norms),
    )


def moe_layer(
    att: AttentionSpec,
    attention: int,
    h: int,
    *,
    experts: int,
    top_k: int,
    expert_i: int,
    router: int,
    norms: int,
    shared: int = 0,
    shared_i: int = 0,
    shared_extra: int = 0,
    expert_bias: bool = False,
) -> LayerSpec:
    """MoE layer; `shared` shared experts of width `shared_i` (`shared_extra`: e.g. a shared-expert gate)."""
    routed = experts * mlp_params(h, expert_i, True, expert_bias)
    return LayerSpec(
        attention=att,
        mlp=MlpSpec(
            kind=MlpKind.MOE,
            intermediate_size=expert_i,
            num_experts=experts,
            experts_per_token=top_k,
            num_shared_experts=shared,
            shared_intermediate_size=shared_i,
        ),
        params=ParamGroups(
            attention=attention,
            routed_experts=routed,
            shared_experts=(mlp_params(h, shared_i * shared) if shared else 0) + shared_extra,
            router=router,
            norms=norms,
        ),
    )


def softmax_spec(kind: AttentionKind, nh: int, nkv: int, hd: int, window: int | None = None) -> AttentionSpec:
    if kind is AttentionKind.FULL:
        window = None
    return AttentionSpec(
        kind=kind, num_heads=nh, num_kv_heads=nkv, head_dim=hd, v_head_dim=hd, window_tokens=window
    )


def read_heads(r: RawConfig) -> tuple[int, int, int, int]:
    """(hidden, heads, kv heads, head_dim) with the usual fallbacks."""
    h = r.num(*HIDDEN_KEYS)
    nh = r.num("num_attention_heads", "n_head", "num_heads")
    nkv = r.num("num_key_value_heads", default=nh)
    hd = r.num("head_dim", default=h // nh)
    if nh > h:
        raise InputError(f"{r.name}: num_attention_heads ({nh}) exceeds hidden_size ({h})")
    return h, nh, nkv, hd


def layer_kinds(r: RawConfig, n_layers: int, default: Callable[[int], str]) -> list[str]:
    """Per-layer attention type names (`layer_types` if the config has it, else the family pattern)."""
    types = r.get("layer_types")
    if types is not None and not isinstance(types, list):
        raise InputError(f"{r.name}: `layer_types` must be a list, got {type(types).__name__}")
    if types:
        if len(types) != n_layers:
            raise InputError(f"{r.name}: `layer_types` has {len(types)} entries for {n_layers} layers")
        return [str(t) for t in types]
    return [default(i) for i in range(n_layers)]


_KIND_BY_TYPE = {
    "full_attention": AttentionKind.FULL,
    "sliding_attention": AttentionKind.SLIDING,
    "chunked_attention": AttentionKind.CHUNKED,
    "linear_attention": AttentionKind.LINEAR,
}


def attention_kind(r: RawConfig, type_name: str) -> AttentionKind:
    """The AttentionKind of one `layer_types` entry."""
    try:
        return _KIND_BY_TYPE[type_name]
    except KeyError:
        raise InputError(f"{r.name}: unknown layer type {type_name!r} in `layer_types`") from None


TIE_DEFAULT = True
"""`tie_word_embeddings` where neither the config nor its family's defaults set it: transformers'
`PreTrainedConfig` default (`configuration_utils.py`), which every config class without its own default
(Cohere's `CohereConfig`, Starcoder2's, remote-code classes) inherits."""


def decoder_parts(r: RawConfig, layers: list[LayerSpec], vocab: int, h: int) -> Parts:
    """A decoder's parts: token embedding, output head (none when tied, `TIE_DEFAULT` when unset), one
    final norm weight."""
    head = 0 if r.flag("tie_word_embeddings", TIE_DEFAULT) else vocab * h
    return Parts(layers=layers, embedding=vocab * h, lm_head=head, final_norm=h)


def mtp_module_params(h: int, block: int) -> int:
    """One MTP module around a decoder block of `block` parameters: eh_proj / fc (2h -> h, no bias) and
    three norms (enorm + hnorm + the module's final norm)."""
    return 2 * h * h + 3 * h + block


def add_mtp(r: RawConfig, parts: Parts, h: int) -> None:
    """DeepSeek-V3 / GLM-4.5 MTP modules: enorm, hnorm, eh_proj (2h -> h), one decoder block (as the last
    layer) and shared_head.norm. The embedding and output head are shared with the main model and not
    counted again (the checkpoint stores copies of them in the MTP layer; vLLM shares them)."""
    mtp = r.num("num_nextn_predict_layers", default=0, allow_zero=True)
    if not mtp:
        return
    parts.mtp_layers = mtp
    parts.mtp_params = mtp * mtp_module_params(h, parts.layers[-1].params.total)
    parts.notes.append(
        f"mtp counts {mtp} MTP module(s) of unique parameters: eh_proj (2h x h), enorm, hnorm, "
        "shared_head.norm and one decoder block like the last layer; the embedding and output head the "
        "checkpoint copies into the MTP layer are shared with the main model and not counted again."
    )
