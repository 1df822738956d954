"""The binding line of a plan at the top of the max_num_seqs grid names the client's concurrency where
its requests fill less than that top: "max_num_seqs: 128 is the largest allowed value" blamed the grid
for a batch of 100 that 100 clients capped (Qwen3-0.6B, one H100, grid 64 / 128)."""

from __future__ import annotations

from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.serving.decoder import ServingSolution
from autoparallel.solvers.serving.solve import solve_serving
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving

SETTINGS = SolverSettings(workers=1, seed=0, time_limit_s=30.0)
MODEL, CLUSTER = load_model("Qwen/Qwen3-0.6B"), Cluster.parse("1xH100")


def _plan(concurrency: int) -> ServingSolution:
    """The plan of `concurrency` clients over a max_num_seqs grid of 64 and 128."""
    options = ServingOptions(max_num_seqs=(64, 128))
    return solve_serving(MODEL, CLUSTER, Serving(concurrency=concurrency), options=options, settings=SETTINGS)


def test_clients_that_fill_less_than_the_grids_top_are_named() -> None:
    sol = _plan(100)
    assert sol.config.max_num_seqs == 128 and sol.estimate.perf.batch_size == 100
    assert not any("largest allowed" in b for b in sol.binding), sol.binding
    assert any(
        b.startswith("concurrency: the workload's 100 requests in flight run 100") for b in sol.binding
    )


def test_a_full_grid_top_is_still_the_grids() -> None:
    sol = _plan(400)
    assert sol.config.max_num_seqs == 128 and sol.estimate.perf.batch_size == 128
    assert "max_num_seqs: 128 is the largest allowed value" in sol.binding
