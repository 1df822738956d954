"""Parse a config's `quantization_config` into a QuantSpec (GPTQ, AWQ, FP8, MXFP4, bitsandbytes,
compressed-tensors, ModelOpt FP8 and NVFP4), without transformers."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from typing import Any

import regex

from autoparallel.bounds import clean_text
from autoparallel.errors import InputError
from autoparallel.models.quant import QuantMethod, QuantSpec

_NOT_CONVERTED_KEYS = (
    "modules_to_not_convert",
    "ignored_layers",
    "ignore",
    "exclude_modules",
    "llm_int8_skip_modules",
)


def _not_converted(qc: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for key in _NOT_CONVERTED_KEYS:
        value = qc.get(key)
        if isinstance(value, list):
            out += [str(v) for v in value]
    return out


_LAYER_INDEX = regex.compile(r"layers?\W*[(\[]?\d")
r"""An entry naming decoder layers by index (`model.layers.0.self_attn`, `re:model\.layers\.(1[6-9])\..*`),
not every layer (`model.layers.*.self_attn`, `re:.*self_attn.*`)."""


def _names_layer_index(entry: str) -> bool:
    return _LAYER_INDEX.search(entry) is not None


_LM_HEAD_LIKE = frozenset({"lm_head", "model.embed_tokens", "embed_tokens"})


def _lm_head_like(entry: str) -> bool:
    """An `ignore` entry naming no decoder-layer linear layer: `lm_head` (or the embedding), plain or as
    a `re:` pattern around the name alone (`re:.*lm_head`, `re:^lm_head$`)."""
    body = entry.removeprefix("re:").strip("^$")
    while body.startswith(".*"):
        body = body[2:]
    while body.endswith(".*"):
        body = body[:-2]
    return body in _LM_HEAD_LIKE


def _groups_without(excluded: list[str], *, per_layer: bool = False) -> tuple[str, ...]:
    """Linear groups minus those a `modules_to_not_convert`-style list keeps unquantized. `per_layer`:
    the caller matches the entries naming layers by index on each layer (compressed-tensors `ignore`),
    so only the entries naming every layer drop a whole group here."""
    if per_layer:
        excluded = [e for e in excluded if not _names_layer_index(e)]
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


def _act_order(qc: Mapping[str, Any], group: int) -> bool:
    """A GPTQ config asks for group activation ordering: `desc_act` with a group size other than -1,
    in the config or in a positive `dynamic` rule (a `-:` rule skips its modules), as vLLM 0.32's
    `normalize_and_validate_gptq_desc_act` (`quantization/utils/gptq_utils.py`) reads it."""
    base = qc.get("desc_act") is True
    if base and group != -1:
        return True
    dynamic = qc.get("dynamic")
    if not isinstance(dynamic, Mapping):
        return False
    for pattern, rule in dynamic.items():
        if str(pattern).startswith("-:") or not isinstance(rule, Mapping):
            continue
        if rule.get("desc_act", base) is True and rule.get("group_size", group) != -1:
            return True
    return False


def _fp8(
    block: Any, groups: tuple[str, ...], source: str, name: str, *, per_channel: bool = False
) -> QuantSpec:
    """FP8 weights: block-scaled when `block` is given (an [n, k] pair of positive integers, as vLLM's
    `Fp8Config` requires: "The quantization block size of weight must have 2 dimensions"), else
    per-tensor (or per-channel)."""
    if block is not None:
        if not (
            isinstance(block, list)
            and len(block) == 2
            and all(isinstance(b, int) and not isinstance(b, bool) and 0 < b <= 1 << 16 for b in block)
        ):
            raise InputError(
                f"{name}: the FP8 weight block size must be two positive integers [n, k], "
                f"got {clean_text(repr(block), 40)}"
            )
        return QuantSpec(
            method=QuantMethod.FP8,
            bits=8,
            block_n=block[0],
            block_k=block[1],
            quantized_groups=groups,
            source=source,
        )
    return QuantSpec(
        method=QuantMethod.FP8, bits=8, per_channel=per_channel, quantized_groups=groups, source=source
    )


def _nvfp4(group: int, groups: tuple[str, ...], source: str, name: str) -> QuantSpec:
    """NVFP4 weights: E2M1 packed two per byte, an FP8 E4M3 scale per `group` (16) input elements;
    vLLM's and FlashInfer's FP4 GEMMs take 16 only (`FP4_MARLIN_SUPPORTED_GROUP_SIZES = [16]`)."""
    if group != 16:
        shown = str(group) if len(str(group)) <= 12 else str(group)[:12] + "..."
        raise InputError(f"{name}: NVFP4 with group_size {shown} is not supported (the kernels take 16)")
    return QuantSpec(
        method=QuantMethod.NVFP4, bits=4, group_size=group, quantized_groups=groups, source=source
    )


def quant_from_config(
    cfg: Mapping[str, Any],
    name: str,
    present: tuple[str, ...] | None = None,
    layers: Sequence[Any] | None = None,
    mtp_layers: int = 0,
) -> QuantSpec | None:
    """QuantSpec from `quantization_config` (GPTQ, AWQ, FP8, MXFP4, bitsandbytes, compressed-tensors,
    ModelOpt), or None for an unquantized checkpoint. `present`: the linear groups the model has
    (`quant.LINEAR_GROUPS` with parameters; None: all), which decide the primary scheme of a mixed
    layout and which groups a compressed-tensors config must cover. `layers`: each decoder layer's
    parameter counts by group (`LayerSpec.params`) and `mtp_layers` the MTP modules after them: a
    per-group rule is matched against every layer's names (None: layer 0's alone).

    Raises:
        InputError: a quantization method the planner cannot account for, a compressed-tensors
            config no group of which targets one of the model's linear layers (vLLM refuses it at load),
            or layer-name regexes slower than `REGEX_TIMEOUT_S` a name or `REGEX_TOTAL_S` in all.
    """
    token = _BUDGET.set(_RegexBudget())
    try:
        return _quant_from_config(cfg, name, present, _units(layers, mtp_layers))
    finally:
        _BUDGET.reset(token)


def _quant_from_config(
    cfg: Mapping[str, Any], name: str, present: tuple[str, ...] | None, units: _Units
) -> QuantSpec | None:
    qc = cfg.get("quantization_config")
    if qc is None:
        text = cfg.get("text_config")
        qc = text.get("quantization_config") if isinstance(text, dict) else None
    if qc is None:
        return None
    if not isinstance(qc, dict):
        raise InputError(f"{name}: `quantization_config` must be an object, got {type(qc).__name__}")
    method = str(qc.get("quant_method") or qc.get("quant_algo") or "").lower().replace("_", "-")
    excluded = _not_converted(qc)
    groups = _groups_without(excluded)
    src = f"quantization_config.quant_method={method}"
    if method in ("gptq", "awq"):
        bits = _qint(qc, name, ("bits", "w_bit"), 4)
        group = _qint(qc, name, ("group_size", "q_group_size"), 128)
        if method == "awq" and bits != 4:  # vLLM 0.32 AutoAWQConfig.TYPE_MAP, SGLang 0.5.6 AWQConfig
            raise InputError(
                f"{name}: AWQ checkpoints with {bits}-bit weights are not served "
                "(vLLM and SGLang run 4-bit AWQ only)"
            )
        if bits not in (2, 3, 4, 8):  # SGLang 0.5.6 GPTQConfig: "Currently, only 2/3/4/8-bit ..."
            raise InputError(f"{name}: GPTQ weights of {bits} bits are not served (2, 3, 4 or 8)")
        if group != -1 and not 1 <= group <= 1 << 16:
            raise InputError(f"{name}: quantization group_size {group} must be -1 (per channel) or positive")
        sym = qc.get("sym", True) is not False
        act_order = method == "gptq" and _act_order(qc, group)
        spec = QuantSpec(
            method=QuantMethod(method),
            bits=bits,
            group_size=group,
            symmetric=sym,
            act_order=act_order,
            quantized_groups=groups,
            source=f"{src}, bits={bits}, group_size={group}"
            + ("" if sym else ", asymmetric")
            + (", desc_act" if act_order else ""),
        )
        return _gptq_per_group(qc, spec, cfg, name, present, units) if method == "gptq" else spec
    if method == "fp8":
        block = qc.get("weight_block_size")
        if block is not None:
            return _fp8(block, groups, f"{src}, weight_block_size={clean_text(repr(block), 40)}", name)
        return _fp8(None, groups, f"{src}, per-tensor scales", name)
    if method == "mxfp4":
        return QuantSpec(
            method=QuantMethod.MXFP4,
            bits=4,
            group_size=32,
            quantized_groups=("routed_experts",),
            source=f"{src}: routed experts only (modules_to_not_convert: {', '.join(excluded)})",
        )
    if method == "bitsandbytes":
        four = bool(qc.get("load_in_4bit"))
        dq = bool(qc.get("bnb_4bit_use_double_quant", False))
        return QuantSpec(
            method=QuantMethod.BITSANDBYTES,
            bits=4 if four else 8,
            double_quant=dq,
            group_size=64,
            quantized_groups=groups,
            source=f"{src}, {'nf4' if four else 'int8'}, double_quant={dq}",
        )
    if method == "modelopt":
        algo = str(qc.get("quant_algo", "")).upper()
        kv = _modelopt_kv_dtype(qc)
        if algo == "FP8":
            spec = _fp8(None, groups, "ModelOpt quant_algo=FP8 (per-tensor scales)", name)
            return spec.model_copy(update={"kv_cache_dtype": kv})
        if algo == "NVFP4":
            group = _qint(qc, name, ("group_size",), 16)
            spec = _nvfp4(group, groups, f"ModelOpt quant_algo=NVFP4, group_size={group}", name)
            return spec.model_copy(update={"kv_cache_dtype": kv})
        raise InputError(f"{name}: ModelOpt quant_algo {algo!r} is not supported (FP8 and NVFP4 are)")
    if method == "compressed-tensors":
        groups = _groups_without(excluded, per_layer=True)
        spec = _compressed_tensors(qc, name, groups, _text_model_type(cfg), present, units)
        return spec.model_copy(update={"kv_cache_dtype": _compressed_tensors_kv_dtype(qc)})
    raise InputError(
        f"{name}: quantization method {method!r} is not supported "
        "(gptq, awq, fp8, mxfp4, bitsandbytes, compressed-tensors, modelopt FP8 / NVFP4)"
    )


def _modelopt_kv_dtype(qc: Mapping[str, Any]) -> str | None:
    """The KV dtype a ModelOpt checkpoint declares, as vLLM 0.32 resolves `--kv-cache-dtype auto` from it
    (`utils/torch_utils.py` `get_kv_cache_quant_algo_string`, called by `resolve_kv_cache_dtype_string`):
    `kv_cache_scheme` (the config.json form, a dict) before `kv_cache_quant_algo` (hf_quant_config.json,
    a string); a static 8-bit float scheme or "FP8" is `fp8_e4m3` (`MODELOPT_TO_VLLM_KV_CACHE_DTYPE_MAP`).
    SGLang 0.5.6 reads the same (`ModelOptFp8Config.from_config`: an 8-bit float `kv_cache_scheme` is
    `kv_cache_quant_algo` FP8). A declared NVFP4 cache is not a `--kv-cache-dtype` the planner prices, and
    anything else vLLM falls back to auto on: None, the model's dtype."""
    algo = qc.get("kv_cache_scheme") or qc.get("kv_cache_quant_algo")
    if isinstance(algo, Mapping):
        fp8 = algo.get("dynamic") is False and algo.get("num_bits") == 8 and algo.get("type") == "float"
        return "fp8_e4m3" if fp8 else None
    return "fp8_e4m3" if isinstance(algo, str) and algo.lower() == "fp8" else None


def _compressed_tensors_kv_dtype(qc: Mapping[str, Any]) -> str | None:
    """An FP8 KV cache where a compressed-tensors (llm-compressor) checkpoint declares an 8-bit float
    `kv_cache_scheme`: vLLM 0.32 `layers/attention/attention.py` `Attention.__init__` turns
    `--kv-cache-dtype auto` into `fp8` (E4M3 on CUDA) for a quant config with a `kv_cache_scheme`.
    Other schemes are None: vLLM refuses them at load (`CompressedTensorsKVCacheMethod.
    validate_kv_cache_scheme`: 8-bit float only), which is its refusal, not this parse's. (SGLang 0.5.6
    keeps the model dtype: its `ModelRunner.init_memory_pool` reads `kv_cache_quant_algo`, which its
    compressed-tensors config lacks.)"""
    scheme = qc.get("kv_cache_scheme")
    if isinstance(scheme, Mapping) and scheme.get("type") == "float" and scheme.get("num_bits") == 8:
        return "fp8_e4m3"
    return None


COMPRESSED_TENSORS_SOURCE = "compressed-tensors:"
"""How the `source` of every QuantSpec `_compressed_tensors` parses begins."""


def is_compressed_tensors(q: QuantSpec | None) -> bool:
    """`q` was parsed from a compressed-tensors (llm-compressor) `quantization_config`: the engines
    load it through their `CompressedTensorsConfig`, whose schemes (not the GPTQ, FP8 or INT8 configs
    the method names) decide what runs."""
    return q is not None and q.source.startswith(COMPRESSED_TENSORS_SOURCE)


def _ct_scheme(
    weights: Mapping[str, Any], activations: object, groups: tuple[str, ...], name: str
) -> QuantSpec:
    """The QuantSpec of one compressed-tensors config group's `weights` (and `input_activations`)."""
    bits = int(weights.get("num_bits", 0) or 0)
    kind = str(weights.get("type", "int"))
    strategy = str(weights.get("strategy", "tensor"))
    src = f"{COMPRESSED_TENSORS_SOURCE} {kind}{bits}, strategy={strategy}"
    if kind == "float" and bits == 4 and strategy == "tensor_group":
        return _nvfp4(int(weights.get("group_size") or 16), groups, src + " (NVFP4)", name)
    if kind == "float" and bits == 8:
        block = weights.get("block_structure") if strategy == "block" else None
        return _fp8(block, groups, src, name, per_channel=strategy == "channel")
    sub_byte_channel = strategy == "channel" and bits < 8
    if kind == "int" and bits in (2, 3, 4, 8) and (strategy == "group" or sub_byte_channel):
        # vLLM 0.32 `CompressedTensorsWNA16` takes "group" and "channel" (one scale per output row:
        # group_size -1), with or without zero points (`symmetric: false`, its ZP types); 8-bit
        # channel-wise weights are the INT8 branch below.
        sym = weights.get("symmetric", True) is not False
        return QuantSpec(
            method=QuantMethod.GPTQ,
            bits=bits,
            group_size=-1 if sub_byte_channel else int(weights.get("group_size") or 128),
            symmetric=sym,
            quantized_groups=groups,
            source=src + ("" if sym else ", asymmetric") + " (accounted as GPTQ-style packed groups)",
        )
    if kind == "int" and bits == 8:
        # No `input_activations`: W8A16 (vLLM `CompressedTensorsWNA16`, 16-bit activations), else W8A8.
        weight_only = not isinstance(activations, Mapping)
        return QuantSpec(
            method=QuantMethod.INT8,
            bits=8,
            per_channel=True,
            weight_only=weight_only,
            quantized_groups=groups,
            source=src + (" (W8A16)" if weight_only else " (W8A8)"),
        )
    raise InputError(f"{name}: compressed-tensors weights {kind}{bits} ({strategy}) are not supported")


# ----- per-group layouts: compressed-tensors `config_groups`, GPTQ `dynamic` -------------------------

_PRIMARY_ORDER = ("routed_experts", "dense_mlp", "shared_experts", "attention", "mtp")
"""The group whose scheme is a mixed layout's primary one (its method, kernels and divisibility rules):
the first the model has, in order of the bytes they usually hold."""

_MLA_TYPES = frozenset({"deepseek_v2", "deepseek_v3", "deepseek_v32", "kimi_k2"})

Member = tuple[str, tuple[str, ...]]
"""A linear layer as vLLM names it under `model.layers.{i}.` (fused: `self_attn.qkv_proj`) and the
checkpoint's shards it fuses (empty: unfused)."""

_Units = dict[str, tuple[tuple[int, float], ...]]
"""Per linear group: the layers holding it (vLLM's index i in `model.layers.{i}.`) and its parameters
there."""


def _units(layers: Sequence[Any] | None, mtp_layers: int) -> _Units:
    """Each linear group's decoder layers with the group's parameters in them (DeepSeek's dense-first
    layers hold no routed experts); the MTP modules are `model.layers.{num_hidden_layers + k}`, as
    vLLM's `DeepSeekMultiTokenPredictor` prefixes them, weighted alike. None: layer 0 alone."""
    if layers is None:
        return {g: ((0, 1.0),) for g in _PRIMARY_ORDER}
    out: _Units = {
        g: tuple((i, float(getattr(p, g))) for i, p in enumerate(layers) if getattr(p, g))
        for g in _PRIMARY_ORDER
        if g != "mtp"
    }
    out["mtp"] = tuple((len(layers) + k, 1.0) for k in range(max(mtp_layers, 1)))
    return out


def _layers_of(units: _Units, group: str) -> tuple[tuple[int, float], ...]:
    return units.get(group) or ((0, 1.0),)


_LayerRows = tuple[tuple[int, float | None, float], ...]
"""A group's layers: (layer index, bytes per weight or None for the checkpoint dtype, parameters)."""


def _over_layers(
    per_layer: list[tuple[QuantSpec | None, float]], indices: Sequence[int]
) -> tuple[QuantSpec | None, _LayerRows | None]:
    """One group's layers (`indices`), each priced by its own scheme (None: the checkpoint dtype),
    weighted by its parameters: the most common scheme (a tie: the costlier) and, when the layers
    differ, each layer's row (`QuantSpec.group_layer_mix`)."""
    weight_of: dict[object, float] = {}
    spec_of: dict[object, QuantSpec | None] = {}
    for spec, weight in per_layer:
        key = None if spec is None else _pricing(spec)
        weight_of[key] = weight_of.get(key, 0.0) + weight
        spec_of.setdefault(key, spec)
    if len(weight_of) == 1:
        return per_layer[0][0], None

    def cost(key: object) -> float:
        spec = spec_of[key]
        return float("inf") if spec is None else spec.bytes_per_weight

    common = max(weight_of, key=lambda k: (weight_of[k], cost(k)))
    rows = tuple(
        (i, None if spec is None else spec.bytes_per_weight, weight)
        for i, (spec, weight) in zip(indices, per_layer, strict=True)
    )
    return spec_of[common], rows


def _costliest(linears: Sequence[QuantSpec | None]) -> QuantSpec | None:
    """One layer's group priced at its most expensive linear layer (memory stays safe); None, the
    checkpoint dtype, when any of them is left unquantized."""
    if any(q is None for q in linears):
        return None
    return max((q for q in linears if q is not None), key=lambda q: q.bytes_per_weight)


def _group_over_layers(
    group: str,
    per_layer: list[tuple[QuantSpec | None, float]],
    units: _Units,
    mixes: dict[str, _LayerRows],
) -> QuantSpec | None:
    """`_over_layers` of `group`'s layers: its most common scheme (None: the checkpoint dtype), its
    layers' rows recorded in `mixes` where they differ."""
    common, mix = _over_layers(per_layer, [i for i, _ in _layers_of(units, group)])
    if mix is not None:
        mixes[group] = mix
    return common


def _mix_text(rows: _LayerRows) -> str:
    """A group's layer mix for the quantization source: its quantized share and their mean bytes."""
    total = sum(w for _, _, w in rows)
    quantized = [(b, w) for _, b, w in rows if b is not None]
    share = sum(w for _, w in quantized) / total
    mean = sum(b * w for b, w in quantized) / sum(w for _, w in quantized) if quantized else 0.0
    return f"{share:.0%} of its weights quantized, {mean:.3f} B each on average"


def _gate_up_down(
    path: str, gate: str = "gate_proj", up: str = "up_proj", down: str = "down_proj"
) -> tuple[Member, ...]:
    return ((f"{path}.gate_up_proj", (f"{path}.{gate}", f"{path}.{up}")), (f"{path}.{down}", ()))


def _members(model_type: str) -> dict[str, tuple[Member, ...]]:
    """The linear layers of each group, named as in the checkpoint of `model_type`'s family (Llama's
    names for families without their own: `self_attn.q_proj`, `mlp.gate_proj`, `mlp.experts.0.*`).
    vLLM fuses q/k/v and gate/up (`packed_modules_mapping`); routed experts are matched by their
    unfused names (`CompressedTensorsMoEMethod.get_moe_method`: `<experts>.0.gate_proj` ...)."""
    if model_type in _MLA_TYPES:
        attention: tuple[Member, ...] = tuple(
            (f"self_attn.{n}", ())
            for n in ("q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj")
        )
    else:
        qkv = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")
        attention = (("self_attn.qkv_proj", qkv), ("self_attn.o_proj", ()))
    mlp, experts, shared = "mlp", "mlp.experts.0", "mlp.shared_experts"
    if model_type == "mixtral":
        experts = "block_sparse_moe.experts.0"
    elif model_type == "llama4_text":
        mlp, experts, shared = "feed_forward", "feed_forward.experts.0", "feed_forward.shared_expert"
    elif model_type in ("qwen2_moe", "qwen3_next"):
        shared = "mlp.shared_expert"
    names = ("w1", "w3", "w2") if model_type == "mixtral" else ("gate_proj", "up_proj", "down_proj")
    routed = tuple((f"{experts}.{n}", ()) for n in names)
    return {
        "attention": attention,
        "dense_mlp": _gate_up_down(mlp),
        "routed_experts": routed,
        "shared_experts": _gate_up_down(shared),
        "mtp": attention + routed,
    }


def _fused_moe_path(model_type: str) -> str:
    """Where `model_type`'s FusedMoE module sits under `model.layers.{i}.` (its vLLM prefix)."""
    return _members(model_type)["routed_experts"][0][0].rsplit(".", 2)[0]


def _text_model_type(cfg: Mapping[str, Any]) -> str:
    text = cfg.get("text_config")
    inner = text.get("model_type") if isinstance(text, Mapping) else None
    return str(inner or cfg.get("model_type") or "")


REGEX_TIMEOUT_S = 1.0
"""Longest a config's layer-name regex may take to match one name: a pattern that backtracks without
end (`((\\w|\\.)+)+X`) would hang the reading (vLLM's `re` hangs on it at load)."""

REGEX_TOTAL_S = 2.0
"""Longest all of one config's layer-name regexes may take together (every layer's names are matched:
many slow-ish patterns would otherwise add up past `--time-limit`)."""


class _RegexBudget:
    """One `quant_from_config` call's regex matching: each (pattern, name) result, the time spent in
    all and by pattern (with where the config gives it)."""

    def __init__(self) -> None:
        self.cache: dict[tuple[str, str], bool] = {}
        self.spent = 0.0
        self.by_pattern: dict[str, tuple[float, str]] = {}


_BUDGET: ContextVar[_RegexBudget | None] = ContextVar("autoparallel_regex_budget", default=None)


def config_regex_match(pattern: str, name: str, where: str) -> bool:
    """`re.match(pattern, name)` on a regex a checkpoint's config gives (`where` names it), bounded in
    time: the `regex` module (`re`'s syntax, its backtracking bounded by `timeout`). Within one
    `quant_from_config` call a (pattern, name) is matched once and all matches share `REGEX_TOTAL_S`.

    Raises:
        InputError: a pattern that takes longer than `REGEX_TIMEOUT_S` on a layer name, or matching
            past `REGEX_TOTAL_S` in all.
        regex.error: a pattern that does not compile (the caller decides what that means).
    """
    budget = _BUDGET.get() or _RegexBudget()
    hit = budget.cache.get((pattern, name))
    if hit is not None:
        return hit
    bound = min(REGEX_TIMEOUT_S, REGEX_TOTAL_S - budget.spent)
    start = time.perf_counter()
    timed_out = bound <= 0
    found = False
    if not timed_out:
        try:
            found = regex.match(pattern, name, timeout=bound) is not None
        except TimeoutError:
            timed_out = True
    took = time.perf_counter() - start
    budget.spent += took
    budget.by_pattern[pattern] = (budget.by_pattern.get(pattern, (0.0, where))[0] + took, where)
    if timed_out and bound >= REGEX_TIMEOUT_S:
        raise InputError(
            f"{where} {clean_text(pattern, 60)!r} took over {REGEX_TIMEOUT_S:g} s to match the layer name "
            f"{name!r} (it backtracks without end; vLLM's loader would hang on it)"
        )
    if timed_out or budget.spent > REGEX_TOTAL_S:
        slowest = max(budget.by_pattern, key=lambda p: budget.by_pattern[p][0])
        secs, kind = budget.by_pattern[slowest]
        raise InputError(
            f"the config's layer-name regexes took over {REGEX_TOTAL_S:g} s in all "
            f"({budget.spent:.1f} s; vLLM's loader matches them on every layer): the slowest, {kind} "
            f"{clean_text(slowest, 60)!r}, took {secs:.1f} s"
        )
    budget.cache[(pattern, name)] = found
    return found


def _name_match(value: str, target: str, where: str = "compressed-tensors target") -> bool:
    """compressed-tensors' `_is_equal_or_regex_match`: equal, or an `re:` regex matched at the start."""
    if target.startswith("re:"):
        try:
            return config_regex_match(target[3:], value, where)
        except regex.error:
            return False
    return target == value


def _ct_target(member: Member, targets: list[str], prefix: str = "model.layers.0.") -> str | None:
    """vLLM's `find_matched_target`: the first target naming the layer (equal or `re:`), else one the
    layer's class name contains (every linear class name holds `Linear`), else (a fused layer) the
    first shard's target when every shard matches one."""
    prefixed, shards = f"{prefix}{member[0]}", tuple(f"{prefix}{s}" for s in member[1])
    for target in targets:
        if _name_match(prefixed, target):
            return target
    for target in targets:
        if not target.startswith("re:") and target.lower() in "parallellinear":
            return target
    found = [next((t for t in targets if _name_match(s, t)), None) for s in shards]
    return found[0] if found and all(found) else None


def _ct_ignored(member: Member, ignore: list[str], prefix: str = "model.layers.0.") -> bool:
    """vLLM's `should_ignore_layer`: a fused layer is ignored when its shards are."""
    names = member[1] or (member[0],)
    where = "compressed-tensors `ignore` entry"
    return all(any(_name_match(f"{prefix}{n}", t, where) for t in ignore) for n in names)


def _compressed_tensors(
    qc: Mapping[str, Any],
    name: str,
    groups: tuple[str, ...],
    model_type: str = "",
    present: tuple[str, ...] | None = None,
    units: _Units | None = None,
) -> QuantSpec:
    """A compressed-tensors config: each linear group of each decoder layer priced by the config group
    whose `targets` match its layers, as vLLM 0.32 `CompressedTensorsConfig.get_scheme` picks per layer
    (`find_matched_target`); a layer of the model no group targets and `ignore` does not list is
    refused, as vLLM refuses it at load (`target_scheme_map[None]`; older releases: "Unable to find
    matching target")."""
    config_groups = qc.get("config_groups")
    schemes: list[tuple[list[str], Mapping[str, Any], object]] = []
    if isinstance(config_groups, dict):
        for group in config_groups.values():
            if isinstance(group, dict) and isinstance(group.get("weights"), dict):
                targets = group.get("targets")
                listed = [str(t) for t in targets] if isinstance(targets, list) else ["Linear"]
                schemes.append((listed, group["weights"], group.get("input_activations")))
    if not schemes:
        return _ct_scheme({}, None, groups, name)
    ignore = [str(v) for v in qc.get("ignore") or [] if isinstance(v, str)]
    if len(schemes) == 1 and "Linear" in schemes[0][0] and all(map(_lm_head_like, ignore)):
        return _ct_scheme(schemes[0][1], schemes[0][2], groups, name)  # every linear layer: one scheme
    # Otherwise each layer as vLLM's `get_scheme` reads it: `should_ignore_layer` before the targets.
    # vLLM's `target_scheme_map`: filled in group order, so a target listed twice takes the later group
    # and keeps its first place in the order `find_matched_target` tries the targets.
    target_of: dict[str, int] = {}
    for i, (targets, _, _) in enumerate(schemes):
        for t in targets:
            target_of[t] = i
    all_targets = list(target_of)
    have = present if present is not None else _PRIMARY_ORDER
    units = units if units is not None else _units(None, 0)
    scheme_of: dict[int, QuantSpec] = {}

    def scheme(i: int) -> QuantSpec:
        if i not in scheme_of:
            scheme_of[i] = _ct_scheme(schemes[i][1], schemes[i][2], (), name)
        return scheme_of[i]

    specs: dict[str, QuantSpec] = {}
    mixes: dict[str, _LayerRows] = {}
    unquantized: set[str] = set()
    for group, members in _members(model_type).items():
        if group not in have or group not in groups:
            continue
        per_layer: list[tuple[QuantSpec | None, float]] = []
        for index, weight in _layers_of(units, group):
            prefix = f"model.layers.{index}."
            picked: list[int | None] = []
            for member in members:
                if _ct_ignored(member, ignore, prefix):
                    picked.append(None)
                    continue
                target = _ct_target(member, all_targets, prefix)
                if target is None and group == "mtp":
                    # vLLM builds the MTP modules only for MTP speculative decoding: the model
                    # loads; the untargeted module is held in the checkpoint dtype.
                    picked.append(None)
                    continue
                if target is None:
                    raise InputError(
                        f"{name}: compressed-tensors config_groups target no scheme for {prefix}{member[0]} "
                        f"({group}) and `ignore` does not list it; vLLM refuses such a checkpoint at load "
                        "(compressed_tensors `find_matched_target`)"
                    )
                picked.append(target_of[target])
            per_layer.append((_costliest([None if p is None else scheme(p) for p in picked]), weight))
        common = _group_over_layers(group, per_layer, units, mixes)
        if common is None:
            unquantized.add(group)
        else:
            specs[group] = common.model_copy(update={"quantized_groups": (group,)})
    kept = tuple(g for g in groups if g not in unquantized)
    return _mixed(specs, kept, lambda: _ct_scheme(schemes[0][1], schemes[0][2], kept, name), mixes)


def _mixed(
    specs: Mapping[str, QuantSpec],
    quantized: tuple[str, ...],
    fallback: Any,
    mixes: Mapping[str, _LayerRows] | None = None,
) -> QuantSpec:
    """One QuantSpec for per-group `specs`: the primary group's scheme (`_PRIMARY_ORDER`) over
    `quantized`, every group priced otherwise in `group_schemes`, and the groups whose layers differ
    (`mixes`) in `group_layer_mix`."""
    out = _mixed_schemes(specs, quantized, fallback)
    if not mixes:
        return out
    note = "".join(f"; {g}: layers differ ({_mix_text(rows)})" for g, rows in mixes.items())
    mix = tuple(mixes.items())
    return out.model_copy(update={"group_layer_mix": mix, "source": out.source + note})


def _mixed_schemes(specs: Mapping[str, QuantSpec], quantized: tuple[str, ...], fallback: Any) -> QuantSpec:
    primary_group = next((g for g in _PRIMARY_ORDER if g in specs), None)
    if primary_group is None:
        return fallback()
    primary = specs[primary_group]
    others = tuple(
        (g, s.model_copy(update={"quantized_groups": (g,)}))
        for g, s in specs.items()
        if _pricing(s) != _pricing(primary)
    )
    source = primary.source + "".join(f"; {g}: {s.source}" for g, s in others)
    return primary.model_copy(
        update={"quantized_groups": quantized, "group_schemes": others, "source": source}
    )


def _pricing(q: QuantSpec) -> tuple[object, ...]:
    return (q.method, q.bits, q.group_size, q.block_n, q.block_k, q.per_channel, q.double_quant)


def _gptq_rule(dynamic: Mapping[str, Any], layer: str) -> Mapping[str, Any] | bool | None:
    """vLLM's `get_dynamic_override(config, layer)` without a key: False for a `-:` rule matching the
    layer (left unquantized), the first positive rule's overrides, or None (the base config)."""
    for pattern, rule in dynamic.items():
        text = str(pattern)
        try:
            if text.startswith("-:"):
                if config_regex_match(text[2:], layer, "GPTQ `dynamic` rule"):
                    return False
            elif config_regex_match(text.removeprefix("+:"), layer, "GPTQ `dynamic` rule"):
                return rule if isinstance(rule, Mapping) else {}
        except regex.error:
            raise InputError(f"GPTQ `dynamic` rule {clean_text(text, 60)!r} is not a valid regex") from None
    return None


def _gptq_per_group(
    qc: Mapping[str, Any],
    base: QuantSpec,
    cfg: Mapping[str, Any],
    name: str,
    present: tuple[str, ...] | None,
    units: _Units | None = None,
) -> QuantSpec:
    """A GPTQ config's `dynamic` rules and `modules_in_block_to_quantize`, per linear group, as vLLM 0.32
    `gptq_utils.get_linear_quant_method` reads them: a layer no `modules_in_block_to_quantize` entry
    names (a substring of every shard) or a `-:regex` matches stays unquantized; a positive rule's
    `bits` / `group_size` / `sym` override the base config (`override_config`)."""
    dynamic = qc.get("dynamic")
    dynamic = dynamic if isinstance(dynamic, Mapping) else {}
    listed = qc.get("modules_in_block_to_quantize")
    flat = [str(x) for x in _flatten(listed)] if isinstance(listed, list) else []
    if not dynamic and not flat:
        return base
    have = present if present is not None else _PRIMARY_ORDER
    units = units if units is not None else _units(None, 0)
    specs: dict[str, QuantSpec] = {}
    mixes: dict[str, _LayerRows] = {}
    unquantized: set[str] = set()
    model_type = _text_model_type(cfg)
    experts = _fused_moe_path(model_type)
    for group, members in _members(model_type).items():
        if group not in have or group not in base.quantized_groups:
            continue
        per_layer: list[tuple[QuantSpec | None, float]] = []
        for index, weight in _layers_of(units, group):
            prefix = f"model.layers.{index}."
            costs: list[QuantSpec | None] = []
            for fused, shards in members:
                layer = f"{prefix}{fused}"
                names = [f"{prefix}{s}" for s in shards] or [layer]
                listed_in = not flat or all(any(e in n for e in flat) for n in names)
                # Routed experts are one FusedMoE module: vLLM's `get_moe_quant_method` matches the
                # `dynamic` rules on its prefix (`model.layers.{i}.mlp.experts`), not on an expert's name.
                if fused.startswith(f"{experts}.0."):
                    layer = f"{prefix}{experts}"
                rule = _gptq_rule(dynamic, layer) if dynamic else None
                if rule is False or not listed_in:
                    costs.append(None)
                    continue
                costs.append(_gptq_override(base, rule, name) if isinstance(rule, Mapping) and rule else base)
            per_layer.append((_costliest(costs), weight))
        common = _group_over_layers(group, per_layer, units, mixes)
        if common is None:
            unquantized.add(group)
        else:
            specs[group] = common
    kept = tuple(g for g in base.quantized_groups if g not in unquantized)
    dropped = ", ".join(g for g in base.quantized_groups if g in unquantized)
    out = _mixed(specs, kept, lambda: base.model_copy(update={"quantized_groups": kept}), mixes)
    if dropped:
        out = out.model_copy(update={"source": f"{out.source}; unquantized by dynamic rules: {dropped}"})
    return out


def _flatten(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        out += _flatten(item) if isinstance(item, list) else [item]
    return out


def _gptq_override(base: QuantSpec, rule: Mapping[str, Any], name: str) -> QuantSpec:
    """`base` with a positive `dynamic` rule's `bits`, `group_size` and `sym` (vLLM `override_config`)."""
    bits = _qint(rule, name, ("bits",), base.bits)
    group = _qint(rule, name, ("group_size",), base.group_size)
    if bits not in (2, 3, 4, 8):
        raise InputError(
            f"{name}: a GPTQ `dynamic` rule asks for {bits}-bit weights (2, 3, 4 or 8 are served)"
        )
    if group != -1 and not 1 <= group <= 1 << 16:
        raise InputError(f"{name}: a GPTQ `dynamic` rule's group_size {group} must be -1 or positive")
    sym = rule.get("sym", base.symmetric) is not False
    return base.model_copy(
        update={
            "bits": bits,
            "group_size": group,
            "symmetric": sym,
            "source": f"quantization_config.dynamic rule, bits={bits}, group_size={group}"
            + ("" if sym else ", asymmetric"),
        }
    )
