"""The API's own checks and artifacts: vLLM's runtime refusals in `vllm_memory` / `analyze`, a
placeholder for a model given as a config alone, bounded `SolverSettings`, a sweep given both
scenarios and a grid, layer partitions and margins, objects changed by `model_copy`, vLLM artifacts
of another engine's plan, and the typed overloads of `evaluate` / `AutoParallel`."""

from __future__ import annotations

import io
import typing
from contextlib import redirect_stdout
from typing import Any

import pytest
from pydantic import ValidationError

import autoparallel as ap
from autoparallel import api
from autoparallel.bounds import revalidated
from autoparallel.memory.margins import MemoryConfig
from autoparallel.models.loader import NO_MODEL_ID

SMALL = "meta-llama/Llama-3.2-1B"
LLAMA_CONFIG: dict[str, Any] = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
    "torch_dtype": "bfloat16",
}


# ----- 1. what vLLM cannot start does not fit ------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "reason"),
    [
        ("TheBloke/Llama-2-13B-chat-GPTQ", "desc_act"),
        ("meta-llama/Llama-3.2-11B-Vision-Instruct", "MllamaForConditionalGeneration"),
    ],
)
def test_vllm_memory_does_not_fit_a_model_vllm_refuses(model: str, reason: str) -> None:
    """The memory fits; vLLM 0.32 still refuses the checkpoint (`normalize_and_validate_gptq_desc_act`;
    Mllama dropped after v0.10.2), as `autoparallel memory` says."""
    report = api.vllm_memory(model, "H100")
    assert not report.fits
    assert reason in report.problems[0]


def test_analyze_fits_no_shape_of_an_mxfp4_model_below_sm80() -> None:
    rows = ap.analyze("openai/gpt-oss-20b", "1x4xT4").rows
    assert rows and not any(r["fits"] for r in rows)
    assert all("MXFP4" in r["problems"][0] for r in rows)


def test_the_memory_command_keeps_its_verdict() -> None:
    from autoparallel.cli import main

    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["memory", "TheBloke/Llama-2-13B-chat-GPTQ", "--gpu", "H100"])
    assert code == 1
    assert "fits: NO, vLLM cannot start" in out.getvalue()
    assert "desc_act" in out.getvalue()


# ----- 2. a config without an id serves a placeholder ---------------------------------------------
@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm"])
def test_a_config_without_an_id_launches_a_placeholder(engine: str) -> None:
    plan = ap.solve(LLAMA_CONFIG, "1x1xH100", options=ap.ServingOptions(engines=(engine,)))
    assert plan.engine == engine
    assert f"'{NO_MODEL_ID}'" in plan.command
    assert " llama " not in f"{plan.command} "
    assert any(NO_MODEL_ID in n for n in plan.engine_notes)
    assert plan.to_dict()["model"] == NO_MODEL_ID


def test_a_spec_loaded_from_such_a_config_serves_the_placeholder_too() -> None:
    plan = ap.solve(ap.load_model(LLAMA_CONFIG), "1x1xH100")
    assert plan.vllm_command.startswith(f"vllm serve '{NO_MODEL_ID}' ")
    assert f"model: {NO_MODEL_ID}" in plan.vllm_yaml
    assert any(NO_MODEL_ID in n for n in plan.vllm_launch.notes)


def test_a_config_naming_its_checkpoint_serves_that_id() -> None:
    named = {**LLAMA_CONFIG, "_name_or_path": "/models/my-llama"}
    assert ap.solve(named, "1x1xH100").command.startswith("vllm serve /models/my-llama ")


# ----- 3. solver settings are bounded at construction ---------------------------------------------
@pytest.mark.parametrize(
    "fields",
    [
        {"seed": 2**31},
        {"seed": -1},
        {"time_limit_s": float("inf")},
        {"time_limit_s": float("nan")},
        {"time_limit_s": 86401.0},
        {"workers": 4097},
        {"lexicographic_tolerance": float("nan")},
    ],
)
def test_solver_settings_refuse_numbers_out_of_bounds(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ap.SolverSettings(**fields)


def test_solver_settings_keep_the_edges_of_their_bounds() -> None:
    s = ap.SolverSettings(seed=2**31 - 1, time_limit_s=86400.0, workers=4096)
    assert (s.seed, s.time_limit_s, s.workers) == (2**31 - 1, 86400.0, 4096)
    assert ap.SolverSettings(time_limit_s=1e-9).time_limit_s == 1e-9  # a deadline's remainder


# ----- 4. scenarios or a grid, not both -----------------------------------------------------------
@pytest.mark.parametrize(
    "grid",
    [
        {"models": ["Qwen/Qwen3-8B"], "clusters": ["1x8xH100"]},
        {"workloads": ["rag"]},
        {"objective": "cost"},
        {"engines": ["sglang"]},
    ],
)
def test_sweep_refuses_scenarios_with_a_grid(grid: dict[str, Any]) -> None:
    rows = [{"model": SMALL, "cluster": "1xH100"}]
    with pytest.raises(ap.InputError, match="not both"):
        ap.sweep(rows, executor="serial", **grid)


# ----- 5. layer partitions and margins ------------------------------------------------------------
@pytest.mark.parametrize("partition", [(40, -4), (18.5, 17.5), (36, 0), (True, 35), (18.0, 18.0), "18,18"])
def test_a_bad_layer_partition_is_an_input_error(partition: Any) -> None:
    """Qwen3-8B has 36 layers: each of these has 2 stages summing to 36, or is no tuple at all."""
    with pytest.raises(ap.InputError, match="pp_layer_partition"):
        ap.vllm_memory("Qwen/Qwen3-8B", "H100", pp=2, pp_layer_partition=partition)


def test_a_partition_as_a_list_of_whole_layers_is_priced() -> None:
    r = ap.vllm_memory("Qwen/Qwen3-8B", "H100", pp=2, pp_layer_partition=[20, 16])  # type: ignore[arg-type]
    assert [s.num_layers for s in r.stages] == [20, 16]


@pytest.mark.parametrize("margins", [{}, 0.9, "default"])
def test_training_memory_refuses_margins_that_are_not_a_memory_config(margins: Any) -> None:
    with pytest.raises(ap.InputError, match="margins must be a MemoryConfig"):
        ap.training_memory(SMALL, "H100", ap.TrainingConfig(), margins=margins)


def test_training_memory_revalidates_copied_margins() -> None:
    bad = MemoryConfig().model_copy(update={"utilization": 0})
    with pytest.raises(ap.InputError, match="utilization"):
        ap.training_memory(SMALL, "H100", ap.TrainingConfig(), margins=bad)


# ----- 6. objects changed by model_copy are validated again ---------------------------------------
def test_evaluate_revalidates_a_copied_training_config() -> None:
    cfg = ap.TrainingConfig(global_batch=8).model_copy(update={"micro_batch": 0})
    with pytest.raises(ap.InputError, match="micro_batch"):
        ap.evaluate(SMALL, "1x8xH100", cfg)


def test_evaluate_revalidates_a_copied_serving_config() -> None:
    with pytest.raises(ap.InputError, match="tp"):
        ap.evaluate(SMALL, "1xH100", ap.ServingConfig().model_copy(update={"tp": 0}))


@pytest.mark.parametrize(
    ("update", "field"),
    [
        ({"max_num_seqs": ()}, "max_num_seqs"),
        ({"engines": ("bogus",)}, "engines"),
        ({"tp_values": (0,)}, "tp_values"),
    ],
)
def test_solve_revalidates_copied_serving_options(update: dict[str, Any], field: str) -> None:
    with pytest.raises(ap.InputError, match=field):
        ap.solve(SMALL, "1xH100", options=ap.ServingOptions().model_copy(update=update))


def test_solve_revalidates_copied_training_options() -> None:
    opts = ap.TrainingOptions().model_copy(update={"tp_values": (0,)})
    with pytest.raises(ap.InputError, match="tp_values"):
        ap.solve(SMALL, "1x8xH100", ap.Training(seq_len=4096, global_batch=64), options=opts)


def test_revalidation_keeps_the_fields_the_caller_set() -> None:
    """`evaluate` reads which fields were set (an unset max_model_len takes the workload's)."""
    cfg = ap.ServingConfig(tp=1).model_copy(update={"max_num_seqs": 64})
    checked = revalidated(cfg, "config")
    assert checked == cfg
    assert checked.model_fields_set == cfg.model_fields_set == {"tp", "max_num_seqs"}


# ----- 7. vLLM artifacts of another engine's plan -------------------------------------------------
@pytest.fixture(scope="module")
def sglang_plan() -> ap.ServingPlan:
    return ap.solve(SMALL, "1xH100", options=ap.ServingOptions(engines=("sglang",)))


@pytest.mark.parametrize("name", ["vllm_command", "vllm_yaml", "vllm_launch", "vllm_args"])
def test_vllm_artifacts_of_an_sglang_plan_are_refused(sglang_plan: ap.ServingPlan, name: str) -> None:
    with pytest.raises(ap.InputError, match=r"runs on SGLang.*\.command"):
        getattr(sglang_plan, name)


def test_an_sglang_plan_still_gives_its_own_launch(sglang_plan: ap.ServingPlan) -> None:
    assert sglang_plan.command.startswith("python -m sglang.launch_server")
    assert "sglang" in sglang_plan.to_dict()
    assert "SGLang" in sglang_plan.explain()


# ----- 9. typed overloads -------------------------------------------------------------------------
@pytest.mark.parametrize("function", [api.evaluate, api.AutoParallel.solve, api.AutoParallel.evaluate])
def test_plans_are_typed_by_what_is_asked(function: Any) -> None:
    """A TrainingConfig or Training gives a TrainingPlan, a ServingConfig or Serving a ServingPlan, so
    that `plan.command` / `plan.megatron_args` type-check without a cast (mypy examples/)."""
    returns = {typing.get_type_hints(o)["return"] for o in typing.get_overloads(function)}
    assert {ap.ServingPlan, ap.TrainingPlan} <= returns
