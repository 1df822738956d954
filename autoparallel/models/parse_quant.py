"""Parse a config's `quantization_config` into a QuantSpec (GPTQ, AWQ, FP8, MXFP4, bitsandbytes,
compressed-tensors, ModelOpt FP8 and NVFP4), without transformers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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


def quant_from_config(cfg: Mapping[str, Any], name: str) -> QuantSpec | None:
    """QuantSpec from `quantization_config` (GPTQ, AWQ, FP8, MXFP4, bitsandbytes, compressed-tensors,
    ModelOpt), or None for an unquantized checkpoint.

    Raises:
        InputError: a quantization method the planner cannot account for.
    """
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
        return QuantSpec(
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
        spec = _compressed_tensors(qc, name, groups)
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


def _compressed_tensors(qc: Mapping[str, Any], name: str, groups: tuple[str, ...]) -> QuantSpec:
    config_groups = qc.get("config_groups")
    weights: Mapping[str, Any] = {}
    activations: object = None
    if isinstance(config_groups, dict) and config_groups:
        first = next(iter(config_groups.values()))
        if isinstance(first, dict) and isinstance(first.get("weights"), dict):
            weights = first["weights"]
            activations = first.get("input_activations")
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
