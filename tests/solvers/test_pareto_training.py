"""Training fronts: equal to the non-dominated set of a brute force over the same integer tables."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from autoparallel.configs import Recompute, ZeroStage
from autoparallel.errors import InputError
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.pareto import pareto_training
from autoparallel.solvers.partition import even_partition
from autoparallel.solvers.settings import SolverSettings
from autoparallel.solvers.training.points import Point, evaluate_point, zero_pipeline_ok
from autoparallel.solvers.training.space import TrainingOptions, build_space
from autoparallel.solvers.training.tables import build_tables
from autoparallel.workload import Training

# Megatron's even split and one recompute mode for all stages: a space small enough to enumerate.
OPTIONS = TrainingOptions(
    non_uniform_stages=False,
    per_stage_recompute=False,
    micro_batch_values=(1, 4),
    world_sizes=(2, 4),
    zero_stages=(ZeroStage.NONE, ZeroStage.DISTRIBUTED_OPTIMIZER, ZeroStage.PARAMETERS),
    recompute_modes=(Recompute.NONE, Recompute.FULL),
    max_pp=2,
)
SETTINGS = SolverSettings(workers=1, time_limit_s=60)  # each solve takes ~0.3 s; room for a loaded machine


def _brute_front(model: str, cluster: str, w: Training, names: tuple[str, ...]) -> set[tuple[int, ...]]:
    t = build_tables(build_space(load_model(model), Cluster.parse(cluster), w, OPTIONS))
    sp = t.space
    vectors = set()
    for i, m, z, c in itertools.product(
        range(len(sp.shapes)),
        range(len(sp.micro_batches)),
        range(len(sp.state_modes)),
        range(len(sp.recompute_modes)),
    ):
        if not t.grad_accum[i][m] or not zero_pipeline_ok(t, i, z):
            continue
        layers = even_partition(sp.num_layers, sp.shapes[i].pp)
        p = Point(shape=i, micro=m, state=z, layers=layers, recompute=(c,) * len(layers))
        if max(evaluate_point(t, p).memory_mib) <= t.capacity_mib:
            vectors.add(_vector(t, p, names))
    return {
        v
        for v in vectors
        if not any(u != v and all(a <= b for a, b in zip(u, v, strict=True)) for u in vectors)
    }


def _vector(t: Any, p: Point, names: tuple[str, ...]) -> tuple[int, ...]:
    """Objective values of a point in solver units, by the objectives' definitions (training/objective.py):
    step µs; GPUs × step µs (just the step when every shape uses the same GPUs); peak stage MiB."""
    values = evaluate_point(t, p)
    worlds = {s.world for s in t.space.shapes}
    gpus = 1 if len(worlds) == 1 else t.space.shapes[p.shape].world
    by_name = {"throughput": values.step_us, "cost": gpus * values.step_us, "memory": max(values.memory_mib)}
    return tuple(by_name[n] for n in names)


def test_training_front_equals_the_brute_force_front() -> None:
    names = ("memory", "throughput", "cost")  # memory first: its lexicographic queries solve fastest
    model, cluster, w = "meta-llama/Llama-3.2-1B", "1x4xH100", Training(seq_len=2048, global_batch=32)
    front = pareto_training(
        load_model(model), Cluster.parse(cluster), w, objectives=names, options=OPTIONS, settings=SETTINGS
    )
    assert front.complete
    oracle = _brute_front(model, cluster, w, names)
    assert set(front.vectors) == oracle and len(front) == len(oracle) >= 3
    peak = [v[0] for v in front.vectors]
    assert peak == sorted(peak) and {s.config.world_size for s in front} <= {2, 4}


def test_training_front_input_errors() -> None:
    spec, nodes, w = load_model("meta-llama/Llama-3.2-1B"), Cluster.parse("1x2xH100"), Training(seq_len=1024)
    with pytest.raises(InputError, match="mfu and cost are one"):
        pareto_training(spec, nodes, w, objectives=("mfu", "cost"))
    with pytest.raises(InputError, match="'ttft' is a serving objective"):
        pareto_training(spec, nodes, w, objectives=("throughput", "ttft"))
