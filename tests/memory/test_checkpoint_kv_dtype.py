"""`--kv-cache-dtype auto` on a checkpoint that declares its KV cache (ModelOpt `kv_cache_quant_algo`)."""

from __future__ import annotations

from autoparallel.configs import ServingConfig
from autoparallel.hardware import Cluster, get_gpu
from autoparallel.memory.serving import serving_memory
from autoparallel.memory.sglang import sglang_stored_kv_dtype
from autoparallel.memory.trtllm import trtllm_kv
from autoparallel.models import load_model
from autoparallel.models.parse_quant import quant_from_config
from autoparallel.perf.serving import ReplicaShape, replica_step_times

FP8_KV = "nvidia/Llama-3.1-70B-Instruct-FP8"  # hf_quant_config: quant_algo FP8, kv_cache_quant_algo FP8
H100 = get_gpu("H100")


def _config(kv: str) -> ServingConfig:
    return ServingConfig(tp=4, max_model_len=8192, kv_cache_dtype=kv)  # type: ignore[arg-type]


def test_the_checkpoints_kv_algorithm_is_parsed() -> None:
    with_kv = {"quant_method": "modelopt", "quant_algo": "NVFP4", "kv_cache_quant_algo": "FP8"}
    spec = quant_from_config({"quantization_config": with_kv}, "q")
    assert spec is not None and spec.kv_cache_dtype == "fp8_e4m3"
    bare = quant_from_config({"quantization_config": {"quant_method": "modelopt", "quant_algo": "FP8"}}, "q")
    assert bare is not None and bare.kv_cache_dtype is None
    assert load_model(FP8_KV).quantization.kv_cache_dtype == "fp8_e4m3"  # type: ignore[union-attr]


def test_vllm_auto_is_the_checkpoints_fp8_cache_from_0_14() -> None:
    model = load_model(FP8_KV)
    auto, bf16, fp8 = (serving_memory(model, H100, _config(kv)) for kv in ("auto", "bfloat16", "fp8"))
    assert auto.kv_cache_dtype_stored == "fp8_e4m3"
    assert auto.kv_bytes_per_token_per_gpu == fp8.kv_bytes_per_token_per_gpu
    assert bf16.kv_bytes_per_token_per_gpu == 2 * fp8.kv_bytes_per_token_per_gpu
    old = serving_memory(model, H100, _config("auto"), vllm_version="0.13")
    assert old.kv_cache_dtype_stored == "auto"  # before vLLM PR #30785: the model's dtype
    assert old.kv_bytes_per_token_per_gpu == bf16.kv_bytes_per_token_per_gpu
    # Without a declared KV algorithm `auto` is still the model's dtype.
    plain = serving_memory(load_model("meta-llama/Llama-3.1-70B"), H100, _config("auto"))
    assert (
        plain.kv_cache_dtype_stored == "auto"
        and plain.kv_bytes_per_token_per_gpu == bf16.kv_bytes_per_token_per_gpu
    )


def test_sglang_and_trtllm_inherit_the_checkpoints_fp8_cache() -> None:
    model = load_model(FP8_KV)
    assert sglang_stored_kv_dtype(model, H100, "auto") == "fp8_e4m3"
    assert sglang_stored_kv_dtype(load_model("meta-llama/Llama-3.1-70B"), H100, "auto") == "auto"
    pools = {
        kv: trtllm_kv(serving_memory(model, H100, _config(kv)), H100).kv_cache_tokens
        for kv in ("auto", "bfloat16")
    }
    assert pools["auto"] > 1.9 * pools["bfloat16"]


def test_the_step_model_reads_the_fp8_cache_under_auto() -> None:
    model, cluster = load_model(FP8_KV), Cluster.parse("1x4xH100")

    def step(kv: str) -> float:
        shape = ReplicaShape(4, 1, 1, None, kv, False)
        return replica_step_times(
            model, cluster, shape, batch=256, isl=4096, osl=256, batched_tokens=8192
        ).decode_s

    assert step("auto") == step("fp8") < step("bfloat16")
