"""The mixed deployment fronts (`pareto` serving, `--objective tpot`) charge a closed-loop client's queue.

`vllm bench serve --max-concurrency C` caps only the client: the C − H requests the aggregated
engines do not hold wait (C − H) / X s in the server's queue (Little's law) and TTFT counts from the
send. The mixed encoder holds the deployment encoder's `client_queue` rule (encoder.add_client_queue),
the mixed oracle checks it in floats (oracle.within_ttft), and every decoded point's TTFT, the wait
included, meets the limit. Before, `pareto Qwen/Qwen3-8B --cluster 1x2xH100 --concurrency 1000
--disagg off` listed 17 points at TTFT 18,530 ms and more against the chatbot's 2,000 ms.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re

import pytest

from autoparallel.cli import main
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.deployment import solve_deployment
from autoparallel.solvers.deployment.front import pareto_mixed
from autoparallel.solvers.deployment.mixed import MixedSpace, build_mixed_space
from autoparallel.solvers.deployment.mixed_oracle import brute_force_front
from autoparallel.solvers.deployment.space import FleetModel
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.workload import Serving

REPRO = ["pareto", "Qwen/Qwen3-8B", "--cluster", "1x2xH100", "--disagg", "off"]
OPTIONS = ServingOptions(max_num_seqs=(4, 8, 16, 32, 64, 128), enforce_eager=(False,))


def test_the_reproducer_is_infeasible_naming_the_client_queue(capsys: pytest.CaptureFixture[str]) -> None:
    """1,000 clients on two H100s: the nearest deployment holds 384 and 616 wait 18 s, past the
    chatbot's 2 s; one line, exit 1, instead of a front of points at TTFT 18,530 ms and more."""
    assert main([*REPRO, "--concurrency", "1000"]) == 1
    captured = capsys.readouterr()
    assert "TTFT ms" not in captured.out
    (line,) = captured.err.strip().splitlines()
    assert "no aggregated deployment" in line and "the client's queue" in line and "Little's law" in line
    assert re.search(
        r"leaves 616 queued for 616 / \d+\.\d+ req/s = 1\d\.\d s > the 18\d\d ms its TTFT leaves", line
    )


def test_every_point_of_a_capped_front_meets_the_ttft_limit_with_the_queue(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """100 clients on two H100s: the front keeps only deployments whose TTFT with the queue is within
    2,000 ms (before, batches down to 1 were listed at TTFTs up to minutes)."""
    assert main([*REPRO, "--concurrency", "100", "--json"]) == 0
    points = json.loads(capsys.readouterr().out)["points"]
    assert points
    for p in points:
        assert p["ttft_ms"] <= 2000.0
        for e in p["engines"]:
            assert 0 <= e["queue_ms"] < e["ttft_ms"] <= 2000.0  # 0: the engines hold all 100


def test_objective_tpot_deployment_meets_the_ttft_limit_with_the_queue() -> None:
    """`--objective tpot` (front.solve_mixed, mode off): the least TPOT whose TTFT with the queue fits."""
    fm = FleetModel(
        load_model("meta-llama/Llama-3.2-1B"), Serving(isl=1024, osl=256, ttft_ms=300, concurrency=100)
    )
    plan = solve_deployment([fm], Cluster.parse("1x2xH100"), objective="tpot", options=OPTIONS)
    assert plan.engines
    for e in plan.engines:
        assert e.queue_ms > 0 and e.ttft_ms <= 300.0


# ----- mixed oracle vs mixed solver on tiny capped spaces -------------------------------------------------
@functools.cache
def space(cluster: str, ttft_ms: float, cap: int, prune: bool) -> MixedSpace:
    fm = FleetModel(
        load_model("meta-llama/Llama-3.2-1B"), Serving(isl=1024, osl=256, ttft_ms=ttft_ms, concurrency=cap)
    )
    return build_mixed_space(fm, Cluster.parse(cluster), OPTIONS, mode="off", prune=prune)


def _queue_free(s: MixedSpace) -> MixedSpace:
    """The same engines with the model's TTFT limit dropped: no client's queue is charged."""
    fm = s.fleet_model
    free = dataclasses.replace(fm, workload=fm.workload.model_copy(update={"ttft_ms": None}))
    return dataclasses.replace(s, aggregated=dataclasses.replace(s.aggregated, models=(free,)))


@pytest.mark.parametrize(
    ("cluster", "ttft_ms", "cap", "names"),
    [
        ("1x4xH100", 500.0, 200, ("throughput", "tpot")),
        ("1x4xH100", 400.0, 150, ("throughput", "tpot", "gpus")),
        ("1x4xH100", 1000.0, 256, ("tpot", "cost")),
        ("1x2xH100", 300.0, 100, ("throughput", "tpot")),
    ],
)
def test_mixed_solver_front_equals_the_mixed_oracle_with_the_client_queue(
    cluster: str, ttft_ms: float, cap: int, names: tuple[str, ...]
) -> None:
    """CP-SAT (integer rule, pruned candidates) == the oracle (floats, every candidate); the queue
    changes the front; every point's decoded TTFT, the wait included, is within the limit."""
    unpruned = space(cluster, ttft_ms, cap, False)
    oracle = brute_force_front(unpruned, names)
    assert oracle and oracle != brute_force_front(_queue_free(unpruned), names)
    fm = unpruned.fleet_model
    front = pareto_mixed(fm, unpruned.cluster, objectives=names, mode="off", options=OPTIONS)
    assert front.complete and set(front.vectors) == oracle
    for p in front:
        assert p.aggregated is not None and p.ttft_ms <= ttft_ms
        held = sum(e.replicas * e.max_num_seqs for e in p.aggregated.engines)
        assert held <= cap
        waits = {e.queue_ms for e in p.aggregated.engines}
        assert len(waits) == 1 and waits.pop() == pytest.approx(
            (cap - held) / p.aggregated.models[0].capacity_rps * 1e3, rel=1e-6
        )
