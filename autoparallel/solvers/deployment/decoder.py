"""From replica counts to a deployment a user can start: placement, vLLM lines, fleet figures.

Every chosen engine is re-evaluated with the float model (`perf.serving.evaluate_serving`) on its
pool; the decoder checks that it starts, runs its max_num_seqs, meets its SLOs and that its
throughput equals the table's within rounding, and that every hard demand holds in floats. The
figures reported (capacity, goodput, $/hour) are the float model's, not the scaled integers.

Under a closed-loop client's concurrency C a model's requests beyond what its replicas hold wait in
the server's queue, (C − held) / capacity s by Little's law (`queue_wait_s`), and each engine's TTFT
includes that wait, as `perf.serving.client_queue_s` adds it for one engine; N prompts sent at once
drain, the Q = N − held queued waiting Q (Q + 1) / 2N completions on average. Where the solver's
integer rule (encoder.add_client_queue; a burst's at the chords above that drain) holds, the float
TTFT must meet the limit too. Requests arriving at a rate in an open loop (no client cap) wait for a
free slot at each engine's share of the served rate (`slot_queue`), with a TTFT limit or without one:
the limit only decides whether the engines are rated by that wait (`sustained_rps`); without it they
are rated at full load, and where the served rate loads them to it the wait, and TTFT, is infinite
(the queue grows without bound: `FleetPlan` says so, and JSON writes null with why).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from autoparallel.configs import BASE_PORT, ServingConfig
from autoparallel.errors import InternalError
from autoparallel.hardware.gpu import GPUS_PER_HOST
from autoparallel.perf.serving import ServingEstimate, burst_sync, slot_variability
from autoparallel.perf.slot_queue import SlotQueue, rate_within_wait, slot_wait_s
from autoparallel.solvers.deployment.client_rules import SYNC_SCALE, burst_sync_pct, drain_lines
from autoparallel.solvers.deployment.space import DeploymentSpace, Engine, engine_workload
from autoparallel.solvers.serving.decoder import evaluate_point
from autoparallel.solvers.serving.space import entry_lone_cycle_s
from autoparallel.solvers.settings import SolverStats

if TYPE_CHECKING:
    from autoparallel.hardware.cluster import Pool
    from autoparallel.workload import Serving


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReplicaPlacement(_Frozen):
    """Where one engine replica runs: on the hosts where its lines start, as the launch counts them
    (`place`)."""

    nodes: tuple[int, ...]
    """Node indices inside its pool; on a rack-scale GPU, whose node spans several hosts
    (`frameworks._common.gpus_per_host`: a GB200 NVL72 rack is 18 hosts of 4 GPUs), host indices,
    node n's being n·k .. n·k + k − 1 for k hosts per node."""
    gpu_ids: tuple[int, ...]
    """GPU indices on its node or host (narrow engines; CUDA_VISIBLE_DEVICES); all GPUs of its nodes
    or hosts when it spans several."""
    port: int
    """`--port` of its API server (engines sharing a node or host take consecutive ports from 8000)."""


class DeployedEngine(_Frozen):
    """Identical replicas of one engine shape of one model on one pool."""

    model: str
    gpu: str
    pool: int
    tp: int
    pp: int
    ep: int
    """Expert-parallel ranks (1: no expert parallelism)."""
    dp: int
    """Data-parallel ranks inside one engine (EP engines; 1 otherwise)."""
    gpus_per_replica: int
    replicas: int
    nodes: tuple[tuple[int, ...], ...]
    """Per replica, the node indices it runs on inside its pool (host indices on a rack-scale GPU:
    `ReplicaPlacement.nodes`)."""
    placement: tuple[ReplicaPlacement, ...]
    capacity_rps: float
    """Requests/s one replica sustains with its model's TTFT and TPOT holding (float model)."""
    tokens_per_s: float
    """Output tokens/s of one replica at that rate."""
    traffic_share: float
    """Share of its model's requests a router should send to EACH replica (capacity-weighted)."""
    ttft_ms: float
    """Time to first token: the full-load estimate's, plus the waits at its share of the model's served
    rate (`traffic_share`) in the server's queue and for a free slot (`queue_ms`); inf where an open
    loop's served rate loads it to its full-load rate (rated at full load: no TTFT limit), whose queue
    grows without bound (`perf.slot_queue.slot_wait_s`)."""
    tpot_ms: float
    max_num_seqs: int
    max_model_len: int
    gpu_memory_utilization: float
    kv_cache_dtype: str
    quantization: str | None
    enforce_eager: bool
    usd_per_hour: float
    """All replicas, US$ per hour."""
    config: ServingConfig
    """One replica's vLLM configuration (`replicas` = its data-parallel ranks)."""
    engine: str = "vllm"
    """The serving engine: vllm, sglang or trtllm."""
    queue_ms: float = 0.0
    """Of `ttft_ms`, the waits before a replica runs a request: in the server's queue under a
    closed-loop client's concurrency (the model's requests its replicas do not hold wait
    (concurrency − held) / capacity, Little's law, the same for every engine of the model), behind a
    burst's first wave (`wave_wait_s`), and for a free slot at an arrival rate (`slot_wait_at_s`, with a
    TTFT limit or without one: `slot_waits`); inf with `ttft_ms`."""

    def to_dict(self, exclude: set[str]) -> dict[str, object]:
        """JSON-ready fields but `exclude`, without vLLM's `gpu_memory_utilization` on another engine
        (a vLLM knob; their pools follow their own rules, `configs.config_dict`)."""
        out = self.model_dump(mode="json", exclude=exclude)
        if self.engine != "vllm":
            out.pop("gpu_memory_utilization", None)
        return out


class ModelService(_Frozen):
    """What one model of the fleet gets."""

    model: str
    request_rate: float | None
    capacity_rps: float
    served_rps: float
    """min(rate, capacity) (capacity without a rate)."""
    unmet_rps: float
    goodput_tokens_per_s: float
    replicas: int
    gpus: int
    priority: float = 1.0
    """The fleet entry's weight on its tokens in the token objectives (goodput, throughput and the
    $ per M tokens minimized); the figures shown are unweighted."""


class Deployment(_Frozen):
    """A fleet deployment on a cluster."""

    cluster: str
    engines: tuple[DeployedEngine, ...]
    models: tuple[ModelService, ...]
    gpus_used: int
    gpus_idle: int
    idle_reasons: tuple[str, ...]
    usd_per_hour: float
    """Price of the GPUs the engines use, US$ per hour (idle GPUs not counted)."""
    cluster_usd_per_hour: float
    """Price of every GPU of the cluster, US$ per hour."""
    goodput_tokens_per_s: float
    """Output tokens/s within SLO, each model's counted up to its request rate."""
    throughput_tokens_per_s: float
    """Output tokens/s of all engines at capacity."""
    usd_per_million_tokens: float
    """usd_per_hour over goodput."""
    objective: str
    solver: SolverStats
    enumeration_size: int
    """Replica-count vectors a brute-force enumeration over the candidate engines would face."""
    candidate_engines: int
    left_out: tuple[str, ...] = ()
    """Admissible shapes outside the candidates (their size is neither whole nodes nor a power of two
    below a node that takes whole hosts or fits in one, which `node_packing_gpus` needs; space.py's
    node granularity), per model and pool: the optimum is over the rest."""


def evaluate_engine(space: DeploymentSpace, engine: Engine) -> ServingEstimate:
    """The float model's estimate of one engine on its pool, checked against the tables.

    Raises:
        InternalError: the float model says it cannot start, runs a smaller batch, misses an SLO, or
            its throughput differs from the table's by more than rounding.
    """
    fm = space.models[engine.model]
    serving = space.serving[engine.model, engine.pool]
    # the engine's own workload: a closed-loop model's engine under its own slots' clients, as the
    # tables rated it (space.engine_workload, `ServingSpace.own_clients`)
    est, _ = evaluate_point(
        dataclasses.replace(serving, workload=engine_workload(space, engine)), engine.config, engine.engine
    )
    where = f"deployment solver and float model disagree on {fm.name} {engine.label} on pool {engine.pool}"
    if not est.fits:
        raise InternalError(f"{where}: it cannot start: {'; '.join(est.problems)}")
    if est.perf.batch_size != engine.config.max_num_seqs:
        raise InternalError(
            f"{where}: it runs {est.perf.batch_size:g} sequences, not {engine.config.max_num_seqs}"
        )
    if est.slo_violations:
        raise InternalError(f"{where}: {'; '.join(est.slo_violations)}")
    exact = est.perf.output_tokens_per_s * 1e3
    if abs(engine.milli_tokens_per_s - exact) > engine.dp + 1e-9 * exact:
        raise InternalError(
            f"{where}: {engine.milli_tokens_per_s} milli-tokens/s in the tables vs {exact:.3f}"
        )
    return est


def first_fit(
    first: int, nodes: int, gpus_per_node: int, demands: list[tuple[int, int]]
) -> list[list[tuple[int, tuple[int, ...]]]] | None:
    """First fit of narrow replicas into nodes `first`..`nodes` - 1 of `gpus_per_node` GPUs each:
    per (GPUs per replica, replicas) of `demands` in order, each replica on the lowest node with room,
    as (node, GPU ids); None when one does not fit.

    Linear in nodes + replicas per distinct width: for one width the nodes without room stay without
    it (GPUs are only taken), so a cursor past them never moves back; it restarts at `first` when the
    width changes (a narrower replica may fit where a wider one did not).
    """
    used = [0] * max(nodes - first, 0)  # node - first -> GPUs taken
    out: list[list[tuple[int, tuple[int, ...]]]] = []
    cursor, width = 0, None
    for g, count in demands:
        if g != width:
            cursor, width = 0, g
        spots: list[tuple[int, tuple[int, ...]]] = []
        for _ in range(count):
            while cursor < len(used) and used[cursor] + g > gpus_per_node:
                cursor += 1
            if cursor == len(used):
                return None
            spots.append((first + cursor, tuple(range(used[cursor], used[cursor] + g))))
            used[cursor] += g
        out.append(spots)
    return out


def place(
    space: DeploymentSpace, counts: list[int]
) -> dict[int, list[tuple[tuple[int, ...], tuple[int, ...]]]]:
    """Engine index -> per replica (nodes, GPU ids): wide engines on whole consecutive nodes, then narrow
    ones first-fit decreasing into the remaining nodes (`first_fit`; power-of-two sizes, a divisibility
    chain, pack exactly where encoder.add_node_packing_gpus's rules hold, and each replica starts at a
    multiple of its size on its node, so one of at least a host takes whole hosts and a smaller one
    stays inside a host). On a rack-scale GPU the placement is then told in hosts (`on_hosts`): the
    planner's node is the NVLink domain (GB200 NVL36: 9 hosts of 4 GPUs), the launch's the host.

    Raises:
        InternalError: the counts do not fit their pool (the encoder's node constraints were wrong).
    """
    out: dict[int, list[tuple[tuple[int, ...], tuple[int, ...]]]] = {}
    for p, pool in enumerate(space.cluster.pools):
        node = 0
        for k in space.engines_of(pool=p):
            e = space.engines[k]
            for _ in range(counts[k] if e.nodes else 0):
                span = tuple(range(node, node + e.nodes))
                out.setdefault(k, []).append((span, tuple(range(pool.gpus_per_node))))
                node += e.nodes
        narrow = sorted(
            (k for k in space.engines_of(pool=p) if not space.engines[k].nodes),
            key=lambda k: -space.engines[k].gpus,
        )
        spots = first_fit(
            node, pool.nodes, pool.gpus_per_node, [(space.engines[k].gpus, counts[k]) for k in narrow]
        )
        if spots is None:
            raise InternalError(f"replica counts do not fit pool {p} ({pool.spec}): the encoder is wrong")
        for k, replicas in zip(narrow, spots, strict=True):
            if replicas:
                out.setdefault(k, []).extend(((n,), ids) for n, ids in replicas)
        if node > pool.nodes:
            raise InternalError(
                f"replica counts take {node} nodes of pool {p} ({pool.spec}), which has {pool.nodes}"
            )
        host = pool_host_size(pool)
        if host < pool.gpus_per_node:
            for k in space.engines_of(pool=p):
                if k in out:
                    out[k] = [on_hosts(nodes, ids, host, pool.gpus_per_node) for nodes, ids in out[k]]
    return out


def pool_host_size(pool: Pool) -> int:
    """GPUs of one host of `pool` (`GPUS_PER_HOST`; its node for other GPUs, and for a stand-in pool
    that names no GPU)."""
    gpu = getattr(pool, "gpu", None)
    host = GPUS_PER_HOST.get(gpu.name, pool.gpus_per_node) if gpu is not None else pool.gpus_per_node
    return min(host, pool.gpus_per_node)


def on_hosts(
    nodes: tuple[int, ...], gpu_ids: tuple[int, ...], host: int, gpus_per_node: int
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A replica's (nodes, GPU ids on its node) as (hosts, GPU ids on each host) for nodes of
    `gpus_per_node` GPUs in hosts of `host` (GPU g of node n on host n·k + g // host, k hosts per node):
    inside one host its own GPUs, else whole hosts, all their GPUs.

    Raises:
        InternalError: a replica over several hosts that does not take whole ones (the first-fit
            decreasing of power-of-two sizes starts every replica at a multiple of its size).
    """
    k = -(-gpus_per_node // host)
    if len(nodes) > 1 or len(gpu_ids) == gpus_per_node:  # whole nodes: all their hosts
        return tuple(n * k + t for n in nodes for t in range(k)), tuple(range(host))
    (node,) = nodes
    first, last = gpu_ids[0] // host, gpu_ids[-1] // host
    if first == last:
        return (node * k + first,), tuple(g - first * host for g in gpu_ids)
    if gpu_ids[0] % host or len(gpu_ids) % host:
        raise InternalError(
            f"a replica on GPUs {gpu_ids[0]}-{gpu_ids[-1]} of a node splits hosts of {host} GPUs"
        )
    return tuple(node * k + h for h in range(first, last + 1)), tuple(range(host))


def decode(
    space: DeploymentSpace, counts: list[int], objective: str, stats: SolverStats, *, soft_rates: bool = False
) -> Deployment:
    """The deployment of replica counts `counts`, with every figure from the float model. `soft_rates`:
    the rates were served up to, not demanded (goodput leads the objective, `driver.needs_hard_demand`
    of the chain the counts were solved for), so a capacity short of a rate is no disagreement.

    Raises:
        InternalError: the float model disagrees with the tables, or a hard demand fails in floats.
    """
    spots = place(space, counts)
    ports: dict[tuple[int, int], int] = {}  # (pool, node) -> next free port
    estimates = {k: evaluate_engine(space, space.engines[k]) for k, n in enumerate(counts) if n}
    queues = {k: slot_queue(space, space.engines[k], est) for k, est in estimates.items()}
    sustained = {k: sustained_rps(space, space.engines[k], est, queues[k]) for k, est in estimates.items()}
    capacity = [0.0] * len(space.models)
    for k in estimates:
        capacity[space.engines[k].model] += counts[k] * sustained[k]
    waits = [queue_wait_s(space, counts, capacity, m) for m in range(len(space.models))]
    engines: list[DeployedEngine] = []
    for k, est in estimates.items():
        e, n = space.engines[k], counts[k]
        wait_s = waits[e.model] + wave_wait_s(space, counts, k, est.perf.prompt_ms / 1e3 / e.pp)
        rate = space.models[e.model].workload.request_rate
        served = capacity[e.model] if rate is None else min(rate, capacity[e.model])
        wait_s += slot_wait_at_s(queues[k], served * sustained[k] / capacity[e.model])
        check_ttft(space, counts, k, est.perf.ttft_ms + wait_s * 1e3, wait_s)
        pool = space.cluster.pools[e.pool]
        placement = []
        for nodes, gpu_ids in spots[k]:
            port = ports.get((e.pool, nodes[0]), BASE_PORT)
            ports[e.pool, nodes[0]] = port + 1
            placement.append(ReplicaPlacement(nodes=nodes, gpu_ids=gpu_ids, port=port))
        cap = sustained[k]
        c = e.config
        engines.append(
            DeployedEngine(
                model=space.models[e.model].name,
                gpu=pool.gpu.name,
                pool=e.pool,
                tp=e.tp,
                pp=e.pp,
                ep=e.ep,
                dp=e.dp,
                gpus_per_replica=e.gpus,
                replicas=n,
                nodes=tuple(p.nodes for p in placement),
                placement=tuple(placement),
                capacity_rps=cap,
                tokens_per_s=cap * space.models[e.model].workload.osl,
                traffic_share=cap / capacity[e.model],
                ttft_ms=est.perf.ttft_ms + wait_s * 1e3,
                queue_ms=wait_s * 1e3,
                tpot_ms=est.perf.tpot_ms,
                max_num_seqs=c.max_num_seqs,
                max_model_len=c.max_model_len,
                gpu_memory_utilization=c.gpu_memory_utilization,
                kv_cache_dtype=c.kv_cache_dtype,
                quantization=c.quantization,
                enforce_eager=c.enforce_eager,
                usd_per_hour=n * e.gpus * pool.usd_per_hour,
                config=c,
                engine=e.engine,
            )
        )
    services = _services(space, counts, capacity, soft_rates)
    used = sum(e.gpus_per_replica * e.replicas for e in engines)
    usd = sum(e.usd_per_hour for e in engines)
    goodput = sum(s.goodput_tokens_per_s for s in services)
    return Deployment(
        cluster=space.cluster.spec,
        engines=tuple(engines),
        models=services,
        gpus_used=used,
        gpus_idle=space.cluster.world_size - used,
        idle_reasons=idle_reasons(space, counts, objective, soft_rates),
        usd_per_hour=usd,
        cluster_usd_per_hour=space.cluster.usd_per_hour,
        goodput_tokens_per_s=goodput,
        throughput_tokens_per_s=sum(e.tokens_per_s * e.replicas for e in engines),
        usd_per_million_tokens=usd / (goodput * 3600.0) * 1e6 if goodput > 0 else float("inf"),
        objective=objective,
        solver=stats,
        enumeration_size=space.enumeration_size(),
        candidate_engines=len(space.engines),
        left_out=tuple(
            f"{space.models[m].name} on pool {p}: {', '.join(shapes[:6])}{' ...' if len(shapes) > 6 else ''}"
            for (m, p), shapes in sorted(space.left_out.items())
            if shapes
        ),
    )


def queue_wait_s(space: DeploymentSpace, counts: list[int], capacity: list[float], m: int) -> float:
    """Seconds model m's requests wait in the server's queue (float model): with concurrency C and its
    replicas holding H at their running batches, max(C − H, 0) / capacity[m] (requests/s, the float
    model's); N prompts at once, Q (Q + 1) / 2N / capacity[m] with Q = max(N − H, 0); 0 without a
    concurrency or a role (disaggregated) space."""
    fm = space.models[m]
    if (fm.queue_clients or fm.burst_prompts) is None or space.disaggregated or capacity[m] <= 0:
        return 0.0
    held = sum(
        n * e.config.max_num_seqs * e.dp for e, n in zip(space.engines, counts, strict=True) if e.model == m
    )
    if (prompts := fm.burst_prompts) is not None:  # a burst drains: Q ((1 − κ) Q + 1 + κ N) / 2N
        queued = max(prompts - held, 0)
        kappa = burst_sync(fm.workload)
        return queued * ((1 - kappa) * queued + 1 + kappa * prompts) / (2 * prompts) / capacity[m]
    return max((fm.queue_clients or 0) - held, 0) / capacity[m]


def slot_waits(workload: Serving) -> bool:
    """Requests arrive at a rate in an open loop (a `request_rate`, no client `concurrency`): each waits
    for a free slot (`slot_queue`), whether or not a TTFT limit rates the engines by that wait
    (`Serving.slot_rated`, `sustained_rps`). Counting it only with a limit showed Llama-3.1-8B on
    1x8xH100 at 159 req/s (8 x tp1) a deployment TTFT of 212 ms where the single-engine plan of the same
    engines said 2,408 ms, 2,196 ms of it the slot wait."""
    return workload.request_rate is not None and workload.concurrency is None


def slot_queue(space: DeploymentSpace, engine: Engine, est: ServingEstimate) -> SlotQueue | None:
    """The slot queue of one replica of `engine` in floats, its data ranks' slots pooled, from the same
    lone cycle as `space.rated_milli_tps` (`serving.space.entry_lone_cycle_s`); None where no request
    waits for a slot (`slot_waits`: no rate, or a client's cap), for prefill / decode engines, or where
    nothing runs."""
    fm = space.models[engine.model]
    full = est.perf.output_tokens_per_s / fm.workload.osl
    if not slot_waits(fm.workload) or engine.role != "aggregated" or full <= 0:
        return None
    slots = max(engine.config.max_num_seqs, 1) * engine.dp
    lone = entry_lone_cycle_s(space.serving[engine.model, engine.pool], engine.entry)
    return slots, lone, slots / full, slot_variability(fm.workload, split=True)


def sustained_rps(
    space: DeploymentSpace, engine: Engine, est: ServingEstimate, queue: SlotQueue | None
) -> float:
    """Requests/s one replica of `engine` carries with its model's TTFT limit holding at the model's
    arrival rate (float model; `space.rated_milli_tps` rates the tables' integers the same way): the
    rate whose mean wait in `queue` fits the room its TTFT leaves; its full-load rate without a queue
    or a TTFT limit (`FleetModel.slot_rated`: the wait is then counted, not rated by)."""
    fm = space.models[engine.model]
    w = fm.workload
    full = est.perf.output_tokens_per_s / w.osl
    if queue is None or not fm.slot_rated or w.ttft_ms is None:
        return full
    room_s = (w.ttft_ms - est.perf.ttft_ms) / 1e3
    return min(full, rate_within_wait(*queue, room_s))


def slot_wait_at_s(queue: SlotQueue | None, load_rps: float) -> float:
    """Seconds a request waits in `queue` (`slot_queue`) at `load_rps` requests/s (0 without one; inf at
    or beyond the queue's full-load rate: `perf.slot_queue.slot_wait_s`)."""
    if queue is None or load_rps <= 0:
        return 0.0
    slots, lone, full_cycle_s, variability = queue
    return slot_wait_s(load_rps, slots, lone, full_cycle_s, variability)


def wave_wait_s(space: DeploymentSpace, counts: list[int], k: int, prompt_s: float) -> float:
    """Seconds a burst's prompts wait on engine k's first-wave prefill (float model,
    `perf.serving.client_queue_s`): (w − 1) / 2 · prompt_s for the w = min(max_num_seqs, N) of a wave,
    over the prompts in a wave (the H held, and κ of the Q queued, released together); 0 otherwise."""
    e = space.engines[k]
    fm = space.models[e.model]
    prompts = fm.burst_prompts
    if prompts is None or space.disaggregated:
        return 0.0
    held = sum(n * x.in_flight for x, n in zip(space.engines, counts, strict=True) if x.model == e.model)
    queued = max(prompts - held, 0)
    wave = min(e.config.max_num_seqs, prompts)
    share = (min(held, prompts) + burst_sync(fm.workload) * queued) / prompts
    return max(wave - 1, 0) / 2 * prompt_s * share


def queue_rule_holds(space: DeploymentSpace, counts: list[int], k: int) -> bool:
    """The solver's integer rule for engine k (encoder.add_client_queue at time unit 1 µs, exact):
    queue_room_k · Σ capacity · replicas ≥ (C − Σ in_flight · replicas) · units per request/s · 10⁶."""
    e = space.engines[k]
    fm = space.models[e.model]
    if not fm.queued or e.queue_room_us is None:
        return False
    picked = [(x, n) for x, n in zip(space.engines, counts, strict=True) if x.model == e.model and n]
    rate = sum(x.capacity_milli_rps * n for x, n in picked)
    held = sum(x.in_flight * n for x, n in picked)
    if (prompts := fm.burst_prompts) is not None:
        queued = max(prompts - held, 0)
        drain = max(c + slope * queued for c, slope in drain_lines(prompts, burst_sync_pct(fm)))
        room = e.queue_room_us - e.wave_us(prompts)
        return room * SYNC_SCALE * 2 * prompts * rate >= drain * fm.units_per_rps * 1_000_000
    return e.queue_room_us * rate >= ((fm.queue_clients or 0) - held) * fm.units_per_rps * 1_000_000


def check_ttft(space: DeploymentSpace, counts: list[int], k: int, ttft_ms: float, wait_s: float) -> None:
    """Where the solver's rule holds (`queue_rule_holds`), engine k's float TTFT with the queue's wait
    meets its model's limit.

    Raises:
        InternalError: it does not (the integer rule and the float model disagree).
    """
    e = space.engines[k]
    fm = space.models[e.model]
    limit = fm.workload.ttft_ms
    if limit is None or not queue_rule_holds(space, counts, k) or ttft_ms <= limit * (1 + 1e-9):
        return
    raise InternalError(
        f"deployment solver and float model disagree on {fm.name} {e.label} on pool {e.pool}: TTFT "
        f"{ttft_ms:.1f} ms with {wait_s * 1e3:.1f} ms in the client's queue > {limit:g} ms"
    )


def _services(
    space: DeploymentSpace, counts: list[int], capacity: list[float], soft_rates: bool
) -> tuple[ModelService, ...]:
    out = []
    for m, fm in enumerate(space.models):
        rate = fm.workload.request_rate
        served = capacity[m] if rate is None else min(rate, capacity[m])
        if rate is not None and not soft_rates and capacity[m] < rate * (1 - 1e-9):
            raise InternalError(
                f"{fm.name}: capacity {capacity[m]:.4f} req/s < rate {rate} in the float model"
            )
        ks = [k for k in space.engines_of(model=m) if counts[k]]
        held = sum(counts[k] * space.engines[k].config.max_num_seqs * space.engines[k].dp for k in ks)
        if fm.held_cap is not None and held > fm.held_cap:
            raise InternalError(
                f"{fm.name}: the engines hold {held} requests, over its concurrency {fm.held_cap}"
            )
        out.append(
            ModelService(
                model=fm.name,
                priority=fm.priority,
                request_rate=rate,
                capacity_rps=capacity[m],
                served_rps=served,
                unmet_rps=0.0 if rate is None else max(rate - capacity[m], 0.0),
                goodput_tokens_per_s=served * fm.workload.osl,
                replicas=sum(counts[k] for k in ks),
                gpus=sum(counts[k] * space.engines[k].gpus for k in ks),
            )
        )
    return tuple(out)


def _capacity(space: DeploymentSpace, counts: list[int], m: int) -> int:
    return space.capacity_milli_rps(counts, m)


def _wanting(space: DeploymentSpace, counts: list[int]) -> list[int]:
    """Models whose served tokens more capacity would raise: no rate, or capacity below it."""
    return [
        m
        for m, fm in enumerate(space.models)
        if not fm.demand_milli_rps or _capacity(space, counts, m) < fm.demand_milli_rps
    ]


def _pool_room(
    space: DeploymentSpace, counts: list[int], p: int, extra: int | None = None
) -> list[int] | None:
    """GPUs free on each node of pool p left to narrow engines once wide engines take whole nodes and
    narrow ones pack first-fit decreasing (`place`), with one more replica of engine `extra`; None when
    they do not fit the pool."""
    pool = space.cluster.pools[p]
    ks = space.engines_of(pool=p)
    more = [counts[k] + (k == extra) for k in range(len(counts))]
    wide = sum(more[k] * space.engines[k].nodes for k in ks)
    narrow = sorted((k for k in ks if not space.engines[k].nodes), key=lambda k: -space.engines[k].gpus)
    if wide > pool.nodes:
        return None
    spots = first_fit(
        wide, pool.nodes, pool.gpus_per_node, [(space.engines[k].gpus, more[k]) for k in narrow]
    )
    if spots is None:
        return None
    free = [pool.gpus_per_node] * (pool.nodes - wide)
    for k, replicas in zip(narrow, spots, strict=True):
        for node, _ in replicas:
            free[node - wide] -= space.engines[k].gpus
    return free


def _cannot_start(space: DeploymentSpace, m: int, p: int) -> str:
    """Why model m has no candidate engine on pool p (its serving space's refusal, the shapes node
    granularity leaves out, or `explain.why_no_engine`'s nearest numbers)."""
    from autoparallel.solvers.deployment.explain import why_no_engine

    serving = space.serving[m, p]
    if serving.refused is not None:
        return serving.refused
    if shapes := space.left_out.get((m, p)):
        more = " ..." if len(shapes) > 4 else ""
        return f"its admissible shapes ({', '.join(shapes[:4])}{more}) break node granularity"
    return why_no_engine(serving).split(": ", 1)[-1]


def idle_reasons(
    space: DeploymentSpace, counts: list[int], objective: str, soft_rates: bool = False
) -> tuple[str, ...]:
    """Why GPUs stay idle, per pool, with numbers (`soft_rates`: goodput leads, as `decode`'s)."""
    out = []
    for p, pool in enumerate(space.cluster.pools):
        ks = space.engines_of(pool=p)
        used = sum(counts[k] * space.engines[k].gpus for k in ks)
        idle = pool.world_size - used
        if not idle:
            continue
        free = _pool_room(space, counts, p) or []
        free_nodes = sum(1 for f in free if f == pool.gpus_per_node)
        shared = [f for f in free if 0 < f < pool.gpus_per_node]
        free_in_nodes = sum(shared)
        where = "shared nodes" if len(shared) > 1 else "a shared node"
        room = (
            f"{free_nodes} whole node{'s' * (free_nodes != 1)}, {free_in_nodes} "
            f"GPU{'s' * (free_in_nodes != 1)} in {where}"
        )
        fits = [space.engines[k] for k in ks if _pool_room(space, counts, p, k) is not None]
        head = f"pool {p} ({pool.gpu.name}): {idle} of {pool.world_size} GPUs idle"
        if not ks:
            refused = [r for m in range(len(space.models)) if (r := space.serving[m, p].refused) is not None]
            generic = f"no model of the fleet has an engine that starts and meets its SLOs on {pool.gpu.name}"
            why = "; ".join(dict.fromkeys(refused)) if len(refused) == len(space.models) else generic
            out.append(f"{head}: {why}")
        elif not fits:
            smallest = min(ks, key=lambda k: space.engines[k].gpus)
            e = space.engines[smallest]
            out.append(
                f"{head}: no candidate engine fits the rest ({room}); the smallest is "
                f"{space.models[e.model].name} {e.label} with {e.gpus} GPUs"
            )
        elif soft_rates and (wanting := _wanting(space, counts)):
            # goodput grows with a model that has no rate or is short of it: none of its engines fits
            names = ", ".join(
                space.models[m].name
                + (" (short of its rate)" if space.models[m].demand_milli_rps else " (no rate)")
                for m in wanting
            )
            met = "; the other models' rates are met" if len(wanting) < len(space.models) else ""
            own = [k for k in ks if space.engines[k].model in wanting]
            if not own:  # the models that want more have no engine on this pool: say why
                whys = [_cannot_start(space, m, p) for m in wanting]
                why = (
                    whys[0]
                    if len(wanting) == 1
                    else "; ".join(f"{space.models[m].name}: {w}" for m, w in zip(wanting, whys, strict=True))
                )
                verb = "has" if len(wanting) == 1 else "have"
                out.append(f"{head}: {names} {verb} no engine on {pool.gpu.name}: {why}{met}")
                continue
            if any(e.model in wanting for e in fits):
                out.append(f"{head}: the plan CP-SAT returned for objective {objective} leaves them idle")
                continue
            e = space.engines[min(own, key=lambda k: space.engines[k].gpus)]
            out.append(
                f"{head}: no engine of {names} fits the rest ({room}; the smallest is {e.label} with "
                f"{e.gpus} GPUs){met}"
            )
        elif objective in ("goodput", "cost", "gpus", "cost_per_mtok"):
            # (a model without a rate under goodput is `_wanting`, above)
            rates = all(fm.demand_milli_rps for fm in space.models)
            why = "every request rate is met without them" if rates else "the objective is best without them"
            out.append(f"{head}: {why} (objective {objective})")
        elif space.disaggregated and (roles := sorted({e.role for e in fits}, reverse=True)):
            # Round robin: the rate is the lesser of the two roles' capacities (roles.py module doc).
            sizes = {r: min(e.gpus for e in fits if e.role == r) for r in roles}
            held = " or ".join(f"a {r} engine ({sizes[r]} GPUs)" for r in roles)
            out.append(
                f"{head}: the rest ({room}) holds {held}, and one more engine of one role alone does not "
                "raise the carried rate, the lesser of the prefill and decode capacities (round robin)"
            )
        else:
            out.append(f"{head}: the plan CP-SAT returned for objective {objective} leaves them idle")
    return tuple(out)
