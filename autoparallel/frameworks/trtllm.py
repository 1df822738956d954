"""TensorRT-LLM artifacts for a serving configuration: `trtllm-serve` plus its extra-options YAML.

The YAML holds LLM-API arguments (`TorchLlmArgs`, `tensorrt_llm/llmapi/llm_args.py`, PyTorch
backend, 1.x); its keys and value types are `TRTLLM_YAML_SCHEMA`, read from that class and its
`KvCacheConfig` / `CudaGraphConfig`. The command passes it with `--extra_llm_api_options`.

How a plan maps onto TensorRT-LLM:
- `tp`, `pp` -> `tensor_parallel_size`, `pipeline_parallel_size`;
- `enable_expert_parallel`: experts shard over the engine's GPUs (`moe_expert_parallel_size`); with
  replicas > 1 the engine spans tp x replicas GPUs with `enable_attention_dp` (attention data
  parallel, experts over all); dense replicas are separate `trtllm-serve` processes;
- `max_num_seqs` -> `max_batch_size` = max_num_seqs / pp (`memory.trtllm.trtllm_max_batch_size`):
  `max_batch_size` caps one micro-batch, and with pp stages the engine runs max_batch_size × pp
  requests (`_util.create_py_executor_instance`), so the plan's max_num_seqs is the engine's total;
  `max_num_batched_tokens` -> `max_num_tokens` (default 8192); `max_model_len` -> `max_seq_len`;
  `kv_cache_dtype` fp8 -> `kv_cache_config.dtype: fp8`;
- the KV pool: `kv_cache_config.free_gpu_memory_fraction` (memory/trtllm.py);
- `enforce_eager` -> `cuda_graph_config: null` (left out, TensorRT-LLM's default turns graphs on);
  otherwise CUDA graphs padded up to `max_batch_size` (a micro-batch's decode batch);
- `trust_remote_code: true` only for a checkpoint whose config class is its own code
  (`engine_support.REMOTE_CONFIG_MODEL_TYPES`: Kimi-K2, as TensorRT-LLM's Kimi K2 guide sets it).

Every line passes `--host 0.0.0.0` (trtllm-serve's `--host` defaults to localhost, which a load
balancer on another machine cannot reach). Separate engines that fit a node are packed onto nodes in
order, each on its own GPUs (`CUDA_VISIBLE_DEVICES`) and port (trtllm-serve's `--port`, default 8000,
then the next ones), as `trtllm_launch`'s note spells out per copy.

An engine wider than a node spans whole nodes in one MPI world (TensorRT-LLM's trtllm-serve docs,
"Multi-node Serving with Slurm": every rank runs `trtllm-llmapi-launch trtllm-serve ...`):
`mpirun -np W --hostfile hostfile --map-by ppr:G:node trtllm-llmapi-launch trtllm-serve ...`, started
once, with W GPUs over nodes of G (`trtllm_launch`); the Slurm form is in its note. Each such engine
needs a hostfile of its own (Open MPI's `--hostfile`: one `host slots=G` line per node of that engine):
a deployment's replicas name theirs `hostfile_for(engine, replica)`, with `hostfile_text` in it.

On a rack-scale GPU whose node spans several hosts (`_common.gpus_per_host`: a GB200 NVL72 rack, the
planner's node of 72 GPUs, is 18 hosts of 4) the launch's node is a host (`trtllm_launch`'s `gpu`):
copies pack onto hosts, an engine wider than a host runs under `mpirun` over whole hosts with
`slots=4` each, and `_common.rack_hosts_note` says so; engines that do not divide an NVLink domain's
hosts (tp=8 on GB200 NVL36, 9 hosts of 4) each take hosts inside one domain, as
`_common.idle_hosts_note` lists.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import yaml

from autoparallel.configs import BASE_PORT
from autoparallel.frameworks._common import host_size, host_span, idle_hosts_note, rack_hosts_note
from autoparallel.memory.trtllm import (
    DEFAULT_FREE_GPU_MEMORY_FRACTION,
    DEFAULT_MAX_NUM_TOKENS,
    trtllm_max_batch_size,
)
from autoparallel.perf.engine_support import needs_remote_code

if TYPE_CHECKING:
    from autoparallel.configs import ServingConfig
    from autoparallel.hardware import GPU
    from autoparallel.models.spec import ModelSpec

TRTLLM_YAML_SCHEMA: dict[str, object] = {
    "tensor_parallel_size": int,
    "pipeline_parallel_size": int,
    "moe_expert_parallel_size": int,
    "enable_attention_dp": bool,
    "max_batch_size": int,
    "max_num_tokens": int,
    "max_seq_len": int,
    "enable_chunked_prefill": bool,
    "kv_cache_config": {"free_gpu_memory_fraction": float, "dtype": str, "enable_block_reuse": bool},
    "cuda_graph_config": {"max_batch_size": int, "enable_padding": bool},
    "trust_remote_code": bool,
}
"""LLM-API keys the emitter may write, with their types (nested dicts: sub-configs)."""
TRTLLM_NULLABLE = frozenset({"cuda_graph_config"})
"""Sub-configs typed `Optional[...]` whose null means off: `cuda_graph_config` defaults to
`CudaGraphConfig()` (graphs on), so eager mode must write it as null, not leave it out."""
HOST = "0.0.0.0"
"""`--host` of every `trtllm-serve` line: all interfaces (its default, localhost, serves the node only)."""
EXTRA_OPTIONS_FILE = "extra-llm-api-config.yml"
"""The file name a single engine's command refers to (`options_file` in a deployment, one per engine)."""
HOSTFILE = "hostfile"
"""The hostfile a single multi-node engine's `mpirun` line names."""


def options_file_for(engine_index: int) -> str:
    """The extra-options file of the `engine_index`-th engine of a deployment: engines of different
    models or shapes launched from one directory must not share (and overwrite) one file."""
    return f"extra-llm-api-config-{engine_index}.yml"


def hostfile_for(engine_index: int, replica: int | str) -> str:
    """The hostfile of the `replica`-th replica of a deployment's `engine_index`-th engine: replicas of a
    multi-node engine span different nodes, so each `mpirun` needs its own (one shared name would start
    every replica on the first one's nodes; a str `replica`: a placeholder for notes)."""
    return f"{HOSTFILE}-{engine_index}-{replica}"


def hostfile_text(nodes: Sequence[str], slots: int) -> str:
    """An Open MPI hostfile: one `host slots=N` line per node (`nodes`: addresses or placeholders)."""
    return "".join(f"{node} slots={slots}\n" for node in nodes)


def trtllm_options(
    config: ServingConfig,
    *,
    free_gpu_memory_fraction: float | None = None,
    model: ModelSpec | None = None,
) -> dict[str, object]:
    """The extra-options YAML content for `config` (`model`: the parsed model, for
    `trust_remote_code`, `engine_support.needs_remote_code`). `free_gpu_memory_fraction`: None, the
    config's (`ServingConfig.free_gpu_memory_fraction`, the value its pool was priced at by
    `memory.trtllm.trtllm_server_kv`), else TensorRT-LLM's default."""
    if free_gpu_memory_fraction is None:
        given = config.free_gpu_memory_fraction
        free_gpu_memory_fraction = DEFAULT_FREE_GPU_MEMORY_FRACTION if given is None else given
    attention_dp = config.shares_experts
    tp = config.tp * config.replicas if attention_dp else config.tp
    opts: dict[str, object] = {"tensor_parallel_size": tp, "pipeline_parallel_size": config.pp}
    if config.enable_expert_parallel:
        opts["moe_expert_parallel_size"] = tp
    if attention_dp:
        opts["enable_attention_dp"] = True
    per_micro_batch = trtllm_max_batch_size(config.max_num_seqs, config.pp)
    opts["max_batch_size"] = per_micro_batch
    opts["max_num_tokens"] = config.max_num_batched_tokens or DEFAULT_MAX_NUM_TOKENS
    opts["max_seq_len"] = config.max_model_len
    opts["enable_chunked_prefill"] = True
    kv: dict[str, object] = {"free_gpu_memory_fraction": free_gpu_memory_fraction}
    if config.kv_cache_dtype != "auto":
        kv["dtype"] = "fp8"
    opts["kv_cache_config"] = kv
    opts["cuda_graph_config"] = (
        None if config.enforce_eager else {"max_batch_size": per_micro_batch, "enable_padding": True}
    )
    if needs_remote_code("trtllm", model):
        opts["trust_remote_code"] = True
    return opts


def trtllm_yaml(
    config: ServingConfig,
    *,
    free_gpu_memory_fraction: float | None = None,
    model: ModelSpec | None = None,
) -> str:
    """The extra-options YAML file's text (`free_gpu_memory_fraction` as `trtllm_options` takes it)."""
    opts = trtllm_options(config, free_gpu_memory_fraction=free_gpu_memory_fraction, model=model)
    return yaml.safe_dump(opts, sort_keys=False)


def trtllm_command(model_id: str, config: ServingConfig, options_file: str = EXTRA_OPTIONS_FILE) -> str:
    """The `trtllm-serve` line (parallel sizes on the line, the rest in the extra-options YAML, which
    the line reads from `options_file`)."""
    opts = trtllm_options(config)
    parts = [
        "trtllm-serve",
        model_id,
        "--host",
        HOST,
        "--backend",
        "pytorch",
        "--tp_size",
        str(opts["tensor_parallel_size"]),
        "--pp_size",
        str(opts["pipeline_parallel_size"]),
    ]
    if "moe_expert_parallel_size" in opts:
        parts += ["--ep_size", str(opts["moe_expert_parallel_size"])]
    parts += ["--extra_llm_api_options", options_file]
    return shlex.join(parts)


@dataclass(frozen=True)
class TrtllmLaunch:
    """How a plan runs on TensorRT-LLM: `engines` engines, each started by `line` over `nodes` nodes."""

    line: str
    """One engine's launch line (under `mpirun` when it spans nodes)."""
    engines: int
    """Separate engines the plan runs (dense replicas; one with attention data parallelism)."""
    nodes: int
    """Nodes one engine spans (1: inside a node); hosts, on a rack-scale GPU."""
    notes: tuple[str, ...]
    """How to run it."""


def trtllm_launch(
    model_id: str,
    config: ServingConfig,
    gpus_per_node: int,
    options_file: str = EXTRA_OPTIONS_FILE,
    hostfile: str = HOSTFILE,
    *,
    gpu: GPU | None = None,
) -> TrtllmLaunch:
    """The launch of `config` on nodes of `gpus_per_node` GPUs (module doc); an engine wider than a
    node spans whole nodes (`engine_support.node_span_problem` keeps the planner to those) under an
    `mpirun` that reads `hostfile`. With a rack-scale `gpu` (`_common.host_size`) the nodes of the
    launch are its hosts.

    """
    width = config.engine_gpus  # one engine: attention-DP ranks together, as `trtllm_options`
    engines = config.replicas * config.gpus_per_replica // width
    serve = trtllm_command(model_id, config, options_file)
    host = gpus_per_node if gpu is None else host_size(gpu.name, gpus_per_node)
    unit = "node" if host == gpus_per_node else "host"
    rack = None if gpu is None else rack_hosts_note(gpu.name, gpus_per_node)
    notes: list[str] = []
    if width <= host:
        if engines > 1:
            notes.append(copies_note(engines, width, host, unit=unit))
            if rack is not None and engines > host // width:
                notes.append(rack)
        return TrtllmLaunch(serve, engines, 1, tuple(notes))
    # the same rank count on every host (`_common.host_span`); whole nodes when wider than one
    nodes, per = host_span(width, host) if width <= gpus_per_node else (-(-width // host), host)
    line = (
        f"mpirun -np {width} --hostfile {shlex.quote(hostfile)} --map-by ppr:{per}:node "
        f"trtllm-llmapi-launch {serve}"
    )
    if engines > 1:
        notes.append(
            f"run {engines} copies of this line behind a load balancer, each from the first of its own "
            f"{nodes} {unit}s with a hostfile of its own"
        )
    notes.append(
        f"each engine spans {nodes} {unit}s in one MPI world: start its line once, from its first {unit}, "
        f"with `{hostfile}` listing its {nodes} {unit}s (slots={host} each) and {options_file} "
        f"on every one; under Slurm: srun -N {nodes} --ntasks {width} --ntasks-per-node "
        f"{per} --mpi=pmix trtllm-llmapi-launch {serve}"
    )
    if rack is not None:
        notes.append(rack)
    if gpu is not None and (placed := idle_hosts_note(engines, width, gpus_per_node, gpu.name)) is not None:
        notes.append(placed)  # engines of several hosts that do not divide a domain's hosts
    return TrtllmLaunch(line, engines, nodes, tuple(notes))


def copies_note(engines: int, width: int, gpus_per_node: int, *, unit: str = "node") -> str:
    """How to run `engines` copies of a `width`-GPU line on nodes of `gpus_per_node` GPUs: packed onto
    nodes in order, the k-th copy of a node on GPUs k·width .. and port BASE_PORT + k (as written,
    every copy would take GPU 0 and port 8000). `unit`: what a node is called ("host" on a
    rack-scale GPU, where `gpus_per_node` is a host's GPUs)."""
    per_node = gpus_per_node // width
    nodes = -(-engines // per_node)
    slots = ", ".join(
        f"CUDA_VISIBLE_DEVICES={','.join(str(k * width + g) for g in range(width))} <this line> "
        f"--port {BASE_PORT + k}"
        for k in range(min(per_node, engines))
    )
    last = engines - per_node * (nodes - 1)
    tail = f" (on the last {unit} the first {last})" if nodes > 1 and last != per_node else ""
    return (
        f"run {engines} copies of this line behind a load balancer, {min(per_node, engines)} per {unit} "
        f"on {nodes} {unit}(s), each on its own GPUs and port; on each {unit}: {slots}{tail}"
    )
