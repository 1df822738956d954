"""vLLM artifacts for a decided serving configuration: engine args, `vllm serve` line, YAML, launch.

Targets vLLM 0.32. Every flag name, default and allowed value below was read from that release's
source (`vllm/engine/arg_utils.py`, `vllm/config/{parallel,cache,model,scheduler}.py`,
`vllm/entrypoints/cli/serve.py`); the tests check emitted commands against vLLM's own parser.

Usage:
    >>> from autoparallel.configs import ServingConfig
    >>> vllm_command("meta-llama/Llama-3.1-70B", ServingConfig(tp=4, max_num_seqs=128))
    'vllm serve meta-llama/Llama-3.1-70B --tensor-parallel-size 4 --max-model-len 8192 \
--gpu-memory-utilization 0.92 --max-num-seqs 128'

How a plan maps onto vLLM:
- `tp`, `pp` -> `--tensor-parallel-size`, `--pipeline-parallel-size` (one engine = tp x pp GPUs);
- `replicas` -> `--data-parallel-size`: one API endpoint balancing over `replicas` engines. Not for
  a MoE model without expert parallelism: there vLLM would shard the experts over tp x dp GPUs
  ("expert layers form a (DP x TP) sized tensor parallel group", data-parallel deployment docs) and
  align every forward pass across the ranks, which is not the plan of `replicas` whole engines that
  was priced; such a plan runs `replicas` separate `vllm serve` processes behind a load balancer;
- `enable_expert_parallel` -> `--enable-expert-parallel`: MoE layers are sharded over
  tp x data-parallel ranks (vLLM: "MoE layers will be sharded according to the product of the
  tensor, prefill-context, and data parallel sizes"), so EP = tp x replicas.
- Multi-node (`vllm_launch`): an engine wider than a node runs on a Ray cluster
  (`--distributed-executor-backend ray`); engines that fit a node are spread over nodes with
  vLLM's multi-node data-parallel flags (`--data-parallel-size-local`, `--data-parallel-start-rank`,
  `--data-parallel-address`, `--data-parallel-rpc-port`, `--headless` on the other nodes).
- A rack-scale GPU's node spans several hosts (`_common.gpus_per_host`: a GB200 NVL72 rack, the
  planner's node of 72 GPUs, is 18 hosts of 4): the launch counts hosts where it says nodes, since a
  process starts on one host's operating system and sees that host's GPUs; an engine wider than a
  host takes the multi-node paths above over the rack's hosts (`_common.rack_hosts_note`).
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

import yaml
from pydantic import BaseModel, ConfigDict

from autoparallel.configs import BASE_PORT, VLLM_GPU_MEMORY_UTILIZATION, VLLM_QUANTIZATION_METHODS
from autoparallel.errors import InputError
from autoparallel.frameworks._common import (
    gpus_per_host,
    hosts_per_node,
    idle_hosts_note,
    rack_hosts_note,
    replica_hosts,
)
from autoparallel.memory.vllm_config import checkpoint_quantization
from autoparallel.memory.vllm_versions import DEFAULT_VLLM_VERSION
from autoparallel.perf.engine_support import needs_remote_code
from autoparallel.validation import serving_problems

if TYPE_CHECKING:
    from autoparallel.configs import ServingConfig
    from autoparallel.hardware import Cluster
    from autoparallel.models.spec import ModelSpec

VLLM_TARGET_VERSION = DEFAULT_VLLM_VERSION
"""The vLLM release whose flags, defaults and validation the emitted artifacts follow: the one whose
memory accounting is modelled (`memory.vllm_versions`)."""

VLLM_FLAG_DEFAULTS: dict[str, object] = {
    "tensor_parallel_size": 1,
    "pipeline_parallel_size": 1,
    "data_parallel_size": 1,
    "enable_expert_parallel": False,
    "max_model_len": None,  # None: derived from the model's config.json
    "gpu_memory_utilization": VLLM_GPU_MEMORY_UTILIZATION,
    "max_num_seqs": None,  # None: 1024 on GPUs with >= 70 GiB (A100 excepted), else 256
    "max_num_batched_tokens": None,  # None: 8192 / 16384 / 2048 by GPU memory, as max_num_seqs
    "kv_cache_dtype": "auto",
    "quantization": None,  # None: whatever the checkpoint's quantization_config says
    "enforce_eager": False,
    "distributed_executor_backend": None,  # None: mp inside a node, error if the engine needs more
    "data_parallel_backend": "mp",
    "data_parallel_size_local": None,
    "data_parallel_start_rank": None,
    "data_parallel_address": None,
    "data_parallel_rpc_port": None,  # None: ParallelConfig.data_parallel_rpc_port = 29550
    "headless": False,
    "trust_remote_code": False,
    "port": 8000,
}
"""Every engine arg this module emits (vLLM's `dest` names, in emission order) with its vLLM 0.32 default.

The CLI flag of each is `--` + name with `_` -> `-` (e.g. `--tensor-parallel-size`)."""

ALWAYS_EMITTED: frozenset[str] = frozenset(
    {"tensor_parallel_size", "max_model_len", "gpu_memory_utilization", "max_num_seqs"}
)
"""Engine args written even when they equal vLLM's default: the memory plan depends on them."""

VLLM_KV_CACHE_DTYPES: tuple[str, ...] = (
    "auto",
    "bfloat16",
    "float16",
    "fp8",
    "fp8_ds_mla",
    "fp8_e4m3",
    "fp8_e5m2",
    "fp8_inc",
    "fp8_per_token_head",
    "int4_per_token_head",
    "int8_per_token_head",
    "nvfp4",
    "nvfp4_4over6",
    "nvfp4_ds_mla",
    "turboquant_3bit_nc",
    "turboquant_4bit_nc",
    "turboquant_k3v4_nc",
    "turboquant_k8v4",
    "ultraquant_4bit",
)
"""`--kv-cache-dtype` choices in vLLM 0.32 (`CacheDType` in vllm/config/cache.py)."""

DP_RPC_PORT = 29550
"""`--data-parallel-rpc-port` written on every node of a multi-node data-parallel launch (vLLM's own
default, stated explicitly because all nodes must agree on it)."""


RAY_PORT = 6379
"""Port of the Ray head (`ray start --head --port`), Ray's default GCS port."""

HEAD_ADDRESS = "${HEAD_IP}"
"""Placeholder for node 0's address in multi-node commands; the user exports HEAD_IP on every node."""


class VllmLaunch(BaseModel):
    """How to start a plan on its nodes: shell lines per node, environment, and what to know."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    commands: tuple[tuple[str, ...], ...]
    """Shell lines per node: `commands[i]` runs on node i, in order. Node 0 serves the API. On a
    rack-scale GPU a node here is a host (`_common.gpus_per_host`: a GB200 NVL72 tray of 4 GPUs)."""
    env: dict[str, str]
    """Environment variables to export on every node before the commands (empty when none is needed)."""
    notes: tuple[str, ...]
    """What the user must know or provide (addresses, load balancers, shared model storage)."""

    @property
    def nodes(self) -> int:
        """Nodes (hosts, on a rack-scale GPU) the launch uses."""
        return len(self.commands)


def vllm_args(
    model_id: str,
    config: ServingConfig,
    *,
    cluster: Cluster | None = None,
    model: ModelSpec | None = None,
) -> dict[str, object]:
    """vLLM engine args (vLLM's own names) for `config`, with every decided value.

    `model` (optional) lets the architecture rules reject invalid degrees before vLLM does;
    `cluster` (optional) decides the executor: an engine wider than one node needs Ray.

    Raises:
        InputError: an unknown kv-cache dtype or quantization for vLLM 0.32, degrees the model
            cannot run with, expert parallelism on a dense model, or more GPUs than the cluster has.
    """
    _validate(config, cluster=cluster, model=model)
    args: dict[str, object] = {
        "model": model_id,
        "tensor_parallel_size": config.tp,
        "pipeline_parallel_size": config.pp,
        "data_parallel_size": 1 if separate_engines(config, model) else _server_replicas(config, cluster),
        "enable_expert_parallel": config.enable_expert_parallel,
        "max_model_len": config.max_model_len,
        "gpu_memory_utilization": config.gpu_memory_utilization,
        "max_num_seqs": config.max_num_seqs,
        "kv_cache_dtype": config.kv_cache_dtype,
    }
    if config.max_num_batched_tokens is not None:
        args["max_num_batched_tokens"] = config.max_num_batched_tokens
    # A pre-quantized checkpoint runs as its quantization_config says: vLLM refuses any other
    # --quantization for it (`_verify_quantization`), so none is written (`checkpoint_quantization`).
    quantization = (
        config.quantization if model is None else checkpoint_quantization(model, config.quantization)
    )
    if quantization is not None:
        args["quantization"] = quantization
        if quantization == "fp8" and model is not None and model.quantization is None:
            # Online FP8 of an unquantized checkpoint: vLLM 0.32 resolves `fp8` to its `fp8_per_tensor`
            # shorthand and warns that `fp8` is deprecated for it (model_loader/weight_utils.py).
            args["quantization"] = "fp8_per_tensor"
    if config.enforce_eager:
        args["enforce_eager"] = True
    if needs_remote_code("vllm", model):  # Kimi-K2's tokenizer is its checkpoint's code
        args["trust_remote_code"] = True
    if cluster is not None and _spans_nodes(config, cluster):
        args["distributed_executor_backend"] = "ray"
        if args["data_parallel_size"] != 1:
            args["data_parallel_backend"] = "ray"
    return {k: args[k] for k in ("model", *VLLM_FLAG_DEFAULTS) if k in args}


def _node_span_note(config: ServingConfig, node: int) -> str:
    """What crosses the network in an engine over several nodes of `node` GPUs: its pipeline stages
    (tensor-parallel groups inside a node, as the planner lays them out), or a tensor-parallel group
    itself (tp over whole nodes, which `evaluate` prices over the network, `comm.group_link`)."""
    if config.tp > node:
        return (
            f"its tensor-parallel group of {config.tp} spans {config.tp // node} nodes, all-reducing over "
            "the network every layer (the planner keeps tp inside a node, pipeline stages across nodes)."
        )
    if node % config.tp:  # tp=4 pp=3 on 6-GPU nodes: the second stage's group takes 2 GPUs of each
        return (
            f"tp={config.tp} does not divide a node of {node} GPUs, so a tensor-parallel group straddles "
            "two nodes, all-reducing over the network every layer (the planner keeps tp dividing the node, "
            "pipeline stages across nodes)."
        )
    return "its tensor-parallel groups stay inside a node, its pipeline stages across nodes."


def vllm_command(
    model_id: str,
    config: ServingConfig,
    *,
    cluster: Cluster | None = None,
    model: ModelSpec | None = None,
) -> str:
    """The `vllm serve MODEL ...` line: flags that differ from vLLM 0.32's defaults, plus the four
    the memory plan rests on (tp, max-model-len, gpu-memory-utilization, max-num-seqs).

    This is the whole command for a plan on one node, and node 0's for a Ray launch; a multi-node
    data-parallel plan needs the per-node flags of `vllm_launch`, and a MoE plan of separate engines
    (`separate_engines`) runs this line once per engine.
    """
    args = vllm_args(model_id, config, cluster=cluster, model=model)
    return _serve_line(model_id, _non_default(args))


def vllm_yaml(
    model_id: str,
    config: ServingConfig,
    *,
    cluster: Cluster | None = None,
    model: ModelSpec | None = None,
) -> str:
    """A YAML file for `vllm serve --config FILE`: the same settings as `vllm_command`, model included."""
    args = vllm_args(model_id, config, cluster=cluster, model=model)
    doc: dict[str, object] = {"model": model_id}
    doc.update({_flag(k)[2:]: v for k, v in _non_default(args).items()})
    return yaml.safe_dump(doc, sort_keys=False)


def vllm_launch(
    model_id: str,
    config: ServingConfig,
    *,
    cluster: Cluster | None = None,
    model: ModelSpec | None = None,
) -> VllmLaunch:
    """Commands per node to start the plan on `cluster` (one node when `cluster` is None); on a
    rack-scale GPU per host (`_common.gpus_per_host`), with `_common.rack_hosts_note` saying so.

    - Fits one node: one `vllm serve` (replicas as `--data-parallel-size`).
    - An engine spans nodes (tp x pp > GPUs per node): a Ray cluster over the nodes, `vllm serve`
      on node 0 with `--distributed-executor-backend ray` (several such engines: Ray data parallel,
      `VLLM_RAY_DP_PACK_STRATEGY=span`).
    - Engines fit a node but not all of them one node: vLLM's multi-node data parallelism, node 0
      serving the API and the other nodes `--headless`, each with its local engine count and first rank.
    - Replicas of several hosts over several NVLink domains whose hosts they do not divide (tp=8 on
      2x36xGB200): a Ray cluster and a `vllm serve` per domain (`domain_replicas`, `_domain_launch`).
    """
    args = vllm_args(model_id, config, cluster=cluster, model=model)
    flags = _non_default(args)
    if separate_engines(config, model):
        launch = _separate_launch(model_id, config, cluster, flags)
    elif cluster is None or config.gpus <= gpus_per_host(cluster):
        return VllmLaunch(commands=((_serve_line(model_id, flags),),), env={}, notes=())
    elif domain_replicas(config, cluster, model):
        launch = _domain_launch(model_id, config, cluster, flags)
    elif _spans_nodes(config, cluster):
        launch = _ray_launch(model_id, config, cluster, flags)
    else:
        launch = _data_parallel_launch(model_id, config, cluster, flags)
    if cluster is None:
        return launch
    _check_hosts(launch.nodes, config, cluster)
    note = rack_hosts_note(cluster.gpu.name, cluster.gpus_per_node)
    if note is None or launch.nodes == 1:
        return launch
    return launch.model_copy(update={"notes": (*launch.notes, note)})


# ----- launch shapes --------------------------------------------------------------------------------


def separate_engines(config: ServingConfig, model: ModelSpec | None) -> bool:
    """`config`'s replicas must run as separate `vllm serve` processes: a MoE model without expert
    parallelism, where `--data-parallel-size` would make one engine whose ranks share TP-sliced
    experts (module notes). Unknown without the model (then `--data-parallel-size`, as for dense)."""
    return config.replicas > 1 and not config.enable_expert_parallel and model is not None and model.is_moe


def domain_replicas(config: ServingConfig, cluster: Cluster | None, model: ModelSpec | None = None) -> int:
    """Replicas one `vllm serve` holds when `config`'s dense replicas span several hosts but not whole
    nodes (NVLink domains) and do not divide a node's hosts (8-GPU replicas on GB200 NVL36 domains of 9
    hosts of 4), over more than one domain: ⌊node / (tp · pp)⌋, the replicas a domain holds
    (`_common.replica_hosts`); 0 otherwise. One Ray cluster over several such domains could pair two
    hosts of different domains in one data-parallel rank (Ray knows no NVLink domain), so each domain
    gets its own (`_domain_launch`)."""
    if cluster is None or config.enable_expert_parallel or separate_engines(config, model):
        return 0
    node, width = cluster.gpus_per_node, config.gpus_per_replica
    if not gpus_per_host(cluster) < width < node or node % width == 0:
        return 0
    per = node // width
    return per if config.replicas > per else 0


def _server_replicas(config: ServingConfig, cluster: Cluster | None) -> int:
    """`--data-parallel-size` of the first `vllm serve`: the plan's replicas, or those of the first NVLink
    domain when each domain runs its own (`domain_replicas`)."""
    return domain_replicas(config, cluster) or config.replicas


def _domain_launch(
    model_id: str, config: ServingConfig, cluster: Cluster, flags: dict[str, object]
) -> VllmLaunch:
    """A Ray cluster and a `vllm serve` per NVLink domain (`domain_replicas`), each domain's replicas on
    whole hosts at multiples of their width (`_common.replica_hosts`); the lines count hosts, an idle
    host between two domains' lines says so in a comment."""
    host, node = gpus_per_host(cluster), cluster.gpus_per_node
    groups = replica_hosts(config.replicas, config.gpus_per_replica, node, host)
    k = hosts_per_node(cluster.gpu.name, node)
    domains: dict[int, list[tuple[int, ...]]] = {}
    for hosts in groups:
        domains.setdefault(hosts[0] // k, []).append(hosts)
    lines: dict[int, tuple[str, ...]] = {}
    for d, replicas in enumerate(domains.values()):
        used = [h for hosts in replicas for h in hosts]
        own = {f: v for f, v in flags.items() if f not in ("data_parallel_size", "data_parallel_backend")}
        if len(replicas) > 1:
            own = {**own, "data_parallel_size": len(replicas), "data_parallel_backend": "ray"}
        order = [f for f in ("model", *VLLM_FLAG_DEFAULTS) if f in own]
        lines[used[0]] = (
            f"ray start --head --port={RAY_PORT}",
            _serve_line(model_id, {f: own[f] for f in order}),
        )
        for h in used[1:]:
            lines[h] = (f"ray start --address=${{HEAD_IP_{d}}}:{RAY_PORT}",)
    last = max(lines)
    idle = f"# idle: a replica of {config.gpus_per_replica} GPUs does not fit this NVLink domain's hosts left"
    commands = tuple(lines.get(h, (idle,)) for h in range(last + 1))
    env = {"VLLM_RAY_DP_PACK_STRATEGY": "span"} if any(len(r) > 1 for r in domains.values()) else {}
    firsts = ", ".join(str(r[0][0]) for r in domains.values())
    notes = [
        f"one Ray cluster and one `vllm serve` per NVLink domain ({len(domains)} domains, at most "
        f"{node // config.gpus_per_replica} of the {config.replicas} replicas each): a Ray cluster over "
        "several domains could put one data-parallel rank on hosts of two; export HEAD_IP_<d>=<address of "
        f"domain d's first host (hosts {firsts})> on that domain's hosts, start their Ray workers before "
        f"`vllm serve`, and put a load balancer in front of the {len(domains)} endpoints.",
        "every host needs the same vLLM version and the model at the same path (or HF cache); set "
        "VLLM_HOST_IP to each host's own address if Ray picks the wrong interface.",
    ]
    if env:
        notes.append("VLLM_RAY_DP_PACK_STRATEGY=span lets each data-parallel rank span hosts.")
    note = idle_hosts_note(config.replicas, config.gpus_per_replica, node, cluster.gpu.name)
    if note is not None:
        notes.append(note)
    return VllmLaunch(commands=commands, env=env, notes=tuple(notes))


def _separate_launch(
    model_id: str, config: ServingConfig, cluster: Cluster | None, flags: dict[str, object]
) -> VllmLaunch:
    """`replicas` separate engines, packed onto nodes in order, each on its own GPUs and port; an engine
    wider than a node gets a Ray cluster of its own nodes, its head on its first node."""
    per_node = gpus_per_host(cluster) if cluster is not None else config.gpus
    unit = _unit(cluster)
    width = config.gpus_per_replica
    commands: list[list[str]] = []
    notes = [
        f"{config.replicas} separate engines of {width} GPU(s), ports {BASE_PORT}-"
        f"{BASE_PORT + config.replicas - 1}: put a load balancer in front (not --data-parallel-size, "
        f"which would shard this MoE model's experts over all {config.gpus} GPUs and align every "
        "forward pass across the engines: not the deployment priced here).",
    ]
    if width <= per_node:
        engines_per_node = per_node // width
        for e in range(config.replicas):
            node, slot = divmod(e, engines_per_node)
            while len(commands) <= node:
                commands.append([])
            gpus = ",".join(str(slot * width + g) for g in range(width))
            line = _serve_line(model_id, {**flags, "port": BASE_PORT + e})
            commands[node].append(f"CUDA_VISIBLE_DEVICES={gpus} {line}")
        return VllmLaunch(commands=tuple(tuple(c) for c in commands), env={}, notes=tuple(notes))
    nodes_each = -(-width // per_node)  # a Ray cluster of its own: its placement group packs them
    node = cluster.gpus_per_node if cluster is not None else width
    by_host: dict[int, list[str]] = {}
    for e, hosts in enumerate(replica_hosts(config.replicas, width, node, per_node)):
        head = f"${{HEAD_IP_{e}}}"  # each engine's hosts inside one NVLink domain (`replica_hosts`)
        by_host[hosts[0]] = [
            f"ray start --head --port={RAY_PORT}",
            _serve_line(model_id, {**flags, "port": BASE_PORT + e}),
        ]
        for h in hosts[1:]:
            by_host[h] = [f"ray start --address={head}:{RAY_PORT}"]
    idle = f"# idle: an engine of {width} GPUs does not fit this NVLink domain's hosts left"
    commands += [by_host.get(h, [idle]) for h in range(max(by_host) + 1)]
    notes += [
        f"each engine spans {nodes_each} {unit}s with a Ray cluster of its own: export HEAD_IP_<e> (the "
        f"first {unit} of engine e) on that engine's {unit}s before starting their Ray workers.",
        f"every {unit} needs the same vLLM version and the model at the same path (or HF cache); set "
        f"VLLM_HOST_IP to each {unit}'s own address if Ray picks the wrong interface.",
    ]
    if unit == "node":
        notes.append("each engine: " + _node_span_note(config, node))
    elif (
        note := idle_hosts_note(config.replicas, width, node, cluster.gpu.name if cluster else "")
    ) is not None:
        notes.append(note)
    return VllmLaunch(commands=tuple(tuple(c) for c in commands), env={}, notes=tuple(notes))


def _ray_launch(
    model_id: str, config: ServingConfig, cluster: Cluster, flags: dict[str, object]
) -> VllmLaunch:
    """One Ray cluster over the nodes (hosts) the plan uses; node 0 starts the head and serves."""
    host = gpus_per_host(cluster)
    unit = _unit(cluster)
    if config.replicas > 1 and unit == "host" and config.gpus_per_replica % host:
        # the engine's own rule for nodes, here for hosts: Ray's `span` packing of data-parallel ranks
        from autoparallel.perf.engine_support import node_span_problem

        problem = node_span_problem("vllm", config.gpus_per_replica, host)
        raise InputError(f"{problem} ({cluster.gpu.name}: a host, where vLLM starts, has {host} GPUs)")
    nodes = -(-config.gpus // host)
    head = (f"ray start --head --port={RAY_PORT}", _serve_line(model_id, flags))
    workers = tuple((f"ray start --address={HEAD_ADDRESS}:{RAY_PORT}",) for _ in range(1, nodes))
    env: dict[str, str] = {}
    span = -(-config.gpus_per_replica // host)
    notes = [
        f"export HEAD_IP=<address of {unit} 0> on every {unit}; start the workers' Ray before `vllm serve` "
        f"(`ray status` should list {config.gpus} GPUs).",
        f"every {unit} needs the same vLLM version and the model at the same path (or HF cache); set "
        f"VLLM_HOST_IP to each {unit}'s own address if Ray picks the wrong interface.",
        f"one engine spans {span} nodes: " + _node_span_note(config, host)
        if unit == "node"
        else _rack_span_note(span, hosts_per_node(cluster.gpu.name, cluster.gpus_per_node), config, cluster),
    ]
    if (
        note := idle_hosts_note(
            config.replicas, config.gpus_per_replica, cluster.gpus_per_node, cluster.gpu.name
        )
    ) is not None:
        notes.append(note)
    if config.replicas > 1:
        # vllm/envs.py: "span" allocates one DP rank over as many nodes as its world size needs.
        env["VLLM_RAY_DP_PACK_STRATEGY"] = "span"
        notes.append(
            f"{config.replicas} engines as Ray data-parallel ranks (`--data-parallel-backend ray`); "
            f"VLLM_RAY_DP_PACK_STRATEGY=span lets each rank span {unit}s."
        )
    return VllmLaunch(commands=(head, *workers), env=env, notes=tuple(notes))


def _rack_span_note(span: int, hosts_per_domain: int, config: ServingConfig, cluster: Cluster) -> str:
    """How one engine of `span` hosts sits on NVLink domains of `hosts_per_domain` hosts: inside one,
    or over whole domains (a multiple of their hosts, `engine_support.node_span_problem`), where a
    tensor-parallel group that does not divide a domain straddles two (tp 8 pp 9 on 2x36xGB200)."""
    if span <= hosts_per_domain:
        return (
            f"one engine spans {span} hosts of one NVLink domain, its tensor-parallel and pipeline "
            "groups over NVLink."
        )
    if cluster.gpus_per_node % config.tp:
        return (
            f"one engine spans {span} hosts, {span // hosts_per_domain} NVLink domains: tp={config.tp} does "
            f"not divide a domain of {cluster.gpus_per_node} GPUs, so a tensor-parallel group straddles two, "
            "all-reducing over the network every layer."
        )
    return (
        f"one engine spans {span} hosts, {span // hosts_per_domain} whole NVLink domains: its "
        "tensor-parallel groups over NVLink inside one, pipeline stages across domains."
    )


def _data_parallel_launch(
    model_id: str, config: ServingConfig, cluster: Cluster, flags: dict[str, object]
) -> VllmLaunch:
    """Engines packed onto nodes (hosts); node 0 runs the API server, the others run engines headless."""
    per_node = gpus_per_host(cluster) // config.gpus_per_replica
    unit = _unit(cluster)
    commands: list[tuple[str, ...]] = []
    start = 0
    while start < config.replicas:
        local = min(per_node, config.replicas - start)
        node_flags = dict(flags)
        node_flags["data_parallel_size_local"] = local
        if start > 0:
            node_flags["data_parallel_start_rank"] = start
        node_flags["data_parallel_address"] = HEAD_ADDRESS
        node_flags["data_parallel_rpc_port"] = DP_RPC_PORT
        if start > 0:
            node_flags["headless"] = True
        commands.append((_serve_line(model_id, node_flags),))
        start += local
    notes = [
        f"export HEAD_IP=<address of {unit} 0, reachable from the other {unit}s> on every {unit}.",
        f"{unit} 0 serves the API and balances over all {config.replicas} engines; the other {unit}s run "
        "engines only (--headless).",
        f"every {unit} needs the same vLLM version and the model at the same path (or HF cache).",
    ]
    if config.enable_expert_parallel:
        notes.append(
            f"expert parallelism spans all {config.tp * config.replicas} GPUs (tp x data-parallel), "
            f"so the all-to-all crosses {unit}s."
        )
    return VllmLaunch(commands=tuple(commands), env={}, notes=tuple(notes))


# ----- helpers --------------------------------------------------------------------------------------


def _validate(config: ServingConfig, *, cluster: Cluster | None, model: ModelSpec | None) -> None:
    """Reject what vLLM 0.32 would reject, naming the field and the allowed values."""
    if config.kv_cache_dtype not in VLLM_KV_CACHE_DTYPES:
        raise InputError(
            f"kv_cache_dtype={config.kv_cache_dtype!r} is not a vLLM {VLLM_TARGET_VERSION} "
            f"--kv-cache-dtype; choose one of {', '.join(VLLM_KV_CACHE_DTYPES)}"
        )
    quantization = (
        config.quantization if model is None else checkpoint_quantization(model, config.quantization)
    )
    if quantization is not None and quantization not in VLLM_QUANTIZATION_METHODS:
        raise InputError(
            f"quantization={config.quantization!r} is not a vLLM {VLLM_TARGET_VERSION} --quantization "
            f"method; choose one of {', '.join(VLLM_QUANTIZATION_METHODS)}, or None to use the "
            "checkpoint's own quantization_config"
        )
    if cluster is not None and config.gpus > cluster.world_size:
        raise InputError(
            f"the plan needs {config.gpus} GPUs (tp={config.tp} x pp={config.pp} x "
            f"replicas={config.replicas}) but cluster {cluster.spec} has {cluster.world_size}"
        )
    if config.max_num_batched_tokens is not None and config.max_num_batched_tokens < config.max_num_seqs:
        raise InputError(
            f"max_num_batched_tokens={config.max_num_batched_tokens} is below max_num_seqs="
            f"{config.max_num_seqs}; vLLM's SchedulerConfig requires max_num_batched_tokens >= max_num_seqs"
        )
    if model is None:
        return
    reasons = serving_problems(model, cluster, config)
    if reasons:
        raise InputError(f"vLLM cannot run {model.name} with this configuration: " + "; ".join(reasons))


def _spans_nodes(config: ServingConfig, cluster: Cluster) -> bool:
    """One engine (tp x pp GPUs) needs more GPUs than a node (a host, `_common.gpus_per_host`) has."""
    return config.gpus_per_replica > gpus_per_host(cluster)


def _unit(cluster: Cluster | None) -> str:
    """What the launch's lines are grouped by: "node", or "host" where a node spans several
    (`_common.gpus_per_host`)."""
    if cluster is None or gpus_per_host(cluster) == cluster.gpus_per_node:
        return "node"
    return "host"


def _check_hosts(used: int, config: ServingConfig, cluster: Cluster) -> None:
    """Reject a launch over more hosts than `cluster` has: on a rack-scale GPU, engines that fit a
    node (the planner's count) but not its hosts (3-GPU engines leave a GPU of every 4-GPU host)."""
    hosts = cluster.nodes * hosts_per_node(cluster.gpu.name, cluster.gpus_per_node)
    if _unit(cluster) == "host" and used > hosts:
        host = gpus_per_host(cluster)
        raise InputError(
            f"{config.replicas} engine(s) of {config.gpus_per_replica} GPUs need {used} hosts of {host} "
            f"{cluster.gpu.name} GPUs but cluster {cluster.spec} has {hosts}: an engine does not split "
            "over hosts unless it takes whole ones"
        )


def _non_default(args: dict[str, object]) -> dict[str, object]:
    """Engine args worth writing: those that differ from vLLM's default, and the always-emitted ones."""
    return {
        k: v
        for k, v in args.items()
        if k in VLLM_FLAG_DEFAULTS and (k in ALWAYS_EMITTED or v != VLLM_FLAG_DEFAULTS[k])
    }


def _flag(name: str) -> str:
    """Engine-arg name -> CLI flag: `tensor_parallel_size` -> `--tensor-parallel-size`."""
    return "--" + name.replace("_", "-")


def _serve_line(model_id: str, flags: dict[str, object]) -> str:
    """`vllm serve MODEL --flag value ...`; booleans as bare switches; the HEAD_IP placeholder unquoted."""
    parts = ["vllm", "serve", shlex.quote(model_id)]
    for name, value in flags.items():
        if value is True:
            parts.append(_flag(name))
        elif value is False or value is None:
            continue
        else:
            text = str(value)
            parts += [_flag(name), text if text == HEAD_ADDRESS else shlex.quote(text)]
    return " ".join(parts)
