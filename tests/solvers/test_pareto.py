"""Pareto fronts by ε-constraint: non-dominated, ordered, and equal to the brute-force front."""

from __future__ import annotations

import pytest

from autoparallel.errors import InfeasibleError, InputError
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.oracle.serving import evaluate_all, objective_of, pareto_front
from autoparallel.solvers.pareto import pareto_serving
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving

OPTIONS = ServingOptions(max_num_seqs=(1, 4, 16, 64, 256), enforce_eager=(False, True))
SETTINGS = SolverSettings(workers=1, seed=0)


@pytest.mark.parametrize(
    "model, cluster, objectives",
    [
        ("meta-llama/Llama-3.1-8B", "1x4xH100", ("throughput", "tpot")),
        ("Qwen/Qwen3-30B-A3B", "1x4xH100", ("cost", "ttft")),
        ("meta-llama/Llama-3.1-70B", "1x8xH100", ("throughput", "memory")),
    ],
)
def test_front_equals_the_oracle_front(model: str, cluster: str, objectives: tuple[str, str]) -> None:
    spec, nodes, w = load_model(model), Cluster.parse(cluster), Serving.preset("batch")
    front = pareto_serving(
        spec, nodes, w, objectives=objectives, options=OPTIONS, settings=SETTINGS, points=64
    )
    oracle = pareto_front(spec, nodes, w, objectives, options=OPTIONS)
    got = [tuple(objective_of(s.estimate, n) for n in objectives) for s in front]
    assert len(got) == len(oracle)
    for (a, b), (oa, ob) in zip(got, oracle, strict=True):
        assert a == pytest.approx(oa, rel=1e-4, abs=1e-3)
        assert b == pytest.approx(ob, rel=1e-4, abs=1e-3)


def test_front_is_ordered_and_non_dominated() -> None:
    front = pareto_serving(
        load_model("meta-llama/Llama-3.1-8B"),
        Cluster.parse("1x2xH100"),
        Serving.preset("chatbot"),
        objectives=("throughput", "tpot"),
        options=OPTIONS,
        settings=SETTINGS,
    )
    thr = [s.estimate.perf.output_tokens_per_s for s in front]
    tpot = [s.estimate.perf.tpot_ms for s in front]
    assert len(front) >= 3
    assert thr == sorted(thr, reverse=True) and tpot == sorted(tpot, reverse=True)
    assert all(s.solver.status == "OPTIMAL" and s.runner_up is None for s in front)


def test_points_caps_the_front() -> None:
    front = pareto_serving(
        load_model("meta-llama/Llama-3.1-8B"),
        Cluster.parse("1x2xH100"),
        Serving.preset("chatbot"),
        options=OPTIONS,
        settings=SETTINGS,
        points=2,
    )
    assert len(front) == 2


def test_same_objective_twice_is_an_input_error() -> None:
    with pytest.raises(InputError):
        pareto_serving(
            load_model("meta-llama/Llama-3.1-8B"),
            Cluster.parse("1x1xH100"),
            "chatbot",
            objectives=("tpot", "tpot"),
        )


def test_infeasible_front_explains() -> None:
    with pytest.raises(InfeasibleError) as exc:
        pareto_serving(
            load_model("meta-llama/Llama-3.1-405B"), Cluster.parse("1x4xL4"), "chatbot", settings=SETTINGS
        )
    assert exc.value.reasons and exc.value.reasons[0].startswith("memory")


def _non_dominated(vectors: set[tuple[float, ...]], objectives: tuple[str, ...]) -> set[tuple[float, ...]]:
    """Brute force: the vectors no other vector weakly dominates (all signs flipped to 'larger is better')."""
    signs = [1 if n in ("throughput", "memory") else -1 for n in objectives]

    def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
        return a != b and all(s * x >= s * y for s, x, y in zip(signs, a, b, strict=True))

    return {v for v in vectors if not any(dominates(u, v) for u in vectors)}


def _rounded(vector: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(round(x, 3) for x in vector)


@pytest.mark.parametrize(
    "model, cluster, objectives",
    [
        ("meta-llama/Llama-3.1-8B", "1x4xH100", ("throughput", "ttft")),
        ("meta-llama/Llama-3.1-8B", "1x4xH100", ("throughput", "tpot", "memory")),
        ("Qwen/Qwen3-30B-A3B", "1x4xH100", ("cost", "ttft", "tpot")),
    ],
)
def test_n_objective_front_equals_the_brute_force_non_dominated_set(
    model: str, cluster: str, objectives: tuple[str, ...]
) -> None:
    # The batch preset's shape as an endless stream: its 1,000 prompts sent at once queue for every
    # engine slot short of them, so there the largest batch is also the lowest TTFT (one point).
    spec, nodes, w = load_model(model), Cluster.parse(cluster), Serving(isl=1024, osl=1024)
    front = pareto_serving(spec, nodes, w, objectives=objectives, options=OPTIONS, settings=SETTINGS)
    found, _ = evaluate_all(spec, nodes, w, OPTIONS)
    oracle = _non_dominated(
        {_rounded(tuple(objective_of(e, n) for n in objectives)) for _, e in found}, objectives
    )
    got = [_rounded(tuple(objective_of(s.estimate, n) for n in objectives)) for s in front]
    assert front.complete and len(front) == len(set(got)) == len(oracle) >= 3
    assert _non_dominated(set(got), objectives) == set(got)  # no point dominates another
    for vector in got:
        assert any(
            all(x == pytest.approx(y, rel=1e-4, abs=2e-3) for x, y in zip(vector, o, strict=True))
            for o in oracle
        ), vector


def test_cap_is_reported_and_one_objective_is_refused() -> None:
    spec, nodes = load_model("meta-llama/Llama-3.1-8B"), Cluster.parse("1x2xH100")
    capped = pareto_serving(
        spec,
        nodes,
        "chatbot",
        objectives=("throughput", "tpot", "ttft"),
        options=OPTIONS,
        settings=SETTINGS,
        points=2,
    )
    assert len(capped) == 2 and not capped.complete and capped.cap == 2
    with pytest.raises(InputError, match="two or more"):
        pareto_serving(spec, nodes, "chatbot", objectives=("throughput",))
    with pytest.raises(InputError, match="different"):
        pareto_serving(spec, nodes, "chatbot", objectives=("memory", "headroom"))


def test_a_front_of_exactly_the_cap_is_complete() -> None:
    """`--points N` on a front of exactly N points said "CUT at --points N": the loop stopped at the cap
    without asking whether anything lies beyond. One more query now says so either way."""
    from typing import Any

    from autoparallel.solvers import driver
    from autoparallel.solvers.pareto import Front, _front

    def answers(n: int) -> Any:
        left = [
            driver.Answer(
                point=k, run=driver.Run(SETTINGS, status="OPTIMAL", values={"a": k, "b": -k}, solves=1)
            )
            for k in range(n)
        ]
        return lambda: left.pop(0) if left else driver.Answer(point=None, run=driver.Run(SETTINGS, solves=1))

    exact: Front[Any] = Front(objectives=("a", "b"), cap=2)
    assert _front(exact, answers(2), lambda p, run: p)
    assert exact.solutions == [0, 1] and exact.complete and exact.solves == 3
    cut: Front[Any] = Front(objectives=("a", "b"), cap=2)
    assert _front(cut, answers(3), lambda p, run: p)
    assert cut.solutions == [0, 1] and not cut.complete and cut.solves == 3
    spec, nodes = load_model("meta-llama/Llama-3.1-8B"), Cluster.parse("1x2xH100")
    whole = pareto_serving(spec, nodes, "chatbot", options=OPTIONS, settings=SETTINGS)
    again = pareto_serving(spec, nodes, "chatbot", options=OPTIONS, settings=SETTINGS, points=len(whole))
    assert whole.complete and again.complete and again.vectors == whole.vectors


def test_a_serving_fronts_points_name_their_query_as_training_fronts_do() -> None:
    """A serving point's objective was the Python tuple as text, "('throughput', 'tpot')"; a training
    point's is `throughput>memory`."""
    import autoparallel as ap

    front = ap.pareto("meta-llama/Llama-3.2-1B", "1x2xH100", workload="chatbot", points=2)
    assert all(p.objective == "throughput>tpot" for p in front.plans)
