"""solve_fleet: several models on one (possibly mixed) cluster, with vLLM lines a user can start.

Usage:
    >>> import autoparallel as ap
    >>> plan = ap.solve_fleet("fleet.yaml", "4x8xH100+4x8xA100-80G")          # doctest: +SKIP
    >>> plan.deployment.usd_per_hour, plan.to_dict()["deployment"]["engines"]  # doctest: +SKIP

A fleet file (YAML or JSON):

    models:
      - model: meta-llama/Llama-3.1-8B-Instruct
        request_rate: 30        # requests/s (omit: as much as the GPUs give)
        isl: 1024
        osl: 256
        ttft_ms: 1000
        tpot_ms: 40
        concurrency: 256        # most requests in flight (omit: no cap)
        # workload_file: llama.json   # or start from a profiled workload (`autoparallel profile`)
        priority: 2             # weight of its tokens in goodput / throughput (default 1)
    cluster: 4x8xH100+4x8xA100-80G   # optional; --cluster wins
    prices: {H100: 2.49}             # optional; --price wins

The planner is `solvers.deployment` (CP-SAT over replica counts); this module reads fleet files,
turns the result into per-replica `vllm serve` lines (frameworks/vllm.py) and JSON / YAML / text.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from autoparallel.bounds import BOUNDS, UserInput, clean_text, first_error, revalidated
from autoparallel.configs import BASE_PORT
from autoparallel.errors import InputError
from autoparallel.frameworks import sglang
from autoparallel.frameworks._common import host_size
from autoparallel.frameworks.vllm import HEAD_ADDRESS, vllm_launch
from autoparallel.hardware import GPU, Cluster
from autoparallel.hardware.cluster import custom_gpus, price_map
from autoparallel.models import ModelSpec, load_model
from autoparallel.models.loader import served_id
from autoparallel.objectives import canonical_objective
from autoparallel.perf.engine_support import ENGINE_NAMES
from autoparallel.plan import round_floats
from autoparallel.workload import Serving, rps_text
from autoparallel.yaml_file import read_yaml

if TYPE_CHECKING:
    from autoparallel.solvers.deployment import FleetModel

_MAX_FLEET_BYTES = 1 << 20
_MAX_MODELS = 64


MAX_PRIORITY = 1e6
"""Largest weight a fleet model's tokens may have (`FleetEntry.priority`, `FleetModel.priority`)."""


class FleetEntry(UserInput):
    """One model of a fleet file."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    model: str = Field(min_length=1, max_length=500)
    """Zoo id, hub id or path of the model."""
    workload: str | None = None
    """Serving preset the request shape starts from (default: no SLOs, 1024 / 256 tokens)."""
    workload_file: str | None = Field(default=None, min_length=1, max_length=4096)
    """Or a workload file (`autoparallel profile`) it starts from: lengths with their spread and
    quantiles, rate, SLOs. A relative path is read from the fleet file's folder."""
    request_rate: float | None = Field(
        default=None, ge=BOUNDS["request_rate"].lo, le=BOUNDS["request_rate"].hi, allow_inf_nan=False
    )
    """Requests/s to sustain (None: as many as the GPUs give)."""
    isl: int | None = Field(default=None, ge=1, le=BOUNDS["isl"].hi)
    """Input tokens per request."""
    osl: int | None = Field(default=None, ge=1, le=BOUNDS["osl"].hi)
    """Output tokens per request."""
    ttft_ms: float | None = Field(default=None, gt=0, le=BOUNDS["ttft_ms"].hi, allow_inf_nan=False)
    """Limit on time to first token, ms."""
    tpot_ms: float | None = Field(default=None, gt=0, le=BOUNDS["tpot_ms"].hi, allow_inf_nan=False)
    """Limit on time per output token, ms."""
    max_model_len: int | None = Field(default=None, ge=1, le=BOUNDS["max_model_len"].hi)
    """Context the engines must accept (default isl + osl rounded up to a power of two)."""
    concurrency: int | None = Field(default=None, ge=1, le=BOUNDS["concurrency"].hi)
    """Most requests in flight at once (a closed-loop client): the engines' max_num_seqs × replicas
    stay within it (None: no cap)."""
    priority: float = Field(default=1.0, gt=0, le=MAX_PRIORITY, allow_inf_nan=False)
    """Weight of this model's tokens in the goodput and throughput objectives."""

    @model_validator(mode="after")
    def _one_base(self) -> FleetEntry:
        if self.workload is not None and self.workload_file is not None:
            raise ValueError("give workload (a preset) or workload_file, not both")
        return self

    def serving(self) -> Serving:
        """The request shape, rate and SLOs: the preset's or the workload file's, with this entry's
        fields over them.

        Raises:
            InputError: an unreadable workload file, or fields that contradict it.
        """
        if self.workload_file is not None:
            from autoparallel.workload_profile import load_workload_file

            base = load_workload_file(self.workload_file)
        else:
            base = Serving.preset(self.workload) if self.workload else Serving()
        update = {
            k: getattr(self, k)
            for k in ("request_rate", "isl", "osl", "ttft_ms", "tpot_ms", "max_model_len", "concurrency")
            if getattr(self, k) is not None
        }
        try:
            return base.with_updates(update)
        except ValidationError as exc:
            raise InputError(f"{self.model}: {first_error(exc)}") from None


class FleetFile(UserInput):
    """A fleet file: the models, and optionally the cluster and prices."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    models: tuple[FleetEntry, ...] = Field(min_length=1, max_length=_MAX_MODELS)
    """The models to serve."""
    cluster: str | None = None
    """Cluster string (the command line's --cluster wins)."""
    prices: dict[str, float] | None = None
    """US$ per GPU-hour by GPU name (the command line's --price wins)."""


def load_fleet(path: str | Path) -> FleetFile:
    """Read and validate a fleet file (YAML or JSON).

    Raises:
        InputError: unreadable, not YAML/JSON, or an entry that fails validation (named, one line).
    """
    file = Path(path)
    data = read_yaml(file, "fleet file", _MAX_FLEET_BYTES)
    if not isinstance(data, dict) or "models" not in data:
        raise InputError(f"fleet file {str(file)!r} must be a mapping with a `models:` list")
    try:
        fleet = FleetFile.model_validate(data)
    except ValidationError as exc:
        raise InputError(f"fleet file {str(file)!r}: {first_error(exc)}") from None
    entries = tuple(
        e.model_copy(update={"workload_file": str(file.parent / e.workload_file)})
        if e.workload_file is not None and not Path(e.workload_file).is_absolute()
        else e
        for e in fleet.models
    )
    return fleet.model_copy(update={"models": entries})


class FleetPlan(BaseModel):
    """A fleet deployment with its launch lines."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    cluster: Cluster
    deployment: Any
    """solvers.deployment.Deployment (typed Any to keep ortools off `import autoparallel`)."""
    specs: dict[str, ModelSpec]
    """Model name -> its spec (for the vLLM emitter's architecture checks)."""

    def launches(self) -> list[dict[str, Any]]:
        """Per engine: {commands, env, cuda_visible_devices, notes} from frameworks/vllm.py (or
        `_engine_launch`), each replica's lines naming its own first node as its head (`_own_heads`)."""
        out = []
        for index, engine in enumerate(self.deployment.engines):
            pool = self.cluster.pools[engine.pool]
            nodes = max(len(engine.placement[0].nodes), 1)
            sub = Cluster.from_shape(
                nodes=nodes,
                gpus_per_node=pool.gpus_per_node,
                gpu=pool.gpu,
                intra_node_gbps=pool.intra_node_gbps,
                inter_node_gbps=pool.inter_node_gbps,
            )
            if engine.engine != "vllm":
                out.append(_own_heads(self._engine_launch(engine, sub, index), engine))
                continue
            launch = vllm_launch(engine.model, engine.config, cluster=sub, model=self.specs[engine.model])
            commands = []
            visible = []
            for replica in engine.placement:
                commands.append(
                    [
                        [
                            f"{line} --port {replica.port}"
                            if i == 0 and line.startswith("vllm serve")
                            else line
                            for line in node
                        ]
                        for i, node in enumerate(launch.commands)
                    ]
                )
                narrow = engine.gpus_per_replica < host_size(pool.gpu.name, pool.gpus_per_node)
                visible.append(",".join(map(str, replica.gpu_ids)) if narrow else None)
            out.append(
                _own_heads(
                    {
                        "commands": commands,
                        "env": dict(launch.env),
                        "cuda_visible_devices": visible,
                        "notes": list(launch.notes),
                    },
                    engine,
                )
            )
        return out

    def _engine_launch(self, engine: Any, sub: Cluster, index: int) -> dict[str, Any]:
        """An SGLang or TensorRT-LLM engine's launch: one server per replica, on its own port, with a
        line list per node it spans (SGLang: the same line on each node rank; TensorRT-LLM: one
        `mpirun` line on the first node). SGLang servers that may share a node take the internal ports
        of their slot on it (`sglang.shared_node_flags`; the slot: the replica's port above 8000, which
        the deployment's decoder numbers per node). A TensorRT-LLM engine's options go in a file of its own
        (`trtllm.options_file_for(index)`, `index`: the engine's place in the deployment), which all
        its replicas read; each replica of a multi-node one runs `mpirun` over a hostfile of its own
        (`trtllm.hostfile_for(index, replica)`, listing that replica's nodes: `hostfiles`), as the
        single-engine launch's note says of its copies."""
        from autoparallel.frameworks import trtllm
        from autoparallel.perf.serving_engines import engine_kv_for

        c = engine.config
        pool = self.cluster.pools[engine.pool]
        narrow = engine.gpus_per_replica < host_size(pool.gpu.name, pool.gpus_per_node)
        options_file = trtllm.options_file_for(index)
        notes: list[str] = []
        if engine.engine == "sglang":
            kv, _ = engine_kv_for("sglang", self.specs[engine.model], sub, c)
            launch = sglang.sglang_launch(
                engine.model,
                c,
                pool.gpus_per_node,
                mem_fraction_static=kv.fraction,
                model=self.specs[engine.model],
                gpu=sub.gpu,
            )
            node_lines = list(launch.lines)
            notes = [n for n in launch.notes if launch.nodes > 1 or n in launch.model_notes]
        else:  # one line, on the engine's first node (under mpirun when it spans nodes)
            pattern = trtllm.hostfile_for(index, "<replica>")
            trt = trtllm.trtllm_launch(
                engine.model, c, pool.gpus_per_node, options_file, pattern, gpu=pool.gpu
            )
            node_lines, notes = [trt.line] + [""] * (trt.nodes - 1), [n for n in trt.notes if trt.nodes > 1]
        spans = engine.engine == "trtllm" and len(node_lines) > 1
        if spans:
            names = [trtllm.hostfile_for(index, r) for r in range(len(engine.placement))]
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            start = (
                f"run the {len(names)} replicas' lines behind a load balancer, each"
                if len(names) > 1
                else "run the replica's line"
            )
            notes.insert(
                0,
                f"{start} from the first of its own {len(node_lines)} nodes with a hostfile of its own "
                f"({shown}: that replica's nodes, slots={host_size(pool.gpu.name, pool.gpus_per_node)} each, "
                "the ${POOL<p>_NODE<n>_IP} filled in; the text of each is in "
                "`hostfiles` of --json and in the replica's `hostfile` of --plan-file)",
            )
        commands, visible, hostfiles = [], [], []
        for r, replica in enumerate(engine.placement):
            ports = f"--port {replica.port}"
            if narrow and engine.engine == "sglang":  # its internal ports apart from its neighbours'
                ports += " " + sglang.shared_node_flags(c, replica.port - BASE_PORT)
            lines = node_lines
            if spans:  # this replica's own hostfile on its mpirun line
                name = trtllm.hostfile_for(index, r)
                lines = [
                    trtllm.trtllm_launch(
                        engine.model, c, pool.gpus_per_node, options_file, name, gpu=pool.gpu
                    ).line
                ]
                lines += node_lines[1:]
                nodes = [node_address(engine.pool, n) for n in replica.nodes]
                hostfiles.append(
                    {
                        "file": name,
                        "text": trtllm.hostfile_text(nodes, host_size(pool.gpu.name, pool.gpus_per_node)),
                    }
                )
            commands.append([[f"{line} {ports}"] if line else [] for line in lines])
            visible.append(",".join(map(str, replica.gpu_ids)) if narrow else None)
        out: dict[str, Any] = {
            "commands": commands,
            "env": {},
            "cuda_visible_devices": visible,
            "notes": notes,
        }
        if engine.engine == "trtllm":
            out["extra_options_file"] = options_file
            out["extra_options_yaml"] = trtllm.trtllm_yaml(c, model=self.specs[engine.model])
        if hostfiles:
            out["hostfiles"] = hostfiles
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: {cluster, objective, deployment: {engines[], models[], gpus_used, ...}, solver}; an
        engine whose TTFT is unbounded (`SATURATED`) has `ttft_ms` and `queue_ms` null, and its
        `null_reasons` says why (`cli._output.strict_object`'s key)."""
        d = self.deployment
        engines = []
        for engine, launch in zip(d.engines, self.launches(), strict=True):
            e = engine.to_dict({"placement", "config"})
            unbounded = [k for k in ("ttft_ms", "queue_ms") if not math.isfinite(e[k])]
            if unbounded:
                e.update(dict.fromkeys(unbounded), null_reasons=dict.fromkeys(unbounded, SATURATED_WHY))
            e["placement"] = [p.model_dump(mode="json") for p in engine.placement]
            e["gpu_ids"] = [list(p.gpu_ids) for p in engine.placement]
            e[engine.engine] = launch  # vllm, sglang or trtllm: that engine's launch lines
            engines.append(e)
        s = d.solver
        return round_floats(
            {
                "cluster": self.cluster.spec,
                "objective": d.objective,
                "deployment": {
                    "engines": engines,
                    "models": [m.model_dump(mode="json") for m in d.models],
                    "gpus_used": d.gpus_used,
                    "gpus_idle": d.gpus_idle,
                    "idle_reasons": list(d.idle_reasons),
                    "usd_per_hour": d.usd_per_hour,
                    "cluster_usd_per_hour": d.cluster_usd_per_hour,
                    "goodput_tokens_per_s": d.goodput_tokens_per_s,
                    "throughput_tokens_per_s": d.throughput_tokens_per_s,
                    "usd_per_million_tokens": d.usd_per_million_tokens,
                },
                "solver": {
                    "status": s.status,
                    "wall_s": s.wall_s,
                    "gap": s.gap,
                    "objective_value": s.objective_value,
                    "bound": s.bound,
                    "solves": s.solves,
                    "seed": s.seed,
                    "workers": s.workers,
                    "candidate_engines": d.candidate_engines,
                    "enumeration_size": str(d.enumeration_size),
                },
            }
        )

    def deployment_dict(self) -> dict[str, Any]:
        """The deployment section of a single-model plan's JSON: `to_dict()`'s deployment with its
        objective and solver."""
        d = self.to_dict()
        return {**d["deployment"], "objective": d["objective"], "solver": d["solver"]}

    def to_yaml(self) -> str:
        """A plan file a launcher can read: `mode: aggregated`, and per engine and replica, pool, nodes,
        GPUs, port, env and lines (a disaggregated deployment's plan file: `disagg.Comparison.to_yaml`).
        A replica on part of a node has its GPUs as `CUDA_VISIBLE_DEVICES` in its env, as a
        disaggregated replica has (`disagg_launch`), so one launcher that applies a replica's env to
        its lines pins both kinds (`_replica_env`)."""
        d = self.to_dict()
        engines = []
        for e in d["deployment"]["engines"]:
            launch = e[e["engine"]]
            replicas = []
            for i, p in enumerate(e["placement"]):
                replicas.append(
                    {
                        "pool": e["pool"],
                        "gpu": e["gpu"],
                        "nodes": p["nodes"],
                        "gpu_ids": p["gpu_ids"],
                        "port": p["port"],
                        "router_weight": e["traffic_share"],
                        "env": _replica_env(launch["env"], launch["cuda_visible_devices"][i]),
                        "commands": launch["commands"][i],
                        **({"hostfile": launch["hostfiles"][i]} if "hostfiles" in launch else {}),
                    }
                )
            engines.append(
                {
                    "model": e["model"],
                    "engine": e["engine"],
                    **(
                        {
                            "extra_options_file": launch["extra_options_file"],
                            "extra_options_yaml": launch["extra_options_yaml"],
                        }
                        if "extra_options_yaml" in launch
                        else {}
                    ),
                    "tp": e["tp"],
                    "pp": e["pp"],
                    "ep": e["ep"],
                    "dp": e["dp"],
                    "capacity_rps": e["capacity_rps"],
                    "replicas": replicas,
                }
            )
        doc = {
            "cluster": d["cluster"],
            "objective": d["objective"],
            "mode": "aggregated",
            "engines": engines,
            "usd_per_hour": d["deployment"]["usd_per_hour"],
            "solver_status": d["solver"]["status"],
        }
        return plan_yaml(doc)

    def explain(self) -> str:
        """A readable report: engines per pool, per-model service, GPUs, $ and the solver's status."""
        d = self.deployment
        n = d.candidate_engines
        over = f" over {n} candidate engine{'s' * (n != 1)}" if d.solver.status == "OPTIMAL" else ""
        lines = [
            f"Deployment on {self.cluster.describe()}  (objective {d.objective}, {d.solver.status}{over}, "
            f"{d.solver.wall_s:.2f} s, gap {d.solver.gap:.2g})"
        ]
        served = {m.model: m.served_rps for m in d.models}
        for e in d.engines:
            nodes = "; ".join(
                f"nodes {','.join(map(str, p.nodes))} GPUs {','.join(map(str, p.gpu_ids))}"
                for p in e.placement[:4]
            )
            more = f"; ... {e.replicas - 4} more" if e.replicas > 4 else ""
            lines.append(
                f"  {e.model} on {e.gpu} (pool {e.pool}): {e.replicas} x "
                + ("" if e.engine == "vllm" else f"{ENGINE_NAMES[e.engine]} ")
                + f"tp={e.tp} pp={e.pp} ep={e.ep} "
                f"dp={e.dp} ({e.gpus_per_replica} GPUs each), capacity {rps_text(e.capacity_rps)} req/s "
                f"each, traffic share {e.traffic_share:.3f} each "
                f"({rps_text(e.traffic_share * served[e.model])} req/s; {ttft_text(e.ttft_ms, e.queue_ms)}), "
                f"full-load TPOT {e.tpot_ms:.1f} ms, "
                f"max_num_seqs {e.max_num_seqs}; [{nodes}{more}]"
            )
        for m in d.models:
            rate = "no rate" if m.request_rate is None else f"rate {m.request_rate:g} req/s"
            unmet = f", UNMET {rps_text(m.unmet_rps, up=True)} req/s" if m.unmet_rps > 0 else ""
            capacity = rps_text(m.capacity_rps)
            lines.append(f"  {m.model}: {rate}, capacity {capacity} req/s on {m.gpus} GPUs{unmet}")
        lines.append(
            f"  GPUs used {d.gpus_used}, idle {d.gpus_idle}; ${d.usd_per_hour:.2f}/h; goodput "
            f"{d.goodput_tokens_per_s:.0f} tokens/s; ${d.usd_per_million_tokens:.3f} per M tokens"
        )
        lines += [f"  idle: {r}" for r in d.idle_reasons]
        # the token objectives anywhere in the stored objective (a name, `goodput+cost`, weights)
        tokens = {"goodput", "throughput", "cost_per_mtok"} & set(re.findall(r"[a-z_]+", d.objective))
        if any(m.priority != 1.0 for m in d.models) and tokens:
            weights = ", ".join(f"{m.model} {m.priority:g}" for m in d.models)
            lines.append(
                f"  priorities ({weights}) weight each model's tokens in the {d.objective} objective; "
                "the tokens/s and $ per M tokens above are unweighted"
            )
        lines += [
            f"  not placed (size neither a power of two up to the node / NVLink domain nor whole nodes): {r}"
            for r in d.left_out
        ]
        launches = self.launches()
        if launches:
            lines.append("Launch (first replica of each engine; --json or --plan-file for all):")
            for e, launch in zip(d.engines, launches, strict=True):
                visible = launch["cuda_visible_devices"][0]
                prefix = f"CUDA_VISIBLE_DEVICES={visible} " if visible else ""
                for n, node in enumerate(launch["commands"][0]):
                    for line in node:
                        lines.append(
                            f"  [{e.model} pool {e.pool} node {e.placement[0].nodes[n]}] {prefix}{line}"
                        )
                if "extra_options_yaml" in launch:
                    lines.append(f"    {launch['extra_options_file']}:")
                    lines += ["      " + x for x in launch["extra_options_yaml"].splitlines()]
                if "hostfiles" in launch:
                    first = launch["hostfiles"][0]
                    lines.append(f"    {first['file']}:")
                    lines += ["      " + x for x in first["text"].splitlines()]
                lines += [f"    note: {n}" for n in launch["notes"] if "hostfile of its own" in n]
        return "\n".join(lines)


SATURATED = "unbounded"
"""The TTFT of an engine rated at full load (no TTFT limit) that an open loop's share of the rate loads
to that full-load rate (`decoder.slot_waits`; `DeployedEngine.ttft_ms` inf), as `disagg.UNBOUNDED` says
it of prefill engines."""
SATURATED_WHY = (
    "unbounded: the engine runs saturated, loaded to its full-load rate (rated at full load: no --ttft-ms), "
    "where an open loop's queue for a free slot grows without bound; set --ttft-ms to rate it below it"
)
"""Why an engine's `ttft_ms` and `queue_ms` are null in JSON (`FleetPlan.to_dict`)."""


def ttft_text(ttft_ms: float, queue_ms: float) -> str:
    """An engine's TTFT at its share of the served rate, for text: with its queue waits where it has
    any (`DeployedEngine.queue_ms`), the full-load figure where it has none, and `SATURATED` where the
    queue grows without bound. Every figure said "with the waits at that load", also where none was
    counted (an open loop without a TTFT limit: 212 ms for Llama-3.1-8B on 1x8xH100 at 159 req/s, whose
    slot wait alone is seconds)."""
    if not math.isfinite(ttft_ms):
        return (
            f"TTFT {SATURATED}: the engines run saturated at their full-load rate (no --ttft-ms) and an "
            "open loop's queue grows without bound"
        )
    if queue_ms >= 0.01:  # float noise (2.2e-16 ms) is no wait
        wait = f"{queue_ms:.0f}" if queue_ms >= 1 else f"{queue_ms:.2g}"
        return f"TTFT {ttft_ms:.0f} ms at that load, its queue waits ({wait} ms) included"
    return f"full-load TTFT {ttft_ms:.0f} ms, no queue wait at that load"


def _replica_env(env: dict[str, str], visible: str | None) -> dict[str, str]:
    """A replica's env in a plan file: the engine's, with `CUDA_VISIBLE_DEVICES` for a replica on part of
    a node (`visible`, its GPU indices; None for one on whole nodes). A separate `cuda_visible_devices`
    key, which the aggregated plan file had beside an empty env, left a launcher that applies env and
    runs the lines starting every single-GPU replica on GPU 0."""
    return {**env, "CUDA_VISIBLE_DEVICES": visible} if visible else dict(env)


def node_address(pool: int, node: int) -> str:
    """The address placeholder of a node of a deployment, `${POOL<p>_NODE<n>_IP}`, for the user to fill
    in (left unquoted in the lines, for the shell to expand)."""
    return f"${{POOL{pool}_NODE{node}_IP}}"


_HEADS = (HEAD_ADDRESS, sglang.HEAD_ADDRESS)
"""The head placeholders of vLLM's and SGLang's multi-node lines."""


def _own_heads(launch: dict[str, Any], engine: Any) -> dict[str, Any]:
    """An engine's launch with each replica's own first node where the engine's multi-node lines name
    their head as `${HEAD_IP}` (vLLM's `--data-parallel-address` and `ray start --address`, SGLang's
    `--dist-init-addr`), and the notes that said to export HEAD_IP, the first node of whichever
    replica, replaced: the replicas of one engine have different heads."""
    lines = [line for replica in launch["commands"] for node in replica for line in node]
    if not any(h in line for line in lines for h in _HEADS):
        return launch
    commands = []
    for replica, placement in zip(launch["commands"], engine.placement, strict=True):
        head = node_address(engine.pool, placement.nodes[0])
        commands.append([[_named(line, head) for line in node] for node in replica])
    notes = [n for n in launch["notes"] if "HEAD_IP" not in n]
    notes.append(
        "each replica's lines name its first node, ${POOL<p>_NODE<n>_IP} (fill in the addresses, reachable "
        "from the replica's other nodes), as its head; start the other nodes' Ray, where their lines have "
        "it, before the head's server"
    )
    return {**launch, "commands": commands, "notes": notes}


def _named(line: str, address: str) -> str:
    """`line` with `address` for its head placeholder."""
    for head in _HEADS:
        line = line.replace(head, address)
    return line


class _PlainDumper(yaml.SafeDumper):
    """Safe YAML without anchors (a launcher reads each replica's env in full)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def plan_yaml(doc: dict[str, Any]) -> str:
    """A plan file's text: safe YAML, keys in the order given, no anchors."""
    return yaml.dump(doc, Dumper=_PlainDumper, sort_keys=False)


def _custom_gpus(gpus: object) -> tuple[GPU, ...]:
    """`solve_fleet`'s custom GPU types: a file's path, or GPU objects.

    Raises:
        InputError: anything else, or an unreadable file.
    """
    if isinstance(gpus, str | Path):
        return tuple(GPU.from_file(gpus))
    if not isinstance(gpus, Sequence):
        raise InputError(f"gpus must be a GPU file's path or a list of GPU, got {type(gpus).__name__}")
    return custom_gpus(gpus)  # each validated again


def fleet_models(entries: Sequence[FleetEntry], given: Mapping[int, ModelSpec] | None = None) -> list[Any]:
    """FleetModel per entry (models loaded, never running their code; `given`: entry index -> the
    ModelSpec a caller passed, used as it is)."""
    from autoparallel.solvers.deployment import FleetModel

    out = []
    names: set[str] = set()
    for n, entry in enumerate(entries):
        spec = (given or {}).get(n) or load_model(entry.model)
        # The engines load the id the zoo publishes (an alias typed in the file: its published spelling);
        # two spellings of one id are one model, whose rates a router could not tell apart.
        name = served_id((given or {}).get(n) or entry.model, spec)
        if name in names:
            raise InputError(
                f"model {entry.model!r} ({name}) is listed twice in the fleet; give one rate per model"
            )
        names.add(name)
        try:
            workload = entry.serving()
        except InputError as exc:
            raise InputError(f"fleet entry {n + 1}: {exc}") from None
        out.append(FleetModel(spec, workload, name, entry.priority))
    return out


def solve_fleet(
    fleet: str | Path | FleetFile | Sequence[FleetEntry | Mapping[str, Any]] | Sequence[FleetModel],
    cluster: Cluster | str | None = None,
    *,
    objective: str | tuple[str, ...] | dict[str, float] | None = None,
    prices: Mapping[str, float] | str | None = None,
    gpus: Sequence[GPU] | str | Path = (),
    settings: Any = None,
    options: Any = None,
) -> FleetPlan:
    """The optimal deployment of several models on a cluster of one or more GPU pools.

    Args:
        fleet: a fleet file path, a FleetFile, a list of FleetEntry / mappings with FleetEntry's keys
            (a mapping's `model` may be a ModelSpec, used as it is), or a list of `FleetModel` (a
            loaded model with its whole workload: `fleet_of_one`).
        cluster: Cluster or string ("4x8xH100+4x8xA100-80G"); default: the fleet file's.
        objective: "goodput" (default with rates), "throughput" (default without), "cost" ($/hour
            meeting every rate), "gpus", "cost_per_mtok"; a tuple (lexicographic) or {name: weight}.
        prices: US$ per GPU-hour by GPU name, or "H100=2.49,..." (default: the fleet file's, then the
            catalog's).
        gpus: custom GPU types, or a YAML/JSON file of them (`GPU.from_file`).
        settings: solvers.settings.SolverSettings; options: solvers.serving.space.ServingOptions.

    Raises:
        InputError: bad fleet, cluster, price or GPU file. InfeasibleError: the demand cannot be met
        (capacity objectives) or a model has no engine on any pool, with numbers.
    """
    from autoparallel.solvers.deployment import FleetModel, solve_deployment
    from autoparallel.solvers.serving.space import ServingOptions, given_memory_knob
    from autoparallel.solvers.settings import given_settings

    settings = given_settings(settings)
    if objective is not None:  # the deployment and its plan name it canonically ("COST" -> "cost")
        objective = canonical_objective(objective, "deployment")
    if options is not None and not isinstance(options, ServingOptions):
        raise InputError(f"options must be ServingOptions, got {type(options).__name__}")
    if options is not None:
        options = revalidated(options, "options")
        given_memory_knob(options)
    loaded: list[FleetModel] = []
    given: dict[int, ModelSpec] = {}  # entry index -> the ModelSpec it named
    spec: FleetFile | None = None
    if isinstance(fleet, Sequence) and fleet and all(isinstance(f, FleetModel) for f in fleet):
        loaded = [_checked_fleet_model(fm, n) for n, fm in enumerate(fleet, 1)]
    elif isinstance(fleet, str | Path):
        spec = load_fleet(fleet)
    elif isinstance(fleet, FleetFile):
        spec = revalidated(fleet, "fleet")
    elif isinstance(fleet, Sequence) and not isinstance(fleet, bytes):
        entries = []
        for n, entry in enumerate(fleet, 1):
            if isinstance(entry, Mapping) and isinstance(entry.get("model"), ModelSpec):
                given[n - 1] = entry["model"]
                entry = {**entry, "model": entry["model"].name}
            if isinstance(entry, FleetEntry):  # model_validate returns an instance unchecked
                entries.append(revalidated(entry, f"fleet entry {n}"))
                continue
            try:
                entries.append(FleetEntry.model_validate(entry))
            except ValidationError as exc:
                raise InputError(f"fleet entry {n}: {first_error(exc)}") from None
        try:
            spec = FleetFile(models=tuple(entries))
        except ValidationError as exc:  # no entry, more than the limit, a model listed twice
            raise InputError(f"fleet: {first_error(exc)} ({len(entries)} entries)") from None
    else:
        raise InputError(
            f"fleet must be a fleet file's path or a list of entries, got {type(fleet).__name__}"
        )
    custom = _custom_gpus(gpus)
    given_prices = price_map(prices)
    chosen = cluster if cluster is not None or spec is None else spec.cluster
    if chosen is None:
        raise InputError("no cluster: pass --cluster (or `cluster:` in the fleet file)")
    c = revalidated(chosen, "cluster") if isinstance(chosen, Cluster) else Cluster.parse(chosen, gpus=custom)
    own = spec is not None and cluster is None  # the file's prices are for the file's own cluster
    merged = merge_prices(c, (spec and spec.prices) or {}, given_prices, custom, own_cluster=own)
    if merged:
        c = c.with_prices(merged, custom)
    models = loaded if spec is None else fleet_models(spec.models, given)
    deployment = solve_deployment(models, c, objective=objective, settings=settings, options=options)
    return FleetPlan(cluster=c, deployment=deployment, specs={fm.name: fm.model for fm in models})


def _checked_fleet_model(fm: Any, n: int) -> Any:
    """The `n`-th `FleetModel` a caller passed, its workload validated again (`bounds.revalidated`: a
    `model_copy` of a preset with isl 0 divided by zero in the tables) and its fields of their types.

    Raises:
        InputError: the first field that is not, named.
    """
    where = f"fleet model {n}"
    if not isinstance(fm.model, ModelSpec):
        raise InputError(f"{where}: model must be a ModelSpec (load_model), got {type(fm.model).__name__}")
    if not isinstance(fm.workload, Serving):
        raise InputError(f"{where}: workload must be a Serving workload, got {type(fm.workload).__name__}")
    if not isinstance(fm.model_id, str):
        raise InputError(f"{where}: model_id must be a string, got {type(fm.model_id).__name__}")
    priority = fm.priority
    number = isinstance(priority, int | float) and not isinstance(priority, bool)
    if not (number and 0 < float(priority) <= MAX_PRIORITY):  # NaN fails it
        raise InputError(
            f"{where}: priority={clean_text(repr(priority), 40)}: must be a finite number in "
            f"(0, {MAX_PRIORITY:g}]"
        )
    workload = revalidated(fm.workload, f"{where} ({clean_text(fm.name, 120)}) workload")
    if workload is fm.workload and type(priority) is float:
        return fm  # the caller's object, as the tables' memos know it
    return dataclasses.replace(fm, workload=workload, priority=float(priority))


def merge_prices(
    cluster: Cluster,
    file_prices: Mapping[str, float],
    given: Mapping[str, float],
    custom: Sequence[GPU] = (),
    *,
    own_cluster: bool = False,
) -> dict[str, float]:
    """A fleet file's `prices:` with the caller's (`--price`) over them, by the GPU each name resolves
    to (`hardware.cluster.lookup_gpu`): `--price H100=5` replaces the file's `H100-SXM: 1.0` (merged by
    spelling, the two were "two prices for H100-SXM", exit 2). A file price for a GPU that `cluster`
    has no pool of is dropped when the cluster is not the file's own (`own_cluster`): `--cluster
    1x8xH100` over a file priced for H100s and A100s. The caller's prices are left to
    `Cluster.with_prices`, which refuses a GPU the cluster lacks and two prices for one GPU, as the
    file's own prices on the file's own cluster.

    Raises:
        InputError: a name that is no GPU (catalog or `custom`).
    """
    from autoparallel.hardware.cluster import lookup_gpu

    extra = (*custom, *(pool.gpu for pool in cluster.pools))
    present = {pool.gpu.name for pool in cluster.pools}
    overridden = {lookup_gpu(name, extra).name for name in given}
    kept: dict[str, float] = {}
    for name, price in file_prices.items():
        gpu = lookup_gpu(name, extra).name
        if gpu in overridden or (gpu not in present and not own_cluster):
            continue
        kept[name] = price
    return kept | dict(given)


def fleet_of_one(model: str | ModelSpec, workload: Serving, model_id: str = "") -> list[FleetModel]:
    """The fleet of a single-model plan (`plan MODEL --cluster ...` on the whole cluster): one
    `FleetModel` with the whole workload, so that the deployment's tables see the same request
    shape as the single-engine plan's (its length spread and quantiles, `Serving.prompt_spread`),
    and a ModelSpec is used as given, not reloaded by its name.

    Raises:
        InputError: a model id or path that does not load.
    """
    from autoparallel.solvers.deployment import FleetModel

    spec = model if isinstance(model, ModelSpec) else load_model(model)
    name = model_id or served_id(model, spec)
    return [FleetModel(spec, workload, name)]
