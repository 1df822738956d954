"""`evaluate` without `--dp` runs as many replicas as the cluster holds, placed as the planner places
them (`perf.serving.replicas_on`: none straddles a node), not world // (tp · pp): tp=4 on 2x6xH100 is
2 replicas (one per node), not 3 with a problem saying the cluster holds 2. An explicit `--dp` past
what the nodes hold is refused as a launch over hosts a cluster lacks is, rather than printing launch
lines for a node the cluster does not have."""

from __future__ import annotations

import json

import pytest

from autoparallel.cli import main

LLAMA_70B = "meta-llama/Llama-3.1-70B"
LLAMA_8B = "meta-llama/Llama-3.1-8B"


def _evaluate(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["evaluate", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize(
    ("model", "spec", "tp", "replicas"),
    [
        (LLAMA_70B, "2x6xH100", "4", 2),  # was 3: "so the cluster holds 2"
        (LLAMA_70B, "3x6xH100", "4", 3),  # was 4
        (LLAMA_8B, "2x3xH100", "2", 2),  # was 3
    ],
)
def test_default_replicas_are_those_the_nodes_hold(
    capsys: pytest.CaptureFixture[str], model: str, spec: str, tp: str, replicas: int
) -> None:
    rc, out, _ = _evaluate(capsys, model, "--cluster", spec, "--tp", tp, "--json")
    doc = json.loads(out)
    assert rc == 0, doc["problems"]
    assert doc["config"]["replicas"] == replicas
    assert not any("straddling" in p for p in doc["problems"])
    nodes = int(spec.split("x")[0])
    assert len(doc["vllm"]["launch"]["commands"]) == nodes


def test_power_of_two_nodes_still_fill_the_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _evaluate(capsys, LLAMA_70B, "--cluster", "2x8xH100", "--tp", "4", "--json")
    assert rc == 0
    assert json.loads(out)["config"]["replicas"] == 4


def test_dp_past_the_nodes_is_refused_not_launched_on_a_missing_node(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rc, out, err = _evaluate(capsys, LLAMA_70B, "--cluster", "2x6xH100", "--tp", "4", "--dp", "3")
    assert rc == 2
    assert "node 2:" not in out
    assert err.strip().splitlines() == [
        "error: --dp 3: 3 replicas of 4 GPUs need 3 nodes of 6 GPUs but cluster 2x6xH100-SXM has 2: a node "
        "holds 1 without one straddling two, so the cluster holds 2 (--dp 2)"
    ]
    rc, out, _ = _evaluate(capsys, LLAMA_70B, "--cluster", "2x6xH100", "--tp", "4", "--dp", "2")
    assert rc == 0 and "node 1:" in out and "node 2:" not in out


def test_a_straddling_tp_group_is_not_said_to_stay_inside_a_node(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _evaluate(capsys, LLAMA_70B, "--cluster", "2x6xH100", "--tp", "4", "--pp", "3")
    assert rc == 1  # the problems list: tp=4 does not divide a node of 6 GPUs
    assert "tensor-parallel groups stay inside a node" not in out
    assert "straddles two nodes" in out


def test_an_expert_parallel_default_takes_ranks_whose_ep_divides_the_experts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Before: --enable-expert-parallel without --dp filled the cluster, an ep of 6 over Qwen3-30B-A3B's 128
    experts on 1x6xH100, refused (exit 2) for an ep the user never asked for. Now 4 ranks; 1x8 keeps 8."""
    rc, out, _ = _evaluate(capsys, "Qwen/Qwen3-30B-A3B", "--cluster", "1x6xH100", "--enable-expert-parallel")
    assert rc in (0, 1) and "4 replica(s) x tp=1 pp=1 + expert parallel = 4 GPUs" in out
    rc, out, _ = _evaluate(capsys, "Qwen/Qwen3-30B-A3B", "--cluster", "1x8xH100", "--enable-expert-parallel")
    assert "8 replica(s) x tp=1 pp=1 + expert parallel = 8 GPUs" in out
