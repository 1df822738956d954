"""Quantized checkpoints against what vLLM 0.32 and SGLang 0.5.6 accept at start-up: least compute
capabilities of GPTQ and INT8 W8A8, the `--quantization` a compressed-tensors checkpoint may carry,
and MLA over an E5M2 KV cache. Compressed-tensors checkpoints are Llama-3.1-8B configs with an
llm-compressor `quantization_config`, written to tmp_path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autoparallel.cli import main
from autoparallel.configs import ServingConfig
from autoparallel.errors import InputError
from autoparallel.frameworks.sglang import sglang_args
from autoparallel.frameworks.vllm import vllm_args
from autoparallel.hardware import get_gpu
from autoparallel.memory.vllm_config import checkpoint_quantization
from autoparallel.models import load_model
from autoparallel.models.spec import ModelSpec
from autoparallel.perf.engine_support import engine_runtime_problem

LLAMA_8B: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "hidden_act": "silu",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "max_position_embeddings": 131072,
    "mlp_bias": False,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    },
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "vocab_size": 128256,
}
_INT8 = {"num_bits": 8, "type": "int", "symmetric": True}
_FP8 = {"num_bits": 8, "type": "float", "symmetric": True}
CT_SCHEMES: dict[str, dict[str, Any]] = {
    "ct_int8": {
        "format": "int-quantized",
        "weights": {**_INT8, "strategy": "channel", "dynamic": False},
        "input_activations": {**_INT8, "strategy": "token", "dynamic": True},
    },
    "ct_fp8": {
        "format": "float-quantized",
        "weights": {**_FP8, "strategy": "channel", "dynamic": False},
        "input_activations": {**_FP8, "strategy": "token", "dynamic": True},
    },
    "ct_w4": {
        "format": "pack-quantized",
        "weights": {
            "num_bits": 4,
            "type": "int",
            "strategy": "group",
            "group_size": 128,
            "dynamic": False,
            "symmetric": True,
        },
    },
}
GPTQ = "TheBloke/Llama-2-13B-chat-GPTQ"


def ct_config(tmp_path: Path, name: str) -> Path:
    """A compressed-tensors checkpoint's config.json (`CT_SCHEMES[name]`) under tmp_path/name."""
    scheme = dict(CT_SCHEMES[name])
    fmt = scheme.pop("format")
    qc = {
        "quant_method": "compressed-tensors",
        "format": fmt,
        "config_groups": {"group_0": {"targets": ["Linear"], **scheme}},
        "ignore": ["lm_head"],
    }
    path = tmp_path / name / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**LLAMA_8B, "quantization_config": qc}))
    return path


def ct_model(tmp_path: Path, name: str) -> ModelSpec:
    return load_model(ct_config(tmp_path, name))


def gptq_in_order(tmp_path: Path) -> Path:
    """The zoo's GPTQ checkpoint without activation ordering (desc_act false), which vLLM 0.32 still
    loads: the zoo's own has desc_act, which 0.32 refuses on any GPU (`engine_support`)."""
    import copy

    from autoparallel.models.zoo import find_entry

    entry = find_entry(GPTQ)
    assert entry is not None
    config = copy.deepcopy(entry.config)
    config["quantization_config"]["desc_act"] = False
    folder = tmp_path / "gptq-in-order"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    return folder


# ----- bug 1: least compute capabilities ------------------------------------------------------------


def test_vllm_runs_gptq_and_int8_w8a8_from_turing_only(tmp_path: Path) -> None:
    """vLLM 0.32 runs GPTQ on Marlin only (`verify_marlin_supported`: no quant type below 7.5) and
    `CompressedTensorsW8A8Int8.get_min_capability` is 75; SGLang's GPTQ stays at 6.0 and its INT8
    W8A8 scheme needs 8.9 (SGLang 0.5.6 `CompressedTensorsW8A8Int8.get_min_capability`: 89, "lovelace
    and up")."""
    v100, t4, a100 = get_gpu("V100-SXM2-32G"), get_gpu("T4"), get_gpu("A100-SXM-80G")
    gptq, int8 = load_model(gptq_in_order(tmp_path)), ct_model(tmp_path, "ct_int8")
    for model, what in ((gptq, "GPTQ"), (int8, "INT8 W8A8")):
        refusal = engine_runtime_problem("vllm", None, "auto", model, v100) or ""
        assert f"vLLM runs {what} weights on compute capability 7.5 and up" in refusal
        assert engine_runtime_problem("vllm", None, "auto", model, t4) is None
    assert engine_runtime_problem("sglang", None, "auto", gptq, t4) is None
    assert "INT8 W8A8 weights on compute capability 8.9" in (
        engine_runtime_problem("sglang", None, "auto", int8, t4) or ""
    )
    assert engine_runtime_problem("sglang", None, "auto", int8, a100) is not None
    assert engine_runtime_problem("sglang", None, "auto", int8, get_gpu("L40S")) is None
    # The floor is the checkpoint's format's, whatever --quantization names it.
    assert engine_runtime_problem("vllm", "compressed-tensors", "auto", int8, v100) is not None


def test_plan_refuses_gptq_on_v100_for_vllm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["plan", str(gptq_in_order(tmp_path)), "--cluster", "1xV100-SXM2-32G", "--engine", "vllm"]) == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "GPTQ weights on compute capability 7.5 and up" in err


# ----- bug 2: --quantization on a compressed-tensors checkpoint ------------------------------------


@pytest.mark.parametrize(("name", "flag"), [("ct_fp8", "fp8"), ("ct_w4", "gptq"), ("ct_int8", "int8")])
def test_compressed_tensors_launch_lines_carry_no_other_quantization(
    tmp_path: Path, name: str, flag: str
) -> None:
    """vLLM's and SGLang's `_verify_quantization` refuse a `--quantization` other than the checkpoint's
    `quant_method` (compressed-tensors); `int8` is no SGLang choice at all. The user's name of the
    checkpoint's format is the checkpoint as loaded: no flag."""
    model = ct_model(tmp_path, name)
    assert checkpoint_quantization(model, flag) is None
    assert checkpoint_quantization(model, "compressed-tensors") is None
    config = ServingConfig(max_model_len=4096, quantization=flag)
    assert "quantization" not in vllm_args(str(tmp_path / name), config, model=model)
    sglang = sglang_args(str(tmp_path / name), config, mem_fraction_static=0.8, model=model)
    assert "quantization" not in sglang


def test_contradicting_quantization_is_refused_alike_in_plan_evaluate_memory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(ct_config(tmp_path, "ct_fp8"))
    for argv in (
        ["plan", path, "--cluster", "1xH100", "--quantization", "awq"],
        ["evaluate", path, "--cluster", "1x1xH100", "--quantization", "awq"],
        ["memory", path, "--gpu", "H100", "--quantization", "awq"],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "does not match" in err and "compressed-tensors" in err, argv
    # A compressed-tensors name on a GPTQ checkpoint contradicts it (vLLM: "... (gptq) does not match").
    with pytest.raises(InputError, match="does not match"):
        checkpoint_quantization(load_model(GPTQ), "compressed-tensors")
    assert checkpoint_quantization(load_model(GPTQ), "gptq_marlin") is None


def test_plan_of_a_compressed_tensors_fp8_checkpoint_omits_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(ct_config(tmp_path, "ct_fp8"))
    argv = ["plan", path, "--cluster", "1xH100", "--quantization", "fp8", "--disagg", "off", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["quantization"] is None
    assert "--quantization" not in json.dumps(out)


# ----- bug 3: MLA over an E5M2 cache ------------------------------------------------------------------


def test_vllm_has_no_mla_backend_for_an_e5m2_cache() -> None:
    """Every CUDA MLA backend of vLLM 0.32 lists auto/float16/bfloat16/fp8/fp8_e4m3 at most; V3.2 turns
    any fp8 dtype into fp8_ds_mla (`DeepseekV32ForCausalLM.verify_and_update_config`)."""
    from autoparallel.memory.vllm_config import vllm_stored_kv_dtype

    h200, b200, mi300 = get_gpu("H200"), get_gpu("B200"), get_gpu("MI300X")
    v3, v32 = load_model("deepseek-ai/DeepSeek-V3"), load_model("deepseek-ai/DeepSeek-V3.2")
    for gpu in (h200, b200):
        assert "no E5M2 KV cache" in (engine_runtime_problem("vllm", None, "fp8_e5m2", v3, gpu) or "")
        assert engine_runtime_problem("vllm", None, "fp8_e4m3", v3, gpu) is None
    assert engine_runtime_problem("vllm", None, "fp8_e5m2", v3, mi300) is None  # AITER MLA takes it
    assert engine_runtime_problem("vllm", None, "fp8_e5m2", v32, h200) is None
    assert vllm_stored_kv_dtype(v32, "fp8_e5m2") == "fp8_ds_mla"
    llama = load_model("meta-llama/Llama-3.1-8B")
    assert engine_runtime_problem("vllm", None, "fp8_e5m2", llama, h200) is None
    # An older release is not checked.
    assert engine_runtime_problem("vllm", None, "fp8_e5m2", v3, h200, vllm_version="0.10.1") is None


def test_plan_refuses_deepseek_v3_over_e5m2_on_vllm(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "deepseek-ai/DeepSeek-V3", "--cluster", "1x8xH200", "--kv-cache-dtype", "fp8_e5m2"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "E5M2" in err and "MLA" in err
