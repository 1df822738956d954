"""`solve` / `solve_top` with cost at a request rate: the $/hour that sustains the rate is the deployment
planner's question (`solve_fleet`), not the single-engine planner's (its replicas fill the cluster and
its cost is $ per million tokens at full load): refused with one line that names the call to make, as
`plan MODEL --objective cost --request-rate R` goes to the deployment planner (`fleet_cmd._cost_at_a_rate`).
DeepSeek-V3 on 64x8xH100 at 20 req/s was planned on all 512 GPUs at "$5.17 per million tokens"."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

import autoparallel as ap
from autoparallel.api import cost_at_a_rate
from autoparallel.cli.fleet_cmd import _cost_at_a_rate
from autoparallel.sweeps.execute import solve_scenario
from autoparallel.sweeps.scenario import make_scenario

MODEL, CLUSTER = "meta-llama/Llama-3.2-1B", "1x2xH100"
AT_RATE = ap.Serving(isl=1024, osl=128, request_rate=5.0)
SETTINGS = ap.SolverSettings.create(time_limit_s=10)


@pytest.mark.parametrize(
    "objective",
    ["cost", ("cost", "ttft"), {"throughput": 1.0, "cost": 0.5}],
    ids=["name", "lexicographic-first", "weighted"],
)
def test_cost_at_a_rate_is_refused_naming_solve_fleet(objective: Any) -> None:
    with pytest.raises(ap.InputError) as exc:
        ap.solve(MODEL, CLUSTER, AT_RATE, objective, settings=SETTINGS)
    text = str(exc.value)
    assert "\n" not in text and "request_rate=5 req/s" in text
    assert "solve_fleet(autoparallel.fleet.fleet_of_one(model, workload), cluster, objective='cost')" in text
    assert "drop request_rate to rank engines by $ per million tokens at full load" in text
    with pytest.raises(ap.InputError, match="solve_fleet"):
        ap.solve_top(MODEL, CLUSTER, AT_RATE, objective, settings=SETTINGS, top=1)
    if objective == "cost":  # the call it names, as written: the deployment sized to the rate
        model, cluster, workload = MODEL, CLUSTER, AT_RATE
        import autoparallel

        fleet = autoparallel.fleet.fleet_of_one(model, workload)
        plan = ap.solve_fleet(fleet, cluster, objective="cost", settings=SETTINGS)
        assert plan.deployment.objective == "cost" and plan.deployment.gpus_used == 1  # 1 of 2 GPUs


def test_a_ranking_a_replay_or_no_rate_still_plans_one_engine() -> None:
    assert not cost_at_a_rate(AT_RATE, "cost", top=2)
    plans = ap.solve_top(MODEL, CLUSTER, AT_RATE, "cost", settings=SETTINGS, top=2)
    assert plans and plans[0].perf.usd_per_million_tokens > 0
    replay = AT_RATE.with_updates({"num_prompts": 100})
    assert not cost_at_a_rate(replay, "cost")
    no_rate = ap.Serving(isl=1024, osl=128)
    assert not cost_at_a_rate(no_rate, "cost")
    plan = ap.solve(MODEL, CLUSTER, no_rate, "cost", settings=SETTINGS)
    assert plan.config.gpus == 2 and plan.perf.usd_per_million_tokens > 0
    # cost behind another objective, or a zero weight, is not the question of the $/hour at the rate
    assert not cost_at_a_rate(AT_RATE, ("throughput", "cost"))
    assert not cost_at_a_rate(AT_RATE, {"throughput": 1.0, "cost": 0.0})
    assert ap.solve(MODEL, CLUSTER, AT_RATE, ("throughput", "cost"), settings=SETTINGS).fits


@pytest.mark.parametrize("top", [None, 1, 2])
@pytest.mark.parametrize("prompts", [None, 50])
@pytest.mark.parametrize("rate", [None, 5.0])
@pytest.mark.parametrize("objective", ["cost", "throughput", "tpot"])
def test_one_rule_with_plan_models_deployment_routing(
    objective: str, rate: float | None, prompts: int | None, top: int | None
) -> None:
    w = ap.Serving(isl=1024, osl=128, request_rate=rate, num_prompts=prompts)
    args = argparse.Namespace(objective=objective, top=top)
    assert cost_at_a_rate(w, objective, top or 1) == _cost_at_a_rate(args, w)


def test_a_vllm_sweep_row_plans_cost_at_a_rate_as_the_deployment_sized_to_it() -> None:
    """As `plan MODEL --objective cost --request-rate R` does: the row is the aggregated deployment
    (`disagg off`), $/hour at the rate, not the single-engine planner's cluster-filling replicas."""
    work = {"isl": 1024, "osl": 128, "request_rate": 5}
    row = solve_scenario(make_scenario(MODEL, CLUSTER, work, "cost", "vllm"), time_limit_s=10)
    off = solve_scenario(make_scenario(MODEL, CLUSTER, work, "cost", "vllm", disagg="off"), time_limit_s=10)
    assert row["status"] == "ok" and row["gpus"] == 1 and row["mode"] == "aggregated"
    assert {
        k: v for k, v in row.items() if k not in ("disagg", "wall_s", "label", "scenario_id", "solver_wall_s")
    } == {
        k: v for k, v in off.items() if k not in ("disagg", "wall_s", "label", "scenario_id", "solver_wall_s")
    }


def test_a_sweep_row_of_another_engine_says_what_plans_cost_at_a_rate() -> None:
    scenario = make_scenario(MODEL, CLUSTER, {"isl": 1024, "osl": 128, "request_rate": 5}, "cost", "sglang")
    row = solve_scenario(scenario, time_limit_s=10)
    message = row["message"]
    assert row["status"] == "error" and "\n" not in message and len(message) < 500
    assert message.startswith("objective cost at request_rate=5 req/s asks for the $/hour that sustains")
    assert message.endswith("or drop request_rate for $ per million tokens at full load")
    assert "`autoparallel plan MODEL --engine sglang --objective cost --request-rate 5`" in message
