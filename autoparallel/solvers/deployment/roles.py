"""Prefill and decode roles: the candidate engines of a disaggregated deployment space.

The same serving tables as the aggregated space (one per model and pool: shapes, runtimes,
max_num_seqs, memory from vLLM's accounting), read differently (perf/disagg.py has the physics):

decode engine of a shape   its entry of highest decode capacity among those that start (the KV
    cache holds max_num_seqs = b sequences of the workload, the transferred prompts included) and
    whose pure decode step T_d(b) meets the TPOT limit; capacity = dp · b / (osl · T_d(b)) requests/s.
prefill engine of a shape  its entry (runtime, chunk budget) of highest prompt tokens/s among those
    that start; capacity = dp · isl · ρ* / S_p, ρ* the M/D/1 utilisation at which queueing +
    prefill stay within the TTFT budget B = TTFT limit − request overhead − first decode step − X.

The budget is conservative so that any pair the solver forms meets the TTFT limit: the first decode
step is bounded by the TPOT limit (or, without one, the slowest decode candidate's step), and X is
the slowest KV transfer from this prefill shape to any decode candidate's TP over a GPU's NIC (over
NVLink when the whole cluster is one node). Without a TTFT limit a P rank runs at ρ = 1 (throughput).
P and D engines share the first KV-cache dtype of the options (the transfer moves raw blocks).
"""

from __future__ import annotations

import dataclasses
import math

from autoparallel.hardware import Cluster
from autoparallel.memory.vllm_config import resolve_batch_defaults
from autoparallel.perf import disagg
from autoparallel.perf.engine_support import nixl_role_problem
from autoparallel.perf.serving_efficiency import efficiency_for
from autoparallel.perf.serving_steps import ReplicaShape, StepTimes, replica_step_times, vllm_graph_max_batch
from autoparallel.solvers import units
from autoparallel.solvers.deployment.space import (
    MILLI,
    DeploymentSpace,
    Engine,
    FleetModel,
    engine_at,
    granularity,
    staircase,
    undominated,
)
from autoparallel.solvers.serving.space import ServingOptions, ServingSpace
from autoparallel.workload import Serving

ROLES = ("prefill", "decode")


@dataclasses.dataclass(frozen=True)
class RoleTimes:
    """Float-model times of one role engine (per data-parallel rank)."""

    prefill_s: float
    decode_s: float
    """Pure decode step at the engine's max_num_seqs."""
    budget_s: float = math.inf
    """Prefill engines: the TTFT budget of queueing + prefill their capacity was computed at."""


def _times(space: ServingSpace, s: int, r: int, b: int, m: int) -> StepTimes:
    shape, rt = space.shapes[s], space.runtimes[r]
    _, tokens = resolve_batch_defaults(
        space.rules, space.cluster.gpu, space.max_model_lens[m], space.batches[b], None
    )
    replica = ReplicaShape.vllm(
        shape.tp,
        shape.pp,
        shape.ep_ranks if shape.ep else 1,
        rt.quantization,
        rt.kv_cache_dtype,
        rt.enforce_eager,
        space.options.vllm_version,
        graph_max_batch=vllm_graph_max_batch(space.batches[b], tokens, space.cluster.gpu),
    )
    w = space.workload
    return replica_step_times(
        space.model,
        space.cluster,
        replica,
        batch=float(space.batches[b]),
        isl=w.isl,
        osl=w.osl,
        batched_tokens=tokens,
        prompt_spread=w.prompt_spread,
        context=w.running_context,
    )


def _starts(space: ServingSpace, i: int) -> list[int]:
    """gpu_memory_utilization indices at which entry i starts (memory only, no SLO)."""
    t = space.tables
    if not t.evaluated[i]:
        return []
    need = max(t.mem_used_kib[i], t.mml_used_kib[i])
    return [u for u, budget in enumerate(space.budget_kib) if need <= budget]


def _engine(
    space: ServingSpace, m: int, p: int, s: int, i: int, u: int, role: str, rating: int
) -> Engine | None:
    size = granularity(space, s)
    if size is None or rating <= 0:
        return None
    decode = role == "decode"
    return engine_at(
        space,
        m,
        p,
        i,
        u,
        size,
        role=role,
        capacity_milli_rps=rating if decode else 0,
        milli_tokens_per_s=rating * space.workload.osl if decode else 0,
        prefill_milli_tps=0 if decode else rating,
    )


def decode_engines(
    space: ServingSpace, m: int, p: int, times: dict[int, RoleTimes], concurrency: int | None = None
) -> list[Engine]:
    """The decode engine of every shape (module doc; with a `concurrency` cap, every entry on the
    shape's (in flight ↓, capacity ↑) front, `space.staircase`); `times` gets each engine's float times."""
    w = space.workload
    kv = space.options.kv_cache_dtypes[0]
    found: dict[int, list[tuple[int, int, int]]] = {}  # shape -> [(batch, rating, entry)]
    picked: dict[int, tuple[int, int, RoleTimes]] = {}  # entry -> (util, rating, times)
    for i in range(len(space.tables.evaluated)):
        s, r, b, mm = space.unflat(i)
        utils = _starts(space, i)
        if not utils or space.runtimes[r].kv_cache_dtype != kv or space.runtimes[r].engine != "vllm":
            continue  # roles are vLLM engines (NIXL KV transfer)
        if nixl_role_problem(space.model, space.shapes[s].pp, "decode") is not None:
            continue
        st = _times(space, s, r, b, mm)
        if w.tpot_ms is not None and units.us_up(st.decode_s) > units.us_down(w.tpot_ms / 1e3):
            continue
        dp = space.shapes[s].ep_replicas if space.shapes[s].ep else 1
        rating = math.floor(MILLI * dp * disagg.decode_capacity_rps(space.batches[b], w.osl, st.decode_s))
        found.setdefault(s, []).append((space.batches[b], rating, i))
        picked[i] = (utils[0], rating, RoleTimes(st.prefill_s, st.decode_s))
    out = []
    for s, entries in sorted(found.items()):
        dp = space.shapes[s].ep_replicas if space.shapes[s].ep else 1
        for i in staircase(entries, concurrency, dp):
            u, rating, rt = picked[i]
            e = _engine(space, m, p, s, i, u, "decode", rating)
            if e is not None:
                times[id(e)] = rt
                out.append(e)
    return out


def prefill_budget_s(
    fm: FleetModel, cluster: Cluster, pool: int, tp_prefill: int, decode: list[Engine], decode_s: float
) -> float:
    """TTFT budget of queueing + prefill on a P engine of `tp_prefill` (module doc); inf without a limit."""
    w = fm.workload
    if w.ttft_ms is None:
        return math.inf
    sub = cluster.pool_cluster(pool)
    same_node = len(cluster.pools) == 1 and cluster.pools[0].nodes == 1
    kv = decode[0].config.kv_cache_dtype if decode else "auto"
    transfer = max(
        (
            disagg.kv_transfer_s(
                fm.model, sub, kv, w.isl, tp_prefill=tp_prefill, tp_decode=d.tp, same_node=same_node
            )
            for d in decode
        ),
        default=0.0,
    )
    overhead = efficiency_for(sub.gpu).request_overhead_s
    return w.ttft_ms / 1e3 - overhead - decode_s - transfer


def prefill_engines(
    space: ServingSpace,
    fm: FleetModel,
    cluster: Cluster,
    m: int,
    p: int,
    decode: list[Engine],
    decode_s: float,
    times: dict[int, RoleTimes],
) -> list[Engine]:
    """The prefill engine of every shape (module doc)."""
    w = space.workload
    kv = space.options.kv_cache_dtypes[0]
    best: dict[int, tuple[int, int, int, RoleTimes]] = {}
    for i in range(len(space.tables.evaluated)):
        s, r, b, mm = space.unflat(i)
        utils = _starts(space, i)
        if not utils or space.runtimes[r].kv_cache_dtype != kv or space.runtimes[r].engine != "vllm":
            continue  # roles are vLLM engines (NIXL KV transfer)
        if nixl_role_problem(space.model, space.shapes[s].pp, "prefill") is not None:
            continue
        st = _times(space, s, r, b, mm)
        budget = prefill_budget_s(fm, cluster, p, space.shapes[s].tp, decode, decode_s)
        dp = space.shapes[s].ep_replicas if space.shapes[s].ep else 1
        per_rank = (
            w.isl / st.prefill_s
            if math.isinf(budget)
            else disagg.prefill_capacity_tokens_per_s(st.prefill_s, budget, w.isl)
        )
        rating = math.floor(MILLI * dp * per_rank)
        if s not in best or rating > best[s][0]:
            best[s] = (rating, i, utils[0], RoleTimes(st.prefill_s, st.decode_s, budget))
    out = []
    for s, (rating, i, u, rt) in sorted(best.items()):
        e = _engine(space, m, p, s, i, u, "prefill", rating)
        if e is not None:
            times[id(e)] = rt
            out.append(e)
    return out


@dataclasses.dataclass
class RoleSpace:
    """A disaggregated deployment space and the float times of its engines (by engine index)."""

    space: DeploymentSpace
    times: list[RoleTimes]
    decode_step_bound_s: list[float]
    """Per model: the first decode step the prefill budget assumed."""


def build_role_space(
    models: tuple[FleetModel, ...] | list[FleetModel],
    cluster: Cluster,
    options: ServingOptions | None = None,
    *,
    prune: bool = True,
    deadline: float | None = None,
) -> RoleSpace:
    """Prefill and decode candidate engines of every model on every pool (`prune`: undominated only;
    `deadline`: as `build_deployment_space` takes it).

    Raises:
        InputError / InfeasibleError / SolverTimeoutError: as `build_deployment_space`.
    """
    from autoparallel.solvers.deployment.space import build_deployment_space

    fleet = tuple(models)
    aggregated = build_deployment_space(fleet, cluster, options, prune=prune, deadline=deadline)  # + tables
    times: dict[int, RoleTimes] = {}
    engines: list[Engine] = []
    bounds: list[float] = []
    for m, fm in enumerate(fleet):
        decode = {
            p: decode_engines(aggregated.serving[m, p], m, p, times, fm.concurrency)
            for p in range(len(cluster.pools))
        }
        every_decode = [e for d in decode.values() for e in d]
        slowest = max((times[id(e)].decode_s for e in every_decode), default=0.0)
        bound = fm.workload.tpot_ms / 1e3 if fm.workload.tpot_ms is not None else slowest
        bounds.append(bound)
        for p in range(len(cluster.pools)):
            serving = aggregated.serving[m, p]
            prefill = prefill_engines(serving, fm, cluster, m, p, every_decode, bound, times)
            for role_engines in (prefill, decode[p]):
                engines += undominated(role_engines, fm.concurrency is not None) if prune else role_engines
    space = dataclasses.replace(
        aggregated, engines=tuple(engines), disaggregated=True, dominated=0, left_out=aggregated.left_out
    )
    space.unpruned_enumeration_size = space.enumeration_size()
    return RoleSpace(space, [times[id(e)] for e in engines], bounds)


def ttft_below_transfer(rs: RoleSpace, workload: Serving, cluster: Cluster) -> str:
    """When the TTFT limit is below the fastest KV transfer + first decode step + overhead, the numbers."""
    if workload.ttft_ms is None:
        return ""
    fm = rs.space.models[0]
    sub = cluster.pool_cluster(0)
    tps = sorted({e.tp for e in rs.space.engines} | {1})
    same_node = len(cluster.pools) == 1 and cluster.pools[0].nodes == 1
    kv = rs.space.engines[0].config.kv_cache_dtype if rs.space.engines else "auto"
    fastest = min(
        disagg.kv_transfer_s(fm.model, sub, kv, workload.isl, tp_prefill=t, tp_decode=t, same_node=same_node)
        for t in tps
    )
    overhead = efficiency_for(sub.gpu).request_overhead_s
    first = min((t.decode_s for t in rs.times), default=0.0)
    floor_ms = (fastest + overhead + first) * 1e3
    if workload.ttft_ms >= floor_ms:
        return ""
    return (
        f"TTFT limit {workload.ttft_ms:g} ms < KV transfer {fastest * 1e3:.1f} ms "
        f"({workload.isl} prompt tokens {'over NVLink' if same_node else 'over the NIC'}) "
        f"+ first decode step {first * 1e3:.1f} ms + request overhead {overhead * 1e3:.0f} ms "
        f"= {floor_ms:.1f} ms, before any prefill"
    )
