"""An INFEASIBLE answer gets a second look with CP-SAT's full presolve (driver.solve_once).

ortools 9.15 with probing and inclusion detection off (the planner's speed settings,
driver.make_solver) called this feasible disaggregated space infeasible: Llama-3.1-8B's role engines
on one 4-GPU H100 node, 4 clients, the closed-loop rule left at its unscaled right side of 4e12
(client_rules.CLOSED_LOOP_ROOM keeps it within 1e10 since). The brute-force oracle finds 1 P + 1 D.
"""

from __future__ import annotations

import dataclasses

import pytest

from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.cpsat import cp_model
from autoparallel.solvers.deployment import DeploymentSpace, FleetModel, client_rules
from autoparallel.solvers.deployment.driver import optimize
from autoparallel.solvers.deployment.encoder import build
from autoparallel.solvers.deployment.oracle import brute_force
from autoparallel.solvers.deployment.roles import build_role_space
from autoparallel.solvers.driver import Run, make_solver
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving


def _space() -> DeploymentSpace:
    fm = FleetModel(
        load_model("meta-llama/Llama-3.1-8B-Instruct"),
        Serving(isl=2048, osl=128, ttft_ms=3000, concurrency=256),
    )
    opts = ServingOptions(max_num_seqs=(2, 8, 32), enforce_eager=(False,))
    base = build_role_space([fm], Cluster.parse("1x8xH100"), opts, prune=False).space
    prefill = [e for e in base.engines if e.role == "prefill" and e.gpus <= 2][:3]
    decode = [e for e in base.engines if e.role == "decode" and e.gpus == 1 and e.in_flight == 2][:1]
    assert len(prefill) == 3 and decode
    cluster = Cluster(pools=(base.cluster.pools[0].model_copy(update={"gpus_per_node": 4}),))
    w = fm.workload.model_copy(update={"concurrency": 4})
    models = (dataclasses.replace(base.models[0], workload=w),)
    return DeploymentSpace(models, cluster, tuple(prefill + decode), {}, disaggregated=True)


def test_an_infeasible_answer_is_looked_at_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_rules, "CLOSED_LOOP_ROOM", 10**30)  # the unscaled rule
    space = _space()
    oracle = brute_force(space, "throughput")
    assert oracle is not None
    counts = optimize(space, ("throughput",), Run(SolverSettings(time_limit_s=10)))
    assert counts is not None
    assert space.capacity_milli_rps(counts, 0) == space.capacity_milli_rps(list(oracle[1]), 0)
    # the full presolve alone finds it too; the speed settings alone may not (ortools 9.15 did not)
    enc = build(space, hard_demand=True)
    enc.model.maximize(enc.objective_expr("throughput"))
    full = make_solver(SolverSettings(time_limit_s=10), full_presolve=True)
    assert full.solve(enc.model) == cp_model.OPTIMAL
