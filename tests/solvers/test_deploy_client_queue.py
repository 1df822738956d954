"""The deployment planner charges a closed-loop client's queue to TTFT, as the single-engine planner does.

`vllm bench serve --max-concurrency C` caps only the client: requests beyond what the engines hold
wait in the server's queue, and TTFT counts from the send (`perf.serving.client_queue_s`). The
deployment's `client_queue[m]` family holds each used engine's TTFT + (C − held) / capacity within
the limit; the oracle applies the same rule in floats, the decoder reports it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from autoparallel.cli import main
from autoparallel.errors import InfeasibleError
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers import units
from autoparallel.solvers.deployment import DeploymentSpace, FleetModel, build_deployment_space, solve_space
from autoparallel.solvers.deployment.driver import expr_value, optimize
from autoparallel.solvers.deployment.encoder import build
from autoparallel.solvers.deployment.oracle import brute_force, queue_wait_s
from autoparallel.solvers.deployment.space import undominated
from autoparallel.solvers.driver import Run
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import PRESETS, Serving
from tests.property_examples import examples

REPRO = ["Qwen/Qwen3-8B", "--cluster", "1xH100", "--concurrency", "1000"]
OPTIONS = ServingOptions(max_num_seqs=(8, 32, 128), enforce_eager=(False,))


def _chatbot(**update: object) -> Serving:
    return PRESETS["chatbot"].model_copy(update={"concurrency": 1000, "num_prompts": 3000, **update})


def test_the_reproducer_is_infeasible_under_the_ttft_limit_with_numbers() -> None:
    """Qwen3-8B on one H100 with 1,000 requests in flight: 808 of them wait 48 s in the queue, far
    past the chatbot's 2 s; the deployment printed the engine at TTFT 155 ms before."""
    fleet = [FleetModel(load_model("Qwen/Qwen3-8B"), _chatbot())]
    space = build_deployment_space(fleet, Cluster.parse("1xH100"))
    with pytest.raises(InfeasibleError) as info:
        solve_space(space)
    text = str(info.value)
    assert "1000 requests in flight" in text and "TTFT 2000 ms" in text and "Little's law" in text
    assert "leaves 808 queued" in text
    assert re.search(r"= 4\d\.\d s > the 18\d\d ms its TTFT leaves", text)


def test_the_plan_command_no_longer_stands_in_a_deployment_at_ttft_155_ms(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`plan` exits 1 (no plan serves the request) instead of offering the whole-cluster deployment."""
    assert main(["plan", *REPRO, "--num-prompts", "3000"]) == 1
    captured = capsys.readouterr()
    assert "Whole cluster" not in captured.out and re.search(r"reaches 4\d{4} ms", captured.err)


def test_the_deployment_ttft_equals_the_single_engine_ttft_with_the_queue(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """At a TTFT limit the queue fits (60 s), the deployment's engine reports the TTFT `evaluate`
    gives the same configuration under the same concurrency (within 2 %)."""
    fleet = [FleetModel(load_model("Qwen/Qwen3-8B"), _chatbot(ttft_ms=60000.0))]
    plan = solve_space(build_deployment_space(fleet, Cluster.parse("1xH100")))
    (engine,) = plan.engines
    assert engine.replicas == 1 and engine.queue_ms > 40000
    batch = str(engine.max_num_seqs)
    assert main(["evaluate", *REPRO, "--max-num-seqs", batch, "--ttft-ms", "60000", "--json"]) == 0
    single = json.loads(capsys.readouterr().out)["perf"]["ttft_ms"]
    assert engine.ttft_ms == pytest.approx(single, rel=0.02)


# ----- oracle agreement on a tiny space -----------------------------------------------------------------
@functools.cache
def tiny(ttft_ms: float) -> DeploymentSpace:
    """Llama-3.2-1B on 2x8xH100 at max_num_seqs 8, 32, 128, unpruned."""
    fm = FleetModel(load_model("meta-llama/Llama-3.2-1B"), Serving(isl=1024, osl=256, ttft_ms=ttft_ms))
    return build_deployment_space([fm], Cluster.parse("2x8xH100"), OPTIONS, prune=False)


@functools.cache
def capped(ttft_ms: float, cap: int) -> DeploymentSpace:
    """`tiny`'s candidates under a cap: every batch of a shape within it (`space.queue_front`)."""
    base = tiny(ttft_ms)
    fm = base.models[0]
    fm = dataclasses.replace(fm, workload=fm.workload.model_copy(update={"concurrency": cap}))
    return build_deployment_space([fm], base.cluster, OPTIONS, prune=False)


@st.composite
def instances(draw: st.DrawFn) -> DeploymentSpace:
    ttft = draw(st.sampled_from([200.0, 1000.0, 3000.0]))
    cap = draw(st.sampled_from([24, 64, 200, 256]))
    base = capped(ttft, cap)
    nodes = draw(st.integers(1, 2))
    fitting = [e for e in base.engines if e.nodes <= nodes]
    engines = draw(st.lists(st.sampled_from(fitting), min_size=1, max_size=3, unique=True))
    fm = base.models[0]
    best = max(e.capacity_milli_rps for e in engines)
    quarters = draw(st.one_of(st.none(), st.integers(1, 8)))
    rate = None if quarters is None else quarters * best / (4 * fm.units_per_rps)
    fm = dataclasses.replace(fm, workload=fm.workload.model_copy(update={"request_rate": rate}))
    cluster = Cluster(pools=(base.cluster.pools[0].model_copy(update={"nodes": nodes}),))
    return DeploymentSpace((fm,), cluster, tuple(engines), {})


def _cpsat(space: DeploymentSpace, objective: str) -> int | None:
    """CP-SAT's optimum over the engines `undominated` keeps (the oracle walks them all)."""
    small = dataclasses.replace(space, engines=tuple(undominated(list(space.engines), True)))
    counts = optimize(small, (objective,), Run(SolverSettings(time_limit_s=5)))
    if counts is None:
        return None
    return expr_value(build(small, hard_demand=objective != "goodput"), objective, counts)


def _uncapped(space: DeploymentSpace) -> DeploymentSpace:
    fm = space.models[0]
    free = dataclasses.replace(fm, workload=fm.workload.model_copy(update={"ttft_ms": None}))
    return dataclasses.replace(space, models=(free,))


@settings(
    max_examples=examples(30),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(instances())
def test_cpsat_optimum_equals_the_oracle_with_the_client_queue(space: DeploymentSpace) -> None:
    """CP-SAT (integer rule, pruned engines) and the oracle (floats, every engine) agree on
    feasibility and the optimum; the queue changes the optimum on some instances."""
    objective = "cost" if space.models[0].workload.request_rate else "goodput"
    oracle = brute_force(space, objective)
    mine = _cpsat(space, objective)
    assert (mine is None) == (oracle is None), (objective, mine, oracle)
    if oracle is not None:
        assert mine == oracle[0]
    free = brute_force(_uncapped(space), objective)
    event(f"the queue changes the optimum: {(free and free[0]) != (oracle and oracle[0])}")


def _two_h100(space: DeploymentSpace) -> DeploymentSpace:
    return dataclasses.replace(
        space,
        cluster=Cluster.parse("1x2xH100"),
        engines=tuple(e for e in space.engines if e.gpus <= 2 and not e.nodes),
    )


def test_the_queue_binds_on_a_tiny_space_and_the_decoder_reports_it() -> None:
    """Llama-3.2-1B, 200 requests in flight, TTFT ≤ 500 ms, two H100s: two tp1 engines holding 32 +
    128 (the oracle agrees), the other 40 queued, and the decoder's TTFT includes their wait. (With the
    engines priced under their own clients, `engine_workload`, that pair is also the optimum without
    the queue: where the queue binds here it leaves nothing, TTFT ≤ 450 ms at 220 in flight.)"""
    space = _two_h100(capped(500.0, 200))
    oracle = brute_force(space, "goodput")
    assert oracle is not None
    tight = _two_h100(capped(450.0, 220))
    assert brute_force(tight, "goodput") is None and brute_force(_uncapped(tight), "goodput") is not None
    counts = optimize(space, ("goodput",), Run(SolverSettings(time_limit_s=5)))
    assert counts is not None
    assert expr_value(build(space, hard_demand=False), "goodput", counts) == oracle[0]
    assert sorted(e.in_flight for e, n in zip(space.engines, counts, strict=True) for _ in range(n)) == [
        32,
        128,
    ]
    plan = solve_space(space, "goodput")
    wait_s = queue_wait_s(space, tuple(counts), 0)
    assert 0.2 < wait_s < 0.5
    for engine in plan.engines:
        assert engine.queue_ms == pytest.approx(wait_s * 1e3, rel=1e-3)
        assert engine.queue_ms < engine.ttft_ms <= 500.0
    for e, n in zip(space.engines, counts, strict=True):
        if n:
            assert e.ttft_us + wait_s * 1e6 <= units.us_down(0.5)


def test_the_whole_cluster_sees_each_shapes_share_of_the_clients() -> None:
    """The deployment's pools were built from the workload without its cap, so the C // replicas
    shares never joined their max_num_seqs grid: 1,000 clients on eight H100s got 1 x 96 + 7 x 128
    (TTFT 196 ms) beside the single-engine plan's 8 x 125 (TTFT 132 ms), reported OPTIMAL."""
    fleet = [FleetModel(load_model("Qwen/Qwen3-8B"), _chatbot(num_prompts=None))]
    plan = solve_space(build_deployment_space(fleet, Cluster.parse("1x8xH100")))
    assert sum(e.replicas * e.max_num_seqs for e in plan.engines) == 1000


def test_a_queue_that_fits_is_not_named_as_the_reason() -> None:
    """Three clients of Llama-3.2-1B at TTFT 100 ms, beside a model the cluster could not serve: the
    reason read "holds 3 and leaves 0 queued for 0 / 902.83 req/s = 0.0 s > the 50 ms its TTFT
    leaves" (2x8xH100 + 2x8xA100); an engine whose wait fits its room is no queue reason."""
    from autoparallel.solvers.deployment.explain import client_queue_numbers

    w = Serving(isl=100, osl=2, ttft_ms=100, concurrency=3)
    space = build_deployment_space(
        [FleetModel(load_model("meta-llama/Llama-3.2-1B"), w)], Cluster.parse("1xH100")
    )
    text = client_queue_numbers(space, 0)
    assert "leaves 0 queued" not in text and "the queue binds together with the other families" in text
