"""$ per M tokens (Dinkelbach, solvers/deployment/driver.py `_dinkelbach`): OPTIMAL and a gap of 0 only
when a lower bound on the ratio reaches the plan's.

With every model's rate a constraint, the cheapest plan serves every rate, the most goodput any plan
has: its ratio is the least (cost bound / goodput bound), proven without a Dinkelbach step (whose
objective CP-SAT could not close on a 1,536-GPU fleet: FEASIBLE after the whole limit, "gap 0").
A step that ends without a solution leaves the plan found so far, FEASIBLE with its honest bound.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

from autoparallel.fleet import FleetPlan, solve_fleet
from autoparallel.solvers import driver
from autoparallel.solvers.settings import SolverSettings

CLUSTER = "2x8xH100"


def fleet(rates: bool) -> list[dict[str, Any]]:
    return [
        {"model": "Qwen/Qwen3-0.6B", "isl": 512, "osl": 128, **({"request_rate": 40} if rates else {})},
        {"model": "meta-llama/Llama-3.1-8B-Instruct", "isl": 1024, "osl": 256, "request_rate": 2},
    ]


@functools.cache
def plan(rates: bool) -> FleetPlan:
    return solve_fleet(fleet(rates), CLUSTER, objective="cost_per_mtok")


def test_every_rate_met_by_the_cheapest_plan_is_proven_without_a_step() -> None:
    d = plan(True).deployment
    s = d.solver
    assert (s.status, s.solves, s.gap) == ("OPTIMAL", 1, 0.0)
    # the statistics in µ$ per million tokens (priorities 1), as the plan's own figure
    assert s.objective_value == pytest.approx(d.usd_per_million_tokens * 1e6, rel=2e-3)
    assert s.bound == s.objective_value


def test_an_open_rate_is_proven_by_the_dinkelbach_step() -> None:
    d = plan(False).deployment
    assert d.solver.status == "OPTIMAL" and d.solver.solves >= 2
    assert d.solver.bound == pytest.approx(d.solver.objective_value)
    assert d.solver.objective_value == pytest.approx(d.usd_per_million_tokens * 1e6, rel=2e-3)


def test_a_step_that_times_out_keeps_the_plan_and_reports_its_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    real = driver.solve_once
    calls = []

    def first_only(enc: Any, run: driver.Run, time_limit_s: float | None = None) -> Any:
        calls.append(1)
        if len(calls) == 1:
            return real(enc, run, time_limit_s)
        run.statuses.append("UNKNOWN")
        run.status = "UNKNOWN"  # as `solve_once` says the limit ran out without a solution
        return None

    monkeypatch.setattr(driver, "solve_once", first_only)
    d = solve_fleet(fleet(False), CLUSTER, objective="cost_per_mtok", settings=SolverSettings()).deployment
    assert d.solver.status == "FEASIBLE"
    assert 0 <= d.solver.bound < d.solver.objective_value and d.solver.gap > 0
    assert d.models[0].capacity_rps > 0 and d.models[1].unmet_rps == 0
