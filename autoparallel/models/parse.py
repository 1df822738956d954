"""Parse a raw Hugging Face `config.json` dict into a ModelSpec, without transformers.

Every count is exact: each family's builder mirrors the parameter shapes of its transformers
modeling code (checked module by module on the meta device in tests/models/test_meta_device.py).
Keys a family's configs may omit are filled from that family's transformers config-class defaults
(`transformers/models/<family>/configuration_<family>.py`); a key without a family default is
required and its absence raises InputError naming it.

Multimodal configs (`text_config` + `vision_config`: Gemma 3, Llama 4) are parsed from their text
config; the vision tower is counted in the `vision` group where its modeling is known.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from autoparallel.errors import InputError
from autoparallel.models.quant import QuantMethod, QuantSpec
from autoparallel.models.spec import (
    AttentionKind,
    AttentionSpec,
    LayerSpec,
    MlpKind,
    MlpSpec,
    ModelSpec,
    ParamGroups,
)

_MISSING: Any = object()

# Defaults of the transformers config classes, for keys that published configs omit.
_FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "llama": {"tie_word_embeddings": False, "attention_bias": False, "mlp_bias": False,
              "max_position_embeddings": 2048},
    "mistral": {"tie_word_embeddings": False, "sliding_window": 4096, "max_position_embeddings": 131072},
    "mixtral": {"tie_word_embeddings": False, "sliding_window": None, "num_local_experts": 8,
                "num_experts_per_tok": 2, "max_position_embeddings": 131072},
    "qwen2": {"tie_word_embeddings": False, "use_sliding_window": False, "max_position_embeddings": 32768},
    "qwen3": {"tie_word_embeddings": False, "use_sliding_window": False, "attention_bias": False,
              "max_position_embeddings": 32768},
    "qwen2_moe": {"tie_word_embeddings": False, "decoder_sparse_step": 1, "mlp_only_layers": [],
                  "qkv_bias": True, "max_position_embeddings": 32768},
    "qwen3_moe": {"tie_word_embeddings": False, "decoder_sparse_step": 1, "mlp_only_layers": [],
                  "attention_bias": False, "max_position_embeddings": 32768},
    "qwen3_next": {"tie_word_embeddings": False, "decoder_sparse_step": 1, "mlp_only_layers": [],
                   "attention_bias": False, "full_attention_interval": 4, "head_dim": 256,
                   "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128, "linear_value_head_dim": 128,
                   "linear_num_key_heads": 16, "linear_num_value_heads": 32,
                   "max_position_embeddings": 32768},
    "deepseek_v2": {"tie_word_embeddings": False, "attention_bias": False, "first_k_dense_replace": 0,
                    "moe_layer_freq": 1, "n_shared_experts": 2, "kv_lora_rank": 512, "q_lora_rank": 1536,
                    "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
                    "topk_method": "greedy", "num_nextn_predict_layers": 0, "max_position_embeddings": 2048},
    "deepseek_v3": {"tie_word_embeddings": False, "attention_bias": False, "first_k_dense_replace": 3,
                    "moe_layer_freq": 1, "n_shared_experts": 1, "kv_lora_rank": 512, "q_lora_rank": 1536,
                    "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
                    "topk_method": "noaux_tc", "num_nextn_predict_layers": 0,
                    "max_position_embeddings": 4096},
    "llama4_text": {"tie_word_embeddings": False, "attention_bias": False, "interleave_moe_layer_step": 1,
                    "no_rope_layer_interval": 4, "attention_chunk_size": 8192, "num_local_experts": 16,
                    "num_experts_per_tok": 1, "intermediate_size_mlp": 16384, "head_dim": 128,
                    "max_position_embeddings": 131072},
    "gpt_oss": {"tie_word_embeddings": False, "attention_bias": True, "sliding_window": 128, "head_dim": 64,
                "num_local_experts": 128, "num_experts_per_tok": 4, "max_position_embeddings": 131072},
    "gemma": {"tie_word_embeddings": True, "attention_bias": False, "max_position_embeddings": 8192},
    "gemma2": {"tie_word_embeddings": True, "attention_bias": False, "sliding_window": 4096,
               "head_dim": 256, "max_position_embeddings": 8192},
    "gemma3_text": {"vocab_size": 262_208, "hidden_size": 2304, "intermediate_size": 9216,
                    "num_hidden_layers": 26, "num_attention_heads": 8, "num_key_value_heads": 4,
                    "head_dim": 256, "max_position_embeddings": 131_072, "tie_word_embeddings": True,
                    "attention_bias": False, "sliding_window": 4096, "sliding_window_pattern": 6},
    "phi3": {"tie_word_embeddings": False, "sliding_window": None, "max_position_embeddings": 4096},
    "glm4_moe": {"tie_word_embeddings": False, "attention_bias": False, "first_k_dense_replace": 1,
                 "n_shared_experts": 1, "use_qk_norm": False, "num_nextn_predict_layers": 1,
                 "max_position_embeddings": 131072},
    "gpt2": {"tie_word_embeddings": True, "n_inner": None, "n_positions": 1024},
    "gpt_neox": {"tie_word_embeddings": False, "attention_bias": True, "max_position_embeddings": 2048},
    "opt": {"tie_word_embeddings": True, "enable_bias": True, "do_layer_norm_before": True,
            "_remove_final_layer_norm": False, "layer_norm_elementwise_affine": True,
            "max_position_embeddings": 2048},
    "bloom": {"tie_word_embeddings": True},
}
_FAMILY_DEFAULTS["kimi_k2"] = _FAMILY_DEFAULTS["deepseek_v3"]

_SIGLIP_DEFAULTS: dict[str, Any] = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                                    "num_channels": 3, "image_size": 224, "patch_size": 16,
                                    "vision_use_head": True, "num_attention_heads": 12}
_LLAMA4_VISION_DEFAULTS: dict[str, Any] = {
    "hidden_size": 768, "num_hidden_layers": 34, "num_channels": 3, "intermediate_size": 5632,
    "vision_output_dim": 7680, "image_size": 448, "patch_size": 14, "projector_input_dim": 4096,
    "projector_output_dim": 4096, "multi_modal_projector_bias": False}

# Outer multimodal model_type -> model_type of its text model.
_TEXT_TYPE = {"gemma3": "gemma3_text", "llama4": "llama4_text"}


class _Raw:
    """Typed, validated access to one config dict (plus family defaults)."""

    def __init__(self, cfg: Mapping[str, Any], defaults: Mapping[str, Any], name: str,
                 model_type: str) -> None:
        self.cfg = cfg
        self.defaults = defaults
        self.name = name
        self.model_type = model_type

    def get(self, key: str, default: Any = None) -> Any:
        """The config's value (an explicit null means "unset": `default`), else the family default."""
        if key in self.cfg:
            value = self.cfg[key]
            return default if value is None else value
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
            raise InputError(
                f"{self.name}: config.json (model_type {self.model_type!r}) is missing `{keys[0]}`"
                + (f" (also looked for {', '.join(f'`{k}`' for k in keys[1:])})" if len(keys) > 1 else "")
                + "; add it to the config")
        return int(default)

    def _check(self, key: str, value: Any, allow_zero: bool) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise InputError(f"{self.name}: `{key}` must be an integer, got {value!r}")
        v = int(value)
        if v < 0 or (v == 0 and not allow_zero):
            raise InputError(f"{self.name}: `{key}` must be {'>= 0' if allow_zero else 'positive'}, got {v}")
        return v

    def flag(self, key: str, default: bool = False) -> bool:
        return bool(self.get(key, default))


@dataclass
class _Parts:
    """What a family builder returns."""

    layers: list[LayerSpec]
    embedding: int
    lm_head: int
    final_norm: int
    mtp_layers: int = 0
    mtp_params: int = 0
    notes: list[str] = field(default_factory=list)


# ----- shared shapes ------------------------------------------------------------------------------
def _linear(n_in: int, n_out: int, bias: bool = False) -> int:
    return n_in * n_out + (n_out if bias else 0)


def _gqa_attention(h: int, nh: int, nkv: int, hd: int, *, qkv_bias: bool = False, o_bias: bool = False,
                   qk_norm: bool = False, q_gate: bool = False, sinks: bool = False) -> int:
    """q/k/v/o projections (+ biases, per-head q/k norms, output gate, attention sinks)."""
    q_out = nh * hd * (2 if q_gate else 1)
    n = _linear(h, q_out, qkv_bias) + 2 * _linear(h, nkv * hd, qkv_bias) + _linear(nh * hd, h, o_bias)
    if qk_norm:
        n += 2 * hd
    if sinks:
        n += nh
    return n


def _mlp(h: int, i: int, gated: bool = True, bias: bool = False) -> int:
    if gated:
        return 3 * h * i + (2 * i + h if bias else 0)
    return _linear(h, i, bias) + _linear(i, h, bias)


def _dense_layer(att: AttentionSpec, attention: int, h: int, i: int, norms: int, *, gated: bool = True,
                 mlp_bias: bool = False) -> LayerSpec:
    return LayerSpec(
        attention=att,
        mlp=MlpSpec(kind=MlpKind.DENSE, intermediate_size=i, gated=gated),
        params=ParamGroups(attention=attention, dense_mlp=_mlp(h, i, gated, mlp_bias), norms=norms),
    )


def _moe_layer(att: AttentionSpec, attention: int, h: int, *, experts: int, top_k: int, expert_i: int,
               router: int, norms: int, shared: int = 0, shared_i: int = 0, shared_extra: int = 0,
               expert_bias: bool = False) -> LayerSpec:
    """MoE layer; `shared` shared experts of width `shared_i` (`shared_extra`: e.g. a shared-expert gate)."""
    routed = experts * _mlp(h, expert_i, True, expert_bias)
    return LayerSpec(
        attention=att,
        mlp=MlpSpec(kind=MlpKind.MOE, intermediate_size=expert_i, num_experts=experts,
                    experts_per_token=top_k, num_shared_experts=shared, shared_intermediate_size=shared_i),
        params=ParamGroups(attention=attention, routed_experts=routed,
                           shared_experts=(_mlp(h, shared_i * shared) if shared else 0) + shared_extra,
                           router=router, norms=norms),
    )


def _softmax_spec(kind: AttentionKind, nh: int, nkv: int, hd: int,
                  window: int | None = None) -> AttentionSpec:
    if kind is AttentionKind.FULL:
        window = None
    return AttentionSpec(kind=kind, num_heads=nh, num_kv_heads=nkv, head_dim=hd, v_head_dim=hd,
                         window_tokens=window)


def _heads(r: _Raw) -> tuple[int, int, int, int]:
    """(hidden, heads, kv heads, head_dim) with the usual fallbacks."""
    h = r.num("hidden_size", "n_embd", "n_embed", "d_model")
    nh = r.num("num_attention_heads", "n_head", "num_heads")
    nkv = r.num("num_key_value_heads", default=nh)
    hd = r.num("head_dim", default=h // nh)
    if nh > h:
        raise InputError(f"{r.name}: num_attention_heads ({nh}) exceeds hidden_size ({h})")
    return h, nh, nkv, hd


def _layer_kinds(r: _Raw, n_layers: int, default: Callable[[int], str]) -> list[str]:
    """Per-layer attention type names (`layer_types` if the config has it, else the family pattern)."""
    types = r.get("layer_types")
    if isinstance(types, list) and types:
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


def _kind(r: _Raw, type_name: str) -> AttentionKind:
    try:
        return _KIND_BY_TYPE[type_name]
    except KeyError:
        raise InputError(f"{r.name}: unknown layer type {type_name!r} in `layer_types`") from None


def _embedding_and_head(r: _Raw, vocab: int, h: int) -> tuple[int, int, bool]:
    tie = r.flag("tie_word_embeddings")
    return vocab * h, 0 if tie else vocab * h, tie


# ----- family builders ----------------------------------------------------------------------------
def _llama_like(r: _Raw) -> _Parts:
    """Llama 1-3.3, Mistral, Qwen2/2.5, Qwen3, Phi-3/4, Gemma 1/2/3 and unknown llama-like types."""
    mt = r.model_type
    h, nh, nkv, hd = _heads(r)
    n = r.num("num_hidden_layers", "n_layer", "num_layers")
    i = r.num("intermediate_size")
    vocab = r.num("vocab_size")
    qkv_bias = r.flag("attention_bias") or mt == "qwen2" or r.flag("qkv_bias")
    o_bias = r.flag("attention_bias") and mt != "qwen2"
    qk_norm = mt in ("qwen3", "gemma3_text")
    gemma = mt.startswith("gemma")
    norms = (4 if mt in ("gemma2", "gemma3_text") else 2) * h
    window = r.get("sliding_window")
    if mt == "gemma3_text":
        pattern = r.num("sliding_window_pattern", "_sliding_window_pattern")
        kinds = _layer_kinds(r, n, lambda j: "sliding_attention" if (j + 1) % pattern else "full_attention")
    elif mt == "gemma2":
        kinds = _layer_kinds(r, n, lambda j: "sliding_attention" if j % 2 == 0 else "full_attention")
    elif mt in ("qwen2", "qwen3"):
        use = r.flag("use_sliding_window") and window
        mwl = r.num("max_window_layers", default=n, allow_zero=True)
        kinds = _layer_kinds(r, n, lambda j: "sliding_attention" if use and j >= mwl else "full_attention")
    else:
        kinds = _layer_kinds(r, n, lambda j: "sliding_attention" if window else "full_attention")
    layers = []
    attention = _gqa_attention(h, nh, nkv, hd, qkv_bias=qkv_bias, o_bias=o_bias, qk_norm=qk_norm)
    for j in range(n):
        att = _softmax_spec(_kind(r, kinds[j]), nh, nkv, hd, window)
        layers.append(_dense_layer(att, attention, h, i, norms, mlp_bias=r.flag("mlp_bias")))
    emb, head, _ = _embedding_and_head(r, vocab, h)
    parts = _Parts(layers=layers, embedding=emb, lm_head=head, final_norm=h)
    if gemma:
        parts.notes.append("Gemma norms are RMSNorm(1 + w): one weight vector each.")
    return parts


def _moe_llama_like(r: _Raw) -> _Parts:
    """Mixtral, Qwen2-MoE, Qwen3-MoE: GQA attention + routed experts (+ Qwen2-MoE shared expert)."""
    mt = r.model_type
    h, nh, nkv, hd = _heads(r)
    n = r.num("num_hidden_layers")
    vocab = r.num("vocab_size")
    experts = r.num("num_local_experts", "num_experts")
    top_k = r.num("num_experts_per_tok")
    moe_width = mt != "mixtral" and (mt in ("qwen2_moe", "qwen3_moe") or r.has("moe_intermediate_size"))
    expert_i = r.num("moe_intermediate_size") if moe_width else r.num("intermediate_size")
    qkv_bias = (mt == "qwen2_moe" and r.flag("qkv_bias", True)) or r.flag("attention_bias")
    attention = _gqa_attention(h, nh, nkv, hd, qkv_bias=qkv_bias, o_bias=r.flag("attention_bias"),
                               qk_norm=mt == "qwen3_moe" or r.flag("use_qk_norm"))
    window = r.get("sliding_window")
    use_window = bool(window) and (mt == "mixtral" or r.flag("use_sliding_window"))
    step = r.num("decoder_sparse_step", default=1)
    mlp_only = set(r.get("mlp_only_layers") or [])
    layers = []
    for j in range(n):
        kind = AttentionKind.SLIDING if use_window else AttentionKind.FULL
        att = _softmax_spec(kind, nh, nkv, hd, window)
        if j in mlp_only or (j + 1) % step:
            layers.append(_dense_layer(att, attention, h, r.num("intermediate_size"), 2 * h))
        elif mt == "qwen2_moe":
            shared_i = r.num("shared_expert_intermediate_size")
            layers.append(_moe_layer(att, attention, h, experts=experts, top_k=top_k, expert_i=expert_i,
                                     router=h * experts, norms=2 * h, shared=1, shared_i=shared_i,
                                     shared_extra=h))
        else:
            layers.append(_moe_layer(att, attention, h, experts=experts, top_k=top_k, expert_i=expert_i,
                                     router=h * experts, norms=2 * h))
    emb, head, _ = _embedding_and_head(r, vocab, h)
    return _Parts(layers=layers, embedding=emb, lm_head=head, final_norm=h)


def _qwen3_next(r: _Raw) -> _Parts:
    """Qwen3-Next: Gated DeltaNet linear attention, gated full attention every `full_attention_interval`."""
    h, nh, nkv, hd = _heads(r)
    n = r.num("num_hidden_layers")
    vocab = r.num("vocab_size")
    interval = r.num("full_attention_interval")
    kinds = _layer_kinds(r, n, lambda j: "full_attention" if (j + 1) % interval == 0 else "linear_attention")
    # Gated DeltaNet (modeling_qwen3_next.Qwen3NextGatedDeltaNet).
    nk, nv = r.num("linear_num_key_heads"), r.num("linear_num_value_heads")
    dk, dv = r.num("linear_key_head_dim"), r.num("linear_value_head_dim")
    kernel = r.num("linear_conv_kernel_dim")
    key_dim, value_dim = nk * dk, nv * dv
    linear = (h * (2 * key_dim + 2 * value_dim)      # in_proj_qkvz
              + h * 2 * nv                           # in_proj_ba
              + (2 * key_dim + value_dim) * kernel   # depthwise conv1d, no bias
              + 2 * nv                               # dt_bias, A_log
              + dv                                   # gated RMSNorm over the value head
              + value_dim * h)                       # out_proj
    full = _gqa_attention(h, nh, nkv, hd, qkv_bias=r.flag("attention_bias"), o_bias=r.flag("attention_bias"),
                          qk_norm=True, q_gate=True)
    linear_spec = AttentionSpec(kind=AttentionKind.LINEAR, num_heads=nk, num_kv_heads=nk, head_dim=dk,
                                v_head_dim=dv, linear_num_value_heads=nv, linear_conv_kernel=kernel)
    experts = r.num("num_experts")
    top_k = r.num("num_experts_per_tok")
    expert_i = r.num("moe_intermediate_size")
    shared_i = r.num("shared_expert_intermediate_size", default=0, allow_zero=True)
    step = r.num("decoder_sparse_step")
    mlp_only = set(r.get("mlp_only_layers") or [])
    layers = []
    for j in range(n):
        kind = _kind(r, kinds[j])
        if kind is AttentionKind.LINEAR:
            att, attention = linear_spec, linear
        else:
            att, attention = _softmax_spec(kind, nh, nkv, hd), full
        if j in mlp_only or (j + 1) % step:
            layers.append(_dense_layer(att, attention, h, r.num("intermediate_size"), 2 * h))
        else:
            layers.append(_moe_layer(att, attention, h, experts=experts, top_k=top_k, expert_i=expert_i,
                                     router=h * experts, norms=2 * h, shared=1 if shared_i else 0,
                                     shared_i=shared_i, shared_extra=h if shared_i else 0))
    emb, head, _ = _embedding_and_head(r, vocab, h)
    parts = _Parts(layers=layers, embedding=emb, lm_head=head, final_norm=h)
    parts.notes.append("shared_experts includes the 1-output shared_expert_gate.")
    mtp = r.num("num_nextn_predict_layers", "mtp_num_hidden_layers", default=0, allow_zero=True)
    if mtp:
        # Qwen3-Next MTP (vLLM qwen3_next_mtp.py): fc (2h -> h), pre_fc_norm_embedding, pre_fc_norm_hidden,
        # one full-attention MoE layer, final norm; embedding and head shared with the main model.
        block = layers[interval - 1] if n >= interval else layers[-1]
        parts.mtp_layers = mtp
        parts.mtp_params = mtp * (2 * h * h + 3 * h + block.params.total)
    return parts


def _mla_attention(r: _Raw, h: int, nh: int) -> tuple[AttentionSpec, int]:
    """DeepSeek multi-head latent attention (modeling_deepseek_v3.DeepseekV3Attention)."""
    q_lora = r.get("q_lora_rank")
    q_lora = 0 if q_lora is None else r.num("q_lora_rank", allow_zero=True)
    kv_lora = r.num("kv_lora_rank")
    nope, rope, v = r.num("qk_nope_head_dim"), r.num("qk_rope_head_dim"), r.num("v_head_dim")
    qk = nope + rope
    bias = r.flag("attention_bias")
    # with query compression: q_a_proj, q_a_layernorm, q_b_proj; without: q_proj
    q = _linear(h, q_lora, bias) + q_lora + q_lora * nh * qk if q_lora else h * nh * qk
    kv = _linear(h, kv_lora + rope, bias) + kv_lora + kv_lora * nh * (nope + v)
    o = _linear(nh * v, h, bias)
    spec = AttentionSpec(kind=AttentionKind.MLA, num_heads=nh, num_kv_heads=nh, head_dim=qk, v_head_dim=v,
                         kv_lora_rank=kv_lora, qk_rope_head_dim=rope, q_lora_rank=q_lora)
    return spec, q + kv + o


def _deepseek(r: _Raw) -> _Parts:
    """DeepSeek-V2/V3/R1, Kimi-K2: MLA, first_k_dense_replace dense layers, shared + routed experts, MTP."""
    h = r.num("hidden_size")
    nh = r.num("num_attention_heads")
    n = r.num("num_hidden_layers")
    vocab = r.num("vocab_size")
    att, attention = _mla_attention(r, h, nh)
    experts = r.num("n_routed_experts", default=0, allow_zero=True)
    first_dense = r.num("first_k_dense_replace", allow_zero=True)
    freq = r.num("moe_layer_freq")
    shared = r.num("n_shared_experts", default=0, allow_zero=True)
    has_bias = r.get("topk_method") == "noaux_tc"   # e_score_correction_bias (V3 routing)
    layers = []
    for j in range(n):
        if experts and j >= first_dense and j % freq == 0:
            layers.append(_moe_layer(att, attention, h, experts=experts, top_k=r.num("num_experts_per_tok"),
                                     expert_i=r.num("moe_intermediate_size"),
                                     router=h * experts + (experts if has_bias else 0), norms=2 * h,
                                     shared=shared, shared_i=r.num("moe_intermediate_size")))
        else:
            layers.append(_dense_layer(att, attention, h, r.num("intermediate_size"), 2 * h))
    emb, head, _ = _embedding_and_head(r, vocab, h)
    parts = _Parts(layers=layers, embedding=emb, lm_head=head, final_norm=h)
    if has_bias:
        parts.notes.append("router includes the e_score_correction_bias of each MoE gate.")
    _add_mtp(r, parts, h)
    return parts


def _add_mtp(r: _Raw, parts: _Parts, h: int) -> None:
    """DeepSeek-V3 / GLM-4.5 MTP modules: enorm, hnorm, eh_proj (2h -> h), one decoder block (as the last
    layer) and shared_head.norm. The embedding and output head are shared with the main model and not
    counted again (the checkpoint stores copies of them in the MTP layer; vLLM shares them)."""
    mtp = r.num("num_nextn_predict_layers", default=0, allow_zero=True)
    if not mtp:
        return
    block = parts.layers[-1].params.total
    parts.mtp_layers = mtp
    parts.mtp_params = mtp * (2 * h * h + 3 * h + block)
    parts.notes.append(
        f"mtp counts {mtp} MTP module(s) of unique parameters: eh_proj (2h x h), enorm, hnorm, "
        "shared_head.norm and one decoder block like the last layer; the embedding and output head the "
        "checkpoint copies into the MTP layer are shared with the main model and not counted again.")


def _glm4_moe(r: _Raw) -> _Parts:
    """GLM-4.5 / 4.6: GQA (+ qkv bias, optional qk norm), first_k_dense_replace dense layers, MoE, MTP."""
    h, nh, nkv, hd = _heads(r)
    n = r.num("num_hidden_layers")
    vocab = r.num("vocab_size")
    attention = _gqa_attention(h, nh, nkv, hd, qkv_bias=r.flag("attention_bias"),
                               qk_norm=r.flag("use_qk_norm"))
    att = _softmax_spec(AttentionKind.FULL, nh, nkv, hd)
    experts = r.num("n_routed_experts")
    first_dense = r.num("first_k_dense_replace", allow_zero=True)
    shared = r.num("n_shared_experts", default=0, allow_zero=True)
    layers = []
    for j in range(n):
        if j >= first_dense:
            layers.append(_moe_layer(att, attention, h, experts=experts, top_k=r.num("num_experts_per_tok"),
                                     expert_i=r.num("moe_intermediate_size"), router=h * experts + experts,
                                     norms=2 * h, shared=shared, shared_i=r.num("moe_intermediate_size")))
        else:
            layers.append(_dense_layer(att, attention, h, r.num("intermediate_size"), 2 * h))
    emb, head, _ = _embedding_and_head(r, vocab, h)
    parts = _Parts(layers=layers, embedding=emb, lm_head=head, final_norm=h)
    parts.notes.append("router includes the e_score_correction_bias of each MoE gate.")
    _add_mtp(r, parts, h)
    return parts


def _llama4(r: _Raw) -> _Parts:
    """Llama 4: chunked attention on RoPE layers (3 of 4), NoPE full layers, MoE every `interleave` step."""
    h, nh, nkv, hd = _heads(r)
    n = r.num("num_hidden_layers")
    vocab = r.num("vocab_size")
    bias = r.flag("attention_bias")
    attention = _gqa_attention(h, nh, nkv, hd, qkv_bias=bias, o_bias=bias)
    step = r.num("interleave_moe_layer_step")
    moe_layers = r.get("moe_layers")
    moe_set = set(moe_layers) if isinstance(moe_layers, list) else set(range(step - 1, n, step))
    no_rope = r.get("no_rope_layers")
    interval = r.num("no_rope_layer_interval")
    if not isinstance(no_rope, list) or len(no_rope) != n:
        no_rope = [int((j + 1) % interval != 0) for j in range(n)]   # 1: RoPE (chunked), 0: NoPE (full)
    chunk = r.num("attention_chunk_size")
    kinds = _layer_kinds(r, n, lambda j: "chunked_attention" if no_rope[j] else "full_attention")
    experts = r.num("num_local_experts")
    top_k = r.num("num_experts_per_tok")
    expert_i = r.num("intermediate_size")
    layers = []
    for j in range(n):
        att = _softmax_spec(_kind(r, kinds[j]), nh, nkv, hd, chunk)
        if j in moe_set:
            layers.append(_moe_layer(att, attention, h, experts=experts, top_k=top_k, expert_i=expert_i,
                                     router=h * experts, norms=2 * h, shared=1, shared_i=expert_i))
        else:
            layers.append(_dense_layer(att, attention, h, r.num("intermediate_size_mlp"), 2 * h))
    emb, head, _ = _embedding_and_head(r, vocab, h)
    parts = _Parts(layers=layers, embedding=emb, lm_head=head, final_norm=h)
    parts.notes.append("Llama 4 qk norm is a weightless L2 norm (no parameters).")
    return parts


def _gpt_oss(r: _Raw) -> _Parts:
    """gpt-oss: alternating sliding/full attention with sinks and biases, biased experts and router."""
    h, nh, nkv, hd = _heads(r)
    n = r.num("num_hidden_layers")
    vocab = r.num("vocab_size")
    window = r.num("sliding_window")
    kinds = _layer_kinds(r, n, lambda j: "sliding_attention" if j % 2 == 0 else "full_attention")
    bias = r.flag("attention_bias")
    attention = _gqa_attention(h, nh, nkv, hd, qkv_bias=bias, o_bias=bias, sinks=True)
    experts = r.num("num_local_experts")
    top_k = r.num("num_experts_per_tok", "experts_per_token")
    expert_i = r.num("intermediate_size")
    layers = [
        _moe_layer(_softmax_spec(_kind(r, kinds[j]), nh, nkv, hd, window), attention, h,
                   experts=experts, top_k=top_k, expert_i=expert_i, router=h * experts + experts,
                   norms=2 * h, expert_bias=True)
        for j in range(n)
    ]
    emb, head, _ = _embedding_and_head(r, vocab, h)
    parts = _Parts(layers=layers, embedding=emb, lm_head=head, final_norm=h)
    parts.notes.append("attention includes one sink logit per head; router includes its bias.")
    return parts


def _classic(r: _Raw) -> _Parts:
    """GPT-2, GPT-NeoX, OPT, BLOOM: MHA with biases, 2-matrix MLP with biases, LayerNorm with bias."""
    mt = r.model_type
    h, nh, _, hd = _heads(r)
    n = r.num("num_hidden_layers", "n_layer", "num_layers")
    vocab = r.num("vocab_size")
    if mt == "gpt2":
        i = r.num("n_inner", default=4 * h)
        positions = r.num("n_positions") * h
    elif mt == "opt":
        i = r.num("ffn_dim")
        positions = (r.num("max_position_embeddings") + 2) * h   # OPTLearnedPositionalEmbedding offset 2
    elif mt == "gpt_neox":
        i = r.num("intermediate_size")
        positions = 0
    else:  # bloom: ALiBi, no positions
        i = 4 * h
        positions = 0
    bias = mt != "gpt_neox" or r.flag("attention_bias")
    ln = 2 * h
    attention = _gqa_attention(h, nh, nh, hd, qkv_bias=bias, o_bias=bias)
    att = _softmax_spec(AttentionKind.FULL, nh, nh, hd)
    layers = [_dense_layer(att, attention, h, i, 2 * ln, gated=False, mlp_bias=True) for _ in range(n)]
    embed_dim = h
    extra = 0
    if mt == "opt":
        embed_dim = r.num("word_embed_proj_dim", default=h)
        if embed_dim != h:
            extra = 2 * embed_dim * h   # project_in / project_out, no bias
    emb = vocab * embed_dim + positions + extra + (ln if mt == "bloom" else 0)
    tie = r.flag("tie_word_embeddings")
    head = 0 if tie else vocab * h
    final = ln
    if mt == "opt" and (not r.flag("do_layer_norm_before") or r.flag("_remove_final_layer_norm")):
        final = 0
    parts = _Parts(layers=layers, embedding=emb, lm_head=head, final_norm=final)
    if positions:
        parts.notes.append("embedding includes the learned position table.")
    if mt == "bloom":
        parts.notes.append("embedding includes word_embeddings_layernorm (weight + bias).")
    return parts


def _generic(r: _Raw) -> _Parts:
    """Unknown model_type: a llama-like decoder, with routed experts when the config names any."""
    experts = r.num("num_local_experts", "num_experts", "n_routed_experts", default=0, allow_zero=True)
    parts = _moe_llama_like(r) if experts else _llama_like(r)
    parts.notes.append(f"model_type {r.model_type!r} is not a known family: parsed as a generic llama-like "
                       f"{'MoE ' if experts else ''}decoder from its raw keys; family-specific parameters "
                       "(e.g. linear attention, MTP) are not counted.")
    return parts


_BUILDERS: dict[str, Callable[[_Raw], _Parts]] = {
    **dict.fromkeys(("llama", "mistral", "qwen2", "qwen3", "phi3", "gemma", "gemma2", "gemma3_text"),
                    _llama_like),
    **dict.fromkeys(("mixtral", "qwen2_moe", "qwen3_moe"), _moe_llama_like),
    "qwen3_next": _qwen3_next,
    **dict.fromkeys(("deepseek_v2", "deepseek_v3", "kimi_k2"), _deepseek),
    "glm4_moe": _glm4_moe,
    "llama4_text": _llama4,
    "gpt_oss": _gpt_oss,
    **dict.fromkeys(("gpt2", "gpt_neox", "opt", "bloom"), _classic),
}

KNOWN_MODEL_TYPES: tuple[str, ...] = tuple(sorted({*_BUILDERS, *_TEXT_TYPE}))
"""model_type values parsed with exact family rules (others: a generic llama-like parse)."""


# ----- vision towers ------------------------------------------------------------------------------
def _vision_params(outer_type: str, cfg: Mapping[str, Any], text_hidden: int, name: str) -> tuple[int, str]:
    """Vision tower + projector parameters, and a note (0 and a note when the tower is unknown)."""
    vcfg = cfg.get("vision_config")
    if not isinstance(vcfg, dict):
        return 0, ""
    if outer_type == "gemma3":
        v = _Raw(vcfg, _SIGLIP_DEFAULTS, name, "siglip_vision_model")
        vh, vi, layers = v.num("hidden_size"), v.num("intermediate_size"), v.num("num_hidden_layers")
        p, img, ch = v.num("patch_size"), v.num("image_size"), v.num("num_channels")
        embed = ch * p * p * vh + vh + (img // p) ** 2 * vh
        layer = 2 * 2 * vh + 4 * _linear(vh, vh, True) + _linear(vh, vi, True) + _linear(vi, vh, True)
        head = 0
        if v.flag("vision_use_head"):
            # SiglipMultiheadAttentionPoolingHead: probe, MultiheadAttention (in/out proj), LN, MLP
            head = (vh + 3 * vh * vh + 3 * vh + vh * vh + vh + 2 * vh
                    + _linear(vh, vi, True) + _linear(vi, vh, True))
        projector = vh * text_hidden + vh   # mm_input_projection_weight, mm_soft_emb_norm
        note = "vision counts the SigLIP tower and projector."
        return embed + layers * layer + 2 * vh + head + projector, note
    if outer_type == "llama4":
        v = _Raw(vcfg, _LLAMA4_VISION_DEFAULTS, name, "llama4_vision_model")
        vh, vi, layers = v.num("hidden_size"), v.num("intermediate_size"), v.num("num_hidden_layers")
        p, img, ch = v.num("patch_size"), v.num("image_size"), v.num("num_channels")
        embed = vh + ((img // p) ** 2 + 1) * vh + ch * p * p * vh   # class emb, positions, patch linear
        layer = 4 * _linear(vh, vh, True) + _linear(vh, vi, True) + _linear(vi, vh, True) + 4 * vh
        adapter = vi * v.num("projector_input_dim") + v.num("projector_output_dim") ** 2
        projector = _linear(v.num("vision_output_dim"), text_hidden, v.flag("multi_modal_projector_bias"))
        total = embed + 4 * vh + layers * layer + adapter + projector
        return total, "vision counts the Llama 4 vision encoder, pixel-shuffle adapter and projector."
    return 0, f"vision_config ({vcfg.get('model_type', 'unknown')}) present but its tower is not counted."


# ----- quantization -------------------------------------------------------------------------------
def _not_converted(qc: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    keys = ("modules_to_not_convert", "ignored_layers", "ignore", "exclude_modules", "llm_int8_skip_modules")
    for key in keys:
        value = qc.get(key)
        if isinstance(value, list):
            out += [str(v) for v in value]
    return out


def _groups_without(excluded: list[str]) -> tuple[str, ...]:
    """Linear groups minus those a `modules_to_not_convert`-style list keeps unquantized."""
    groups = ["attention", "dense_mlp", "routed_experts", "shared_experts", "mtp"]
    if any(e.rstrip(".*").endswith(("self_attn", "attn", "attention")) for e in excluded):
        groups.remove("attention")
    if any(e.endswith("shared_expert") or e.endswith("shared_experts") for e in excluded):
        groups.remove("shared_experts")
    return tuple(groups)


def _qint(qc: Mapping[str, Any], name: str, keys: tuple[str, ...], default: int) -> int:
    for key in keys:
        value = qc.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int):
                raise InputError(f"{name}: quantization_config.{key} must be an integer, got {value!r}")
            return value
    return default


def quant_from_config(cfg: Mapping[str, Any], name: str) -> QuantSpec | None:
    """QuantSpec from `quantization_config` (GPTQ, AWQ, FP8, MXFP4, bitsandbytes, compressed-tensors,
    ModelOpt), or None for an unquantized checkpoint.

    Raises:
        InputError: a quantization method the planner cannot account for.
    """
    qc = cfg.get("quantization_config")
    if not isinstance(qc, dict):
        text = cfg.get("text_config")
        qc = text.get("quantization_config") if isinstance(text, dict) else None
    if not isinstance(qc, dict):
        return None
    method = str(qc.get("quant_method") or qc.get("quant_algo") or "").lower().replace("_", "-")
    excluded = _not_converted(qc)
    src = f"quantization_config.quant_method={method}"
    if method in ("gptq", "awq"):
        bits = _qint(qc, name, ("bits", "w_bit"), 4)
        group = _qint(qc, name, ("group_size", "q_group_size"), 128)
        return QuantSpec(method=QuantMethod(method), bits=bits, group_size=group,
                         quantized_groups=_groups_without(excluded),
                         source=f"{src}, bits={bits}, group_size={group}")
    if method == "fp8":
        block = qc.get("weight_block_size")
        if isinstance(block, list) and len(block) == 2:
            return QuantSpec(method=QuantMethod.FP8, bits=8, block_n=int(block[0]), block_k=int(block[1]),
                             quantized_groups=_groups_without(excluded),
                             source=f"{src}, weight_block_size={block}")
        return QuantSpec(method=QuantMethod.FP8, bits=8, quantized_groups=_groups_without(excluded),
                         source=f"{src}, per-tensor scales")
    if method == "mxfp4":
        return QuantSpec(method=QuantMethod.MXFP4, bits=4, group_size=32,
                         quantized_groups=("routed_experts",),
                         source=f"{src}: routed experts only (modules_to_not_convert: {', '.join(excluded)})")
    if method == "bitsandbytes":
        four = bool(qc.get("load_in_4bit"))
        dq = bool(qc.get("bnb_4bit_use_double_quant", False))
        return QuantSpec(method=QuantMethod.BITSANDBYTES, bits=4 if four else 8, double_quant=dq,
                         group_size=64, quantized_groups=_groups_without(excluded),
                         source=f"{src}, {'nf4' if four else 'int8'}, double_quant={dq}")
    if method == "modelopt":
        algo = str(qc.get("quant_algo", "")).upper()
        if algo == "FP8":
            return QuantSpec(method=QuantMethod.FP8, bits=8, quantized_groups=_groups_without(excluded),
                             source="ModelOpt quant_algo=FP8 (per-tensor scales)")
        raise InputError(f"{name}: ModelOpt quant_algo {algo!r} is not supported (only FP8)")
    if method == "compressed-tensors":
        return _compressed_tensors(qc, name, excluded)
    raise InputError(f"{name}: quantization method {method!r} is not supported "
                     "(gptq, awq, fp8, mxfp4, bitsandbytes, compressed-tensors, modelopt FP8)")


def _compressed_tensors(qc: Mapping[str, Any], name: str, excluded: list[str]) -> QuantSpec:
    groups = qc.get("config_groups")
    weights: Mapping[str, Any] = {}
    if isinstance(groups, dict) and groups:
        first = next(iter(groups.values()))
        if isinstance(first, dict) and isinstance(first.get("weights"), dict):
            weights = first["weights"]
    bits = int(weights.get("num_bits", 0) or 0)
    kind = str(weights.get("type", "int"))
    strategy = str(weights.get("strategy", "tensor"))
    src = f"compressed-tensors: {kind}{bits}, strategy={strategy}"
    keep = _groups_without(excluded)
    if kind == "float" and bits == 8:
        block = weights.get("block_structure")
        if strategy == "block" and isinstance(block, list) and len(block) == 2:
            return QuantSpec(method=QuantMethod.FP8, bits=8, block_n=int(block[0]), block_k=int(block[1]),
                             quantized_groups=keep, source=src)
        return QuantSpec(method=QuantMethod.FP8, bits=8, per_channel=strategy == "channel",
                         quantized_groups=keep, source=src)
    if kind == "int" and bits in (2, 3, 4, 8) and strategy == "group":
        return QuantSpec(method=QuantMethod.GPTQ, bits=bits, group_size=int(weights.get("group_size") or 128),
                         quantized_groups=keep, source=src + " (accounted as GPTQ-style packed groups)")
    if kind == "int" and bits == 8:
        return QuantSpec(method=QuantMethod.INT8, bits=8, per_channel=True, quantized_groups=keep, source=src)
    raise InputError(f"{name}: compressed-tensors weights {kind}{bits} ({strategy}) are not supported")


# ----- entry point --------------------------------------------------------------------------------
def _dtype_bytes(cfg: Mapping[str, Any], text: Mapping[str, Any]) -> int:
    raw = cfg.get("torch_dtype") or cfg.get("dtype") or text.get("torch_dtype") or text.get("dtype")
    table = {"bfloat16": 2, "float16": 2, "half": 2, "fp16": 2, "bf16": 2,
             "float32": 4, "float": 4, "fp32": 4}
    if raw is None:
        return 2
    return table.get(str(raw).replace("torch.", ""), 2)


def spec_from_config(cfg: dict[str, Any], *, name: str, published_total: int | None = None,
                     published_active: int | None = None, notes: str = "") -> ModelSpec:
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
    if not isinstance(cfg, dict):
        raise InputError(f"{name}: a config must be a JSON object, got {type(cfg).__name__}")
    outer_type = str(cfg.get("model_type") or "")
    text = cfg.get("text_config")
    if isinstance(text, dict):
        text_type = str(text.get("model_type") or _TEXT_TYPE.get(outer_type, outer_type))
        text_cfg: Mapping[str, Any] = text
    else:
        text_type = _TEXT_TYPE.get(outer_type, outer_type)
        text_cfg = cfg
    if not text_type:
        raise InputError(f"{name}: config.json has no `model_type`")
    builder = _BUILDERS.get(text_type, _generic)
    raw = _Raw(text_cfg, _FAMILY_DEFAULTS.get(text_type, {}), name, text_type)
    parts = builder(raw)
    if not parts.layers:
        raise InputError(f"{name}: the config has no decoder layers")
    hidden = raw.num("hidden_size", "n_embd", "n_embed", "d_model")
    vision, vision_note = _vision_params(outer_type, cfg, hidden, name)
    quant: QuantSpec | None = quant_from_config(cfg, name)
    all_notes = [notes] if notes else []
    all_notes += parts.notes
    if vision_note:
        all_notes.append(vision_note)
    return ModelSpec(
        name=name,
        model_type=text_type,
        hidden_size=hidden,
        vocab_size=raw.num("vocab_size"),
        max_position_embeddings=raw.num("max_position_embeddings", "n_positions", "seq_length",
                                        default=raw.get("n_ctx", 2048)),
        layers=tuple(parts.layers),
        tie_word_embeddings=parts.lm_head == 0,
        embedding_params=parts.embedding,
        lm_head_params=parts.lm_head,
        final_norm_params=parts.final_norm,
        mtp_layers=parts.mtp_layers,
        mtp_params=parts.mtp_params,
        vision_params=vision,
        dtype_bytes=_dtype_bytes(cfg, text_cfg),
        quantization=quant,
        published_total_params=published_total,
        published_active_params=published_active,
        notes=" ".join(all_notes),
    )
