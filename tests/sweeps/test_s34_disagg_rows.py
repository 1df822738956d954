"""A sweep's disagg row: the verdict is by the measure of the objective both deployments were planned
for, its reason states the numbers compared, and an objective deployments are not planned at is said.

Before: with a request rate the verdict compared goodput per GPU (capped at the rate: 64.0 on both
sides) while the objective was throughput (capacity), so the winner was whichever took fewer GPUs,
and `disagg_why` gave a made-up cause; `--objectives ttft --disagg auto` rows were throughput
deployments with an empty message (`disagg._verdict`, `execute.disagg_columns`)."""

from __future__ import annotations

import re

from autoparallel.sweeps import make_scenario
from autoparallel.sweeps.execute import solve_scenario

SLOS = {"isl": 2048, "osl": 512, "ttft_ms": 2000, "tpot_ms": 30, "request_rate": 2}


def test_throughput_verdict_compares_capacity_per_gpu_and_says_the_numbers() -> None:
    row = solve_scenario(make_scenario("meta-llama/Llama-3.1-70B", "2x8xH100", SLOS, disagg="auto"), 60.0)
    assert row["status"] == "ok", row["message"]
    win, lose = ("agg", "disagg") if row["mode"] == "aggregated" else ("disagg", "agg")
    ours, theirs = row[f"{win}_tok_s_per_gpu"], row[f"{lose}_tok_s_per_gpu"]
    # the columns are capacity per GPU (the winner's is its row's figure), no longer the rate's 1024 / GPUs
    assert ours == row["throughput_tok_s_per_gpu"] and ours > theirs > 1024 / 16
    why = row["disagg_why"]
    lead = f"objective throughput: capacity tokens/s/GPU {ours:.1f} {row['mode']} vs {theirs:.1f} "
    assert why.startswith(lead), why
    assert "hide prefill work" not in why and "without prefill interference" not in why


def test_a_ttft_objective_row_says_what_its_deployments_were_planned_for() -> None:
    s = make_scenario("meta-llama/Llama-3.2-1B", "1x2xH100", "chatbot", objective="ttft", disagg="auto")
    row = solve_scenario(s, 30.0)
    assert row["status"] == "ok", row["message"]
    assert re.search(r"--objective ttft: the deployment sections are planned for throughput", row["message"])
