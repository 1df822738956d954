"""What vLLM resolves from the launch flags before it profiles: dtype, quantization, KV dtype,
batch defaults, block size, the per-layer KV specs, and the start-up validation of the degrees.

Each rule cites the vLLM 0.32 file it follows.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any, Literal, cast

from autoparallel.bounds import clean_text
from autoparallel.configs import VLLM_QUANTIZATION_METHODS, KvCacheDtype, canonical_quantization
from autoparallel.errors import InputError
from autoparallel.memo import Memo, memoized
from autoparallel.memory.vllm_kv import DEFAULT_BLOCK_SIZE, LayerKv
from autoparallel.memory.vllm_versions import VllmRules
from autoparallel.models.quant import QuantMethod, QuantSpec
from autoparallel.models.spec import AttentionKind, ModelSpec

if TYPE_CHECKING:
    from autoparallel.hardware import GPU

Usage = Literal["serve", "offline"]

# --kv-cache-dtype values (0.32 config/cache.py CacheDType) and bytes per cached element.
_KV_DTYPE_BYTES: dict[KvCacheDtype, float | None] = {
    "auto": None,
    "bfloat16": 2,
    "float16": 2,
    "fp8": 1,
    "fp8_e4m3": 1,
    "fp8_e5m2": 1,
    "fp8_inc": 1,
}
_DTYPE_BYTES: dict[str, int | None] = {"auto": None, "bfloat16": 2, "float16": 2, "half": 2, "float32": 4}
# Online methods autoparallel plans for an unquantized checkpoint (at load time): fp8 (Fp8Config with
# is_checkpoint_fp8_serialized False: fp8 weights with a per-tensor scale, linear layers only; V045
# Llama-3.1-8B logs 8.49 GiB). The 0.32 package has no bitsandbytes loader any more.
_ONLINE_QUANT = {
    "fp8": QuantSpec(method=QuantMethod.FP8, bits=8, source="--quantization fp8 (online)"),
}
VLLM_ONLINE_SHORTHANDS = (
    "fp8_per_tensor",
    "fp8_per_block",
    "fp8_per_channel",
    "mxfp8",
    "mxfp4",
    "int8_per_channel_weight_only",
    "nvfp4_per_token",
)
"""The online quantization methods vLLM 0.32 registers (`config/quantization.py` `_ONLINE_SHORTHANDS`,
`--quantization` names beside "online"). `fp8_per_tensor` is the planned online `fp8` (what the vLLM
emitter writes for it); the others (block, channel and MX scales, INT8 and NVFP4 experts) are not
modelled: `online_quant_problem` refuses them as bad input rather than pricing them as something else."""


def online_quant_problem(model: ModelSpec, quantization: str | None, engine: str | None = None) -> str | None:
    """Why `--quantization quantization` cannot be planned for `model` as online quantization (None:
    the checkpoint is quantized, for `checkpoint_quantization` to judge, or the method is planned,
    `_ONLINE_QUANT`). `engine` is the engine asked for (None: not known here, the sentence then holds
    for every engine). TensorRT-LLM has its own refusal (`engine_support.engine_runtime_problem`)."""
    quantization = canonical_quantization(quantization)
    if quantization is None or model.quantization is not None or quantization.lower() in _ONLINE_QUANT:
        return None
    if engine in (None, "vllm") and quantization not in VLLM_QUANTIZATION_METHODS:
        return (
            f"quantization {quantization!r} is not a vLLM 0.32 --quantization method; choose one of "
            f"{', '.join(VLLM_QUANTIZATION_METHODS)}"
        )
    head = f"quantization {quantization!r} needs a checkpoint quantized that way"
    others = ", ".join(m for m in VLLM_ONLINE_SHORTHANDS if m != "fp8_per_tensor")
    vllm_rest = f"vLLM 0.32's other online methods ({others}) are not modelled"
    if engine == "vllm":
        return (
            f"{head}; autoparallel plans vLLM's online quantization of an unquantized checkpoint with fp8 "
            f"only (launched as its fp8_per_tensor); {vllm_rest}"
        )
    if engine == "sglang":
        return (
            f"{head}; autoparallel plans SGLang's online quantization of an unquantized checkpoint with "
            "fp8 only (its other methods are not modelled)"
        )
    return (
        f"{head}; autoparallel plans online quantization of an unquantized checkpoint with fp8 only (vLLM "
        f"and SGLang); {vllm_rest}"
    )


_KERNEL_NAMES: dict[QuantMethod, tuple[str, ...]] = {
    QuantMethod.GPTQ: ("gptq_marlin", "auto_gptq", "moe_wna16"),
    QuantMethod.AWQ: ("awq_marlin", "auto_awq", "moe_wna16"),
}
"""Other `--quantization` values the engines accept for a `quant_method` gptq / awq checkpoint: vLLM
0.32's `AutoGPTQConfig.override_quantization_method` takes gptq, gptq_marlin and auto_gptq for a gptq
checkpoint, `AutoAWQConfig`'s awq, awq_marlin and auto_awq for an awq one (both also `marlin`, which is
no 0.32 `--quantization` choice), `MoeWNA16Config`'s moe_wna16 for either; SGLang's gptq_marlin /
awq_marlin / moe_wna16 overrides the same."""


def checkpoint_quant_names(q: QuantSpec) -> tuple[str, ...]:
    """The `--quantization` values that name the pre-quantized checkpoint `q` as it is: its format
    (`QuantMethod`, the planner's name), and the name each engine checks the checkpoint's
    `quant_method` against (vLLM 0.32 `ModelConfig._verify_quantization` and SGLang 0.5.6's raise
    "Quantization method specified in the model config (X) does not match the quantization method
    specified in the `quantization` argument (Y)" for any other): `compressed-tensors` for an
    llm-compressor checkpoint, `modelopt` (and SGLang's `modelopt_fp8` / `modelopt_fp4`) for a
    ModelOpt one, `gptq` / `awq` with their kernel variants (`_KERNEL_NAMES`) only where the config
    says `quant_method` gptq / awq."""
    names = [q.method.value]
    if q.source.startswith("compressed-tensors"):
        return (*names, "compressed-tensors")
    if q.source.startswith("ModelOpt"):
        return (*names, "modelopt", "modelopt_fp8" if q.method is QuantMethod.FP8 else "modelopt_fp4")
    return (*names, *_KERNEL_NAMES.get(q.method, ()))


def checkpoint_quantization(model: ModelSpec, quantization: str | None) -> str | None:
    """The `--quantization` `model` runs with when the user names `quantization`: for a pre-quantized
    checkpoint None, the engines' own detection from its `quantization_config` (what every launch
    line then carries: no flag), when `quantization` names the checkpoint as it is
    (`checkpoint_quant_names`: `fp8` for a compressed-tensors FP8 checkpoint is that checkpoint, not
    a flag the engines accept for it); for an unquantized one `quantization` unchanged (online).

    Raises:
        InputError: `quantization` contradicts the checkpoint's format.
    """
    q = model.quantization
    if q is None or quantization is None:
        return quantization
    if quantization.lower() in checkpoint_quant_names(q):
        return None
    container = "compressed-tensors " if q.source.startswith("compressed-tensors") else ""
    raise InputError(
        f"quantization {quantization!r} does not match {model.name}'s {container}{q.method.value!r} "
        f"weights (the engines refuse a --quantization other than the checkpoint's); omit --quantization "
        f"or name one of {', '.join(checkpoint_quant_names(q))}"
    )


FLOAT16_UNSTABLE_MODEL_TYPES = ("gemma2", "gemma3", "gemma3_text", "glm4")
"""Model types vLLM refuses to run in float16 ("Numerical instability. Please use bfloat16 or float32
instead.", 0.32 `config/model.py` `_FLOAT16_NOT_SUPPORTED_MODELS`)."""


def load_dtype(model: ModelSpec, gpu: GPU, engine: str = "vllm") -> str:
    """The `--dtype` that `auto` resolves to, where it changes the bytes per weight: vLLM 0.32's
    `_resolve_auto_dtype` takes the first dtype the GPU supports that the model allows, so on a GPU
    without bfloat16 (V100, T4: float16, float32) a model in `FLOAT16_UNSTABLE_MODEL_TYPES` runs in
    float32. Everything else is `auto` (16 bits; see `apply_dtype_and_quant`)."""
    if engine == "vllm" and not gpu.bf16_native and model.model_type in FLOAT16_UNSTABLE_MODEL_TYPES:
        return "float32"
    return "auto"


def loaded_on(model: ModelSpec, gpu: GPU, quantization: str | None, engine: str = "vllm") -> ModelSpec:
    """`model` as `engine` loads it on `gpu` under `--dtype auto` and `quantization`."""
    return apply_dtype_and_quant(model, load_dtype(model, gpu, engine), quantization)


def dtype_problem(model: ModelSpec, gpu: GPU, dtype: str, quantization: str | None = None) -> str | None:
    """Why vLLM refuses `--dtype dtype` for `model` on `gpu` (None: it does not): float16 for the
    models it keeps out of float16, bfloat16 on a GPU without it, or a float32 model (`load_dtype`)
    with quantized weights, whose kernels take 16-bit activations only (0.32 `VllmConfig`: "{dtype} is
    not supported for quantization method ..."; every method's `get_supported_act_dtypes` but
    compressed-tensors')."""
    q = model.quantization
    method = quantization or (q.method.value if q is not None else None)
    resolved = load_dtype(model, gpu) if dtype == "auto" else dtype
    fp32_safe = q is not None and q.source.startswith("compressed-tensors")
    if resolved == "float32" and method is not None and not fp32_safe:
        why = " (no bfloat16 there, no float16 for this model)" if dtype == "auto" else ""
        return (
            f"vLLM runs {model.name} on {gpu.name} in float32{why}, and its {method} weights take "
            "16-bit activations only"
        )
    if dtype in ("float16", "half") and model.model_type in FLOAT16_UNSTABLE_MODEL_TYPES:
        return (
            f"dtype {dtype!r}: vLLM does not run model type {model.model_type!r} in float16 "
            "(numerical instability); use bfloat16 or float32"
        )
    if dtype == "bfloat16" and not gpu.bf16_native:
        return (
            f"dtype 'bfloat16': {gpu.name} has no bfloat16 (vLLM needs compute capability 8.0); use float16"
        )
    return None


_LOADED: Memo[ModelSpec] = {}


def apply_dtype_and_quant(model: ModelSpec, dtype: str, quantization: str | None) -> ModelSpec:
    """The model as vLLM loads it: `--dtype` override and online quantization. Memoized, so that one
    model loaded one way is one object (the per-model sums are memoized by identity)."""
    return memoized(_LOADED, (model,), (dtype, quantization), lambda: _loaded(model, dtype, quantization))


def _loaded(model: ModelSpec, dtype: str, quantization: str | None) -> ModelSpec:
    if dtype not in _DTYPE_BYTES:
        raise InputError(f"dtype {dtype!r}: expected one of {', '.join(_DTYPE_BYTES)}")
    update: dict[str, Any] = {}
    # `auto` of a float32 checkpoint is 16 bits: vLLM 0.32 `_resolve_auto_dtype` ("Downcast for float32
    # models") and SGLang 0.5.6 `_get_and_verify_dtype` both cast it down.
    dtype_bytes = _DTYPE_BYTES[dtype] or min(model.dtype_bytes, 2)
    if dtype_bytes != model.dtype_bytes:
        update["dtype_bytes"] = dtype_bytes
    current = model.quantization
    if current is not None and current.method is QuantMethod.BITSANDBYTES and current.double_quant:
        # Upstream vLLM's BitsAndBytes loader dequantizes double-quantized statistics at load time
        # (`model_loader/bitsandbytes_loader.py` `BitsAndBytesModelLoader._dequantize_dq`: "we perform
        # the dequantization of these constants during weight loading ... at the cost of increased
        # memory usage"): one fp32 absmax per 64 weights stays resident. The Unsloth notebook rows
        # (V100/V101) do not test this: unsloth-zoo patches `_dequantize_dq` to return the nested
        # states unchanged and `is_layer_skipped_bnb` to skip more modules, and their agreement with
        # this count is a cancellation of those two, not evidence. Unsloth is not modelled.
        update["quantization"] = current.model_copy(update={"double_quant": False})
    if quantization is not None:
        quantization = canonical_quantization(quantization)
        q = quantization.lower()
        if current is not None:
            checkpoint_quantization(model, quantization)  # the checkpoint as it is, or InputError
        elif (problem := online_quant_problem(model, quantization)) is not None:
            raise InputError(problem)
        else:
            update["quantization"] = _ONLINE_QUANT[q]
    return model.model_copy(update=update) if update else model


def checkpoint_kv_dtype(model: ModelSpec, kv_cache_dtype: str, *, from_checkpoint: bool = True) -> str:
    """`kv_cache_dtype` with `auto` resolved to the KV dtype the checkpoint declares (a ModelOpt
    `kv_cache_quant_algo` FP8: `fp8_e4m3`), as the engines resolve it: TensorRT-LLM (`KvCacheConfig(
    dtype="auto")` inherits the checkpoint's KV quantization), SGLang 0.5 (`ModelRunner.init_memory_pool`:
    `auto` with `kv_cache_quant_algo` FP8 is `float8_e4m3fn`) and vLLM from 0.14 (PR #30785, merged
    2025-12-16; 0.32 `EngineArgs.create_engine_config` builds `CacheConfig` from
    `resolve_kv_cache_dtype_string`, `MODELOPT_TO_VLLM_KV_CACHE_DTYPE_MAP` fp8 -> fp8_e4m3; a declared
    NVFP4 cache, which 0.32 maps to `nvfp4`, is not priced and stays the model dtype here; `from_checkpoint`
    False for releases before 0.14). Anything else is returned as given (`auto`: the model's dtype)."""
    q = model.quantization
    if kv_cache_dtype == "auto" and from_checkpoint and q is not None and q.kv_cache_dtype:
        return q.kv_cache_dtype
    return kv_cache_dtype


def vllm_stored_kv_dtype(model: ModelSpec, kv_cache_dtype: str, *, from_checkpoint: bool = True) -> str:
    """The cache vLLM keeps for `--kv-cache-dtype kv_cache_dtype`: the same (`auto` resolved from the
    checkpoint, `checkpoint_kv_dtype`), except that for DeepSeek Sparse Attention models (V3.2)
    `DeepseekV32ForCausalLM.verify_and_update_config` turns `auto` into its `fp8_ds_mla` cache
    (`bfloat16` keeps BF16), and so does every fp8 dtype, fp8_e5m2 included (`cache_dtype.
    startswith("fp8")`): the same bytes, the one layout its sparse MLA backends read."""
    kv = checkpoint_kv_dtype(model, kv_cache_dtype, from_checkpoint=from_checkpoint)
    to_ds_mla = kv == "auto" or kv.startswith("fp8")
    return "fp8_ds_mla" if to_ds_mla and model.has_sparse_attention else kv


def kv_dtype_bytes(
    model: ModelSpec, kv_cache_dtype: str, *, engine: str, from_checkpoint: bool = True
) -> float:
    """Bytes per cached KV element as `engine` stores it: the model's dtype for `auto`, else the
    named dtype's. The one definition: the float model and the solver tables both call it.

    vLLM stores what `vllm_stored_kv_dtype` says (`fp8_ds_mla`: one FP8 byte per latent element;
    AttentionSpec prices the layout FlashMLA reads, 656 B per token and layer). SGLang (`auto` is
    BF16 on Hopper) and TensorRT-LLM take the dtype as named; so does `any`, the engine-neutral
    price (`VllmMemoryReport.kv_bytes_per_token_all_layers_per_gpu`). Every engine reads `auto` as
    the checkpoint's declared KV dtype where it has one (`checkpoint_kv_dtype`; `from_checkpoint`
    False: a vLLM release before that rule).

    Raises:
        InputError: not one of vLLM's `--kv-cache-dtype` values.
    """
    if kv_cache_dtype not in _KV_DTYPE_BYTES:
        raise InputError(f"kv_cache_dtype {kv_cache_dtype!r}: expected one of {', '.join(_KV_DTYPE_BYTES)}")
    if (
        engine == "vllm"
        and vllm_stored_kv_dtype(model, kv_cache_dtype, from_checkpoint=from_checkpoint) == "fp8_ds_mla"
    ):
        return 1.0
    stored = cast("KvCacheDtype", checkpoint_kv_dtype(model, kv_cache_dtype, from_checkpoint=from_checkpoint))
    fixed = _KV_DTYPE_BYTES[stored]
    return float(model.dtype_bytes) if fixed is None else float(fixed)


def resolve_batch_defaults(
    rules: VllmRules,
    gpu: GPU,
    max_model_len: int,
    max_num_seqs: int | None,
    max_num_batched_tokens: int | None,
    usage: Usage = "serve",
) -> tuple[int, int]:
    """(max_num_seqs, max_num_batched_tokens) as the release fills them in.

    V1 (0.32 engine/arg_utils.py get_batch_defaults): >= 160 GiB devices 16384 tokens / 1024 seqs
    (`rules.large_memory_batch_tier`, PR #51726); >= 70 GiB non-A100 8192 (`vllm serve`) or 16384
    (offline LLM) tokens and 1024 seqs; otherwise 2048 / 8192 tokens and 256 seqs; then tokens <=
    max_num_seqs × max_model_len. The 1024-sequence default of large GPUs dates from PR #17885
    ("Use small max_num_batched_tokens for A100", merged 2025-05-09, first in 0.9.0: the >= 70 GiB
    non-A100 test); 0.8.4-0.8.x kept 1024 for H100 / H200 only, by device name (PR #16158 "Revert the
    default `max_num_seqs` to V0 values for most hardware", merged 2025-04-07; 0.8.5 may already carry
    PR #17073's >= 70 GiB test, A100 included: unpinned). Earlier V1 releases defaulted to 1024 on
    every GPU but profiled without a sampler pass, which is not modelled: 256 there.
    V0: chunked prefill only above 32K context (2048 tokens), else max(max_model_len, 2048); 256 seqs.
    """
    v = rules.version
    if v.engine == "v0":
        seqs = max_num_seqs or 256
        tokens = max_num_batched_tokens or (2048 if max_model_len > 32768 else max(max_model_len, 2048))
        return min(seqs, tokens), tokens
    name = gpu.name.upper()
    big = gpu.memory_gib >= 70 and not name.startswith("A100")
    named_big = v.at_least(8, 4) and name.startswith(("H100", "H200"))  # before 0.9: by device name
    big_seqs = big and (v.at_least(9) or named_big)
    if gpu.memory_gib >= 160 and rules.large_memory_batch_tier:
        default_tokens, default_seqs = 16384, 1024
    elif big:
        default_tokens = 8192 if usage == "serve" else 16384
        default_seqs = 1024 if big_seqs else 256
    else:
        default_tokens, default_seqs = (2048 if usage == "serve" else 8192), 256
    seqs = max_num_seqs or default_seqs
    tokens = max_num_batched_tokens or min(default_tokens, seqs * max_model_len)
    if max_num_seqs is None:
        seqs = min(seqs, tokens)
    return seqs, tokens


FLASHINFER_MLA_QK_NOPE_DIMS = (64, 128, 192)
"""`qk_nope_head_dim` values FlashInfer MLA's kernel takes (0.32 `flashinfer_mla.py`
`supports_combination`); other MLA models fall through to CUTLASS MLA on Blackwell."""


def kv_block_size(model: ModelSpec, gpu: GPU, rules: VllmRules, kv_cache_dtype: str = "auto") -> int:
    """Default block size: 16, or the MLA backend's, from the first backend of 0.32
    `platforms/cuda.py` `_get_backend_priorities` that takes the model and cache, at the smallest block
    its `get_supported_kernel_block_sizes` allows (`AttentionBackend.get_preferred_block_size`):

    - Hopper: FlashAttention MLA (`MultipleOf(16)`: 16) for a 16-bit cache, FlashMLA (64) for an FP8
      one, which FlashAttention MLA cannot read; FlashMLA for all before `mla_flash_attn_hopper`.
      Sparse MLA (DeepSeek-V3.2) runs FlashAttention MLA sparse or FlashMLA sparse, both 64;
    - Blackwell: FlashInfer MLA (`[32, 64]`: 32) when it takes the model's `qk_nope_head_dim`
      (`FLASHINFER_MLA_QK_NOPE_DIMS`), else CUTLASS MLA (128); CUTLASS MLA for all before
      `mla_flashinfer_blackwell`; 128 kept for sparse MLA (0.32 runs FlashInfer or FlashMLA sparse,
      32 or 64, by cache dtype and heads per rank: not modelled);
    - other GPUs: Triton MLA, 16. FlashMLA arrived in 0.7.3.

    `kv_cache_dtype`: as `--kv-cache-dtype` gives it (resolved here as vLLM stores it,
    `vllm_stored_kv_dtype`).
    """
    if not model.is_mla or not rules.version.at_least(7, 3):
        return DEFAULT_BLOCK_SIZE
    stored = vllm_stored_kv_dtype(model, kv_cache_dtype, from_checkpoint=rules.kv_dtype_from_checkpoint)
    if gpu.arch == "hopper":
        dense_fa = rules.mla_flash_attn_hopper and not model.has_sparse_attention
        return DEFAULT_BLOCK_SIZE if dense_fa and not stored.startswith("fp8") else 64
    if gpu.arch == "blackwell" and rules.version.engine == "v1":
        flashinfer = rules.mla_flashinfer_blackwell and not model.has_sparse_attention
        return 32 if flashinfer and _qk_nope_dims(model) <= set(FLASHINFER_MLA_QK_NOPE_DIMS) else 128
    return DEFAULT_BLOCK_SIZE


def _qk_nope_dims(model: ModelSpec) -> set[int]:
    """The MLA layers' `qk_nope_head_dim` (head_dim less the RoPE part)."""
    return {
        layer.attention.head_dim - layer.attention.qk_rope_head_dim
        for layer in model.layers
        if layer.attention.kind is AttentionKind.MLA
    }


_LAYER_KV: Memo[tuple[LayerKv, ...]] = {}


def layer_kv_specs(
    model: ModelSpec, stages: tuple[range, ...], tp: int, kv_bytes: float
) -> tuple[LayerKv, ...]:
    """What every decoder layer caches per token (or per request) on one GPU of its stage; memoized per
    model object."""
    key = (tuple((r.start, r.stop) for r in stages), tp, kv_bytes)
    return memoized(_LAYER_KV, (model,), key, lambda: tuple(_layer_kv_specs(model, stages, tp, kv_bytes)))


def _layer_kv_specs(model: ModelSpec, stages: tuple[range, ...], tp: int, kv_bytes: float) -> list[LayerKv]:
    out: list[LayerKv] = []
    for s, layers in enumerate(stages):
        for i in layers:
            att = model.layers[i].attention
            if att.kind is AttentionKind.LINEAR:
                state = math.ceil(att.linear_state_elements / tp) * model.dtype_bytes
                out.append(LayerKv(kind="mamba", stage=s, state_bytes=state))
                continue
            per_token = int(att.kv_bytes_per_token_per_rank(tp, kv_bytes))
            if att.kind in (AttentionKind.SLIDING, AttentionKind.CHUNKED) and att.window_tokens:
                kind: Literal["sliding", "chunked"] = (
                    "sliding" if att.kind is AttentionKind.SLIDING else "chunked"
                )
                out.append(LayerKv(kind=kind, stage=s, bytes_per_token=per_token, window=att.window_tokens))
            else:
                out.append(LayerKv(kind="full", stage=s, bytes_per_token=per_token))
    return out


def validate(
    model: ModelSpec,
    *,
    tp: int,
    pp: int,
    dp: int,
    ep_on: bool,
    util: float | None,
    max_model_len: int | None,
    partition: tuple[int, ...] | None,
) -> None:
    """Reject what vLLM's config validation rejects, as InputError naming the flag."""
    for name, value in (
        ("tensor-parallel-size", tp),
        ("pipeline-parallel-size", pp),
        ("data-parallel-size", dp),
    ):
        if value < 1:
            raise InputError(f"--{name} must be >= 1, got {value}")
    reasons = model.tp_violations(tp, expert_parallel=ep_on and model.is_moe) + model.pp_violations(pp)
    if ep_on:
        if not model.is_moe:
            reasons.append("--enable-expert-parallel needs a mixture-of-experts model")
        else:
            reasons += model.ep_violations(tp * dp)
    if reasons:
        raise InputError(f"{model.name}: " + "; ".join(reasons))
    if util is not None and not 0 < util <= 1:
        raise InputError(f"--gpu-memory-utilization must be in (0, 1], got {util}")
    if max_model_len is not None:
        if max_model_len < 1:
            raise InputError(f"--max-model-len must be >= 1, got {max_model_len}")
        if max_model_len > model.max_position_embeddings:
            raise InputError(
                f"--max-model-len {max_model_len} exceeds {model.name}'s max_position_embeddings "
                f"({model.max_position_embeddings}); vLLM refuses it unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, "
                "SGLang unless SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN=1"
            )
    if partition is not None:
        _check_partition(partition, pp, model.num_layers)


def _check_partition(partition: object, pp: int, num_layers: int) -> None:
    """VLLM_PP_LAYER_PARTITION as vLLM reads it (`distributed/utils.py get_pp_indices`): one whole
    number of layers per pipeline stage (`int()` of each comma-separated item), `pp` of them, summing
    to the model's layers; each stage holds at least one layer (a stage of 0 or fewer layers owns no
    decoder layer and no KV cache, which the per-stage accounting cannot price). A bool is not a count.

    Raises:
        InputError: the partition named, with the rule it breaks.
    """
    shown = clean_text(repr(partition), 80)
    if not isinstance(partition, tuple | list):
        raise InputError(f"pp_layer_partition {shown}: must be a tuple of layers per stage, e.g. (20, 20)")
    bad = [v for v in partition if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1]
    if bad:
        raise InputError(
            f"pp_layer_partition {shown}: each stage needs a whole number of layers, at least 1 "
            f"(got {clean_text(repr(bad[0]), 40)})"
        )
    if len(partition) != pp or sum(int(v) for v in partition) != num_layers:
        raise InputError(f"pp_layer_partition {shown}: needs {pp} stages summing to {num_layers} layers")
