"""The step-time decomposition over (shape, micro-batch, state) triples: restricted tables, valid bounds,
the same optimum as one CP-SAT model over the whole space, and honest statuses at the deadline."""

from __future__ import annotations

import time
from functools import cache

import pytest

from autoparallel.configs import ZeroStage
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers import driver
from autoparallel.solvers.partition import even_partition
from autoparallel.solvers.settings import SolverSettings
from autoparallel.solvers.training import decompose
from autoparallel.solvers.training.decompose import (
    Decomposed,
    _solve_triple,
    _windows,
    restrict,
    solve_by_triples,
)
from autoparallel.solvers.training.encoder import build
from autoparallel.solvers.training.hints import best_uniform_point
from autoparallel.solvers.training.points import Point, PointBound, Triple, evaluate_point, point_bounds
from autoparallel.solvers.training.space import TrainingOptions, build_space
from autoparallel.solvers.training.tables import TrainingTables, build_tables
from autoparallel.workload import Training

FAST = SolverSettings(time_limit_s=20.0, workers=1, seed=0)
LITE = "deepseek-ai/DeepSeek-V2-Lite"  # layer 0 dense, 26 MoE layers: two layer kinds


@cache
def _tables() -> tuple[TrainingTables, dict[Triple, PointBound]]:
    space = build_space(
        load_model(LITE),
        Cluster.parse("1x4xH100"),
        Training(seq_len=4096, global_batch=32),
        TrainingOptions(),
    )
    t = build_tables(space)
    return t, point_bounds(t)


def test_restricted_tables_evaluate_like_the_full_ones() -> None:
    t, bounds = _tables()
    for i, m, z in sorted(bounds)[::7]:
        pp = t.space.shapes[i].pp
        layers = even_partition(t.space.num_layers, pp)
        modes = tuple(s % len(t.space.recompute_modes) for s in range(pp))
        full = evaluate_point(t, Point(shape=i, micro=m, state=z, layers=layers, recompute=modes))
        sub = evaluate_point(
            restrict(t, (i, m, z)), Point(shape=0, micro=0, state=0, layers=layers, recompute=modes)
        )
        assert sub == full


def test_bounds_never_exceed_a_triples_optimum() -> None:
    t, bounds = _tables()
    deep = sorted((key for key in bounds if t.space.shapes[key[0]].pp > 1), key=lambda k: bounds[k].step_us)
    out = Decomposed(best=None, runner_up=None, run=driver.Run(FAST, deadline=time.perf_counter() + 60))
    for key in deep[:10]:
        point, status, _ = _solve_triple(t, key, bounds[key], None, None, out)
        assert status in ("OPTIMAL", "INFEASIBLE")
        if point is not None:
            assert bounds[key].step_us <= evaluate_point(t, point).step_us


def test_decomposition_finds_the_whole_models_optimum() -> None:
    t, bounds = _tables()
    parts = solve_by_triples(t, bounds, None, FAST, time.perf_counter() + 60, runner_up=True)  # no warm start
    assert parts.run.status == "OPTIMAL" and parts.best is not None and parts.left == 0
    assert 0 < parts.solved < len(bounds) and parts.pruned == len(bounds) - parts.solved
    run = driver.Run(FAST, deadline=time.perf_counter() + 60)
    whole = driver.optimize(build(t, bounds), ("throughput",), run)
    assert run.status == "OPTIMAL" and whole is not None
    assert evaluate_point(t, parts.best).step_us == evaluate_point(t, whole).step_us == parts.run.primary[0]
    assert parts.runner_up is not None and parts.runner_up.shape != parts.best.shape
    assert evaluate_point(t, parts.runner_up).step_us >= parts.run.primary[0]


def test_deadline_leaves_a_feasible_plan_with_its_true_gap() -> None:
    t, bounds = _tables()
    worst = max(bounds, key=lambda k: bounds[k].step_us)
    poor = best_uniform_point(t, {worst: bounds[worst]})  # a warm start far from the optimum
    assert poor is not None
    parts = solve_by_triples(t, bounds, poor[0], FAST, time.perf_counter(), runner_up=False)  # no time left
    value, floor = parts.run.primary
    assert parts.best == poor[0] and value == poor[1].step_us and parts.run.solves == 0
    below = [b.step_us for b in bounds.values() if b.step_us < value]
    assert below and parts.left == len(below) and floor == min(below)
    assert parts.run.status == "FEASIBLE"


def test_the_tables_and_bounds_stop_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The training tables and lower bounds count in the limit, as the serving tables do: `plan
    Qwen/Qwen3-235B-A22B --cluster 256x8xH200 --train --seq-len 131072 --global-batch 512 --time-limit 1`
    spent 4.5 s on them and 1.6 s on the bounds before it answered; now it says the limit ran out."""
    from autoparallel.errors import SolverTimeoutError
    from autoparallel.solvers.training.solve import solve_training

    job = Training(seq_len=4096, global_batch=32)
    space = build_space(load_model(LITE), Cluster.parse("1x4xH100"), job, TrainingOptions())
    past = time.perf_counter() - 1.0
    with pytest.raises(SolverTimeoutError, match="tables were computed, before CP-SAT could start"):
        build_tables(space, past)
    t, bounds = _tables()
    with pytest.raises(SolverTimeoutError, match="tables were computed"):
        point_bounds(t, deadline=past)
    assert point_bounds(t, deadline=time.perf_counter() + 60) == bounds
    monkeypatch.setattr(SolverSettings, "deadline", lambda self: past)
    with pytest.raises(SolverTimeoutError, match="tables were computed"):
        solve_training(space.model, space.cluster, space.workload, settings=FAST)


def test_decomposition_finds_the_whole_models_least_peak_memory() -> None:
    """The peak memory alone (`plan --train --objective memory`) by the same decomposition, ordered
    and pruned by `points.peak_floor_mib`: the whole model's optimum, proven, with pruning."""
    t, bounds = _tables()
    parts = solve_by_triples(
        t, bounds, None, FAST, time.perf_counter() + 60, runner_up=True, objective="memory"
    )
    assert parts.run.status == "OPTIMAL" and parts.best is not None and parts.left == 0
    assert 0 < parts.solved < len(bounds)
    run = driver.Run(FAST, deadline=time.perf_counter() + 60)
    whole = driver.optimize(build(t, bounds), ("memory",), run)
    assert whole is not None
    least = max(evaluate_point(t, parts.best).memory_mib)
    assert least == max(evaluate_point(t, whole).memory_mib) == parts.run.primary[0]
    assert parts.runner_up is not None and parts.runner_up.shape != parts.best.shape


def test_the_peak_floor_never_exceeds_a_triples_least_peak() -> None:
    """`points.peak_floor_mib` is a lower bound on every plan of its triple: checked against each
    triple's least peak solved by CP-SAT (free splits, per-stage recompute), and tight where pp = 1."""
    from autoparallel.solvers.training.points import peak_floor_mib

    t, bounds = _tables()
    out = Decomposed(best=None, runner_up=None, run=driver.Run(FAST, deadline=time.perf_counter() + 60))
    for key in sorted(bounds)[::3]:
        floor = peak_floor_mib(t, key)
        point, status, _ = _solve_triple(t, key, bounds[key], None, None, out, "memory", floor)
        assert status == "OPTIMAL" and point is not None
        least = max(evaluate_point(t, point).memory_mib)
        assert floor <= least
        if t.space.shapes[key[0]].pp == 1:
            assert floor == least


def test_the_windows_widen_from_the_bound_without_a_cut() -> None:
    """With no incumbent's cut, a triple is solved within 2%, 4%, 8%, ... above its bound (value <
    window) up to twice the bound, then with no cut; with the incumbent's cut, with that alone."""
    assert list(_windows(100_000, 105_000)) == [105_000]
    assert list(_windows(100_000, None)) == [102_001, 104_001, 108_001, 116_001, 132_001, 164_001, None]


@pytest.mark.parametrize("objective", ["throughput", "memory"])
def test_the_windows_never_change_the_optimum(objective: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the windows' width, also 0.1% (windows left empty, each raising the triple's bound past
    it before the next), the decomposition proves the optimum it proves without them. DeepSeek-V2-Lite
    on 16 H100s, 128 sequences a step, with the distributed optimizer alone: pipeline stages of two
    layer kinds, whose step bounds are loose."""
    space = build_space(
        load_model(LITE),
        Cluster.parse("2x8xH100"),
        Training(seq_len=4096, global_batch=128),
        TrainingOptions(zero_stages=(ZeroStage.DISTRIBUTED_OPTIMIZER,)),
    )
    t = build_tables(space)
    bounds = point_bounds(t)

    def best(width: int) -> tuple[int, int]:
        monkeypatch.setattr(decompose, "WINDOW_PERMILLE", width)
        parts = solve_by_triples(
            t, bounds, None, FAST, time.perf_counter() + 60, runner_up=False, objective=objective
        )
        assert parts.run.status == "OPTIMAL" and parts.best is not None
        return int(parts.run.primary[0]), parts.run.solves

    plain, plain_solves = best(2000)  # no window at all: the first would be wider than 100%
    for width in (1, decompose.WINDOW_PERMILLE):
        value, solves = best(width)
        assert value == plain
        if width == 1 and objective == "throughput":
            assert solves > plain_solves  # the empty windows, each one solve
