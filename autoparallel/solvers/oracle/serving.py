"""The enumeration oracle: brute force over the serving space with the float model. No ortools.

It walks every point of the space `serving/space.py` defines (shape × runtime × max_num_seqs ×
gpu_memory_utilization × max_model_len × replicas, free replica counts included), evaluates each
with `perf.serving.evaluate_serving` and keeps the admissible ones by the same rules, stated in
floats: vLLM starts, the replicas are all the GPUs allow and, under a client's concurrency C, the
⌈C / max_num_seqs⌉ the clients fill, each running min(max_num_seqs, C / replicas) (the KV cache
holds it), and the SLOs and arrival rate are met. Property tests compare its optimum
with CP-SAT's; benchmarks time it.

Replica counts are the oracle's own (`placed_replicas`: replicas placed one by one, none straddling a
node or splitting a host; a GB200 NVL36 domain holds four 8-GPU replicas), not the space's.

Besides the grid, each (shape, runtime, max_model_len)'s KV-bound max_num_seqs is a point too (the
space offers it with the default grid, `space.kv_bound_offered`): the oracle reads those values from
the space (`kv_bound_batches`) and evaluates and admits their points by its own float rules, as every
other point.

vLLM's memory report does not depend on the replica count without expert parallelism (replicas are
separate engines), so reports are memoized per replica shape; everything else is evaluated per point.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from autoparallel import objectives
from autoparallel.configs import ServingConfig
from autoparallel.hardware.gpu import host_size
from autoparallel.memory.serving import VllmMemoryReport, serving_memory
from autoparallel.memory.vllm_config import loaded_on
from autoparallel.perf.engine_support import SGLANG_DP_ATTENTION_ARCHITECTURES, SGLANG_PP_ARCHITECTURES
from autoparallel.perf.serving import ServingEstimate, evaluate_serving, slo_violations
from autoparallel.perf.serving_engines import evaluate_engine
from autoparallel.solvers.serving.space import (
    Runtime,
    ServingOptions,
    Shape,
    batch_domain,
    build_space,
    kv_bound_offered,
    max_model_len_domain,
    runtime_domain,
    shape_domain,
)

if TYPE_CHECKING:
    from autoparallel.hardware import Cluster
    from autoparallel.models.spec import ModelSpec
    from autoparallel.workload import Serving

MAXIMIZED = frozenset(n for n, o in objectives.SERVING.items() if o.maximize)
_MEMORY: dict[tuple[object, ...], tuple[ModelSpec, VllmMemoryReport]] = {}


class EnumerationResult(BaseModel):
    """The best point by brute force."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    engine: str | None = None
    """The best point's serving engine."""
    config: ServingConfig | None
    """The best configuration (None: nothing admissible)."""
    estimate: ServingEstimate | None
    """Its float estimate."""
    objective_value: float | None
    """Its primary objective, float units."""
    evaluated: int
    """Points evaluated."""
    admissible: int
    """Points that meet every rule."""
    wall_s: float
    """Time taken, seconds."""


def objective_of(estimate: ServingEstimate, name: str) -> float:
    """Objective `name` of an estimate (the registry's definition, as the CP-SAT model uses)."""
    return objectives.value(estimate.perf, name)


def _memory(model: ModelSpec, cluster: Cluster, config: ServingConfig, version: str) -> VllmMemoryReport:
    key_config = config if config.enable_expert_parallel else config.model_copy(update={"replicas": 1})
    key = (id(model), cluster.gpu, key_config, version)
    hit = _MEMORY.get(key)
    if hit is None or hit[0] is not model:
        hit = (model, serving_memory(model, cluster.gpu, config, vllm_version=version))
        _MEMORY[key] = hit
    return hit[1]


def engine_points(
    model: ModelSpec, cluster: Cluster, workload: Serving, options: ServingOptions
) -> Iterator[tuple[str, ServingConfig]]:
    """(engine, configuration) of every point of the space whose shape the model accepts. SGLang and
    TensorRT-LLM points span whole nodes when wider than one (TensorRT-LLM's data-parallel EP ranks
    at tp 1); both take the largest allowed utilization (which they ignore), the space's rules."""
    gpus = min(options.max_gpus or cluster.world_size, cluster.world_size)
    mmls = max_model_len_domain(model, workload, options)
    all_utils = sorted(set(options.gpu_memory_utilizations))
    shapes = shape_domain(model, cluster, options, gpus)
    batches = batch_domain(options, workload.in_flight, shapes)
    kv: dict[tuple[Shape, Runtime, int], int] | None = None
    for shape in shapes:
        if shape.violations:
            continue
        for rt in runtime_domain(model, options, cluster.gpu):
            node = cluster.gpus_per_node
            if rt.engine != "vllm" and shape.engine_width > node and shape.engine_width % node:
                continue  # SGLang and TensorRT-LLM span whole nodes only
            # TensorRT-LLM's enable_attention_dp: each data-parallel rank is one GPU.
            if rt.engine == "trtllm" and shape.ep and shape.ep_replicas > 1 and shape.tp > 1:
                continue
            # SGLang's attention DP exists only in some architectures' model code.
            dp_attention = shape.ep and shape.ep_replicas > 1
            if (
                rt.engine == "sglang"
                and dp_attention
                and model.architecture not in SGLANG_DP_ATTENTION_ARCHITECTURES
            ):
                continue
            # SGLang's pipeline stages likewise.
            if rt.engine == "sglang" and shape.pp > 1 and model.architecture not in SGLANG_PP_ARCHITECTURES:
                continue
            utils = all_utils if rt.engine == "vllm" else all_utils[-1:]
            most = placed_replicas(shape.gpus_per_replica, gpus, node, host_size(cluster.gpu.name, node))
            if not shape.ep and most == 0:
                continue
            if kv is None:  # after runtime_domain has accepted the options, as the space then does
                kv = kv_bound_batches(model, cluster, workload, options)
            # the grid's batches at every max_model_len, then each max_model_len's KV-bound batch
            extra = [(b, (mml,)) for mml in mmls if (b := kv.get((shape, rt, mml), 0))]
            for batch, lens in [*((b, mmls) for b in batches), *extra]:
                counts = _replica_counts(shape.ep_replicas if shape.ep else None, most, batch, workload)
                for util in utils:
                    for mml in lens:
                        for replicas in counts:
                            yield (
                                rt.engine,
                                ServingConfig(
                                    tp=shape.tp,
                                    pp=shape.pp,
                                    replicas=replicas,
                                    enable_expert_parallel=shape.ep,
                                    max_num_seqs=batch,
                                    max_model_len=mml,
                                    gpu_memory_utilization=util,
                                    kv_cache_dtype=rt.kv_cache_dtype,
                                    quantization=rt.quantization,
                                    enforce_eager=rt.enforce_eager,
                                ),
                            )


def kv_bound_batches(
    model: ModelSpec, cluster: Cluster, workload: Serving, options: ServingOptions
) -> dict[tuple[Shape, Runtime, int], int]:
    """{(shape, runtime, max_model_len): its KV-bound max_num_seqs} as the space offers them
    (`ServingSpace.kv_batch`; none unless `kv_bound_offered`): values read from the space, whose
    points the oracle then evaluates itself."""
    if not kv_bound_offered(options):
        return {}
    space = build_space(model, cluster, workload, options)
    return {
        (shape, rt, mml): v
        for s, shape in enumerate(space.shapes)
        for r, rt in enumerate(space.runtimes)
        for m, mml in enumerate(space.max_model_lens)
        if (v := space.kv_batch(s, r, m))
    }


def placed_replicas(width: int, gpus: int, node: int, host: int) -> int:
    """Replicas of `width` GPUs placed one by one on `gpus` GPUs of nodes of `node` in hosts of `host`
    (`perf.serving.replicas_on`, counted here by placing them): whole consecutive nodes for one at least
    a node wide; else at offsets k · width of each node (its GPUs, the last node's share of `gpus`
    alone), keeping a replica that stays inside one host or takes whole ones."""
    free = [node] * (gpus // node) + ([gpus % node] if gpus % node else [])
    if width >= node:
        span = -(-width // node)
        full = sum(1 for f in free if f == node)
        return full // span if width % node == 0 else 0
    count = 0
    for cap in free:
        for offset in range(0, cap - width + 1, width):
            inside = offset // host == (offset + width - 1) // host
            if inside or (offset % host == 0 and width % host == 0):
                count += 1
    return count


def _replica_counts(ep_ranks: int | None, most: int, batch: int, workload: Serving) -> Sequence[int]:
    """Replica counts tried: every count the GPUs allow (an EP engine: its data ranks); under a client's
    concurrency C the deployment uses every replica the clients fill, min(most, ⌈C / max_num_seqs⌉)
    (an EP engine's ranks are fixed)."""
    if ep_ranks is not None:
        return [ep_ranks]
    if workload.in_flight is None:
        return range(1, most + 1)
    return [min(most, math.ceil(workload.in_flight / batch))]


def points(
    model: ModelSpec, cluster: Cluster, workload: Serving, options: ServingOptions
) -> Iterator[ServingConfig]:
    """Every configuration of the space whose shape the model accepts (any engine)."""
    return (config for _, config in engine_points(model, cluster, workload, options))


def admissible(estimate: ServingEstimate, config: ServingConfig, in_flight: int | None) -> bool:
    """The space's rules, in floats: the engine starts, the `in_flight` clients fill every replica
    (max_num_seqs × (replicas − 1) < in_flight; an EP engine's data ranks: in_flight ≥ ranks, its
    load balancer dealing requests to the least loaded rank), each replica runs min(max_num_seqs,
    in_flight / replicas) (neither the KV cache nor the engine runs fewer), and the limits hold."""
    b = config.max_num_seqs
    running = float(b)
    if in_flight is not None:
        # an EP engine's ranks all run once the clients are as many; replicas only while they fill
        idle = (
            in_flight < config.replicas
            if config.enable_expert_parallel
            else b * (config.replicas - 1) >= in_flight
        )
        if idle:
            return False
        running = min(running, in_flight / config.replicas)
    return estimate.fits and estimate.perf.batch_size == running and not estimate.slo_violations


def _weights_cannot_fit(model: ModelSpec, cluster: Cluster, config: ServingConfig) -> bool:
    """Weights / (tp · pp) is a lower bound of the fullest GPU's weights: above the budget vLLM
    cannot start (skips the memory module's slower failure path; EP shapes are always evaluated)."""
    if config.enable_expert_parallel:
        return False
    loaded = loaded_on(model, cluster.gpu, config.quantization)
    weights = loaded.weight_bytes() / (config.tp * config.pp)
    return weights >= cluster.gpu.memory_bytes * config.gpu_memory_utilization


def evaluate_all(
    model: ModelSpec, cluster: Cluster, workload: Serving, options: ServingOptions
) -> tuple[list[tuple[ServingConfig, ServingEstimate]], int]:
    """(admissible points with their estimates, points evaluated)."""
    found, count = evaluate_engines(model, cluster, workload, options)
    return [(config, est) for _, config, est in found], count


def evaluate_engines(
    model: ModelSpec, cluster: Cluster, workload: Serving, options: ServingOptions
) -> tuple[list[tuple[str, ServingConfig, ServingEstimate]], int]:
    """(admissible (engine, point, estimate) triples, points evaluated). vLLM points by
    `evaluate_serving`; SGLang and TensorRT-LLM points by `evaluate_engine` (its KV pool rule, speed
    and start-up problems), the running batch again required to be max_num_seqs."""
    out = []
    count = 0
    for engine, config in engine_points(model, cluster, workload, options):
        count += 1
        if engine != "vllm":
            est = _engine_estimate(model, cluster, config, workload, engine, options.vllm_version)
            if est is not None and admissible(est, config, workload.in_flight):
                out.append((engine, config, est))
            continue
        if _weights_cannot_fit(model, cluster, config):
            continue
        memory = _memory(model, cluster, config, options.vllm_version)
        if not memory.fits:
            continue
        est = evaluate_serving(
            model, cluster, config, workload, vllm_version=options.vllm_version, memory=memory
        )
        if admissible(est, config, workload.in_flight):
            out.append((engine, config, est))
    return out, count


def _engine_estimate(
    model: ModelSpec, cluster: Cluster, config: ServingConfig, workload: Serving, engine: str, version: str
) -> ServingEstimate | None:
    """SGLang / TensorRT-LLM: the engine's evaluation as an estimate (None: weights exceed the GPU)."""
    loaded = loaded_on(model, cluster.gpu, config.quantization, engine)
    if (
        not config.enable_expert_parallel
        and loaded.weight_bytes() / (config.tp * config.pp) >= cluster.gpu.memory_bytes
    ):
        return None
    ev = evaluate_engine(model, cluster, config, workload, engine, model.name)
    slo = tuple(slo_violations(ev.perf, workload))
    memory = _memory(model, cluster, config, version)
    return ServingEstimate(
        memory=memory,
        perf=ev.perf,
        fits=ev.fits,
        problems=tuple(p for p in ev.problems if p not in slo),
        slo_violations=slo,
    )


def enumerate_serving(
    model: ModelSpec,
    cluster: Cluster,
    workload: Serving,
    *,
    objective: str | tuple[str, ...] = "throughput",
    options: ServingOptions | None = None,
) -> EnumerationResult:
    """The optimum of `objective` (a name, or names compared lexicographically) by brute force."""
    start = time.perf_counter()
    options = options or ServingOptions()
    names = (objective,) if isinstance(objective, str) else tuple(objective)
    found, count = evaluate_engines(model, cluster, workload, options)

    def key(item: tuple[str, ServingConfig, ServingEstimate]) -> tuple[float, ...]:
        return tuple(objective_of(item[2], n) * (1 if n in MAXIMIZED else -1) for n in names)

    best = max(found, key=key, default=None)
    return EnumerationResult(
        engine=best[0] if best else None,
        config=best[1] if best else None,
        estimate=best[2] if best else None,
        objective_value=objective_of(best[2], names[0]) if best else None,
        evaluated=count,
        admissible=len(found),
        wall_s=time.perf_counter() - start,
    )


def pareto_front(
    model: ModelSpec,
    cluster: Cluster,
    workload: Serving,
    objectives: tuple[str, str],
    *,
    options: ServingOptions | None = None,
) -> list[tuple[float, float]]:
    """The non-dominated (objective 1, objective 2) values over all admissible points, sorted."""
    found, _ = evaluate_all(model, cluster, workload, options or ServingOptions())
    a, b = objectives
    sa, sb = (1 if a in MAXIMIZED else -1), (1 if b in MAXIMIZED else -1)
    values = sorted(
        {(objective_of(e, a), objective_of(e, b)) for _, e in found}, key=lambda v: (-sa * v[0], -sb * v[1])
    )
    front: list[tuple[float, float]] = []
    for va, vb in values:
        if not front or sb * vb > sb * front[-1][1]:
            front.append((va, vb))
    return front
