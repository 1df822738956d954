"""What a trainer reads: every time component, per-stage time and memory, time and $ to train."""

from __future__ import annotations

import autoparallel as ap

COMPONENTS = (
    "compute",
    "tp_comm",
    "cp_comm",
    "ep_comm",
    "pp_bubble",
    "dp_comm_exposed",
    "optimizer",
    "offload",
)


def test_evaluate_reports_components_stages_and_cost_to_train() -> None:
    cfg = ap.TrainingConfig(
        tp=2, pp=2, dp=2, micro_batch=1, global_batch=32, seq_len=4096, layers_per_stage=(7, 9)
    )
    workload = ap.Training(seq_len=4096, global_batch=32, tokens=1e11)
    plan = ap.evaluate("meta-llama/Llama-3.2-1B", "1x8xH100", cfg, workload, compare=False)
    perf = plan.to_dict()["perf"]
    assert set(COMPONENTS) == set(perf["components_s"])
    # JSON values are rounded: the parts add up to the step within rounding.
    assert abs(sum(perf["components_s"].values()) / perf["step_time_s"] - 1) < 1e-3
    assert [s["layers"] for s in perf["stages"]] == [7, 9]
    assert perf["time_to_train_s"] > 0 and perf["usd_to_train"] > 0
    text = plan.explain()
    for name in COMPONENTS:
        assert name in text
    assert "time per pipeline stage" in text and "to train 100,000,000,000 tokens" in text
    assert "GPU-hours" in text


def test_no_token_budget_prints_no_cost() -> None:
    cfg = ap.TrainingConfig(tp=1, dp=8, micro_batch=1, global_batch=32, seq_len=2048)
    plan = ap.evaluate("meta-llama/Llama-3.2-1B", "1x8xH100", cfg, compare=False)
    assert "time_to_train_s" not in plan.to_dict()["perf"]
    assert "to train" not in plan.explain()
