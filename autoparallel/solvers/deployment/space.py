"""The deployment space: candidate engines per (model, GPU pool) with integer coefficients.

No ortools here: the CP-SAT encoder and the brute-force oracle both read this module.

For each model of the fleet and each GPU pool, `serving.space.build_space` (the single-engine
tables of the serving planner, computed by the float model) gives every engine shape (tp, pp,
expert parallelism with its data-parallel ranks) and, per shape, every runtime / max_num_seqs /
max_model_len / gpu_memory_utilization entry with its TPOT, TTFT, memory and tokens/s. A shape's
**candidate engine** is its entry of highest throughput among those that start (memory) and meet
the model's TTFT and TPOT limits. That entry dominates the shape's others for every fleet
objective: an engine's GPUs and price depend on the shape alone, and its capacity is the tokens/s
it sustains with the SLOs holding (the float model's steady state at a running batch of
max_num_seqs, no queueing beyond it), so more is never worse. Under a concurrency cap (most
requests in flight) it is not: a capped model's candidates are every entry of a shape within the
cap that beats each smaller batch on tokens/s (`staircase`), each holding `in_flight` requests.
N prompts sent at a rate without a cap (`FleetModel.open_loop_prompts`) are no such cap: the client
holds no request out, so fewer slots never serve more; the candidate is the entry of most tokens/s
among those of batch × data-parallel ranks ≤ N, and no concurrency constraint is posted.
With a TTFT limit too, the requests beyond the engines' running batches wait in the server's queue
(encoder.add_client_queue), a wait more requests held shortens, so every batch within the cap is
kept, each with its entries on the (tokens/s ↑, TTFT ↓) front (`queue_front`).

Coefficients (scaled integers, rounded conservatively: capacities down, demands up):
    capacity_milli_rps     requests/s the engine sustains in the model's rate unit, 1 / (1000 ·
                           rate_scale) requests/s: ⌊tokens/s × 1000⌋ · rate_scale // osl
    in_flight              requests it holds: max_num_seqs × data-parallel ranks
    gpus                   tp × pp × data-parallel ranks (EP engines) or tp × pp
    nodes                  whole nodes an engine wider than a node takes (gpus / node size)
    micro_usd_per_hour     gpus × the pool's US$ per GPU-hour × 1e6
    ttft_us                TTFT at full load from the tables, without the client's queue (µs, up)
    queue_room_us          the model's TTFT limit (µs, down) − ttft_us: how long a request may wait
                           in the server's queue (aggregated engines of a model with a TTFT limit)

Closed loops: a capped client (`vllm bench serve --max-concurrency C` without a rate) holds a slot
for a request's whole life, the per-request overhead outside the engine included
(`perf.serving.closed_loop_rates`, the one rule of `evaluate`, the serving planner's tables and the
accuracy harness). A capped model's engine of max_num_seqs b per rank is priced as its own clients
keep it: b per rank (`build_space(..., own_clients=True)`: `closed_loop_rates` at clients = limit =
b), its TTFT the one the client sees, and the decoder evaluates it under a concurrency of its own
slots (`engine_workload`). With the `concurrency` family (Σ in_flight · replicas ≤ C) that is exact
when the engines hold all C clients and conservative below (the spare clients would fill the
overhead gaps; the client's queue, (C − held) / capacity, is charged at these capacities too). A
full-load rating ignored the overhead: Qwen3-30B-A3B on one H100, 256 / 4 tokens, 16 clients, SGLang
at max_num_seqs 16 was 318 tokens/s here and 267 in `evaluate` and the single-engine plan.

Node granularity (the node is the NVLink domain, `Cluster.gpus_per_node`; a host is where a launcher
starts its processes, `hardware.gpu.host_size`: the node itself but on rack-scale GPUs, a GB200
NVL36 / NVL72 domain being 9 / 18 hosts of 4 GPUs): an engine of at least a node takes gpus / node
whole nodes (gpus must be a multiple of the node). A smaller (sub-domain) engine packs into one node
without straddling it; inside a node any hosts can form an engine, so the deployment planners
(`granularity`: aggregated, disaggregated and mixed alike) take every power-of-two size up to the
node, engines of at least a host taking whole hosts (sizes a multiple of the host) and smaller ones
packing inside one (sizes dividing the host). Powers of two form a divisibility chain, so first-fit
decreasing packs them exactly and places each replica at a multiple of its size (host-aligned;
`decoder.place`), and the packing condition is linear: for each size s used in a pool, Σ over sub-
domain engines of at least s GPUs of replicas · gpus / s ≤ (nodes left to sub-domain engines) ·
⌊node / s⌋ (once first-fit decreasing has placed every engine of at least s GPUs, each node's load
is a multiple of s, so its free s-GPU slots are ⌊node / s⌋ − load / s;
`encoder.add_node_packing_gpus`). On nodes that are a multiple of every size (8-GPU nodes) that is
the GPU count alone. Shapes of other sizes (tp=1 with 3 EP ranks on 8-GPU nodes, tp=1 pp=12 on
36-GPU ones) are left out and counted. The sizes come from the serving space's shapes
(`serving.space.shape_domain`), by the same rule (`perf.serving.sub_domain_size`): EP engines of
tp × data ranks reach every power of two, and so do dense replicas on nodes of several hosts (tp 8,
tp 4 pp 2, tp 8 pp 4 on a 36-GPU domain; Llama-3.1-405B at 5 req/s on 1x36xGB200 took tp 4 pp 9 on
all 36 GPUs at $216/h, and now takes a tp 8 and a tp 8 pp 2 engine on 24 GPUs at $144/h, as on
1x72xGB200).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from autoparallel.configs import ServingConfig
from autoparallel.errors import InputError
from autoparallel.hardware import Cluster
from autoparallel.hardware.gpu import host_size
from autoparallel.models.spec import ModelSpec
from autoparallel.perf.serving import slot_variability, sub_domain_size
from autoparallel.perf.slot_queue import rated_milli_tps as slot_rated_milli_tps
from autoparallel.solvers import units
from autoparallel.solvers.deployment.client_rules import closed_loop_rule
from autoparallel.solvers.serving.space import ServingOptions, ServingSpace, build_space, entry_lone_cycle_s
from autoparallel.workload import Serving

MILLI = 1000
"""Request-rate unit: 1/1000 request per second, divided by a model's `FleetModel.rate_scale`."""
MIN_RATE_UNITS = 1000
"""Fewest rate units the slowest candidate engine of a model should sustain (`rate_scale_for`):
rounding a capacity down then costs it at most 1/1000 (units.py's throughput tolerance)."""
MAX_RATE_RPS = 1e7
"""Highest request rate a fleet entry may ask for, requests/s."""


@dataclass(frozen=True)
class FleetModel:
    """One model of the fleet: what it serves, at which rate and SLOs, and how much it matters."""

    model: ModelSpec
    workload: Serving
    """Request shape and SLOs; `request_rate` is the demand (None: as much as the GPUs give)."""
    model_id: str = ""
    """The id `vllm serve` takes (default: the model's name)."""
    priority: float = 1.0
    """Weight of this model's tokens in the goodput and throughput objectives."""
    rate_scale: int = 1
    """The model's rate unit is 1 / (1000 · rate_scale) requests/s; a divisor of osl, so that one unit
    is osl / rate_scale output milli-tokens/s (`milli_tokens_per_unit`). `build_deployment_space` sets
    it from the model's slowest candidate engine (`rate_scale_for`)."""

    @property
    def name(self) -> str:
        return self.model_id or self.model.name

    @property
    def concurrency(self) -> int | None:
        """Most requests of this model in flight at once (a closed-loop client; at most its prompts),
        None: no cap."""
        return self.workload.in_flight

    @property
    def open_loop_prompts(self) -> int | None:
        """Prompts of a finite benchmark sent at an arrival rate without a concurrency cap
        (`vllm bench serve --request-rate R --num-prompts N`); None otherwise. The client holds no
        request out, so holding fewer slots never serves more: a shape's candidate is its entry of most
        tokens/s among those of batch × data-parallel ranks ≤ N (`_candidates`) and the solver posts no
        concurrency constraint (`held_cap`)."""
        w = self.workload
        if w.request_rate is None or w.concurrency is not None:
            return None
        return w.num_prompts

    @property
    def held_cap(self) -> int | None:
        """Most requests the aggregated deployment's replicas may hold at their running batches
        (encoder.add_concurrency): `concurrency` but for an open loop (`open_loop_prompts`), where
        it is None."""
        return None if self.open_loop_prompts is not None else self.concurrency

    @property
    def queue_clients(self) -> int | None:
        """Requests of a closed-loop client (no arrival rate): those the replicas do not hold wait in
        the server's queue (encoder.add_client_queue); None: no such queue."""
        return self.workload.closed_loop

    @property
    def burst_prompts(self) -> int | None:
        """Prompts sent at once without a cap or a rate (`vllm bench serve --request-rate inf
        --num-prompts N`): those the replicas do not hold drain through the server's queue
        (encoder.add_client_queue, `drain_lines`); None otherwise."""
        w = self.workload
        if w.num_prompts is None or w.concurrency is not None or w.request_rate is not None:
            return None
        return w.num_prompts

    @property
    def queued(self) -> bool:
        """The client's requests beyond what the replicas hold wait in the server's queue, and TTFT has
        a limit to hold that wait to (a closed loop or a burst)."""
        return (self.queue_clients or self.burst_prompts) is not None and self.workload.ttft_ms is not None

    @property
    def slot_rated(self) -> bool:
        """`Serving.slot_rated` of its workload (`rated_milli_tps`, `decoder.slot_queue`)."""
        return self.workload.slot_rated

    @property
    def units_per_rps(self) -> int:
        """Rate units per request/s: 1000 · rate_scale."""
        return MILLI * self.rate_scale

    @property
    def milli_tokens_per_unit(self) -> int:
        """Output milli-tokens/s one rate unit carries: osl / rate_scale (an integer)."""
        return self.workload.osl // self.rate_scale

    @property
    def demand_milli_rps(self) -> int:
        """The request rate to meet in rate units (×1000 · rate_scale), rounded up; 0 without a rate."""
        rate = self.workload.request_rate
        return 0 if rate is None else math.ceil(rate * self.units_per_rps - 1e-6)


@dataclass(frozen=True)
class Engine:
    """A candidate engine: one shape of one model on one pool, at its best admissible entry."""

    model: int
    """Index into `DeploymentSpace.models`."""
    pool: int
    """Index into the cluster's pools."""
    shape: int
    """Index into the serving space's shapes (of this model and pool)."""
    entry: int
    """Flat table index of the chosen (runtime, max_num_seqs, max_model_len)."""
    util: int
    """Index of the chosen gpu_memory_utilization."""
    tp: int
    pp: int
    ep: int
    """Expert-parallel ranks (tp × dp with EP, else 1)."""
    dp: int
    """Data-parallel ranks inside the engine (EP engines; else 1)."""
    gpus: int
    nodes: int
    """Whole nodes the engine takes (0: it packs inside one node)."""
    capacity_milli_rps: int
    milli_tokens_per_s: int
    """Output tokens/s of the whole engine ×1000 (rounded down)."""
    micro_usd_per_hour: int
    config: ServingConfig
    """The engine's vLLM configuration (replicas = its data-parallel ranks)."""
    sustained_milli_tps: int = -1
    """What `capacity_milli_rps` rates: the output milli-tokens/s it carries with its model's TTFT limit
    holding at the model's arrival rate (`rated_milli_tps`: a rate near full load keeps requests
    waiting for a free slot); `milli_tokens_per_s` without a rate or a limit (-1: not given)."""
    role: str = "aggregated"
    """`aggregated` (prefill and decode in one engine), `prefill` or `decode` (deployment/roles.py)."""
    prefill_milli_tps: int = 0
    """Prefill engines: prompt tokens/s the engine prefills within its TTFT budget ×1000 (rounded down)."""
    engine: str = "vllm"
    """The serving engine that runs it: vllm, sglang or trtllm (`ServingOptions.engines`)."""
    in_flight: int = 0
    """Requests one replica holds at its running batch: max_num_seqs × its data-parallel ranks, what
    a closed-loop client's concurrency counts of aggregated and decode engines (every engine is rated
    at that batch, so each holds it). A prefill engine's are not counted: a request holds a prefill
    slot and then a decode slot, never both, and the requests at the prefill ranks and in the KV
    transfer are the closed-loop rule's (`client_rules.closed_loop_rule`)."""
    ttft_us: int = 0
    """TTFT at its running batch from the serving tables (µs, rounded up): request overhead, waiting
    for a slot in the mixed steps and the prefill, without the client's queue (the deployment
    workload has no concurrency, `deployment_workload`; a closed-loop model's engine under its own
    slots' clients, `engine_workload`)."""
    queue_room_us: int | None = None
    """Aggregated engines of a model with a TTFT limit: the limit (µs, rounded down) − `ttft_us`, the
    longest a request may wait in the server's queue before this engine runs it
    (`encoder.add_client_queue`); None: no TTFT limit, or a prefill / decode engine."""
    prompt_us: int = 0
    """The time one more prompt adds to its prefill (µs, rounded up; `ServingTables.prompt_us`): a
    burst's first wave of max_num_seqs prompts per rank waits (max_num_seqs − 1) / 2 of it on average."""
    prefill_us: int = 0
    """Prefill engines: the mean prefill of one prompt alone (µs, rounded up; `roles.RoleTimes`)."""
    lead_us: int = 0
    """Prefill engines: what a request spends outside both engines' slots, the request overhead and
    the slowest KV transfer to a decode candidate (µs, rounded up; `closed_loop_rule`)."""
    client_lines: tuple[tuple[int, int], ...] = ()
    """Prefill engines of a model with a concurrency cap: the chords of one rank's requests in queue
    and prefill (`prefill_client_lines`), up to the engine's own utilisation."""

    def wave_us(self, prompts: int) -> int:
        """The most a burst of `prompts` waits on this engine's first-wave prefill (µs):
        (min(max_num_seqs, prompts) − 1) / 2 · `prompt_us`, rounded up (`perf.client_queue_s`)."""
        return -(-(max(min(self.config.max_num_seqs, prompts) - 1, 0) * self.prompt_us) // 2)

    @property
    def rating(self) -> int:
        """What one replica contributes: prompt milli-tokens/s (prefill) or milli-requests/s."""
        return self.prefill_milli_tps if self.role == "prefill" else self.capacity_milli_rps

    @property
    def label(self) -> str:
        text = f"tp{self.tp}" + (f"pp{self.pp}" if self.pp > 1 else "")
        text += f"ep{self.ep}" if self.dp > 1 or self.ep > 1 else ""
        return text if self.engine == "vllm" else f"{self.engine} {text}"


@dataclass
class DeploymentSpace:
    """Candidate engines of a fleet on a cluster, with the serving spaces they come from."""

    models: tuple[FleetModel, ...]
    cluster: Cluster
    engines: tuple[Engine, ...]
    serving: dict[tuple[int, int], ServingSpace]
    """(model, pool) -> the serving planner's space (domains and float-model tables)."""
    left_out: dict[tuple[int, int], tuple[str, ...]] = field(default_factory=dict)
    """(model, pool) -> the admissible shapes dropped because their size breaks node granularity."""
    dominated: int = 0
    """Candidate engines dropped because copies of another engine of theirs dominate them."""
    unpruned_enumeration_size: int = 0
    """`enumeration_size` before dominated engines were dropped."""
    disaggregated: bool = False
    """Engines are prefill and decode roles (deployment/roles.py), not aggregated engines."""

    def pool_gpus(self, pool: int) -> int:
        return self.cluster.pools[pool].world_size

    def max_replicas(self, engine: Engine) -> int:
        """Most replicas of `engine` its pool holds: nodes // its nodes, or ⌊node / gpus⌋ per node."""
        pool = self.cluster.pools[engine.pool]
        if engine.nodes:
            return pool.nodes // engine.nodes
        return pool.nodes * (pool.gpus_per_node // engine.gpus)

    def engines_of(self, *, model: int | None = None, pool: int | None = None) -> list[int]:
        """Indices of the engines of a model and/or a pool."""
        return [
            k
            for k, e in enumerate(self.engines)
            if (model is None or e.model == model) and (pool is None or e.pool == pool)
        ]

    def capacity_milli_rps(self, counts: list[int] | tuple[int, ...], m: int) -> int:
        """Requests/s ×1000 model m's engines sustain at replica counts `counts`; disaggregated, the
        rate both roles carry when the proxy deals requests round robin (`round_robin_milli_rps`),
        within what a concurrency cap's clients carry (`closed_loop_rule`)."""
        picked = [(e, n) for e, n in zip(self.engines, counts, strict=True) if e.model == m and n]
        if not self.disaggregated:
            return sum(e.capacity_milli_rps * n for e, n in picked)
        rr = round_robin_milli_rps(picked, self.models[m].workload.isl)
        rule = closed_loop_rule(self, m)
        loop = None if rule is None else rule.flow(counts)
        return rr if loop is None else min(rr, loop)

    def enumeration_size(self) -> int:
        """Replica-count vectors an enumeration over the engines would face: Π (max replicas + 1)."""
        return math.prod(self.max_replicas(e) + 1 for e in self.engines)


def round_robin_milli_rps(picked: list[tuple[Engine, int]], isl: int) -> int:
    """Requests/s ×1000 that prefill and decode replicas (engine, count) carry under vLLM's P/D proxy,
    which deals requests round robin over each role's replicas (disagg_launch.py): each of a role's n
    replicas gets 1/n of the rate, so the role carries n × its least capacity,
    min(⌊n_P · least prompt milli-tokens/s ÷ isl⌋, n_D · least decode milli-requests/s); 0 without both."""
    n = {role: sum(c for e, c in picked if e.role == role and c) for role in ("prefill", "decode")}
    least = {role: min((e.rating for e, c in picked if e.role == role and c), default=0) for role in n}
    return min(n["prefill"] * least["prefill"] // isl, n["decode"] * least["decode"])


def deployment_workload(workload: Serving) -> Serving:
    """The per-engine workload: the request shape and SLOs, without the fleet's rate or concurrency."""
    return workload.model_copy(update={"request_rate": None, "concurrency": None, "num_prompts": None})


def engine_workload(space: DeploymentSpace, engine: Engine) -> Serving:
    """The workload one engine is priced under (module doc, "Closed loops"): `deployment_workload`,
    and where its tables were rated under its own clients (`ServingSpace.own_clients`: a model with
    a closed-loop client) a concurrency of the engine's own slots, max_num_seqs × its data-parallel
    ranks (`Engine.in_flight`), which `perf_at_batch` deals max_num_seqs to each rank; so the
    decoder's float check prices what the solver did."""
    alone = deployment_workload(space.models[engine.model].workload)
    if not space.serving[engine.model, engine.pool].own_clients:
        return alone
    return alone.model_copy(update={"concurrency": engine.in_flight})


def build_deployment_space(
    models: tuple[FleetModel, ...] | list[FleetModel],
    cluster: Cluster,
    options: ServingOptions | None = None,
    *,
    prune: bool = True,
    deadline: float | None = None,
    scale_rates: bool = True,
) -> DeploymentSpace:
    """Serving tables per (model, pool) and the candidate engine of every admissible shape
    (`prune`: without the engines `undominated` drops). `deadline`: the `time.perf_counter()` by
    which the planning call must end; the tables count in it (`build_space`). `scale_rates`: give
    each model the `rate_scale` its slowest candidate needs (`rate_scale_for`); off, rates stay in
    milli-requests/s (the role spaces of roles.py and mixed.py, whose ratings are in that unit).

    Raises:
        InputError: an empty fleet, a rate out of range, or options the serving planner refuses.
        InfeasibleError: a workload's context exceeds its model's.
        SolverTimeoutError: the deadline passed while the tables were computed.
    """
    fleet = tuple(models)
    if not fleet:
        raise InputError("the fleet lists no model")
    for fm in fleet:
        rate = fm.workload.request_rate
        if rate is not None and not 0 < rate <= MAX_RATE_RPS:
            raise InputError(
                f"{fm.name}: request_rate must be in (0, {MAX_RATE_RPS:g}] requests/s, got {rate}"
            )
        if not 0 < fm.priority <= 1e6 or not math.isfinite(fm.priority):
            raise InputError(f"{fm.name}: priority must be in (0, 1e6], got {fm.priority}")
    opts = options or ServingOptions()
    engines: list[Engine] = []
    serving: dict[tuple[int, int], ServingSpace] = {}
    left_out: dict[tuple[int, int], tuple[str, ...]] = {}
    everything: list[Engine] = []
    scaled: list[FleetModel] = []
    for m, fm in enumerate(fleet):
        per_pool: list[list[Engine]] = []
        for p in range(len(cluster.pools)):
            pool = cluster.pool_cluster(p)
            space = build_space(
                fm.model,
                pool,
                deployment_workload(fm.workload),
                opts,
                refusable=True,
                deadline=deadline,
                in_flight=fm.concurrency,
                own_clients=fm.queue_clients is not None,
            )
            serving[m, p] = space
            # rated in output milli-tokens/s (the finest unit) until the model's rate_scale is known
            found, dropped = _candidates(space, dataclasses.replace(fm, rate_scale=fm.workload.osl), m, p)
            per_pool.append(found)
            left_out[m, p] = dropped
        slowest = min((e.sustained_milli_tps for found in per_pool for e in found), default=0)
        fm = dataclasses.replace(
            fm, rate_scale=rate_scale_for(slowest, fm.workload.osl) if scale_rates else 1
        )
        scaled.append(fm)
        for found in per_pool:
            rated = [e for e in _rated(found, fm) if e.capacity_milli_rps > 0]
            everything += rated
            engines += undominated(rated, fm.held_cap is not None) if prune else rated
        refusals = [r for p in range(len(cluster.pools)) if (r := serving[m, p].refused) is not None]
        if len(refusals) == len(cluster.pools):
            why = "; ".join(dict.fromkeys(refusals))
            raise InputError(f"{fm.name}: nothing allowed runs on the cluster: {why}")
    out = DeploymentSpace(
        tuple(scaled), cluster, tuple(engines), serving, left_out, len(everything) - len(engines)
    )
    out.unpruned_enumeration_size = math.prod(out.max_replicas(e) + 1 for e in everything)
    return out


def rate_scale_for(slowest_milli_tps: int, osl: int) -> int:
    """The smallest divisor d of osl at which an engine of `slowest_milli_tps` output milli-tokens/s
    sustains at least MIN_RATE_UNITS units of 1 / (1000 · d) requests/s (⌊tps · d / osl⌋), or osl
    itself (the unit is then one output milli-token/s). A divisor of osl keeps the objectives'
    milli-tokens/s per unit (osl / d) an integer. Milli-requests/s alone rounded 8.3 and 16.3 tokens/s
    at 8,192 output tokens both to 1 (Llama-3.1-70B on 1x4xL40S) and dropped engines under 0.001 req/s."""
    for d in range(1, osl + 1):
        if osl % d == 0 and slowest_milli_tps * d >= MIN_RATE_UNITS * osl:
            return d
    return osl


def _rated(found: list[Engine], fm: FleetModel) -> list[Engine]:
    """`found` with capacities in fm's rate unit: ⌊sustained milli-tokens/s · rate_scale / osl⌋."""
    return [
        dataclasses.replace(e, capacity_milli_rps=e.sustained_milli_tps * fm.rate_scale // fm.workload.osl)
        for e in found
    ]


def rated_milli_tps(space: ServingSpace, fm: FleetModel, i: int, dp: int) -> int:
    """Output milli-tokens/s one data rank of entry i carries with fm's TTFT limit holding at fm's
    arrival rate (`slot_queue.rated_milli_tps`, the rule the serving explanation's request_rate reason
    reads too): its max_num_seqs slots are a birth–death queue from the entry's lone cycle
    (`serving.space.entry_lone_cycle_s`) and its full load's, arrivals as bursty as any replica count
    sees them (`perf.slot_variability`; the engine's `dp` data ranks' slots pooled, as
    `perf.rate_slot_wait_s` pools them), at most its full-load tokens/s. The full-load figure without
    a rate, a TTFT limit, or with a client's cap (`FleetModel.slot_rated`). The table's numbers (TTFT
    up, tokens/s down) only lower it, so the decoder's float twin (`decoder.sustained_rps`) is never
    below it."""
    tps = space.tables.tps_milli[i]
    w = fm.workload
    if not fm.slot_rated or w.ttft_ms is None or tps <= 0:
        return tps
    return slot_rated_milli_tps(
        tps,
        space.tables.ttft_us[i],
        units.us_down(w.ttft_ms / 1e3),
        space.max_num_seqs_of(i),
        dp,
        w.osl,
        lambda: entry_lone_cycle_s(space, i),
        slot_variability(w, split=True),
    )


def granularity(space: ServingSpace, s: int) -> tuple[int, int, int] | None:
    """(dp, gpus, whole nodes) of shape s, or None when its size breaks node granularity (module doc):
    sub-domain engines of every power-of-two size up to the node (`sub_domain_size`, the serving
    space's rule for dense replicas too), packed by the encoders' per-size rule
    (`encoder.add_node_packing_gpus`)."""
    shape, node = space.shapes[s], space.cluster.gpus_per_node
    dp = shape.ep_replicas if shape.ep else 1
    gpus = shape.gpus_per_replica * dp
    if gpus >= node:
        return (dp, gpus, gpus // node) if gpus % node == 0 else None
    gpu = getattr(space.cluster, "gpu", None)
    host = host_size(gpu.name, node) if gpu is not None else node
    return (dp, gpus, 0) if sub_domain_size(gpus, node, host) else None


def engine_at(
    space: ServingSpace,
    m: int,
    p: int,
    i: int,
    u: int,
    size: tuple[int, int, int],
    *,
    role: str = "aggregated",
    capacity_milli_rps: int = 0,
    milli_tokens_per_s: int = 0,
    prefill_milli_tps: int = 0,
    sustained_milli_tps: int | None = None,
) -> Engine:
    """The engine of table entry i at utilization index u; `size` is `granularity(space, shape)`."""
    dp, gpus, nodes = size
    s, r, b, mm = space.unflat(i)
    shape = space.shapes[s]
    ttft = space.tables.ttft_us[i]
    limit = space.workload.ttft_ms
    room = None if role != "aggregated" or limit is None else units.us_down(limit / 1e3) - ttft
    return Engine(
        model=m,
        pool=p,
        shape=s,
        entry=i,
        util=u,
        tp=shape.tp,
        pp=shape.pp,
        ep=shape.ep_ranks,
        dp=dp,
        gpus=gpus,
        nodes=nodes,
        capacity_milli_rps=capacity_milli_rps,
        milli_tokens_per_s=milli_tokens_per_s,
        sustained_milli_tps=milli_tokens_per_s if sustained_milli_tps is None else sustained_milli_tps,
        micro_usd_per_hour=units.micro_usd(space.cluster.gpu.usd_per_hour) * gpus,
        config=space.config(s, r, b, u, mm, dp),
        engine=space.runtimes[r].engine,
        role=role,
        prefill_milli_tps=prefill_milli_tps,
        in_flight=space.batch_value(s, r, b, mm) * dp,
        ttft_us=ttft,
        queue_room_us=room,
        prompt_us=space.tables.prompt_us[i],
    )


def _candidates(space: ServingSpace, fm: FleetModel, m: int, p: int) -> tuple[list[Engine], tuple[str, ...]]:
    """The candidate entries of every (shape, serving engine), with capacities in fm's rate unit (those
    of capacity 0 left out), and how many admissible shapes node granularity drops. Without a
    concurrency cap a shape's candidate is its entry of most tokens/s; an open loop
    (`FleetModel.open_loop_prompts`: N prompts at a rate) takes it among the entries of batch × dp ≤ N;
    with a cap, every entry whose in-flight requests fit the cap and that no entry of fewer in flight
    beats on tokens/s (`staircase`), since replicas of smaller batches may then serve more."""
    found: dict[tuple[int, int], list[tuple[int, int, int]]] = {}  # (shape, engine) -> [(batch, tps, entry)]
    queued = fm.queued
    order = {e: k for k, e in enumerate(space.engines)}
    util_of: dict[int, int] = {}  # entry -> its utilization, the preferred admissible one
    for i in range(len(space.tables.evaluated)):
        if ok := admissible_utils(space, i):
            util_of[i] = ok[0]
            s = space.unflat(i)[0]
            found.setdefault((s, order[space.engine_of(i)]), []).append(
                (space.max_num_seqs_of(i), space.tables.tps_milli[i], i)
            )
    out: list[Engine] = []
    dropped: list[str] = []
    open_loop = fm.open_loop_prompts
    for (s, _), entries in sorted(found.items()):
        size = granularity(space, s)
        if size is None:
            dropped.append(space.shapes[s].label)
            continue
        if open_loop is not None:
            entries = [t for t in entries if t[0] * size[0] <= open_loop]
        if fm.concurrency is None or open_loop is not None:
            picked = [most_sustained(space, fm, entries, size[0])] if entries else []
        elif queued:
            picked = queue_front(entries, fm.concurrency, size[0], space.tables.ttft_us)
        else:
            picked = staircase(entries, fm.concurrency, size[0])
        for i in picked:
            engine_tps = space.tables.tps_milli[i] * size[0]
            sustained = rated_milli_tps(space, fm, i, size[0]) * size[0]
            out.append(
                engine_at(
                    space,
                    m,
                    p,
                    i,
                    util_of[i],
                    size,
                    capacity_milli_rps=sustained * fm.rate_scale // fm.workload.osl,
                    milli_tokens_per_s=engine_tps,
                    sustained_milli_tps=sustained,
                )
            )
    return [e for e in out if e.capacity_milli_rps > 0], tuple(dict.fromkeys(dropped))


def most_sustained(space: ServingSpace, fm: FleetModel, entries: list[tuple[int, int, int]], dp: int) -> int:
    """Of one shape's (batch, full-load tokens/s, entry) triples, the entry of most sustained tokens/s
    (`rated_milli_tps`; the first of equals, as `staircase` without a cap). Rating prices a lone
    request and a queue, so the entries are rated from the fastest at full load down, and the rest
    skipped once none can beat the best rated (rating never raises a full-load figure)."""
    best, best_tps = -1, -1
    for _, full, i in sorted(entries, key=lambda t: (-t[1], t[2])):
        if full < best_tps:
            break
        tps = rated_milli_tps(space, fm, i, dp)
        if tps > best_tps or (tps == best_tps and i < best):
            best, best_tps = i, tps
    return best


def staircase(entries: list[tuple[int, int, int]], concurrency: int | None, dp: int) -> list[int]:
    """Of one shape's admissible (batch, tokens/s, entry) triples: the first of most tokens/s without a
    cap; with a cap, those of batch × dp ≤ it that beat every smaller batch on tokens/s (the
    (in flight ↓, tokens/s ↑) front), smallest batch first."""
    if concurrency is None:
        return [max(entries, key=lambda t: (t[1], -t[2]))[2]]
    out, best = [], -1
    for batch, tps, i in sorted(entries, key=lambda t: (t[0], -t[1], t[2])):
        if batch * dp <= concurrency and tps > best:
            out.append(i)
            best = tps
    return out


def queue_front(
    entries: list[tuple[int, int, int]], concurrency: int | None, dp: int, ttft_us: list[int]
) -> list[int]:
    """Of one shape's admissible (batch, tokens/s, entry) triples under a cap and a TTFT limit: for each
    batch with batch × dp ≤ the cap, the entries that no other entry of that batch matches on tokens/s
    and TTFT (`ttft_us`, per entry) while beating it on one (the first of equals), smallest batch first.

    Batches are not compared: the client's queue, (concurrency − requests held) / capacity
    (encoder.add_client_queue), shrinks as engines hold more while the cap grows tighter, so more in
    flight is neither better nor worse. Within a batch an entry of more tokens/s and no more TTFT
    leaves every request's TTFT no longer (the queue is no longer, its own part no longer)."""
    by_batch: dict[int, list[tuple[int, int]]] = {}
    for batch, tps, i in entries:
        if concurrency is None or batch * dp <= concurrency:
            by_batch.setdefault(batch, []).append((tps, i))
    out = []
    for batch in sorted(by_batch):
        best = None
        for _, i in sorted(by_batch[batch], key=lambda t: (-t[0], ttft_us[t[1]], t[1])):
            if best is None or ttft_us[i] < best:
                out.append(i)
                best = ttft_us[i]
    return out


def copies_fitting(a: Engine, b: Engine) -> int:
    """How many copies of engine b fit where one engine a runs (0: b does not fit there).

    Sizes are whole nodes or powers of two below a node (module doc): b's copies fit a's GPUs when
    b is no wider (narrow b into narrow a: b divides a; each s-GPU slot a fills, b's copies fill no
    more), into a's whole nodes ⌊node / gpus_b⌋ per node (narrow b), or a's nodes // b's (wide b)."""
    if b.nodes:
        return a.nodes // b.nodes if a.nodes else 0
    if a.nodes:
        return a.nodes * (a.gpus // a.nodes // b.gpus)
    return a.gpus // b.gpus if a.gpus % b.gpus == 0 else 0


def undominated(engines: list[Engine], capped: bool = False) -> list[Engine]:
    """The engines of one (model, pool) that no other engine dominates.

    Engine a is dominated when k = copies_fitting(a, b) ≥ 1 copies of another engine b fit where a
    runs and serve at least as much (k · capacity_b ≥ capacity_a): swapping a for them keeps every
    pool constraint, uses no more GPUs or dollars (same pool, k · gpus_b ≤ gpus_a) and no less capacity,
    so no objective (goodput, throughput, cost, GPUs, $ per token) gets worse and the optimum over
    the remaining engines is the optimum over all of them. `capped` (the model has a concurrency
    cap): the k copies must also hold no more requests in flight (k · in_flight_b ≤ in_flight_a).
    Of engines equal in every respect the first is kept. Engines of different roles never dominate
    each other; a prefill engine's capacity is its prompt tokens/s (`Engine.rating`). A role engine
    (prefill, decode) carries 1/n of its role's rate whatever its capacity (the proxy's round robin,
    `round_robin_milli_rps`), so its k copies must each have its capacity (capacity_b ≥ capacity_a):
    the role then has k − 1 more replicas and no lower least capacity, where k copies of a weaker
    engine would lower the least capacity every replica of the role is held to."""
    return [engines[i] for i in undominated_indices(engines, capped)]


def undominated_indices(
    engines: list[Engine], capped: bool = False, tpot: list[int] | None = None
) -> list[int]:
    """Indices of the engines `undominated` keeps; with `tpot` (per engine), b must also have a TPOT no
    worse than a's, so that the swap keeps a front over TPOT too (deployment/mixed.py)."""
    t = tpot or [0] * len(engines)
    keep = []
    for i, a in enumerate(engines):
        dominated = False
        for j, b in enumerate(engines):
            if i == j or a.role != b.role or t[j] > t[i]:
                continue
            k = copies_fitting(a, b)
            each = 1 if a.role == "aggregated" else k  # round robin: each copy as strong as a
            # a prefill slot is not counted against a cap (a request holds it, then a decode slot):
            # the closed-loop rule is what the copies must not charge more of (`_cycle_safe`)
            held = capped and a.role != "prefill" and k * b.in_flight > a.in_flight
            if k < 1 or k * b.rating < each * a.rating or held:
                continue
            if capped and not (_queue_safe(a, b, k) and _cycle_safe(a, b)):
                continue
            equal = (
                k == 1
                and b.gpus == a.gpus
                and b.nodes == a.nodes
                and b.rating == a.rating
                and (not capped or a.role == "prefill" or b.in_flight == a.in_flight)
                and (not capped or b.queue_room_us == a.queue_room_us)
                and t[j] == t[i]
            )
            if not equal or j < i:
                dominated = True
                break
        if not dominated:
            keep.append(i)
    return keep


def _cycle_safe(a: Engine, b: Engine) -> bool:
    """Prefill engine b charges a capped client's closed-loop rule no more than a at any flow and any
    number of prefill replicas (`closed_loop_rule`): the chords of one spread (each engine's up to
    its own utilisation, where the balance keeps it: the same interpolant of one f), no longer lead
    or prefill, and no higher utilisation per rank (S_b / dp_b ≤ S_a / dp_a); more replicas of the
    role only lower the charge. Decode engines: k copies of b hold no more in flight than a and carry
    at least its rate each (`undominated`), so a slot is held no longer."""
    if a.role != "prefill" or not a.client_lines:
        return True
    n = min(len(a.client_lines), len(b.client_lines))  # one spread: one f, each to its own ends
    return (
        b.client_lines[:n] == a.client_lines[:n]
        and b.lead_us <= a.lead_us
        and b.prefill_us <= a.prefill_us
        and b.prefill_us * a.dp <= a.prefill_us * b.dp
    )


def _queue_safe(a: Engine, b: Engine, k: int) -> bool:
    """k copies of b hold as many requests as a and leave at least its room for the client's queue."""
    if a.queue_room_us is None or b.queue_room_us is None:
        return a.queue_room_us is None
    return k * b.in_flight == a.in_flight and b.queue_room_us >= a.queue_room_us


def preferred_utils(utils: Iterable[int]) -> list[int]:
    """gpu_memory_utilization indices of one table entry, preferred first: the largest value first.
    An entry's tables (TPOT, TTFT, tokens/s, memory used) are one row for every utilization, which
    only decides whether it starts, so engines of one entry at two utilizations tie on every
    deployment objective; this breaks the tie as the single-engine plan does, so that its launch
    line and the deployment's agree. That plan's objective chains (`objectives.DEFAULT_CHAINS`,
    serving) rank no utilization but `memory`, the KV headroom budget − used
    (`serving.encoder.ServingVars.objective_expr`), which the largest budget maximizes, and its
    decoder reads the largest that holds the chosen entry (`serving.encoder.largest_util`); SGLang and
    TensorRT-LLM are pinned at the largest (`ServingSpace.engine_util`). Utilizations are sorted
    (`serving.space.build_space`): index order is value order."""
    return sorted(utils, reverse=True)


def admissible_utils(space: ServingSpace, i: int) -> list[int]:
    """gpu_memory_utilization indices at which table entry `i` starts and meets the SLOs (empty: none),
    the preferred first (`preferred_utils`): an engine of entry `i` takes the first."""
    t, w = space.tables, space.workload
    if not t.evaluated[i]:
        return []
    if w.ttft_ms is not None and t.ttft_us[i] > units.us_down(w.ttft_ms / 1e3):
        return []
    if w.tpot_ms is not None and t.step_us[i] > units.us_down(w.tpot_ms / 1e3):
        return []
    need = max(t.mem_used_kib[i], t.mml_used_kib[i])
    if space.engine_of(i) != "vllm":  # SGLang / TensorRT-LLM rows are written at one utilization
        u = space.engine_util
        return [u] if need <= space.budget_kib[u] else []
    return preferred_utils(u for u, budget in enumerate(space.budget_kib) if need <= budget)
