"""Launch lines of a disaggregated deployment: vLLM 0.32 prefill / decode engines with the NIXL KV
connector, and the proxy that pairs them.

From vLLM 0.32's own source and docs (features/nixl_connector_usage.md, config/kv_transfer.py,
envs.py, tests/v1/kv_connector/nixl_integration/toy_proxy_server.py):
- each engine: `vllm serve ... --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":ROLE}'`
  with ROLE `kv_producer` (prefill) or `kv_consumer` (decode) (`KVTransferConfig.kv_role`);
- the NIXL handshake listens on `VLLM_NIXL_SIDE_CHANNEL_HOST`:`VLLM_NIXL_SIDE_CHANNEL_PORT` (default
  localhost:5600) + the engine core's data-parallel rank (nixl/base_scheduler.py); engines sharing a
  node need distinct ports: here 5600 + the engine's first GPU id, so the per-rank ports of engines
  on one node never overlap;
- an engine over several nodes: every node whose line is `vllm serve` runs engine cores of its own,
  built from that node's own flags (entrypoints/cli/serve.py `run_headless`), so each such line
  carries the `--kv-transfer-config` and its own node's `VLLM_NIXL_SIDE_CHANNEL_HOST` (the address
  its listener binds and the one it hands the other role); the node lines name the engine's own
  first node where vLLM's multi-node launch says `${HEAD_IP}` (`--data-parallel-address`,
  `ray start --address`): prefill and decode engines have different heads;
- the proxy (vLLM's toy proxy, a test script of vLLM's repository, not part of the wheel): `--port`,
  `--prefiller-hosts/--prefiller-ports`, `--decoder-hosts/--decoder-ports`; it sends every request
  to a prefiller (max_tokens=1), then its KV transfer parameters to a decoder, round robin over each
  list, whatever the engines' capacities; so the planner prices each of a role's n replicas at 1/n
  of the rate (`space.round_robin_milli_rps`).
Hosts are placeholders `${POOL<p>_NODE<n>_IP}` the user fills in.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from autoparallel.fleet import node_address
from autoparallel.frameworks.vllm import HEAD_ADDRESS, vllm_launch
from autoparallel.hardware import Cluster
from autoparallel.models import ModelSpec
from autoparallel.workload import rps_text

SIDE_CHANNEL_PORT = 5600
"""vLLM's default `VLLM_NIXL_SIDE_CHANNEL_PORT`."""
PROXY_PORT = 8192
"""The proxy's port (engines take 8000 and up on their nodes)."""
PROXY_SCRIPT = "tests/v1/kv_connector/nixl_integration/toy_proxy_server.py"
"""vLLM's proxy for NIXL P/D, relative to a vLLM source checkout."""
ROLE = {"prefill": "kv_producer", "decode": "kv_consumer"}


def kv_transfer_config(role: str) -> str:
    """The `--kv-transfer-config` JSON of a prefill or decode engine."""
    return json.dumps({"kv_connector": "NixlConnector", "kv_role": ROLE[role]}, separators=(",", ":"))


def engine_launch(engine: Any, cluster: Cluster, spec: ModelSpec) -> dict[str, Any]:
    """Per replica of a RoleEngine: shell lines per node, its environment and its API port (module doc:
    every `vllm serve` line with the KV connector and its node's side-channel host, the engine's own
    first node as its head)."""
    pool = cluster.pools[engine.pool]
    sub = Cluster.from_shape(
        nodes=max(len(engine.placement[0].nodes), 1),
        gpus_per_node=pool.gpus_per_node,
        gpu=pool.gpu,
        intra_node_gbps=pool.intra_node_gbps,
        inter_node_gbps=pool.inter_node_gbps,
    )
    launch = vllm_launch(engine.model, engine.config, cluster=sub, model=spec)
    flag = f"--kv-transfer-config {shlex.quote(kv_transfer_config(engine.role))}"
    replicas = []
    for r in engine.placement:
        head = node_address(engine.pool, r.nodes[0])
        env = dict(launch.env) | {"VLLM_NIXL_SIDE_CHANNEL_PORT": str(SIDE_CHANNEL_PORT + r.gpu_ids[0])}
        if engine.gpus_per_replica < pool.gpus_per_node:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, r.gpu_ids))
        commands = [
            [
                _node_line(
                    line.replace(HEAD_ADDRESS, head),
                    node_address(engine.pool, n),
                    flag,
                    r.port if i == 0 else None,
                )
                for line in lines
            ]
            for i, (n, lines) in enumerate(zip(r.nodes, launch.commands, strict=True))
        ]
        hosts = [node_address(engine.pool, n) for n in r.nodes]
        replicas.append({"host": head, "hosts": hosts, "port": r.port, "env": env, "commands": commands})
    notes = [n for n in launch.notes if "HEAD_IP" not in n]
    if launch.nodes > 1:
        notes.append(
            f"each replica spans {launch.nodes} nodes: its first node (the replica's host, reachable from "
            "the others) is its head, which the other nodes' lines name; where they start Ray, start "
            "theirs before the head's `vllm serve`"
        )
    return {"role": engine.role, "kv_role": ROLE[engine.role], "replicas": replicas, "notes": notes}


def _node_line(line: str, node_host: str, flag: str, port: int | None) -> str:
    """A node's line of a P/D engine: a `vllm serve` line with its node's NIXL side-channel host in
    front, the KV connector flag and (the API server's node) `--port`; other lines (`ray start`) as
    they are."""
    if not line.startswith("vllm serve"):
        return line
    api = f" --port {port}" if port is not None else ""
    return f"VLLM_NIXL_SIDE_CHANNEL_HOST={node_host} {line}{api} {flag}"


def proxy_line(prefill: list[dict[str, Any]], decode: list[dict[str, Any]]) -> str:
    """The proxy that pairs every prefill replica with every decode replica."""

    def side(launches: list[dict[str, Any]], name: str) -> str:
        reps = [r for launch in launches for r in launch["replicas"]]
        hosts = " ".join(r["host"] for r in reps)
        ports = " ".join(str(r["port"]) for r in reps)
        return f"--{name}-hosts {hosts} --{name}-ports {ports}"

    return (
        f"python {PROXY_SCRIPT} --host 0.0.0.0 --port {PROXY_PORT} "
        f"{side(prefill, 'prefiller')} {side(decode, 'decoder')}"
    )


def pd_launch(deployment: Any, cluster: Cluster, spec: ModelSpec) -> dict[str, Any]:
    """{prefill: [per engine], decode: [per engine], proxy: line, notes} of a DisaggDeployment."""
    prefill = [engine_launch(e, cluster, spec) for e in deployment.prefill]
    decode = [engine_launch(e, cluster, spec) for e in deployment.decode]
    n_p, n_d = (sum(e.replicas for e in side) for side in (deployment.prefill, deployment.decode))
    return {
        "prefill": prefill,
        "decode": decode,
        "proxy": proxy_line(prefill, decode),
        "notes": [
            "install NIXL beside vLLM on every node (vLLM's kv_connectors requirements)",
            f"the proxy is {PROXY_SCRIPT} from vLLM's source tree; it deals requests round robin, "
            f"whatever the engines' capacities: each prefill replica gets 1/{n_p} of them "
            f"({rps_text(deployment.served_rps / n_p)} req/s) and each decode replica 1/{n_d} "
            f"({rps_text(deployment.served_rps / n_d)} req/s), the load the plan prices each at",
            "fill in the ${POOL<p>_NODE<n>_IP} addresses; prefill and decode nodes must reach each "
            "other's NIXL side-channel ports",
        ],
    }
