"""Training fronts: equal to the non-dominated set of a brute force over the same integer tables."""

from __future__ import annotations

import itertools
from functools import cache
from typing import Any

import pytest

from autoparallel.configs import Recompute, ZeroStage
from autoparallel.errors import InputError
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers import driver
from autoparallel.solvers.pareto import Front, _front, _model_queries, pareto_training
from autoparallel.solvers.partition import even_partition
from autoparallel.solvers.settings import SolverSettings
from autoparallel.solvers.training.encoder import build
from autoparallel.solvers.training.front import OBJECTIVES, WINDOW_PERMILLE, TripleFront, step_peak_queries
from autoparallel.solvers.training.points import (
    Point,
    PointBound,
    Triple,
    bound_under_cap,
    evaluate_point,
    zero_pipeline_ok,
)
from autoparallel.solvers.training.solve import prepare
from autoparallel.solvers.training.space import TrainingOptions, build_space
from autoparallel.solvers.training.tables import TrainingTables, build_tables
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
LITE = "deepseek-ai/DeepSeek-V2-Lite"  # layer 0 dense, 26 MoE layers: two layer kinds


@cache
def _lite(cluster: str = "1x4xH100") -> tuple[TrainingTables, dict[Triple, PointBound], Point | None]:
    """DeepSeek-V2-Lite on 1x4xH100: free stage splits, two layer kinds, Megatron's distributed
    optimizer and Megatron-FSDP (which plans take with bf16 gradient reduction only)."""
    options = TrainingOptions(
        runner_up=False,
        grad_reduce_in_bf16=True,
        zero_stages=(ZeroStage.DISTRIBUTED_OPTIMIZER, ZeroStage.GRADIENTS, ZeroStage.PARAMETERS),
    )
    w = Training(seq_len=4096, global_batch=32)
    t = build_tables(build_space(load_model(LITE), Cluster.parse(cluster), w, options))
    return (t, *prepare(t, options))


def _keep(point: Point, run: driver.Run) -> Point:
    return point


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


@pytest.mark.parametrize(
    "names",
    [
        ("memory", "throughput", "cost"),  # varied GPU counts: one CP-SAT model per query
        ("throughput", "memory"),  # the default: training/front.py's decomposition over triples
    ],
)
def test_training_front_equals_the_brute_force_front(names: tuple[str, ...]) -> None:
    model, cluster, w = "meta-llama/Llama-3.2-1B", "1x4xH100", Training(seq_len=2048, global_batch=32)
    front = pareto_training(
        load_model(model), Cluster.parse(cluster), w, objectives=names, options=OPTIONS, settings=SETTINGS
    )
    assert front.complete
    oracle = _brute_front(model, cluster, w, names)
    assert set(front.vectors) == oracle and len(front) == len(oracle) >= 3
    first = [v[0] for v in front.vectors]
    assert first == sorted(first) and {s.config.world_size for s in front} <= {2, 4}


def test_training_front_input_errors() -> None:
    spec, nodes, w = load_model("meta-llama/Llama-3.2-1B"), Cluster.parse("1x2xH100"), Training(seq_len=1024)
    with pytest.raises(InputError, match="mfu and cost are one"):
        pareto_training(spec, nodes, w, objectives=("mfu", "cost"))
    with pytest.raises(InputError, match="'ttft' is a serving objective"):
        pareto_training(spec, nodes, w, objectives=("throughput", "ttft"))


@pytest.mark.parametrize(
    "names", [("throughput", "memory"), ("memory", "throughput"), ("throughput", "memory", "cost")]
)
def test_the_front_by_triples_equals_the_whole_model_queries(names: tuple[str, ...]) -> None:
    """Free stage splits and per-stage recompute, two layer kinds: the triples' front is the whole
    CP-SAT model's, point for point and in the same order, also with memory first and with cost (the
    step time when every shape uses the whole cluster) added (the whole-model queries took 69 s on
    Qwen3-30B-A3B's front on 16 H100s, the triples 2 s, the same 28 vectors)."""
    t, bounds, hint = _lite()

    def vectors(by_triples: bool) -> list[tuple[int, ...]]:
        front: Front[Point] = Front(objectives=names)
        ask = step_peak_queries(t, bounds, names, SETTINGS) if by_triples else None
        if ask is None:
            assert not by_triples
            ask = _model_queries(front, lambda: build(t, bounds), SETTINGS, hint)
        assert _front(front, ask, _keep) and front.complete
        return front.vectors

    whole = vectors(by_triples=False)
    assert vectors(by_triples=True) == whole and len(whole) >= 5


def test_the_bound_under_a_cap_never_exceeds_the_best_plan_under_it() -> None:
    """`points.bound_under_cap`, which orders and prunes the triples of the front: at every cap, below
    the best step of the plans whose peak is within it (brute force over the enumerable space), and
    None only where no plan is within it."""
    t = build_tables(
        build_space(
            load_model("meta-llama/Llama-3.2-1B"),
            Cluster.parse("1x4xH100"),
            Training(seq_len=2048, global_batch=32),
            OPTIONS,
        )
    )
    sp = t.space
    plans: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
    for i, m, z, c in itertools.product(
        range(len(sp.shapes)),
        range(len(sp.micro_batches)),
        range(len(sp.state_modes)),
        range(len(sp.recompute_modes)),
    ):
        if t.grad_accum[i][m] and zero_pipeline_ok(t, i, z):
            layers = even_partition(sp.num_layers, sp.shapes[i].pp)
            values = evaluate_point(
                t, Point(shape=i, micro=m, state=z, layers=layers, recompute=(c,) * len(layers))
            )
            plans.setdefault((i, m, z), []).append((max(values.memory_mib), values.step_us))
    checked = 0
    for key, found in plans.items():
        for cap in sorted({peak for peak, _ in found} | {peak - 1 for peak, _ in found}):
            under = [step for peak, step in found if peak <= min(cap, t.capacity_mib)]
            bound = bound_under_cap(t, key, cap)
            if bound is None:
                assert not under
            elif under:
                assert bound.step_us <= min(under)
                checked += 1
    assert checked >= 20


def test_a_capped_memory_first_front_keeps_its_lowest_memory_points() -> None:
    """With memory first, the triples find the whole front and hand it out lowest memory first, so
    `points=N` keeps the N best on memory, as the lexicographic queries would, and says it was cut."""
    spec, nodes = load_model(LITE), Cluster.parse("1x4xH100")
    w, names = Training(seq_len=4096, global_batch=32), ("memory", "throughput")
    whole = pareto_training(spec, nodes, w, objectives=names, settings=SETTINGS)
    cut = pareto_training(spec, nodes, w, objectives=names, settings=SETTINGS, points=3)
    assert whole.complete and len(whole) > 3
    assert cut.vectors == whole.vectors[:3] and not cut.complete
    assert [v[0] for v in whole.vectors] == sorted(v[0] for v in whole.vectors)


@pytest.mark.parametrize("names", [("throughput", "memory"), ("memory", "throughput")])
def test_a_front_by_triples_out_of_time_ends_unproven(names: tuple[str, ...]) -> None:
    """A sub-solve without the time to finish ends the search where it is, not proven complete (no
    query answers from an unproven sub-model); with no point found yet that is a time-out."""
    from autoparallel.errors import SolverTimeoutError

    t, bounds, _ = _lite()
    ask = step_peak_queries(t, bounds, names, SolverSettings(time_limit_s=0.001))
    assert ask is not None
    front: Front[Point] = Front(objectives=names)
    with pytest.raises(SolverTimeoutError):
        _front(front, ask, _keep)
    assert not front.complete and len(front) == 0


def test_the_window_never_changes_the_front() -> None:
    """Each sub-solve first looks just above its triple's key (`TripleFront.window_permille`): the
    front is the one without the window whatever its width, also at width 0, where nearly every window
    holds no plan, so that each such triple goes back keyed past it and is solved again without one,
    and a triple with nothing under the cap is still dropped (the front ends, complete). On 2x8xH100,
    where some zero-width windows hold nothing."""
    t, bounds, _ = _lite("2x8xH100")

    def front(width: int | None) -> Front[Point]:
        out: Front[Point] = Front(objectives=OBJECTIVES)
        assert _front(out, TripleFront(t, bounds, SETTINGS, window_permille=width).next, _keep)
        assert out.complete
        return out

    plain = front(None)
    assert len(plain) >= 5
    for width in (0, 1, WINDOW_PERMILLE, 1000):
        windowed = front(width)
        assert windowed.vectors == plain.vectors, width
        if width == 0:
            assert windowed.solves > plain.solves  # the windows that held nothing, solved again


def test_a_front_whose_first_query_runs_out_of_time_is_a_timeout_not_an_empty_front() -> None:
    """`pareto gemma-2-9b --cluster 3x8xH100 --train ... --time-limit 2` returned no point and called
    it a front; the CLI then failed on the empty front's knee (exit 3). A later time-out still ends a
    front it has points of, not proven complete."""
    from autoparallel.errors import SolverTimeoutError

    def late(answers: list[Any]) -> Any:
        def query() -> Any:
            answer = answers.pop(0)
            if answer is None:
                raise SolverTimeoutError("no feasible plan found within 2 s")
            return answer

        return query

    with pytest.raises(SolverTimeoutError):
        _front(Front(objectives=("throughput", "memory"), cap=5), late([None]), lambda p, run: p)
    run = driver.Run(SolverSettings(), status="OPTIMAL", values={"throughput": 1, "memory": 2}, solves=1)
    some: Front[Any] = Front(objectives=("throughput", "memory"), cap=5)
    assert _front(some, late([driver.Answer(point="p", run=run), None]), lambda p, run: p)
    assert some.solutions == ["p"] and not some.complete


def test_a_training_front_in_fp8_needs_fp8_tensor_cores() -> None:
    """`pareto --train --precision fp8` on A100s returned an fp8-priced front where `plan` refuses."""
    import autoparallel as ap

    with pytest.raises(InputError, match="no FP8 tensor cores"):
        ap.pareto(
            "meta-llama/Llama-3.1-8B",
            "1x8xA100-80G",
            workload=ap.Training(seq_len=4096, global_batch=64, precision="fp8"),
        )
