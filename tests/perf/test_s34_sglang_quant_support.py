"""What SGLang 0.5.6 runs (perf/engine_support.py): compressed-tensors schemes' own capability floors
and shapes, E4M3 KV caches under the Triton attention it forces on gpt-oss and Llama 4 below SM90,
and `--kv-cache-dtype bfloat16`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autoparallel.cli import main
from autoparallel.hardware import get_gpu
from autoparallel.models import load_model
from autoparallel.models.parse_quant import quant_from_config
from autoparallel.models.spec import ModelSpec
from autoparallel.models.zoo import find_entry
from autoparallel.perf.engine_support import engine_runtime_problem

A100, L40S, H100, T4 = (get_gpu(n) for n in ("A100-SXM-80G", "L40S", "H100-SXM", "T4"))
_INT8 = {"num_bits": 8, "type": "int", "symmetric": True}


def _ct(weights: dict[str, Any], activations: dict[str, Any] | None = None) -> ModelSpec:
    """Llama-3.1-8B with a compressed-tensors `quantization_config` of these weights."""
    group: dict[str, Any] = {"targets": ["Linear"], "weights": weights}
    if activations is not None:
        group["input_activations"] = activations
    fmt = "pack-quantized" if weights["num_bits"] < 8 else "int-quantized"
    qc = {"quant_method": "compressed-tensors", "format": fmt, "config_groups": {"group_0": group}}
    q = quant_from_config({"quantization_config": qc}, "ct")
    return load_model("meta-llama/Llama-3.1-8B").model_copy(update={"quantization": q})


def _w4a16(**over: Any) -> ModelSpec:
    weights = {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128, "symmetric": True}
    return _ct({**weights, "dynamic": False, **over})


# ----- bug 3b-d: compressed-tensors schemes on SGLang ---------------------------------------------


def test_sglang_int8_w8a8_needs_ada() -> None:
    """SGLang 0.5.6 `CompressedTensorsW8A8Int8.get_min_capability`: 89 ("lovelace and up")."""
    int8 = _ct(
        {**_INT8, "strategy": "channel", "dynamic": False}, {**_INT8, "strategy": "token", "dynamic": True}
    )
    refusal = engine_runtime_problem("sglang", None, "auto", int8, A100) or ""
    assert "INT8 W8A8 weights on compute capability 8.9 and up, not on A100-SXM-80G (8.0)" in refusal
    assert engine_runtime_problem("sglang", None, "auto", int8, L40S) is None
    assert engine_runtime_problem("vllm", None, "auto", int8, A100) is None  # vLLM's scheme: 7.5


def test_sglang_w4a16_needs_ampere() -> None:
    """`CompressedTensorsWNA16.get_min_capability`: 80 in SGLang 0.5.6, 75 in vLLM 0.32."""
    w4 = _w4a16()
    assert "compute capability 8.0 and up, not on T4 (7.5)" in (
        engine_runtime_problem("sglang", None, "auto", w4, T4) or ""
    )
    assert engine_runtime_problem("sglang", None, "auto", w4, A100) is None
    assert engine_runtime_problem("vllm", None, "auto", w4, T4) is None


def test_sglang_refuses_asymmetric_w4a16_and_vllm_loads_it() -> None:
    """SGLang's `_is_wNa16_group_channel` requires `symmetric`; vLLM's WNA16 has zero-point types."""
    asym = _w4a16(symmetric=False)
    assert asym.quantization is not None and not asym.quantization.symmetric
    refusal = engine_runtime_problem("sglang", None, "auto", asym, H100) or ""
    assert "asymmetric compressed-tensors INT4" in refusal and "\n" not in refusal
    assert engine_runtime_problem("vllm", None, "auto", asym, H100) is None


def test_plan_refuses_asymmetric_w4a16_on_sglang_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asym = {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128, "symmetric": False}
    qc = {
        "quant_method": "compressed-tensors",
        "format": "pack-quantized",
        "config_groups": {"group_0": {"targets": ["Linear"], "weights": {**asym, "dynamic": False}}},
    }
    entry = find_entry("meta-llama/Llama-3.1-8B")  # its zoo config, with this quantization_config
    assert entry is not None
    (tmp_path / "config.json").write_text(json.dumps({**entry.config, "quantization_config": qc}))
    argv = ["plan", str(tmp_path), "--cluster", "1x1xH100", "--engine", "sglang", "--disagg", "off"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "symmetric ones only" in err


# ----- bug 4: E4M3 caches under SGLang's forced Triton attention -----------------------------------


@pytest.mark.parametrize("name", ["openai/gpt-oss-20b", "meta-llama/Llama-4-Scout-17B-16E-Instruct"])
def test_sglang_e4m3_cache_refused_where_it_forces_triton(name: str) -> None:
    """`ServerArgs._handle_model_specific_adjustments`: gpt-oss and Llama 4 run `triton` attention
    below SM90, and Triton has no E4M3 below SM89."""
    model = load_model(name)
    for kv in ("fp8", "fp8_e4m3"):
        refusal = engine_runtime_problem("sglang", None, kv, model, A100) or ""
        assert "Triton backend" in refusal and model.architecture in refusal, kv
        assert engine_runtime_problem("sglang", None, kv, model, L40S) is None  # SM89: Triton has E4M3
        assert engine_runtime_problem("sglang", None, kv, model, H100) is None  # FA3
    assert engine_runtime_problem("sglang", None, "fp8_e5m2", model, A100) is None
    # A dense model keeps FlashInfer on Ampere: not refused.
    llama = load_model("meta-llama/Llama-3.1-8B")
    assert engine_runtime_problem("sglang", None, "fp8_e4m3", llama, A100) is None


def test_plan_refuses_gpt_oss_e4m3_on_a100_with_sglang(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "openai/gpt-oss-20b", "--cluster", "1x1xA100-80G", "--engine", "sglang"]
    assert main([*argv, "--kv-cache-dtype", "fp8", "--disagg", "off"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Triton reads E4M3 only from SM89" in err


# ----- bug 5: SGLang's bfloat16 KV cache ------------------------------------------------------------


def test_sglang_takes_a_bfloat16_cache_from_ampere() -> None:
    """SGLang 0.5.6 `--kv-cache-dtype` choices include bf16 / bfloat16; below SM80 it has no bfloat16
    (`ModelRunner.load_model`: "Use float16 due to lack of bfloat16 support")."""
    llama = load_model("meta-llama/Llama-3.1-8B")
    assert engine_runtime_problem("sglang", None, "bfloat16", llama, H100) is None
    assert engine_runtime_problem("sglang", None, "bfloat16", llama, A100) is None
    assert "no bfloat16 below SM80" in (engine_runtime_problem("sglang", None, "bfloat16", llama, T4) or "")
    v32 = load_model("deepseek-ai/DeepSeek-V3.2")  # NSA: "only supports bf16/bfloat16 or fp8_e4m3"
    assert engine_runtime_problem("sglang", None, "bfloat16", v32, H100) is None
    assert engine_runtime_problem("trtllm", None, "bfloat16", llama, H100) is not None


def test_sglang_refuses_int8_w8a8_moe_experts() -> None:
    """SGLang 0.5.6 `CompressedTensorsMoEMethod.get_moe_method` takes WNA16 or FP8 W8A8 experts only:
    "Unsupported FusedMoe scheme" for INT8 W8A8 (Qwen3-30B-A3B with such a config was planned)."""
    dense = _ct(
        {**_INT8, "strategy": "channel", "dynamic": False}, {**_INT8, "strategy": "token", "dynamic": True}
    )
    moe = load_model("Qwen/Qwen3-30B-A3B").model_copy(update={"quantization": dense.quantization})
    refusal = engine_runtime_problem("sglang", None, "auto", moe, L40S) or ""
    assert "INT8 W8A8 MoE experts" in refusal
    assert engine_runtime_problem("sglang", None, "auto", dense, L40S) is None
    assert engine_runtime_problem("vllm", None, "auto", moe, L40S) is None
