"""A capped (closed-loop) client's engines are priced as their own clients keep them.

`vllm bench serve --max-concurrency C` holds a slot through the request's per-request overhead
outside the engine (`perf.closed_loop_rates`). The deployment planner rated a capped model's engines
at full load without that overhead: Qwen3-30B-A3B on one H100 (SGLang, 256 / 4 tokens, 16 clients)
priced SGLang tp1 max_num_seqs 16 at 318 tokens/s in the "Whole cluster" section where the
single-engine plan and `evaluate` give 267 for the same engine. Now each engine of b slots per rank
is rated at `closed_loop_rates(clients = limit = b)` (`ServingSpace.own_clients`) and the decoder
evaluates it under a concurrency of its own slots (`space.engine_workload`).
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from autoparallel import api
from autoparallel.cli import main
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.deployment import FleetModel, build_deployment_space, solve_space
from autoparallel.solvers.deployment.decoder import Deployment, evaluate_engine
from autoparallel.solvers.deployment.driver import expr_value, optimize
from autoparallel.solvers.deployment.encoder import build
from autoparallel.solvers.deployment.oracle import brute_force
from autoparallel.solvers.deployment.space import DeploymentSpace, undominated
from autoparallel.solvers.driver import Run
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving

REPRO = [
    "plan",
    "Qwen/Qwen3-30B-A3B",
    "--cluster",
    "1xH100",
    "--engine",
    "sglang",
    "--isl",
    "256",
    "--osl",
    "4",
    "--concurrency",
    "16",
    "--ttft-ms",
    "100000",
    "--tpot-ms",
    "100000",
    "--disagg",
    "off",
    "--json",
]
SMALL = ServingOptions(max_num_seqs=(4, 8, 16, 32), enforce_eager=(False,), tp_values=(1, 2))


def test_the_whole_cluster_prices_the_single_engine_plans_engine_alike(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The repro: the whole-cluster section's SGLang tp1 max_num_seqs 16 is the single-engine plan's
    engine, and now at its 267 tokens/s (was 318, +19.2%)."""
    assert main(REPRO) == 0
    d = json.loads(capsys.readouterr().out)
    single = d["perf"]["output_tokens_per_s"]
    (engine,) = d["deployment"]["engines"]
    assert (engine["tp"], engine["max_num_seqs"], engine["replicas"]) == (1, d["config"]["max_num_seqs"], 1)
    assert d["deployment"]["throughput_tokens_per_s"] == pytest.approx(single, rel=0.01)
    assert engine["ttft_ms"] == pytest.approx(d["perf"]["ttft_ms"], rel=0.01)


def _own_clients(workload: Serving, max_num_seqs: int, dp: int) -> Serving:
    """The workload `evaluate` prices one engine under its own clients: max_num_seqs per rank."""
    return workload.model_copy(update={"concurrency": max_num_seqs * dp})


def _never_above_evaluate(fm: FleetModel, cluster: Cluster, dep: Deployment) -> None:
    for e in dep.engines:
        plan = api.evaluate(
            fm.model,
            cluster.pool_cluster(e.pool),
            e.config,
            _own_clients(fm.workload, e.max_num_seqs, e.dp),
            compare=False,
            engine=e.engine,
        )
        assert e.tokens_per_s <= plan.perf.output_tokens_per_s * (1 + 1e-9), (e.engine, e.tp, e.max_num_seqs)
        assert e.tokens_per_s == pytest.approx(plan.perf.output_tokens_per_s, rel=1e-6)


@pytest.mark.parametrize(
    ("model", "cluster", "engines", "workload"),
    [
        ("Qwen/Qwen3-30B-A3B", "1xH100", ("sglang",), Serving(isl=256, osl=4, concurrency=16)),
        ("Qwen/Qwen3-8B", "1x2xH100", ("vllm",), Serving(isl=512, osl=16, concurrency=40, ttft_ms=4000)),
    ],
)
def test_decoded_engines_never_exceed_evaluate_under_their_own_clients(
    model: str, cluster: str, engines: tuple[str, ...], workload: Serving
) -> None:
    """Every decoded engine's tokens/s is what `evaluate` gives it under max_num_seqs × dp clients
    (the float model the decoder re-checks), never more."""
    fm = FleetModel(load_model(model), workload)
    c = Cluster.parse(cluster)
    space = build_deployment_space([fm], c, SMALL.model_copy(update={"engines": engines}))
    _never_above_evaluate(fm, c, solve_space(space, "throughput"))


def _capped_space(model: str, cluster: str, workload: Serving) -> DeploymentSpace:
    return build_deployment_space(
        [FleetModel(load_model(model), workload)], Cluster.parse(cluster), SMALL, prune=False
    )


@pytest.mark.parametrize(
    ("model", "cluster", "workload"),
    [
        ("Qwen/Qwen3-8B", "1x4xH100", Serving(isl=512, osl=16, concurrency=24)),
        ("Qwen/Qwen3-8B", "1x4xH100", Serving(isl=512, osl=16, concurrency=40, ttft_ms=3000)),
        ("Qwen/Qwen3-8B", "1x2xH100", Serving(isl=1024, osl=8, concurrency=7, ttft_ms=2000)),
        ("Qwen/Qwen3-8B", "1x4xH100", Serving(isl=256, osl=32, concurrency=32, num_prompts=200)),
    ],
)
def test_the_oracle_agrees_with_cpsat_on_capped_spaces(model: str, cluster: str, workload: Serving) -> None:
    """Brute force over every candidate engine of a real capped space (its closed-loop tables) and
    CP-SAT over the undominated ones agree on the optimum; every engine is the float model's
    (`evaluate_engine` under its own clients)."""
    space = _capped_space(model, cluster, workload)
    assert space.serving[0, 0].own_clients
    assert space.engines
    for e in space.engines:
        evaluate_engine(space, e)
    small = dataclasses.replace(space, engines=tuple(undominated(list(space.engines), True)))
    for objective in ("throughput", "gpus"):
        oracle = brute_force(space, objective)
        counts = optimize(small, (objective,), Run(SolverSettings(time_limit_s=5)))
        assert (oracle is None) == (counts is None), objective
        if oracle is not None and counts is not None:
            assert expr_value(build(small, hard_demand=True), objective, counts) == oracle[0], objective


@pytest.mark.parametrize(
    "workload",
    [
        Serving(isl=512, osl=16, request_rate=50.0),
        Serving(isl=512, osl=16, num_prompts=200),
        Serving(isl=512, osl=16),
        Serving(isl=512, osl=16, request_rate=50.0, concurrency=32),
    ],
)
def test_uncapped_engines_stay_at_full_load(workload: Serving) -> None:
    """Rates, bursts, no cap, and a rate under a cap (an open loop) keep the full-load rating: each
    decoded engine is `evaluate`'s under the workload without a rate, cap or prompts."""
    fm = FleetModel(load_model("Qwen/Qwen3-8B"), workload)
    c = Cluster.parse("1x2xH100")
    space = build_deployment_space([fm], c, SMALL)
    assert not space.serving[0, 0].own_clients
    dep = solve_space(space, "throughput")
    alone = workload.model_copy(update={"concurrency": None, "request_rate": None, "num_prompts": None})
    for e in dep.engines:
        plan = api.evaluate(fm.model, c.pool_cluster(e.pool), e.config, alone, compare=False)
        assert e.tokens_per_s == pytest.approx(plan.perf.output_tokens_per_s, rel=1e-9)
