"""The serving encoder drops a larger max_num_seqs (`encoder.oversized`) only where a smaller one's table
entry is no worse: the same (replicas, running) pair under a client's concurrency does not make the same
times, as vLLM's default step token budget is min(its default, max_num_seqs × max_model_len) and the
float model's rotation and saturation bounds read it. With osl 1 and a sparse max_num_seqs grid the
planner said OPTIMAL at max_num_seqs 5 (5,120 tokens) where 64 (8,192) was better."""

from __future__ import annotations

from functools import cache

import pytest

from autoparallel.hardware import Cluster
from autoparallel.models import ModelSpec, load_model
from autoparallel.solvers.oracle.serving import enumerate_serving
from autoparallel.solvers.serving.encoder import candidate_entries, no_worse, replica_cap
from autoparallel.solvers.serving.solve import solve_serving
from autoparallel.solvers.serving.space import ServingOptions, build_space
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving

SETTINGS = SolverSettings(workers=1, seed=0)
SPARSE = ServingOptions(max_num_seqs=(5, 64), enforce_eager=(False,))


@cache
def _model() -> ModelSpec:
    return load_model("meta-llama/Llama-3.2-1B")


@pytest.mark.parametrize(("objective", "batch"), [("throughput", 64), ("ttft", 64)])
def test_sparse_grid_prefill_only_agrees_with_oracle(objective: str, batch: int) -> None:
    cluster, workload = Cluster.parse("1x1xH200"), Serving(isl=700, osl=1, concurrency=3)
    sol = solve_serving(
        _model(),
        cluster,
        workload,
        objective=objective,
        options=SPARSE,
        settings=SETTINGS,
        runner_up=False,
        fixes=False,
    )
    oracle = enumerate_serving(_model(), cluster, workload, objective=objective, options=SPARSE)
    assert sol.solver.status == "OPTIMAL"
    assert oracle.config is not None and oracle.objective_value is not None
    assert (sol.config.max_num_seqs, oracle.config.max_num_seqs) == (batch, batch)
    tol = {"throughput": 0.05, "ttft": 2e-3}[objective]
    assert sol.objective_value == pytest.approx(oracle.objective_value, abs=tol)


def test_default_grid_cost_agrees_with_oracle() -> None:
    """The default grid adds each shape's share of the clients (24 on 8 replicas: 3), whose budget
    (3 × 128 tokens) is smaller than 64's: the cost optimum is max_num_seqs 64 (2.048 US$ / Mtok), not
    the share's (2.065)."""
    cluster, workload = Cluster.parse("1x8xH100"), Serving(isl=100, osl=1, concurrency=24)
    sol = solve_serving(
        _model(), cluster, workload, objective="cost", settings=SETTINGS, runner_up=False, fixes=False
    )
    oracle = enumerate_serving(_model(), cluster, workload, objective="cost")
    assert sol.solver.status == "OPTIMAL" and oracle.objective_value is not None
    assert sol.objective_value == pytest.approx(oracle.objective_value, abs=1e-5)


@pytest.mark.parametrize(
    ("cluster", "isl", "osl", "concurrency", "options"),
    [
        ("1x1xH200", 700, 1, 3, SPARSE),
        ("1x8xH100", 100, 1, 24, ServingOptions()),
        ("1x8xH100", 700, 4, 3, ServingOptions()),
        ("1x8xH100", 300, 2, 200, ServingOptions(max_num_seqs=(4, 16, 256))),
    ],
)
def test_every_dropped_entry_has_a_kept_one_no_worse(
    cluster: str, isl: int, osl: int, concurrency: int, options: ServingOptions
) -> None:
    """The pruning's premise, on the tables themselves: each evaluated entry the encoder leaves out
    has a kept entry of the same shape, runtime, max_model_len and replica count that is no worse on
    every column the model reads."""
    workload = Serving(isl=isl, osl=osl, concurrency=concurrency)
    space = build_space(_model(), Cluster.parse(cluster), workload, options)
    kept = set(candidate_entries(space))
    for i, evaluated in enumerate(space.tables.evaluated):
        if not evaluated or replica_cap(space, i) == 0 or i in kept:
            continue
        s, r, _, m = space.unflat(i)
        twins = [
            j
            for j in kept
            if (space.unflat(j)[0], space.unflat(j)[1], space.unflat(j)[3]) == (s, r, m)
            and replica_cap(space, j) == replica_cap(space, i)
        ]
        assert any(no_worse(space.tables, j, i) for j in twins), (space.max_num_seqs_of(i), twins)
    assert kept
