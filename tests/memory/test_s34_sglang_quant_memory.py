"""SGLang 0.5.6's own weight and KV layouts for quantized checkpoints (memory/sglang.py,
memory/serving.py, solvers/serving/memory_terms.py): gpt-oss's MXFP4 experts as `Mxfp4MoEMethod` pads
them (not vLLM's Marlin tile), their BF16 upcast under expert parallelism below Blackwell, and the
model-dtype cache SGLang keeps for a compressed-tensors checkpoint that declares an FP8 one."""

from __future__ import annotations

from typing import Any

import pytest

from autoparallel.cli import main
from autoparallel.configs import ServingConfig
from autoparallel.hardware import Cluster, get_gpu
from autoparallel.memory.serving import DEFAULT_VLLM_VERSION, serving_memory
from autoparallel.memory.sglang import sglang_priced_config, sglang_server_kv, sglang_stored_kv_dtype
from autoparallel.memory.vllm_profile import vllm_mxfp4_alignment
from autoparallel.memory.vllm_versions import parse_vllm_version, rules_for
from autoparallel.models import load_model
from autoparallel.models.parse_quant import quant_from_config
from autoparallel.models.spec import ModelSpec
from autoparallel.solvers.serving.memory_terms import MemoryTerms
from autoparallel.workload import Serving

GPT_OSS_120B = "openai/gpt-oss-120b"
_FP8 = {"num_bits": 8, "type": "float", "symmetric": True}
CT_FP8_KV: dict[str, Any] = {
    "quant_method": "compressed-tensors",
    "format": "float-quantized",
    "config_groups": {
        "group_0": {
            "targets": ["Linear"],
            "weights": {**_FP8, "strategy": "channel", "dynamic": False},
            "input_activations": {**_FP8, "strategy": "token", "dynamic": True},
        }
    },
    "kv_cache_scheme": {**_FP8, "strategy": "tensor", "dynamic": False},
    "ignore": ["lm_head"],
}


def _terms(model: ModelSpec, cluster: str) -> MemoryTerms:
    rules = rules_for(parse_vllm_version(DEFAULT_VLLM_VERSION))
    return MemoryTerms(model, Cluster.parse(cluster), rules, Serving(isl=1024, osl=256))


# ----- bug 1: EP upcasts gpt-oss's MXFP4 experts to BF16 below Blackwell --------------------------


def test_sglang_prices_gpt_oss_experts_in_bf16_under_ep_below_blackwell() -> None:
    model = load_model(GPT_OSS_120B)
    h100, b200 = get_gpu("H100-SXM"), get_gpu("B200")
    tp2 = ServingConfig(tp=2, max_model_len=2048)
    ep2 = tp2.model_copy(update={"enable_expert_parallel": True})
    mxfp4 = serving_memory(model, h100, tp2, engine="sglang").weights_gib
    upcast = serving_memory(model, h100, ep2, engine="sglang").weights_gib
    assert mxfp4 == pytest.approx(30.4, abs=0.3)
    assert upcast > 100  # `upcast_from_mxfp`: ~107 GiB a GPU at EP 2
    # Blackwell runs flashinfer_mxfp4 at any EP size; vLLM keeps MXFP4 under EP.
    assert serving_memory(model, b200, ep2, engine="sglang").weights_gib < 40
    assert serving_memory(model, h100, ep2, engine="vllm").weights_gib < 40
    # The solver tables price the same weights.
    assert max(_terms(model, "1x2xH100").weights(2, 1, 2, None, "sglang")) / 2**30 == pytest.approx(
        upcast, rel=1e-9
    )


def test_plan_gives_gpt_oss_no_sglang_ep_on_two_h100(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", GPT_OSS_120B, "--cluster", "1x2xH100", "--engine", "sglang", "--disagg", "off"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "--tp-size 2" in out and "--ep-size" not in out


# ----- bug 2: SGLang's MXFP4 padding is its own --------------------------------------------------


def test_sglang_mxfp4_padding_is_mxfp4_moe_methods() -> None:
    from autoparallel.memory.sglang import sglang_mxfp4_alignment

    a100, h100, b200 = get_gpu("A100-SXM-80G"), get_gpu("H100-SXM"), get_gpu("B200")
    assert sglang_mxfp4_alignment(a100) == sglang_mxfp4_alignment(h100) == (32, 1)
    assert sglang_mxfp4_alignment(b200) == (256, 256)
    assert vllm_mxfp4_alignment(a100) == (128, 256)  # vLLM's Marlin tile, not SGLang's
    model = load_model(GPT_OSS_120B)
    config = ServingConfig(max_model_len=2048)
    sglang = serving_memory(model, a100, config, engine="sglang")
    vllm = serving_memory(model, a100, config, engine="vllm")
    assert sglang.weights_gib == pytest.approx(60.7, abs=0.1) and vllm.weights_gib > 65
    assert sglang_server_kv(model, sglang, a100, config).kv_cache_gib > 4
    for gpu, cluster in ((a100, "1x1xA100-80G"), (b200, "1x1xB200")):
        tables = _terms(model, cluster).weights(1, 1, 1, None, "sglang")
        float_model = serving_memory(model, gpu, config, engine="sglang").weights_gib
        assert max(tables) / 2**30 == pytest.approx(float_model, rel=1e-9), cluster


def test_plan_fits_gpt_oss_120b_on_one_a100_with_sglang(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", GPT_OSS_120B, "--cluster", "1x1xA100-80G", "--engine", "sglang", "--disagg", "off"]
    assert main(argv) == 0
    assert "python -m sglang.launch_server" in capsys.readouterr().out


# ----- bug 3a: SGLang keeps a compressed-tensors checkpoint's cache in the model dtype --------------


def test_sglang_ignores_a_compressed_tensors_kv_cache_scheme() -> None:
    base = load_model("meta-llama/Llama-3.1-8B")
    q = quant_from_config({"quantization_config": CT_FP8_KV}, "ct")
    assert q is not None and q.kv_cache_dtype == "fp8_e4m3"  # vLLM reads it
    model = base.model_copy(update={"quantization": q})
    h100, t4 = get_gpu("H100-SXM"), get_gpu("T4")
    assert sglang_stored_kv_dtype(model, h100, "auto") == "bfloat16"
    assert sglang_stored_kv_dtype(model, t4, "auto") == "float16"
    assert sglang_stored_kv_dtype(model, h100, "fp8_e4m3") == "fp8_e4m3"
    config = ServingConfig(max_model_len=2048)
    plain = sglang_server_kv(base, serving_memory(base, h100, config, engine="sglang"), h100, config)
    priced = sglang_priced_config(model, h100, config)
    kv = sglang_server_kv(model, serving_memory(model, h100, priced, engine="sglang"), h100, config)
    assert kv.kv_bytes_per_token_per_gpu == plain.kv_bytes_per_token_per_gpu == 131072
