"""The fuzz harness checks a disaggregated winner's prefill and decode engines, not its empty `engines`
(seeds 312, 317-319 reported `plan Qwen/Qwen3-30B-A3B --cluster 4x8xH100+4x8xA100-80G --json` as
rejected: "GPUs used 64, engines take 0, placed 0")."""

from __future__ import annotations

from typing import Any

from benchmarks import fuzz


def _role(role: str, pool: int, nodes: list[int], gpu_ids: list[list[int]]) -> dict[str, Any]:
    placement = [{"nodes": [n], "gpu_ids": ids, "port": 8000} for n, ids in zip(nodes, gpu_ids, strict=True)]
    return {
        "role": role,
        "model": "Qwen/Qwen3-0.6B",
        "pool": pool,
        "tp": len(gpu_ids[0]),
        "pp": 1,
        "ep": 1,
        "dp": 1,
        "gpus_per_replica": len(gpu_ids[0]),
        "replicas": len(nodes),
        "max_num_seqs": 8,
        "placement": placement,
    }


def _data(decode_ids: list[list[int]], gpus_used: int) -> dict[str, Any]:
    return {
        "cluster": "1x8xH100+1x8xA100-80G",
        "deployment": {
            "mode": "disaggregated",
            "engines": [],
            "prefill": [_role("prefill", 0, [0, 0], [[0, 1, 2, 3], [4, 5, 6, 7]])],
            "decode": [_role("decode", 1, [0] * len(decode_ids), decode_ids)],
            "gpus_used": gpus_used,
        },
    }


def test_a_disaggregated_deployment_counts_its_role_engines() -> None:
    assert fuzz._check_deployment(_data([[0, 1, 2, 3], [4, 5, 6, 7]], 16)) == []


def test_role_engines_given_the_same_gpu_twice_are_caught() -> None:
    problems = fuzz._check_deployment(_data([[0, 1, 2, 3], [0, 1, 2, 3]], 16))
    assert any("given twice" in p for p in problems), problems
    assert fuzz._check_deployment(_data([[0, 1, 2, 3], [4, 5, 6, 7]], 12)) != []
