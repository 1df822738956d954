"""Engine refusals the engines' own start-up code makes (vLLM 0.32 CPU checker, SGLang 0.5.6
`ServerArgs` and model loader): GPTQ group activation ordering on vLLM, FP8 MoE experts on SGLang below
SM89, online quantization methods autoparallel does not plan, and the long-context preset on 128k
models."""

from __future__ import annotations

import pytest

from autoparallel.cli import main
from autoparallel.errors import InputError
from autoparallel.hardware import get_gpu
from autoparallel.memory import vllm_config
from autoparallel.models import load_model
from autoparallel.models.spec import ModelSpec
from autoparallel.models.zoo import list_models
from autoparallel.perf.engine_support import engine_model_problem, engine_runtime_problem
from autoparallel.workload import PRESETS

GPTQ_DESC_ACT = "TheBloke/Llama-2-13B-chat-GPTQ"


def _with_act_order(model: ModelSpec, act_order: bool = True) -> ModelSpec:
    q = model.quantization
    assert q is not None
    return model.model_copy(update={"quantization": q.model_copy(update={"act_order": act_order})})


# ----- 1. vLLM 0.32 refuses GPTQ group activation ordering ------------------------------------------


def test_vllm_refuses_gptq_group_act_order_from_032() -> None:
    """`normalize_and_validate_gptq_desc_act` raises for desc_act with group_size != -1."""
    model = _with_act_order(load_model(GPTQ_DESC_ACT))
    why = engine_model_problem("vllm", model)
    assert why is not None and "GPTQ group activation ordering" in why and "--engine sglang" in why
    assert engine_model_problem("vllm", model, "0.20") is None  # not pinned before 0.32
    assert engine_model_problem("sglang", model) is None
    assert engine_model_problem("vllm", _with_act_order(load_model(GPTQ_DESC_ACT), False)) is None
    runtime = engine_runtime_problem("vllm", None, "auto", model, get_gpu("H100"))
    assert runtime == why


def test_zoo_desc_act_gptq_is_refused_by_vllm() -> None:
    """The zoo's TheBloke GPTQ card has desc_act true, group 128: vLLM 0.32 refuses it at start-up."""
    why = engine_model_problem("vllm", load_model(GPTQ_DESC_ACT))
    assert why is not None and "desc_act" in why


def test_act_order_parsed_as_vllm_reads_desc_act() -> None:
    """desc_act with group_size -1 is dropped; a positive `dynamic` rule can turn it on."""
    from autoparallel.models.parse_quant import quant_from_config

    def act_order(**qc: object) -> bool:
        q = quant_from_config({"quantization_config": {"quant_method": "gptq", "bits": 4, **qc}}, "m")
        return bool(q is not None and q.act_order)

    assert act_order(group_size=128, desc_act=True)
    assert not act_order(group_size=-1, desc_act=True) and not act_order(group_size=128, desc_act=False)
    assert act_order(
        group_size=-1, desc_act=False, dynamic={r"+:.*\.0\..*": {"desc_act": True, "group_size": 64}}
    )
    assert not act_order(group_size=128, desc_act=False, dynamic={r"-:.*": {"desc_act": True}})


# ----- 2. SGLang 0.5.6 FP8 MoE experts need SM89 ----------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "quantization"),
    [("Qwen/Qwen3-30B-A3B", "fp8"), ("deepseek-ai/DeepSeek-V3", None)],
)
def test_sglang_refuses_fp8_moe_below_sm89(model_id: str, quantization: str | None) -> None:
    """`Fp8MoEMethod` runs Triton's fused MoE with E4M3 operands; Triton has no fp8e4nv below SM89."""
    model = load_model(model_id)
    why = engine_runtime_problem("sglang", quantization, "auto", model, get_gpu("A100-SXM-80G"))
    assert why is not None and "FP8 MoE experts" in why and "8.9" in why
    for ok in ("L40S", "H100"):
        assert engine_runtime_problem("sglang", quantization, "auto", model, get_gpu(ok)) is None


def test_sglang_dense_fp8_on_ampere_stays_allowed() -> None:
    """Dense FP8 layers run SGLang's Marlin W8A16 fallback on SM80-SM88 (`can_auto_enable_marlin_fp8`)."""
    model = load_model("meta-llama/Llama-3.1-8B")
    assert engine_runtime_problem("sglang", "fp8", "auto", model, get_gpu("A100-SXM-80G")) is None
    moe = load_model("Qwen/Qwen3-30B-A3B")
    assert engine_runtime_problem("sglang", None, "auto", moe, get_gpu("A100-SXM-80G")) is None


def test_evaluate_sglang_fp8_moe_on_a100_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["evaluate", "Qwen/Qwen3-30B-A3B", "--cluster", "1xA100-80G", "--engine", "sglang"]
    assert main([*argv, "--quantization", "fp8"]) == 2
    assert "SGLang runs FP8 MoE experts" in capsys.readouterr().err


# ----- 3. online quantization autoparallel does not plan -----------------------------------------


@pytest.mark.parametrize("method", ["fp8_per_block", "fp8_per_channel", "mxfp8"])
def test_online_quant_message_names_the_engine(method: str) -> None:
    """vLLM 0.32 registers these online (`_ONLINE_SHORTHANDS`); autoparallel plans online fp8 only."""
    model = load_model("Qwen/Qwen3-30B-A3B")
    assert method in vllm_config.VLLM_ONLINE_SHORTHANDS
    h100 = get_gpu("H100")
    vllm = engine_runtime_problem("vllm", method, "auto", model, h100)
    assert vllm is not None and "vLLM's online quantization" in vllm and "not modelled" in vllm
    assert method in vllm and "only with fp8" not in vllm
    sglang = engine_runtime_problem("sglang", method, "auto", model, h100)
    assert sglang is not None and "SGLang's online quantization" in sglang and "vLLM" not in sglang
    with pytest.raises(InputError, match="not modelled") as info:
        vllm_config.apply_dtype_and_quant(model, "auto", method)
    assert "vLLM can quantize" not in str(info.value)
    assert vllm_config.online_quant_problem(model, "fp8", "vllm") is None


def test_evaluate_fp8_per_block_names_vllm(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["evaluate", "Qwen/Qwen3-30B-A3B", "--cluster", "1xH100", "--quantization", "fp8_per_block"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "autoparallel plans vLLM's online quantization" in err and "fp8_per_block" in err


# ----- 4. the long-context preset fits a 128k model -------------------------------------------------


def test_long_context_preset_fits_every_128k_zoo_model() -> None:
    w = PRESETS["long-context"]
    assert (w.isl, w.osl) == (131072 - 1024, 1024)
    for entry in list_models():
        spec = entry.spec()
        if spec.max_position_embeddings >= 131072:
            assert w.isl + w.osl <= spec.vllm_default_max_model_len, entry.id


def test_plan_llama_31_long_context_is_not_refused_for_context(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "meta-llama/Llama-3.1-8B", "--cluster", "1xH100", "--workload", "long-context"]
    assert main([*argv, "--json"]) == 0
    assert "cannot serve a 132096-token context" not in capsys.readouterr().err


def test_a_pool_the_recurrent_states_take_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    """Qwen3-Next under TensorRT-LLM holds a recurrent state for every max_batch_size slot before the
    pool is sized: at 128 slots on two H100s nothing is left, and the reason blamed the weights alone
    (at 64 slots the same weights leave a pool)."""
    argv = ["evaluate", "Qwen/Qwen3-Next-80B-A3B-Instruct", "--cluster", "2xH100", "--tp", "2"]
    main([*argv, "--engine", "trtllm", "--max-num-seqs", "128"])
    out = capsys.readouterr().out
    assert "recurrent states of 128 request slots" in out and "fewer slots (--max-num-seqs)" in out
