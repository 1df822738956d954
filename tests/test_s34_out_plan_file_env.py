"""Aggregated plan files pin each replica's GPUs in its env, as disaggregated ones do (s34 bug 2)."""

from __future__ import annotations

import yaml

from autoparallel.fleet import solve_fleet


def test_an_aggregated_replica_on_part_of_a_node_has_its_gpus_in_its_env() -> None:
    """`cuda_visible_devices: '6'` beside `env: {}` and a bare `vllm serve` line: a launcher that applies
    each replica's env and runs its lines (as a disaggregated plan file needs) started every
    single-GPU replica on GPU 0. The GPUs are now in the env, under CUDA_VISIBLE_DEVICES."""
    fleet = [
        {"model": "meta-llama/Llama-3.2-1B", "request_rate": 20, "isl": 512, "osl": 128},
        {"model": "meta-llama/Llama-3.2-3B", "request_rate": 20, "isl": 512, "osl": 128},
    ]
    plan = solve_fleet(fleet, "1x4xH100")
    doc = yaml.safe_load(plan.to_yaml())
    replicas = [r for e in doc["engines"] for r in e["replicas"]]
    assert len(replicas) >= 2 and doc["mode"] == "aggregated"
    seen = set()
    for r in replicas:
        assert "cuda_visible_devices" not in r
        assert r["env"]["CUDA_VISIBLE_DEVICES"] == ",".join(map(str, r["gpu_ids"]))
        seen.add(r["env"]["CUDA_VISIBLE_DEVICES"])
    assert len(seen) == len(replicas)  # no two replicas on the same GPUs
