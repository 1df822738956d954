"""SGLang artifacts for a serving configuration: the `python -m sglang.launch_server` line.

Flag names follow SGLang 0.5's `ServerArgs` (`python/sglang/srt/server_args.py`; the parallel
options `--tp-size`, `--pp-size`, `--dp-size`, `--ep-size`, `--enable-dp-attention`; memory and
scheduling `--mem-fraction-static`, `--max-running-requests`, `--chunked-prefill-size`,
`--context-length`, `--kv-cache-dtype`, `--quantization`, `--disable-cuda-graph`).

How a plan maps onto SGLang:
- `tp`, `pp` -> `--tp-size`, `--pp-size`; `replicas` -> `--dp-size` (SGLang's data-parallel
  controller runs dp engines of tp GPUs each behind one endpoint);
- `enable_expert_parallel` with replicas > 1 -> attention data parallel and expert parallel over all
  tp x replicas GPUs: `--tp-size tp·replicas --dp-size replicas --enable-dp-attention
  --ep-size tp·replicas` (attention runs tp-wide per DP rank, MoE experts shard over every GPU);
- `max_num_seqs` -> `--max-running-requests` (times the DP ranks under attention DP: SGLang's cap is
  the server's, `max_running_requests // dp_size` per rank); `max_num_batched_tokens` ->
  `--chunked-prefill-size` (SGLang divides it over attention-DP ranks too, as memory/sglang.py does);
  `max_model_len` -> `--context-length`; `enforce_eager` -> `--disable-cuda-graph`;
- the KV pool is sized by `--mem-fraction-static` (memory/sglang.py): emitted as resolved, so the
  line says what the prediction assumed;
- `--nsa-prefill-backend` / `--nsa-decode-backend` (DeepSeek Sparse Attention) only when the user
  gives them (`autoparallel evaluate --engine sglang`); otherwise SGLang's defaults run, and the step
  model prices those (perf/sparse_attention.py). A flag SGLang 0.5.6 replaces is left off the line,
  with a note naming it and what runs instead (`nsa_override_note`): over an FP8 KV cache, given or
  the one `auto` becomes on Blackwell, `ServerArgs._handle_model_specific_adjustments` assigns
  `flashmla_auto` / `flashmla_kv` whatever is passed (`sparse_attention.sglang_nsa_backends`), so the
  flag would only make the line claim a kernel that never runs; the line is the server that was
  priced, as `--mem-fraction-static` is, and the note keeps the request and its fate in view;
- `--trust-remote-code` only for a checkpoint whose config class is its own code
  (`engine_support.REMOTE_CONFIG_MODEL_TYPES`), with a note saying so: SGLang cannot read its
  config.json otherwise;
- `--attention-backend aiter` for Llama 4 on AMD GPUs (`rocm_attention_backend`), with a note.

Every line passes `--host 0.0.0.0` (`ServerArgs.host` defaults to 127.0.0.1, which a load balancer on
another machine cannot reach).

Servers sharing a node (a deployment's narrow engines, `shared_node_flags`): SGLang 0.5.6 derives its
internal ports from `--port` (server_args.py `PortArgs.init_new`): the NCCL port at a random
`--port` + 100..1000, and under attention DP without `--dist-init-addr` the ZMQ ports `--port` + 233
(`ZMQ_TCP_PORT_DELTA`) .. + 238, plus the DP handshake at + 13 (data_parallel_controller.py
`DP_ATTENTION_HANDSHAKE_PORT_DELTA`); servers on consecutive ports collide there. Each such server
gets a block of its own instead, `SHARED_NODE_PORT_BASE` + `SHARED_NODE_PORT_STRIDE` x its slot on
the node: `--nccl-port` at the block's start, or under attention DP `--dist-init-addr 127.0.0.1:`
that port (the ZMQ ports and the handshake then follow it, as they do on a multi-node server, and
the TP group meets there instead of at the NCCL port; SGLang then also passes a multimodal model's
input tensors through the CPU, as across nodes: tokenizer_manager.py `_determine_tensor_transport_mode`).

Servers and nodes (`sglang_launch`):
- a server wider than a node spans whole nodes: the same line on each, with `--nnodes N
  --node-rank r --dist-init-addr ${HEAD_IP}:5000` (SGLang's multi-node docs; node 0 serves HTTP);
  its width must be a multiple of the node size (SGLang puts tp·pp / nnodes GPUs on every node);
- replicas without attention DP run as one server per node (`--dp-size` = the replicas that fit a
  node) when a replica fits a node, else as one multi-node server per replica;
- on a rack-scale GPU whose node spans several hosts (`_common.gpus_per_host`: a GB200 NVL72 rack,
  the planner's node of 72 GPUs, is 18 hosts of 4) the launch's node is a host: SGLang starts on one
  host's operating system and sees its GPUs, so a server wider than a host runs with `--nnodes` over
  whole hosts (`_common.rack_hosts_note` in its notes); where such servers do not divide an NVLink
  domain's hosts (tp=8 on GB200 NVL36, 9 hosts of 4) a note says which hosts each one takes, inside
  one domain, and which stay idle (`_common.idle_hosts_note`).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from autoparallel.errors import InputError
from autoparallel.frameworks._common import host_size, host_span, idle_hosts_note, rack_hosts_note
from autoparallel.memory.vllm_config import checkpoint_quantization
from autoparallel.perf.engine_support import needs_remote_code
from autoparallel.perf.sparse_attention import SglangNsaBackends, sglang_nsa_backends

if TYPE_CHECKING:
    from autoparallel.configs import ServingConfig
    from autoparallel.hardware import GPU
    from autoparallel.models.spec import ModelSpec

DIST_INIT_PORT = 5000
"""Port of a multi-node server's `--dist-init-addr` on its first node (SGLang's multi-node examples)."""
HEAD_ADDRESS = "${HEAD_IP}"
"""Placeholder for a server's first node's address; the user exports HEAD_IP on each of its nodes."""

REMOTE_CODE_NOTE = (
    "--trust-remote-code: this checkpoint's config.json names its own config class (model_type {}), which "
    "SGLang 0.5.6's transformers lacks; SGLang runs that code from the checkpoint to read the config"
)

ROCM_BACKEND_NOTE = (
    "--attention-backend aiter: SGLang 0.5.6's default-backend probe for Llama 4 raises on ROCm "
    "(it compares torch.version.cuda, None there); naming the backend skips it"
)

HOST = "0.0.0.0"
"""`--host` of every server: all interfaces (SGLang's default, 127.0.0.1, serves the node only)."""
SHARED_NODE_PORT_BASE = 20000
"""First port of the internal-port blocks of servers sharing a node: below Linux's ephemeral range
(32768+, where SGLang's and vLLM's other sockets take OS-assigned ports) and clear of the HTTP ports
(8000 + slot) and of the random NCCL ports SGLang would draw above them."""
SHARED_NODE_PORT_STRIDE = 20
"""Ports per server block: the dist-init port and the 5 ZMQ ports after it, and the handshake at + 13
(`PortArgs.init_new`, `DP_ATTENTION_HANDSHAKE_PORT_DELTA`)."""

NSA_OVERRIDE_NOTE = (
    "{flags} left off the line: SGLang 0.5.6 assigns --nsa-prefill-backend {prefill} and "
    "--nsa-decode-backend {decode} {reason}, whatever is passed (`ServerArgs._handle_model_specific_"
    "adjustments`); those are what runs and what was priced"
)

KV_CACHE_DTYPES = {
    "auto": "auto",
    "bfloat16": "bfloat16",
    "bf16": "bf16",
    "fp8": "fp8_e4m3",
    "fp8_e4m3": "fp8_e4m3",
    "fp8_e5m2": "fp8_e5m2",
}
"""vLLM-style `kv_cache_dtype` -> SGLang's `--kv-cache-dtype` choices (SGLang 0.5.6 server_args.py:
auto, fp8_e5m2, fp8_e4m3, bf16, bfloat16, fp4_e2m1; vLLM's float16 and fp8_inc have none)."""


def sglang_args(
    model_id: str,
    config: ServingConfig,
    *,
    mem_fraction_static: float,
    nsa_backends: tuple[str | None, str | None] = (None, None),
    model: ModelSpec | None = None,
    gpu: GPU | None = None,
) -> dict[str, object]:
    """`ServerArgs` field -> value for `config` (fields SGLang would otherwise default are left out;
    `nsa_backends`: `--nsa-prefill-backend` / `--nsa-decode-backend` when given, less those SGLang
    replaces when `model` and `gpu` are known (`nsa_override_note`); `model`: the parsed model, for
    `--trust-remote-code`; `gpu`: the GPU, for `rocm_attention_backend`)."""
    if config.kv_cache_dtype not in KV_CACHE_DTYPES:
        raise InputError(f"kv_cache_dtype {config.kv_cache_dtype!r} has no SGLang equivalent")
    args: dict[str, object] = {"model_path": model_id, "host": HOST}
    if config.shares_experts:
        width = config.tp * config.replicas
        args.update(tp_size=width, dp_size=config.replicas, enable_dp_attention=True, ep_size=width)
    else:
        args["tp_size"] = config.tp
        if config.replicas > 1:
            args["dp_size"] = config.replicas
        if config.enable_expert_parallel and config.tp > 1:
            args["ep_size"] = config.tp
    if config.pp > 1:
        args["pp_size"] = config.pp
    args["mem_fraction_static"] = round(mem_fraction_static, 3)
    # With attention DP the cap is the server's, split over its DP ranks (ModelRunner:
    # `max_running_requests // dp_size`): a replica's max_num_seqs times the ranks.
    dp_attention = bool(args.get("enable_dp_attention"))
    args["max_running_requests"] = config.max_num_seqs * (config.replicas if dp_attention else 1)
    if config.max_num_batched_tokens is not None:
        args["chunked_prefill_size"] = config.max_num_batched_tokens
    args["context_length"] = config.max_model_len
    if config.kv_cache_dtype != "auto":
        args["kv_cache_dtype"] = KV_CACHE_DTYPES[config.kv_cache_dtype]
    # A pre-quantized checkpoint runs as its quantization_config says: SGLang refuses any other
    # --quantization for it (`ModelConfig._verify_quantization`), so none is written.
    quantization = (
        config.quantization if model is None else checkpoint_quantization(model, config.quantization)
    )
    if quantization is not None:
        args["quantization"] = quantization
    if config.enforce_eager:
        args["disable_cuda_graph"] = True
    replaced = {flag for flag, _ in _nsa_resolved(config, nsa_backends, model, gpu).replaced}
    for name, value in zip(("prefill", "decode"), nsa_backends, strict=True):
        if value is not None and f"--nsa-{name}-backend" not in replaced:
            args[f"nsa_{name}_backend"] = value
    if needs_remote_code("sglang", model):
        args["trust_remote_code"] = True
    if (backend := rocm_attention_backend(model, gpu)) is not None:
        args["attention_backend"] = backend
    return args


def _nsa_resolved(
    config: ServingConfig,
    nsa_backends: tuple[str | None, str | None],
    model: ModelSpec | None,
    gpu: GPU | None,
) -> SglangNsaBackends:
    """The NSA backends SGLang runs for `nsa_backends` (`sparse_attention.sglang_nsa_backends`); the
    flags as given, none replaced, when none is given or the model or GPU is not known."""
    if nsa_backends == (None, None) or model is None or gpu is None or not model.has_sparse_attention:
        prefill, decode = nsa_backends
        return SglangNsaBackends(prefill or "", decode or "", config.kv_cache_dtype)
    return sglang_nsa_backends(model, gpu, config.kv_cache_dtype, nsa_backends)


def nsa_override_note(
    config: ServingConfig,
    nsa_backends: tuple[str | None, str | None],
    model: ModelSpec | None,
    gpu: GPU | None,
) -> str | None:
    """The note for `--nsa-*-backend` flags SGLang replaces, left off the line (None: none is)."""
    nsa = _nsa_resolved(config, nsa_backends, model, gpu)
    if not nsa.replaced:
        return None
    flags = " and ".join(f"{flag} {value}" for flag, value in nsa.replaced)
    return NSA_OVERRIDE_NOTE.format(flags=flags, prefill=nsa.prefill, decode=nsa.decode, reason=nsa.reason)


def shared_node_flags(config: ServingConfig, slot: int) -> str:
    """The flags that give a server sharing a node the internal ports of its `slot` (its place among
    the node's servers: 0, 1, ...) instead of those SGLang derives from `--port` (module doc).

    Raises:
        InputError: a `--dp-size` server without attention DP, whose ranks each draw their own NCCL
            port (data_parallel_controller.py `launch_dp_schedulers`), so that one pinned port cannot
            serve them.
    """
    port = SHARED_NODE_PORT_BASE + SHARED_NODE_PORT_STRIDE * slot
    if config.shares_experts:
        return f"--dist-init-addr 127.0.0.1:{port}"
    if config.replicas > 1:
        raise InputError(
            "a --dp-size server without attention DP cannot share a node: its ranks' ports are drawn"
        )
    return f"--nccl-port {port}"


def rocm_attention_backend(model: ModelSpec | None, gpu: GPU | None) -> str | None:
    """`--attention-backend` the line must name on an AMD GPU (None: SGLang's default starts):
    aiter for Llama 4. SGLang 0.5.6 picks Llama 4's default backend by probing `is_sm90_supported()`
    before `is_hip()`, and on ROCm that probe compares `torch.version.cuda` (None there) with "12.3"
    and raises TypeError whenever the GPU reports major 9 (CDNA3's gfx942 reports 9.4); with aiter
    named, the probe is skipped and aiter, where the chain would have led, runs."""
    if model is None or gpu is None or gpu.vendor != "amd":
        return None
    return "aiter" if model.architecture.startswith("Llama4") else None


def sglang_command(
    model_id: str,
    config: ServingConfig,
    *,
    mem_fraction_static: float,
    nsa_backends: tuple[str | None, str | None] = (None, None),
    model: ModelSpec | None = None,
    gpu: GPU | None = None,
) -> str:
    """The `python -m sglang.launch_server ...` line of one server running all of `config`."""
    parts = ["python", "-m", "sglang.launch_server"]
    args = sglang_args(
        model_id,
        config,
        mem_fraction_static=mem_fraction_static,
        nsa_backends=nsa_backends,
        model=model,
        gpu=gpu,
    )
    for name, value in args.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            parts.append(flag)
        else:
            parts += [flag, str(value)]
    return shlex.join(parts)


@dataclass(frozen=True)
class SglangLaunch:
    """How a plan runs on SGLang: `servers` servers of `server` each, every one over `nodes` nodes."""

    server: ServingConfig
    """One server's configuration (its `replicas`: the data-parallel ranks behind its endpoint)."""
    servers: int
    """Servers the plan runs (each with its own endpoint; a load balancer in front of several)."""
    nodes: int
    """Nodes one server spans (1: it stays inside a node)."""
    lines: tuple[str, ...]
    """One server's lines, node rank 0 first (a single line when it stays inside a node)."""
    notes: tuple[str, ...]
    """How to run them (`model_notes` first)."""
    model_notes: tuple[str, ...] = ()
    """Notes that hold wherever its servers run (`--trust-remote-code`, NSA flags SGLang replaces)."""


def server_nodes(width: int, gpus_per_node: int, gpu: GPU | None = None) -> int:
    """Nodes a server of `width` GPUs spans; on a rack-scale `gpu` (`_common.host_size`) the hosts of
    one node it spans, the same GPU count on each (`_common.host_span`: SGLang puts tp·pp / nnodes
    GPUs on every one).

    Raises:
        InputError: a server wider than a node whose width is not a multiple of the node size
            (`engine_support.node_span_problem`, the planner's rule).
    """
    from autoparallel.perf.engine_support import node_span_problem

    host = gpus_per_node if gpu is None else host_size(gpu.name, gpus_per_node)
    if host < gpus_per_node and width <= gpus_per_node:
        return host_span(width, host)[0]
    problem = node_span_problem("sglang", width, gpus_per_node)
    if problem is not None:
        raise InputError(problem)
    return max(1, width // host)


def sglang_launch(
    model_id: str,
    config: ServingConfig,
    gpus_per_node: int,
    *,
    mem_fraction_static: float,
    nsa_backends: tuple[str | None, str | None] = (None, None),
    model: ModelSpec | None = None,
    gpu: GPU | None = None,
) -> SglangLaunch:
    """The servers that run `config` on nodes of `gpus_per_node` GPUs, and their lines (module doc);
    on a rack-scale `gpu` the nodes of the lines are its hosts (`_common.host_size`).

    Raises:
        InputError: a server wider than a node (host) whose width is not a multiple of its size.
    """
    attention_dp = config.shares_experts
    host = gpus_per_node if gpu is None else host_size(gpu.name, gpus_per_node)
    unit = "node" if host == gpus_per_node else "host"
    server, servers = config, 1
    if not attention_dp and config.replicas > 1 and config.gpus > host:
        per = max(host // config.gpus_per_replica, 1)
        server = config.model_copy(update={"replicas": per})
        servers = -(-config.replicas // per)
    nodes = server_nodes(server.gpus, gpus_per_node, gpu)
    line = sglang_command(
        model_id,
        server,
        mem_fraction_static=mem_fraction_static,
        nsa_backends=nsa_backends,
        model=model,
        gpu=gpu,
    )
    model_notes: tuple[str, ...] = ()
    if model is not None and needs_remote_code("sglang", model):
        model_notes += (REMOTE_CODE_NOTE.format(model.model_type),)
    if rocm_attention_backend(model, gpu) is not None:
        model_notes += (ROCM_BACKEND_NOTE,)
    if (nsa_note := nsa_override_note(config, nsa_backends, model, gpu)) is not None:
        model_notes += (nsa_note,)
    notes = list(model_notes)
    if servers > 1:
        last = config.replicas - server.replicas * (servers - 1)
        tail = f" (the last with --dp-size {last})" if last != server.replicas else ""
        where = unit if nodes == 1 else f"group of {nodes} {unit}s"
        notes.append(
            f"run {servers} servers, one per {where}, {config.replicas} replicas in all{tail}, behind a load "
            "balancer"
        )
    rack = rack_hosts_note(gpu.name, gpus_per_node) if gpu is not None else None
    if rack is not None and nodes * servers > 1:
        notes.append(rack)
    if gpu is not None and not attention_dp and server.replicas == 1:  # servers of several hosts each
        placed = idle_hosts_note(config.replicas, config.gpus_per_replica, gpus_per_node, gpu.name)
        notes += [placed] if placed is not None else []
    if nodes == 1:
        return SglangLaunch(server, servers, 1, (line,), tuple(notes), model_notes)
    init = f"--dist-init-addr {HEAD_ADDRESS}:{DIST_INIT_PORT}"
    lines = tuple(f"{line} --nnodes {nodes} --node-rank {r} {init}" for r in range(nodes))
    notes.append(
        f"each server spans {nodes} {unit}s: run its line with --node-rank r on its r-th {unit}, after "
        f"export HEAD_IP=<address of the server's {unit} 0, reachable from the others> on each of them; "
        f"{unit} 0 serves the HTTP endpoint"
    )
    return SglangLaunch(server, servers, nodes, lines, tuple(notes), model_notes)
