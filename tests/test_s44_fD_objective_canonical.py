"""s44 fD: a plan stores its objective canonically (never the caller's spelling), and `--engine auto`'s
comparison explains the winner on that objective: the alias `headroom` on memory, the chain
("TTFT", "throughput") on ttft, where both read as throughput (the losers "25% / 896% better")."""

from __future__ import annotations

from typing import Any

import pytest

import autoparallel as ap
from autoparallel.engine_compare import comparison_dict
from autoparallel.fleet import fleet_of_one, solve_fleet
from autoparallel.objectives import canonical_objective, plan_label, primary_name

SMALL = "meta-llama/Llama-3.2-1B"
ENGINES = ap.ServingOptions(engines=("vllm", "sglang", "trtllm"))


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("TTFT", "ttft"),
        (" throughput ", "throughput"),
        ("headroom", "memory"),
        (("TTFT", "throughput"), "ttft>throughput"),
        (["Headroom", "tpot"], "memory>tpot"),
        ({"TTFT": 1, "throughput": 0.5}, "ttft=1,throughput=0.5"),
    ],
)
def test_plan_label_is_canonical(given: Any, stored: str) -> None:
    assert plan_label(given, "serving") == stored
    assert primary_name(stored) == stored.split(">")[0].split("=")[0].split(",")[0]


def test_canonical_objective_keeps_the_form() -> None:
    assert canonical_objective("COST", "deployment") == "cost"
    assert canonical_objective(["Goodput", "COST"], "deployment") == ("goodput", "cost")
    assert canonical_objective({"Goodput": 1}, "deployment") == {"goodput": 1.0}
    with pytest.raises(ap.InputError, match="unknown deployment objective"):
        canonical_objective("ttft", "deployment")


def _whys(plan: ap.ServingPlan) -> list[str]:
    return [e["why_not"] for e in comparison_dict(plan)["engines"] if "why_not" in e]


@pytest.mark.parametrize(
    ("objective", "stored", "primary"),
    [
        ("headroom", "memory", "memory"),
        ("TTFT", "ttft", "ttft"),
        (("TTFT", "throughput"), "ttft>throughput", "ttft"),
        (" throughput ", "throughput", "throughput"),
    ],
)
def test_serving_plan_and_engine_comparison_name_the_primary_objective(
    objective: Any, stored: str, primary: str
) -> None:
    plan = ap.solve(SMALL, "1x2xH100", objective=objective, options=ENGINES)
    assert plan.objective == stored
    assert comparison_dict(plan)["engine_objective"] == stored
    whys = _whys(plan)
    assert len(whys) == 2 and all(w.startswith(f"{primary} ") for w in whys), whys
    assert f"objective {stored};" in plan.explain()


def test_a_lost_engine_is_not_better_on_the_primary_objective() -> None:
    # memory (headroom) is maximized: a loser's headroom is below the winner's, never "+25%"
    plan = ap.solve(SMALL, "1x2xH100", objective="headroom", options=ENGINES)
    for w in _whys(plan):
        assert "(-" in w.split(")")[0] + ")", w


def test_training_plan_objective_is_canonical() -> None:
    job = ap.Training(seq_len=2048, global_batch=64)
    assert ap.solve(SMALL, "1x8xH100", job, objective="HEADROOM").objective == "memory>throughput"


def test_fleet_plan_objective_is_canonical() -> None:
    w = ap.Serving.preset("chatbot").model_copy(update={"request_rate": 2.0})
    fleet = fleet_of_one(SMALL, w)
    assert solve_fleet(fleet, "1x2xH100", objective="COST").deployment.objective == "cost"
    chain = solve_fleet(fleet, "1x2xH100", objective=("Goodput", "COST"))
    assert chain.deployment.objective == "goodput+cost"


def test_fleet_priority_note_reads_a_chain_led_by_a_token_objective() -> None:
    entries = [
        {"model": SMALL, "workload": "chatbot", "request_rate": 1.0, "priority": 2.0},
        {"model": "Qwen/Qwen2.5-3B-Instruct", "workload": "chatbot", "request_rate": 1.0},
    ]
    for objective in ("GOODPUT", ("Goodput", "cost")):
        text = solve_fleet(entries, "1x2xH100", objective=objective).explain()
        assert "priorities (" in text, objective
