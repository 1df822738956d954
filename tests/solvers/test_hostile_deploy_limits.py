"""Deployment planning within its time limit and with the binding constraint named.

- replica placement (`decoder.place` / `first_fit`) is linear in nodes + replicas: 131,072 one-GPU
  replicas on 16384x8xH100 took 133-148 s by rescanning the nodes from node 0 for every replica;
- the role space computes the TTFT budget and link rate of a prefill shape once per (tp, pp), not per
  table entry and decode candidate (857k `kv_transfer_s` calls on Kimi-K2 with --concurrency 1000),
  and checks the deadline while it builds the role engines;
- a concurrency cap below what one prefill and one decode engine hold is named with its numbers.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any, cast

import pytest

from autoparallel.cli import main
from autoparallel.errors import SolverTimeoutError
from autoparallel.fleet import fleet_of_one
from autoparallel.hardware import Cluster
from autoparallel.perf import disagg
from autoparallel.solvers.deployment import roles
from autoparallel.solvers.deployment.decoder import first_fit, place
from autoparallel.solvers.deployment.space import DeploymentSpace, build_deployment_space
from autoparallel.workload import Serving


def _space(nodes: int, gpus_per_node: int, engines: list[tuple[int, int]]) -> DeploymentSpace:
    """A one-pool space with engines of (nodes, GPUs) each (0 nodes: narrow), all `place` reads."""
    pool = SimpleNamespace(nodes=nodes, gpus_per_node=gpus_per_node, spec=f"{nodes}x{gpus_per_node}xH100")
    found = [SimpleNamespace(nodes=n, gpus=g) for n, g in engines]
    fake: Any = SimpleNamespace(
        cluster=SimpleNamespace(pools=[pool]),
        engines=found,
        engines_of=lambda pool: list(range(len(found))),
    )
    return cast(DeploymentSpace, fake)


def _rescanning_place(
    nodes: int, gpus_per_node: int, engines: list[tuple[int, int]], counts: list[int]
) -> dict[int, list[tuple[tuple[int, ...], tuple[int, ...]]]]:
    """The placement as it was: wide engines on consecutive nodes, then each narrow replica on the first
    node with room, scanning from the first free node every time."""
    out: dict[int, list[tuple[tuple[int, ...], tuple[int, ...]]]] = {}
    node = 0
    for k, (n, _) in enumerate(engines):
        for _ in range(counts[k] if n else 0):
            out.setdefault(k, []).append((tuple(range(node, node + n)), tuple(range(gpus_per_node))))
            node += n
    free = {i: 0 for i in range(node, nodes)}
    for k in sorted((k for k, (n, _) in enumerate(engines) if not n), key=lambda k: -engines[k][1]):
        g = engines[k][1]
        for _ in range(counts[k]):
            target = next(i for i, used in free.items() if used + g <= gpus_per_node)
            out.setdefault(k, []).append(((target,), tuple(range(free[target], free[target] + g))))
            free[target] += g
    return out


@pytest.mark.parametrize(
    ("nodes", "gpn", "engines", "counts"),
    [
        (6, 8, [(0, 1), (0, 4), (1, 8), (0, 2), (0, 4)], [5, 3, 1, 4, 2]),
        (4, 8, [(0, 2), (0, 8), (0, 1)], [5, 1, 9]),
        (3, 8, [(0, 3), (0, 2)], [3, 4]),  # widths outside a divisibility chain: still first fit
        (5, 4, [(2, 4), (0, 1), (0, 2)], [1, 3, 3]),
    ],
)
def test_placement_is_the_first_fit_it_was(
    nodes: int, gpn: int, engines: list[tuple[int, int]], counts: list[int]
) -> None:
    assert place(_space(nodes, gpn, engines), counts) == _rescanning_place(nodes, gpn, engines, counts)


def test_placing_131072_one_gpu_replicas_is_linear() -> None:
    start = time.perf_counter()
    spots = place(_space(16384, 8, [(0, 1)]), [131072])
    assert time.perf_counter() - start < 5.0  # 133-148 s through `plan` before
    assert len(spots[0]) == 131072
    assert spots[0][-1] == ((16383,), (7,))
    # the cursor visits each node once per width: a second width restarts it once
    halves = first_fit(0, 16384, 8, [(4, 16384), (1, 65536)])
    assert halves is not None and halves[1][0] == (8192, (0,))


def test_first_fit_says_when_a_replica_does_not_fit() -> None:
    assert first_fit(0, 2, 8, [(8, 2), (1, 1)]) is None
    assert first_fit(3, 2, 8, [(1, 1)]) is None  # wide engines took more nodes than the pool has


def _qwen_fleet(concurrency: int) -> list[Any]:
    w = Serving.preset("chatbot").model_copy(update={"concurrency": concurrency})
    return fleet_of_one("Qwen/Qwen3-0.6B", w)


def test_prefill_budget_once_per_prefill_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int, int]] = []
    real = disagg.kv_transfer_s

    def counted(*args: Any, **kwargs: Any) -> float:
        calls.append((kwargs["tp_prefill"], kwargs.get("pp_prefill", 1), kwargs["tp_decode"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(disagg, "kv_transfer_s", counted)
    rs = roles.build_role_space(_qwen_fleet(1000), Cluster.parse("2x8xH100"))
    assert {e.role for e in rs.space.engines} == {"prefill", "decode"}
    # each (prefill tp, pp, decode tp) once per first-step tier built: before, once per table entry
    # and decode candidate; here the loosest tier, the prefill shapes' critical bounds
    # (`roles.critical_bounds`) and the fastest tier, tried and not kept (roles.py `raises_prefill`:
    # chatbot's 2 s TTFT)
    assert len(rs.tiers()) == 1
    assert len(set(calls)) < len(calls) <= 3 * len(set(calls))


def test_role_engines_check_the_deadline() -> None:
    fleet = _qwen_fleet(1000)
    cluster = Cluster.parse("2x8xH100")
    serving = build_deployment_space(fleet, cluster, scale_rates=False).serving[0, 0]
    past = time.perf_counter() - 1.0
    with pytest.raises(SolverTimeoutError):
        roles.decode_candidates(serving, fleet[0].workload, same_node=False, deadline=past)
    with pytest.raises(SolverTimeoutError):
        roles.prefill_candidates(serving, deadline=past)
    with pytest.raises(SolverTimeoutError):
        roles.prefill_engines(serving, fleet[0], cluster, 0, 0, [], 0.05, {}, deadline=past)


def test_one_client_alternates_between_a_prefill_and_a_decode_engine(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A request holds a prefill slot and then a decode slot, never both (vLLM's P/D proxy awaits the
    prefill before it streams from the decoder, toy_proxy_server.py `send_request_to_service`): one
    client is served by 1P:1D at the rate its cycle allows. It was refused ("1 + 1 = 2 requests in
    flight, over the cap")."""
    argv = ["plan", "meta-llama/Llama-3.2-1B", "--cluster", "1x8xH100", "--disagg", "on"]
    assert main([*argv, "--concurrency", "1"]) == 0
    out = capsys.readouterr().out
    assert "P 1x" in out and "| D 1x" in out
    assert "bound by the 1 clients' cycle through both roles" in out
