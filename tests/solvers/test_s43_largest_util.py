"""A vLLM plan's gpu_memory_utilization is the largest that holds its entry (`encoder.largest_util`),
not whichever CP-SAT returned: utilization enters only the memory budget, so every objective but
`memory` leaves it free, and with presolve off the same plan came back at 0.7 of (0.7, 0.9). The
deployment planner takes the largest too (`deployment.space.preferred_utils`): a plan's two launch lines
had differed (0.9 and 0.8)."""

from __future__ import annotations

from typing import Any

import pytest

from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers import driver
from autoparallel.solvers.serving.solve import solve_serving
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving


@pytest.mark.parametrize(
    ("model", "gpu", "workload"),
    [
        ("meta-llama/Llama-3.1-8B", "1xH100", Serving(isl=1024, osl=256, concurrency=32)),
        ("Qwen/Qwen2.5-7B", "1xA100-80G", Serving(isl=6000, osl=400, concurrency=16)),
    ],
)
def test_the_largest_utilization_that_holds_the_plan_whatever_the_search(
    model: str, gpu: str, workload: Serving, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = driver.make_solver

    def without_presolve(*a: Any, **k: Any) -> Any:
        solver = real(*a, **k)
        solver.parameters.cp_model_presolve = False
        return solver

    monkeypatch.setattr(driver, "make_solver", without_presolve)
    sol = solve_serving(
        load_model(model),
        Cluster.parse(gpu),
        workload,
        objective="throughput",
        options=ServingOptions(gpu_memory_utilizations=(0.7, 0.8, 0.9)),
        settings=SolverSettings(workers=1, seed=0, time_limit_s=10.0),
        runner_up=False,
    )
    assert sol.config.gpu_memory_utilization == 0.9
