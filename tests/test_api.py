"""End-to-end API: solve, evaluate, analyze, sweep, on small zoo models."""

from __future__ import annotations

import pytest

import autoparallel as ap


@pytest.fixture(scope="module")
def plan_8b() -> ap.ServingPlan:
    return ap.solve("meta-llama/Llama-3.1-8B-Instruct", "1x2xH100", workload="chatbot")


def test_solve_returns_a_plan_that_fits_and_names_the_requested_id(plan_8b: ap.ServingPlan) -> None:
    assert plan_8b.fits
    assert plan_8b.solver["status"] in ("OPTIMAL", "FEASIBLE")
    assert plan_8b.config.gpus <= 2
    assert plan_8b.vllm_command.startswith("vllm serve meta-llama/Llama-3.1-8B-Instruct ")
    assert plan_8b.memory["kv_cache_tokens"] >= plan_8b.config.max_model_len


def test_plan_json_has_the_documented_keys(plan_8b: ap.ServingPlan) -> None:
    d = plan_8b.to_dict()
    assert {"command", "args", "yaml", "launch"} <= set(d["vllm"])
    assert {"output_tokens_per_s_per_gpu", "ttft_ms", "tpot_ms", "batch_size"} <= set(d["perf"])
    assert {"tp", "pp", "replicas", "max_num_seqs", "max_model_len"} <= set(d["config"])
    assert {"status", "wall_s"} <= set(d["solver"])
    assert d["perf"]["output_tokens_per_s_per_gpu"] > 0


def test_explain_mentions_memory_speed_and_command(plan_8b: ap.ServingPlan) -> None:
    text = plan_8b.explain()
    for needle in ("KV cache", "TPOT ms", "vllm serve", "weights"):
        assert needle in text


def test_evaluate_reports_gap_to_the_optimum(plan_8b: ap.ServingPlan) -> None:
    mine = ap.ServingConfig(tp=1, replicas=1, max_num_seqs=8, max_model_len=2048)
    ev = ap.evaluate("meta-llama/Llama-3.1-8B-Instruct", "1x2xH100", mine, "chatbot")
    assert ev.fits
    assert ev.solver["status"] == "EVALUATED"
    assert 0 < ev.solver["gap_to_optimum"] < 1  # one GPU at batch 8 is well below the optimum


def test_infeasible_names_the_memory_family() -> None:
    with pytest.raises(ap.InfeasibleError) as info:
        ap.solve("meta-llama/Llama-3.1-405B", "1x4xL4", workload="chatbot")
    assert "memory" in str(info.value)
    assert "GiB" in str(info.value)


def test_analyze_lists_shapes_with_vllm_memory() -> None:
    a = ap.analyze("meta-llama/Llama-3.1-70B", "1x8xH100")
    fits = {(r["tp"], r["pp"]) for r in a.rows if r["fits"]}
    assert (1, 1) not in fits  # 70B bf16 weights (131 GiB) do not fit one 80 GB GPU
    assert (4, 1) in fits and (8, 1) in fits


def test_sweep_keeps_infeasible_rows() -> None:
    rows = ap.sweep(models=["meta-llama/Llama-3.2-1B"], clusters=["1xH100", "1xT4"], workloads=["chatbot"])
    assert rows[0].status == "ok"
    assert len(rows) == 2


def test_bad_workload_type_is_an_input_error() -> None:
    with pytest.raises(ap.InputError):
        ap.solve("meta-llama/Llama-3.2-1B", "1xH100", workload=42)  # type: ignore[call-overload]
