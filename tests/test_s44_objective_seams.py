"""Session 44: the objective's canonical name reaches every deployment and sweep row; a goodput-led
order or weighting serves a rate past capacity up to what it can (as goodput alone does)."""

from __future__ import annotations

import pytest

import autoparallel as ap
from autoparallel.disagg import compare_disagg
from autoparallel.fleet import fleet_of_one
from autoparallel.solvers.deployment.driver import needs_hard_demand
from autoparallel.sweeps.scenario import make_scenario

SMALL = "meta-llama/Llama-3.2-1B"


@pytest.mark.parametrize("objective", ["goodput", ("goodput", "cost"), {"goodput": 1, "cost": 1}])
def test_a_goodput_led_objective_serves_a_rate_past_capacity(objective: object) -> None:
    """("goodput", "cost") raised `InternalError: capacity 197.4260 req/s < rate 5000.0`."""
    w = ap.Serving(isl=1024, osl=256, request_rate=5000.0, ttft_ms=2000.0, tpot_ms=50.0)
    plan = ap.solve_fleet(fleet_of_one(SMALL, w), "1x2xH100", objective=objective)  # type: ignore[arg-type]
    assert plan.deployment.gpus_used == 2


def test_goodput_leads_every_soft_demand_form() -> None:
    """The decoder reads whether rates are soft from the chain the counts were solved for (the label
    "goodput+cost" compared with "goodput" made the order an internal error)."""
    assert not needs_hard_demand(("goodput",)) and not needs_hard_demand(("goodput", "cost"))
    assert not needs_hard_demand({"goodput": 1.0, "cost": 1.0})
    assert needs_hard_demand(("cost", "goodput")) and needs_hard_demand({"cost": 1.0, "goodput": 1.0})
    assert needs_hard_demand(("throughput",)) and needs_hard_demand(("gpus",))


def test_a_sweep_row_names_its_objective_canonically() -> None:
    assert make_scenario(SMALL, "1x8xH100", objective="TTFT").objective == "ttft"
    assert make_scenario(SMALL, "1x8xH100", objective=" headroom ").objective == "memory"
    assert make_scenario(SMALL, "1x8xH100", objective="GPUS", disagg="on").objective == "gpus"


def test_both_deployments_of_a_comparison_name_the_objective_canonically() -> None:
    w = ap.Serving(isl=1024, osl=256, request_rate=20.0, ttft_ms=2000.0, tpot_ms=50.0)
    comp = compare_disagg(SMALL, w, ap.Cluster.parse("1x4xH100"), mode="on", objective="COST")
    assert comp.disaggregated is not None and comp.disaggregated.objective == "cost"
    assert comp.aggregated is None or comp.aggregated.deployment.objective == "cost"
