"""Prefill and decode roles: the candidate engines of a disaggregated deployment space.

The same serving tables as the aggregated space (one per model and pool: shapes, runtimes,
max_num_seqs, memory from vLLM's accounting), read differently (perf/disagg.py has the physics):

decode engine of a shape   its entry of highest decode capacity among those that start (the KV
    cache holds max_num_seqs = b sequences of the workload, the transferred prompts included) and
    whose pure decode step T_d(b) meets the TPOT limit; capacity = dp · min(b / (osl · T_d(b)),
    link rate, slot rate) requests/s, the link rate what a rank's link carries of the KV bytes it
    receives per request (perf/disagg.py `link_rate_rps`), the slot rate (at an arrival rate with a
    TTFT limit) the one whose wait for a free slot fits `decode_slot_room_s` (`rated_at`).
prefill engine of a shape  its entry (runtime, chunk budget) of highest prompt tokens/s among those
    that start; capacity = dp · isl · min(ρ* / S_p, link rate), ρ* the M/G/n utilisation (its dp
    ranks one queue) at which queueing + prefill stay within the TTFT budget B = TTFT limit − request
    overhead − first decode step (and 1 ms where the decode slots are rated) − X, S_p the mean
    prefill time and its spread c² over the workload's prompt lengths (`prefill_spread`), the link
    rate what a rank's link carries of the KV bytes it sends per request to the decode candidate
    that takes the most from it.

The budget is conservative so that any pair the solver forms meets the TTFT limit: the first decode
step is bounded by the TPOT limit (or, without one, the slowest decode candidate's step within the
cap, `loosest_bound_s`), and X is
the slowest KV transfer from this prefill shape to any decode candidate's TP over the slower of this
pool's NIC (within the GPU's own link) and that of the slowest-networked pool a decode engine may run
on (the D rank pulls the KV over both ends' links, perf/disagg.py `pair_link`; the proxy pairs every
P with every D, round robin), over NVLink when the whole cluster is one node. The link rates are
each end's own: a P rank's NIC carries what it sends, a D rank's what it receives. Without a TTFT
limit a P rank runs at ρ = 1 (throughput), still within its link rate.

Link floors (`link_floors`): which pools "a decode engine may run on" is itself a choice. The space is
built once per distinct KV-transfer link speed L of the pools that hold a decode engine (their own
`disagg.transfer_link` rates; a one-node cluster has one): decode engines only on pools whose link
is at least L, every prefill engine rated at that floor. A deployment whose decode engines' slowest
pool has link L is in floor L's space with exactly its pairs' worst link, so the union of the floors'
spaces is the set of deployments whose every (P, D) pair meets the TTFT budget under round robin;
`RoleSpace.tiers` lists them (the slowest floor, every pool, is `RoleSpace.space` itself), and
disagg_plan.solve_roles keeps the best of their optima.

First-step tiers (`step_ladder`): the first decode step's bound is a choice too. At the TPOT limit a
shape's decode engine is its highest-capacity entry, whose step sits near the limit, and the prefill
budget pays that step for every pair: Llama-3.1-70B on 1x8xH100 at TTFT 100 ms (128 / 2,048 tokens)
planned at TPOT 30 ms and had no prefill engine at 38 or 60 ms. So with a TTFT limit each floor's
space is built again at faster bounds b (geometric from the loosest bound down to the fastest decode
candidate's step, and where each prefill shape just fits or carries a set load, `critical_bounds`;
snapped to candidates' steps): decode engines whose pure decode step is within b
(each shape's highest-capacity such entry, its slots rated within max(1 ms, b − step)), prefill
engines rated at the budget with b for the first step. Each tier's every pair meets the TTFT limit,
so the union of the tiers is a larger disaggregated space that holds the one without them; a ladder,
not every distinct step, so that the solves stay few (`STEP_TIERS` − 1 geometric bounds and three
per prefill shape at most, fewer after snapping to steps), and a faster tier is kept only where it
raises a prefill engine's rating by more than `STEP_TIER_GAIN` over the last kept (`keep_tiers`,
`raises_prefill`): its decode engines are fewer, so without that gain it buys little. Each entry's
times are computed once for every tier (`decode_candidates`, `prefill_candidates`).
KV-cache dtypes (`kv_dtypes`): P and D engines that exchange KV share one KV-cache dtype (vLLM's
NIXL connector moves the cache blocks as stored, and its handshake refuses a peer whose compatibility
hash differs, the hash taking `cache_dtype`: nixl_connector.py `compute_nixl_compatibility_hash`), so
the tiers above are built once per allowed dtype (`LinkFloor.kv_cache_dtype`) and their union is the
space: allowing more dtypes never plans worse, and their order does not matter.

NVLink (`single_node`): the KV moves over NVLink where every pool that can hold an engine of the
model (a prefill or decode candidate, `usable_pools`) adds up to one node: a pool that cannot hold
the model (a T4 beside an H200 node) does not move the transfer onto the NIC.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import math
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Any, TypeVar

import numpy as np

from autoparallel.hardware import Cluster
from autoparallel.memory.vllm_config import resolve_batch_defaults
from autoparallel.perf import disagg
from autoparallel.perf.engine_support import nixl_role_problem
from autoparallel.perf.serving import slot_variability
from autoparallel.perf.serving_efficiency import efficiency_for
from autoparallel.perf.serving_steps import (
    ReplicaShape,
    StepTimes,
    replica_step_times,
    rotation_s,
)
from autoparallel.perf.slot_queue import SlotQueue, rate_within_wait
from autoparallel.solvers import units
from autoparallel.solvers.deployment.client_rules import prefill_client_lines
from autoparallel.solvers.deployment.space import (
    MILLI,
    DeploymentSpace,
    Engine,
    FleetModel,
    engine_at,
    granularity,
    preferred_utils,
    staircase,
    undominated,
)
from autoparallel.solvers.serving.space import ServingOptions, ServingSpace, vllm_replica
from autoparallel.solvers.settings import check_deadline
from autoparallel.workload import Serving, lengths_at

DEADLINE_STRIDE = 64
"""Table entries between two deadline checks while the role engines are built."""
SPREAD_STRATA = 32
"""Prompt lengths at which `prefill_spread` times the prefill: probabilities (i + ½) / 32."""


@dataclasses.dataclass(frozen=True)
class RoleTimes:
    """Float-model times of one role engine (per data-parallel rank)."""

    prefill_s: float
    """Prefill engines: the mean prefill of one prompt over the workload's prompt lengths."""
    decode_s: float
    """Pure decode step at the engine's max_num_seqs."""
    budget_s: float = math.inf
    """Prefill engines: the TTFT budget of queueing + prefill their capacity was computed at."""
    service_cv2: float = 0.0
    """Prefill engines: the squared coefficient of variation of the prefill time (0: one length)."""
    ranks: int = 1
    """Prefill engines: the data-parallel ranks whose queues are pooled (perf/disagg.py: M/G/n)."""
    link_rps: float = math.inf
    """Requests/s one rank's link carries of the KV bytes it sends (P) or receives (D) per request."""
    slot_queue: SlotQueue | None = None
    """Decode engines at an arrival rate with a TTFT limit: the slot queue of one replica, its data
    ranks' slots pooled (`decode_candidates`, `rated_at`); None: rated at full load."""
    slot_rps: float = math.inf
    """Decode engines: requests/s one rank carries with the wait for a slot within
    `decode_slot_room_s` (inf without a `slot_queue`)."""


def prefill_rank_tokens_per_s(t: RoleTimes, isl: int) -> float:
    """Prompt tokens/s one rank of a prefill engine carries (module doc): at its TTFT budget (full
    load without one), within its link rate."""
    queue = (
        isl / t.prefill_s
        if math.isinf(t.budget_s)
        else disagg.prefill_capacity_tokens_per_s(t.prefill_s, t.budget_s, isl, t.service_cv2, t.ranks)
    )
    return min(queue, isl * t.link_rps)


def decode_rank_rps(t: RoleTimes, batch: int, osl: int) -> float:
    """Requests/s one rank of a decode engine finishes (Little's law), within its link rate and, at an
    arrival rate with a TTFT limit, the rate whose wait for a slot fits `decode_slot_room_s`."""
    return min(disagg.decode_capacity_rps(batch, osl, t.decode_s), t.link_rps, t.slot_rps)


DECODE_SLOT_WAIT_S = 1e-3
"""The wait for a decode slot the prefill budget keeps (`budget_after_lead_s`) and a decode engine is
rated within at least (`decode_slot_room_s`). The wait is steep in the load: Qwen3-8B tp1 with 256
slots waits 0.02 ms at 10.0 req/s and 21 ms at 10.84 (full load 11.67), so a millisecond keeps most of
the capacity (10.42) while it costs the TTFT budget next to nothing; keeping a whole decode step
instead refused tight limits a plan meets (Llama-3.1-8B on 1x8xH100, TTFT 130 ms, at 50 req/s)."""


def decode_slot_room_s(workload: Serving, decode_s: float, bound_s: float | None = None) -> float:
    """The wait for a free slot a decode engine of pure decode step `decode_s` is rated within, where
    the arrivals come at a rate with a TTFT limit (`Serving.slot_rated`; 0 otherwise: rated at full
    load): what its step leaves of the first-step bound `bound_s` of its tier (`step_ladder`; None: the
    TPOT limit), which the prefill budget keeps for the first decode step (`budget_after_lead_s`), and
    at least `DECODE_SLOT_WAIT_S`, which the budget keeps too. A D engine admits a transferred request
    only while fewer than max_num_seqs run (vLLM V1 `Scheduler.schedule`, NIXL's requests included), so
    loaded to its full-load rate a request waits without bound (perf/slot_queue.py: 256 slots at 98% of
    it wait about a second)."""
    if not workload.slot_rated:
        return 0.0
    limit = (
        bound_s if bound_s is not None else workload.tpot_ms / 1e3 if workload.tpot_ms is not None else None
    )
    return max(DECODE_SLOT_WAIT_S, limit - decode_s if limit is not None else 0.0)


def kv_dtypes(options: ServingOptions) -> list[str]:
    """The KV-cache dtypes the role spaces are built for (module doc): each allowed one once, `auto`
    first and the others by name, whatever the options' order (ties between dtypes' optima keep the
    first)."""
    return sorted(set(options.kv_cache_dtypes), key=lambda d: (d != "auto", d))


def _role_entries(
    space: ServingSpace, role: str, deadline: float | None, kv: str | None = None
) -> Iterator[tuple[int, int]]:
    """(entry, the utilization index it takes: the largest it starts at) of every entry of `space` that
    can be a `role` engine: it starts, of a vLLM runtime (NIXL KV transfer) with KV-cache dtype `kv`
    (None: the options' first), a shape vLLM's NIXL connector runs in that role
    (`perf.engine_support.nixl_role_problem`).

    Raises:
        SolverTimeoutError: `deadline` (a `time.perf_counter()`) passed (`settings.check_deadline`).
    """
    kv = kv if kv is not None else space.options.kv_cache_dtypes[0]
    for i in range(len(space.tables.evaluated)):
        if i % DEADLINE_STRIDE == 0:
            check_deadline(deadline)
        s, r, _, _ = space.unflat(i)
        utils = _starts(space, i)
        if not utils or space.runtimes[r].kv_cache_dtype != kv or space.runtimes[r].engine != "vllm":
            continue
        if nixl_role_problem(space.model, space.shapes[s].pp, role) is None:
            yield i, utils[0]


@dataclasses.dataclass(frozen=True)
class DecodeCandidate:
    """An entry that is a decode engine at the loosest first-step bound (`decode_candidates`), its
    times computed once for every tier (`rated_at` rates its slots at a tier's bound)."""

    entry: int
    util: int
    """The gpu_memory_utilization index it takes: the largest it starts at (`_starts`)."""
    times: RoleTimes
    """Its float times, the slot queue set where slot-rated (`slot_rps` not yet: `rated_at`)."""
    dp: int
    batch: int
    """max_num_seqs."""


def decode_candidates(
    space: ServingSpace,
    rated: Serving,
    *,
    same_node: bool,
    deadline: float | None = None,
    kv: str | None = None,
) -> list[DecodeCandidate]:
    """Every entry of `space` that is a decode engine: one that starts, of a vLLM runtime (NIXL KV
    transfer) with KV-cache dtype `kv` (None: the options' first), a shape vLLM's NIXL connector runs as a
    decode engine (`perf.engine_support.nixl_role_problem`: no pipeline stages), whose pure decode step
    meets the TPOT limit. Its link rate is what a rank's link (NVLink where `same_node`, else the GPU's
    NIC) carries of the KV it receives per request; at an arrival rate with a TTFT limit (`rated`, the
    model's workload: `Serving.slot_rated`) its slots are a birth–death queue (perf/slot_queue.py, as
    `deployment.space.rated_milli_tps` rates an aggregated engine) whose cycle is osl pure decode
    steps, a lone request's at a running batch of one (`rated_at` rates it at a tier's bound).

    Raises:
        SolverTimeoutError: `deadline` (a `time.perf_counter()`) passed (`settings.check_deadline`).
    """
    w = space.workload
    link = disagg.transfer_link(space.cluster, same_node=same_node)
    kv = kv if kv is not None else space.options.kv_cache_dtypes[0]
    received: dict[int, float] = {}  # decode TP -> KV bytes a rank receives per request
    out = []
    for i, util in _role_entries(space, "decode", deadline, kv):
        s, r, b, mm = space.unflat(i)
        st = _times(space, s, r, b, mm)
        if w.tpot_ms is not None and units.us_up(st.decode_s) > units.us_down(w.tpot_ms / 1e3):
            continue
        shape = space.shapes[s]
        if shape.tp not in received:
            received[shape.tp] = disagg.kv_received_bytes_per_rank(space.model, kv, w.isl, tp_decode=shape.tp)
        rt = RoleTimes(st.prefill_s, st.decode_s, link_rps=disagg.link_rate_rps(link, received[shape.tp]))
        dp = shape.ep_replicas if shape.ep else 1
        batch = space.batch_value(s, r, b, mm)
        if rated.slot_rated:
            lone = w.osl * _times(space, s, r, b, mm, batch=1.0).decode_s
            queue = (batch * dp, lone, w.osl * st.decode_s, slot_variability(rated, split=True))
            rt = dataclasses.replace(rt, slot_queue=queue)
        out.append(DecodeCandidate(i, util, rt, dp, batch))
    return out


def rated_at(c: DecodeCandidate, rated: Serving, bound_s: float | None = None) -> RoleTimes | None:
    """`c`'s times within the first-step bound `bound_s` of a faster tier (`step_ladder`; None: the
    loosest), its slots (where slot-rated) at the rate whose mean wait fits `decode_slot_room_s` at
    that bound; None where its pure decode step exceeds the bound."""
    t = c.times
    if bound_s is not None and units.us_up(t.decode_s) > units.us_down(bound_s):
        return None
    if t.slot_queue is None:
        return t
    per_rank = rate_within_wait(*t.slot_queue, decode_slot_room_s(rated, t.decode_s, bound_s)) / c.dp
    return dataclasses.replace(t, slot_rps=per_rank)


def single_node(cluster: Cluster, pools: Collection[int] | None = None) -> bool:
    """Whether every KV transfer stays inside one node (NVLink): `pools`, the pools that can hold an
    engine of the model (`usable_pools`; None or empty: every pool), add up to one node."""
    used = pools if pools else range(len(cluster.pools))
    return sum(cluster.pools[q].nodes for q in used) == 1


def usable_pools(*found: Mapping[tuple[Any, ...], Collection[object]]) -> set[int]:
    """The pools that hold a prefill or decode candidate of some model (`found`: candidates by
    (..., pool) keys, the pool last): where an engine of either role may run."""
    return {int(key[-1]) for by_key in found for key, cs in by_key.items() if cs}


def _replica(space: ServingSpace, s: int, r: int, b: int, m: int) -> tuple[ReplicaShape, int]:
    shape, rt = space.shapes[s], space.runtimes[r]
    batch = space.batch_value(s, r, b, m)
    _, tokens = resolve_batch_defaults(space.rules, space.cluster.gpu, space.max_model_lens[m], batch, None)
    return vllm_replica(space, shape, rt, batch, tokens), tokens


def _times(space: ServingSpace, s: int, r: int, b: int, m: int, batch: float | None = None) -> StepTimes:
    """The float model's times of entry (s, r, b, m), at its max_num_seqs or at a running `batch`."""
    replica, tokens = _replica(space, s, r, b, m)
    w = space.workload
    return replica_step_times(
        space.model,
        space.cluster,
        replica,
        batch=float(space.batch_value(s, r, b, m)) if batch is None else batch,
        isl=w.isl,
        osl=w.osl,
        batched_tokens=tokens,
        prompt_spread=w.prompt_spread,
        context=w.running_context,
    )


def spread_lengths(workload: Serving) -> list[float]:
    """Prompt lengths at probabilities (i + ½) / SPREAD_STRATA of the workload's length distribution,
    scaled to its mean `isl` as the replay draws them (perf/serving_load.py `draw_lengths`: the
    measured `isl_quantiles` shape, else a log-normal of spread `isl_cv` cut at LENGTH_CAP × the
    mean); [] for prompts of one length."""
    if workload.prompt_spread <= 0:
        return []
    probs = (np.arange(SPREAD_STRATA) + 0.5) / SPREAD_STRATA
    lengths = lengths_at(probs, workload.isl, workload.isl_cv, workload.isl_quantiles)
    return [float(x) for x in lengths]


def prefill_spread(
    space: ServingSpace, s: int, r: int, b: int, m: int, prefill_s: float
) -> tuple[float, float]:
    """(mean prefill time, its squared coefficient of variation) of entry (s, r, b, m) over the
    workload's prompt lengths (`spread_lengths`), one prompt alone through the replica as the serving
    tables time it (`prefill_s`, `perf.serving_steps.replica_step_times`: `rotation_s` of the prompt in
    ⌈tokens / budget⌉ chunks), the spread by `perf.disagg.prefill_service_spread`; (`prefill_s`, 0)
    for prompts of one length."""
    w = space.workload
    lengths = spread_lengths(w)
    if not lengths:
        return prefill_s, 0.0
    replica, tokens = _replica(space, s, r, b, m)

    def alone(n: float) -> float:
        return rotation_s(
            space.model,
            space.cluster,
            replica,
            decode_seqs=0.0,
            context_tokens=w.running_context,
            prefill_tokens=n,
            prefill_context=n / 2.0,
            steps=float(math.ceil(n / tokens)),
            prefill_longest=n,
        )[0]

    ratio, cv2 = disagg.prefill_service_spread(
        alone(float(w.isl)), [alone(n) for n in lengths], lengths, w.prompt_spread
    )
    return prefill_s * ratio, cv2


def _starts(space: ServingSpace, i: int) -> list[int]:
    """gpu_memory_utilization indices at which entry i starts (memory only, no SLO), the preferred first
    (`space.preferred_utils`: the largest, as an aggregated engine takes)."""
    t = space.tables
    if not t.evaluated[i]:
        return []
    need = max(t.mem_used_kib[i], t.mml_used_kib[i])
    return preferred_utils(u for u, budget in enumerate(space.budget_kib) if need <= budget)


def _engine(
    space: ServingSpace, m: int, p: int, s: int, i: int, u: int, role: str, rating: int
) -> Engine | None:
    """The `role` engine of entry i (shape s, utilization index u) rated `rating`; None when its size
    breaks node granularity as the deployment planner packs (`space.granularity`:
    every power of two up to the node / NVLink domain, 8 and 16 GPUs on a GB200 NVL36 too, under the
    encoder's per-size packing rules, `encoder.post_node_packing`) or it carries nothing."""
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


def rating_ceiling(c: DecodeCandidate, osl: int) -> int:
    """`c`'s rating (milli-requests/s) at full load, a bound on its slot-rated one (`decode_rank_rps`):
    what the decode spaces need not slot-rate where a better entry of its shape is known."""
    return math.floor(
        MILLI * c.dp * min(disagg.decode_capacity_rps(c.batch, osl, c.times.decode_s), c.times.link_rps)
    )


def decode_engines(
    space: ServingSpace,
    m: int,
    p: int,
    times: dict[int, RoleTimes],
    fm: FleetModel,
    candidates: list[DecodeCandidate],
    bound_s: float | None = None,
) -> list[Engine]:
    """The decode engine of every shape (module doc) among `candidates` (`decode_candidates`) within
    the first-step bound `bound_s` (`rated_at`; None: the loosest): its entry of highest capacity (with
    fm's concurrency cap, every entry on the shape's (in flight ↓, capacity ↑) front,
    `space.staircase`); `times` gets each engine's float times."""
    found: dict[int, list[tuple[int, int, int]]] = {}  # shape -> [(batch, rating, entry)]
    picked: dict[int, tuple[int, int, RoleTimes]] = {}  # entry -> (util, rating, times)
    osl = space.workload.osl

    def ceiling(c: DecodeCandidate) -> int:
        return rating_ceiling(c, osl)

    # without a cap only each shape's highest rating is kept (`staircase`): no need to slot-rate an
    # entry whose full-load rating is below the best found (the bisection, `rated_at`, is the cost)
    order = (
        candidates if fm.concurrency is not None else sorted(candidates, key=lambda c: (-ceiling(c), c.entry))
    )
    best: dict[int, int] = {}  # shape -> its highest rating so far (without a cap)
    for c in order:
        shape = space.unflat(c.entry)[0]
        if fm.concurrency is None and ceiling(c) < best.get(shape, -1):
            continue
        rt = rated_at(c, fm.workload, bound_s)
        if rt is None:
            continue
        rating = math.floor(MILLI * c.dp * decode_rank_rps(rt, c.batch, osl))
        best[shape] = max(best.get(shape, -1), rating)
        found.setdefault(shape, []).append((c.batch, rating, c.entry))
        picked[c.entry] = (c.util, rating, rt)
    out = []
    for s, entries in sorted(found.items()):
        dp = space.shapes[s].ep_replicas if space.shapes[s].ep else 1
        for i in staircase(entries, fm.concurrency, dp):
            u, rating, rt = picked[i]
            e = _engine(space, m, p, s, i, u, "decode", rating)
            if e is not None:
                times[id(e)] = rt
                out.append(e)
    return out


@dataclasses.dataclass(frozen=True)
class LinkFloor:
    """A floor L on the KV-transfer link of the pools a deployment's decode engines run on (module doc)."""

    bytes_per_s: float
    """L: the floor pool's `disagg.transfer_link` rate (NVLink on a one-node cluster, else its NIC
    within the GPU's own link)."""
    gbps: float
    """The floor pool's nominal link, GB/s (its NVLink figure as the cluster prints it, or the lesser
    of its IB and NVLink / PCIe figures: a GPU's cross-node copy leaves through both)."""
    decode_pools: tuple[int, ...]
    """The pools at or above the floor that hold a decode engine: those the prefill budget pairs with."""
    slowest: bool
    """The floor of the slowest decode pool: decode engines on every pool (the conservative space)."""
    below: tuple[int, ...] = ()
    """The pools that hold a decode engine on a link slower than the floor (left out of its space)."""
    kv_cache_dtype: str | None = None
    """The KV-cache dtype its prefill and decode engines share (module doc); None where one is allowed."""

    def label(self) -> str:
        """`decode on pools at >= 50 GB/s (pool 0)`: which decode pools the prefill budget assumed (and
        `, KV cache fp8` where several dtypes are allowed)."""
        pools = ", ".join(map(str, self.decode_pools)) or "none"
        noun = "pool" if len(self.decode_pools) == 1 else "pools"
        kv = f", KV cache {self.kv_cache_dtype}" if self.kv_cache_dtype is not None else ""
        return f"decode on pools at >= {self.gbps:g} GB/s ({noun} {pools}){kv}"


def _pool_link(cluster: Cluster, pool: int, same_node: bool | None = None) -> tuple[float, float]:
    """(`disagg.transfer_link` rate, nominal GB/s) of pool `pool`'s KV-transfer link (`same_node`:
    over NVLink; None: `single_node(cluster)`)."""
    same_node = single_node(cluster) if same_node is None else same_node
    sub = cluster.pool_cluster(pool)
    return disagg.transfer_link(sub, same_node=same_node).bytes_per_s, nominal_link_gbps(sub, same_node)


def nominal_link_gbps(sub: Cluster, same_node: bool) -> float:
    """A pool's KV-transfer link as the cluster prints it, GB/s: NVLink inside one node, else the
    lesser of its IB and its GPU's own (NVLink / PCIe) link, which a cross-node copy crosses both
    (`disagg.transfer_link`): an L40S pool with 800 Gb/s NICs reads 32, not 100."""
    return sub.intra_node_gbps if same_node else min(sub.inter_node_gbps, sub.intra_node_gbps)


def link_floors(
    cluster: Cluster,
    decode_pools: Collection[int],
    *,
    same_node: bool | None = None,
    kv_cache_dtype: str | None = None,
) -> list[LinkFloor]:
    """One floor per distinct KV-transfer link speed of `decode_pools` (the pools that hold a decode
    engine), fastest first, each with the pools at or above it (module doc); one floor over every
    pool when no pool holds a decode engine. `same_node`: the transfers stay on NVLink (None:
    `single_node(cluster)`); `kv_cache_dtype`: the dtype its engines share, where several are allowed."""
    links = {q: _pool_link(cluster, q, same_node) for q in range(len(cluster.pools))}
    speeds = sorted({links[q][0] for q in decode_pools}, reverse=True)
    if not speeds:
        slow = min(links.values())
        return [LinkFloor(slow[0], slow[1], (), True, kv_cache_dtype=kv_cache_dtype)]
    return [
        LinkFloor(
            speed,
            min(links[q][1] for q in decode_pools if links[q][0] == speed),
            tuple(sorted(q for q in decode_pools if links[q][0] >= speed)),
            k == len(speeds) - 1,
            tuple(sorted(q for q in decode_pools if links[q][0] < speed)),
            kv_cache_dtype,
        )
        for k, speed in enumerate(speeds)
    ]


def slowest_decode_pool(
    cluster: Cluster,
    pool: int,
    decode_pools: Collection[int] | None = None,
    same_node: bool | None = None,
) -> Cluster:
    """The pool (as a single-pool cluster) a P engine of pool `pool` may pair with whose KV transfer
    link is the slowest (perf/disagg.py `pair_link`), among `decode_pools` (None: every pool of the
    cluster, any of which may hold the decode engine) and `pool` itself."""
    same_node = single_node(cluster) if same_node is None else same_node
    pools = sorted({pool, *(range(len(cluster.pools)) if decode_pools is None else decode_pools)})
    subs = [cluster.pool_cluster(q) for q in pools]
    return min(subs, key=lambda c: disagg.transfer_link(c, same_node=same_node).bytes_per_s)


def prefill_budget_s(
    fm: FleetModel,
    cluster: Cluster,
    pool: int,
    tp_prefill: int,
    decode: list[Engine],
    decode_s: float,
    pp_prefill: int = 1,
    *,
    decode_pools: Collection[int] | None = None,
    same_node: bool | None = None,
) -> float:
    """TTFT budget of queueing + prefill on a P engine of `tp_prefill` on pool `pool` (module doc): the
    limit less the first decode step `decode_s` and `prefill_lead_s`; inf without a limit."""
    if fm.workload.ttft_ms is None:
        return math.inf
    lead = prefill_lead_s(
        fm, cluster, pool, tp_prefill, decode, pp_prefill, decode_pools=decode_pools, same_node=same_node
    )
    return budget_after_lead_s(fm, decode_s, lead)


def budget_after_lead_s(fm: FleetModel, decode_s: float, lead_s: float) -> float:
    """The TTFT limit less the first decode step `decode_s` (the bound of every decode candidate's: the
    TPOT limit, or the slowest step), `DECODE_SLOT_WAIT_S` where the decode engines are rated by their
    wait for a slot (a D engine's step and wait then stay within the bound plus it,
    `decode_slot_room_s`), and a prefill engine's lead (`prefill_lead_s`); inf without a limit."""
    limit = fm.workload.ttft_ms
    if limit is None:
        return math.inf
    return limit / 1e3 - decode_s - slot_reserve_s(fm.workload) - lead_s


def slot_reserve_s(workload: Serving) -> float:
    """What the prefill budget keeps for a decode slot's wait (`budget_after_lead_s`)."""
    return DECODE_SLOT_WAIT_S if workload.slot_rated else 0.0


def prefill_lead_s(
    fm: FleetModel,
    cluster: Cluster,
    pool: int,
    tp_prefill: int,
    decode: list[Engine],
    pp_prefill: int = 1,
    *,
    decode_pools: Collection[int] | None = None,
    same_node: bool | None = None,
) -> float:
    """What a request through a P engine of `tp_prefill` on pool `pool` spends outside the engines'
    queues and slots: the request overhead and the slowest KV transfer to a decode TP of `decode` at
    the slowest link of a pair with `decode_pools` (the pools that hold decode engines; None: every
    pool, `slowest_decode_pool`); `same_node`: over NVLink (None: `single_node(cluster)`)."""
    w = fm.workload
    sub = cluster.pool_cluster(pool)
    same_node = single_node(cluster) if same_node is None else same_node
    far = slowest_decode_pool(cluster, pool, decode_pools, same_node)
    kv = decode[0].config.kv_cache_dtype if decode else "auto"
    transfer = max(
        (
            disagg.kv_transfer_s(
                fm.model,
                sub,
                kv,
                w.isl,
                tp_prefill=tp_prefill,
                tp_decode=tp,
                same_node=same_node,
                pp_prefill=pp_prefill,
                decode_cluster=far,
            )
            # at one link, the transfer depends on the decode side's TP alone
            for tp in {d.tp for d in decode}
        ),
        default=0.0,
    )
    return efficiency_for(sub.gpu).request_overhead_s + transfer


def prefill_link_rps(
    fm: FleetModel,
    cluster: Cluster,
    pool: int,
    tp_prefill: int,
    pp_prefill: int,
    decode: list[Engine],
    same_node: bool | None = None,
) -> float:
    """Requests/s a P rank's link carries when every request goes to the decode candidate that reads
    the most from it (module doc; inf without decode candidates)."""
    same_node = single_node(cluster) if same_node is None else same_node
    link = disagg.transfer_link(cluster.pool_cluster(pool), same_node=same_node)
    kv = decode[0].config.kv_cache_dtype if decode else "auto"
    sent = max(
        (
            disagg.kv_sent_bytes_per_rank(
                fm.model, kv, fm.workload.isl, tp_prefill=tp_prefill, tp_decode=tp, pp_prefill=pp_prefill
            )
            for tp in {d.tp for d in decode}
        ),
        default=0.0,
    )
    return disagg.link_rate_rps(link, sent)


@dataclasses.dataclass(frozen=True)
class PrefillCandidate:
    """An entry that is a prefill engine (`prefill_candidates`), its times computed once for every
    first-step tier (`prefill_engines` rates it at a tier's budget)."""

    entry: int
    shape: int
    util: int
    """The gpu_memory_utilization index it takes: the largest it starts at (`_starts`)."""
    prefill_s: float
    """The mean prefill of one prompt over the workload's prompt lengths (`prefill_spread`)."""
    service_cv2: float
    decode_s: float


def prefill_candidates(
    space: ServingSpace, *, deadline: float | None = None, kv: str | None = None
) -> list[PrefillCandidate]:
    """Every entry of `space` that is a prefill engine: one that starts, of a vLLM runtime (NIXL KV
    transfer) with KV-cache dtype `kv` (None: the options' first), a shape vLLM's NIXL connector runs as a
    prefill engine (`perf.engine_support.nixl_role_problem`), with its mean prefill and spread.

    Raises:
        SolverTimeoutError: `deadline` (a `time.perf_counter()`) passed (`settings.check_deadline`).
    """
    spread: dict[tuple[int, int, int], tuple[float, float]] = {}
    out = []
    for i, util in _role_entries(space, "prefill", deadline, kv):
        s, r, b, mm = space.unflat(i)
        st = _times(space, s, r, b, mm)
        key = (s, r, _replica(space, s, r, b, mm)[1])
        if key not in spread:  # the prefill of one prompt depends on the chunk budget, not the batch
            spread[key] = prefill_spread(space, s, r, b, mm, 1.0)
        ratio, cv2 = spread[key]
        out.append(PrefillCandidate(i, s, util, st.prefill_s * ratio, cv2, st.decode_s))
    return out


def prefill_engines(
    space: ServingSpace,
    fm: FleetModel,
    cluster: Cluster,
    m: int,
    p: int,
    decode: list[Engine],
    decode_s: float,
    times: dict[int, RoleTimes],
    *,
    deadline: float | None = None,
    decode_pools: Collection[int] | None = None,
    candidates: list[PrefillCandidate] | None = None,
    same_node: bool | None = None,
) -> list[Engine]:
    """The prefill engine of every shape (module doc) among `candidates` (`prefill_candidates`, found
    here where None); `decode_pools`: the pools that hold decode engines (None: every pool), whose
    slowest link the TTFT budget's KV transfer takes.

    Raises:
        SolverTimeoutError: `deadline` (a `time.perf_counter()`) passed (`settings.check_deadline`).
    """
    w = space.workload
    if candidates is None:
        candidates = prefill_candidates(space, deadline=deadline)
    best: dict[int, tuple[int, int, int, RoleTimes, float]] = {}
    # the budget, the lead and the link rate depend on the entry's (tp, pp) only: once per distinct pair
    budgets: dict[tuple[int, int], tuple[float, float, float]] = {}
    for c in candidates:
        shape = space.shapes[c.shape]
        if (shape.tp, shape.pp) not in budgets:
            lead = prefill_lead_s(
                fm, cluster, p, shape.tp, decode, shape.pp, decode_pools=decode_pools, same_node=same_node
            )
            budgets[shape.tp, shape.pp] = (
                budget_after_lead_s(fm, decode_s, lead),
                prefill_link_rps(fm, cluster, p, shape.tp, shape.pp, decode, same_node),
                lead,
            )
        budget, link_rps, lead = budgets[shape.tp, shape.pp]
        dp = shape.ep_replicas if shape.ep else 1
        rt = RoleTimes(c.prefill_s, c.decode_s, budget, c.service_cv2, link_rps=link_rps, ranks=dp)
        rating = math.floor(MILLI * dp * prefill_rank_tokens_per_s(rt, w.isl))
        if c.shape not in best or rating > best[c.shape][0]:
            best[c.shape] = (rating, c.entry, c.util, rt, lead)
    out = []
    for s, (rating, i, u, rt, lead) in sorted(best.items()):
        e = _engine(space, m, p, s, i, u, "prefill", rating)
        if e is not None:
            e = prefill_cycle(e, fm, rt, lead)
            times[id(e)] = rt
            out.append(e)
    return out


def prefill_cycle(e: Engine, fm: FleetModel, t: RoleTimes, lead_s: float) -> Engine:
    """Prefill engine `e` with its part in a concurrency cap's closed-loop rule
    (`client_rules.closed_loop_rule`; `e` itself without a cap): its mean prefill, its lead (request
    overhead + slowest KV transfer, `prefill_lead_s`) and the chords of a rank's requests up to the
    utilisation its rating runs at (the prefill balance keeps every rank at or below it)."""
    if fm.concurrency is None:
        return e
    rho = prefill_rank_tokens_per_s(t, fm.workload.isl) * t.prefill_s / fm.workload.isl
    return dataclasses.replace(
        e,
        prefill_us=units.us_up(t.prefill_s),
        lead_us=units.us_up(lead_s),
        client_lines=prefill_client_lines(t.service_cv2, fm.concurrency, rho, t.ranks),
    )


def why_no_role(
    space: ServingSpace,
    role: str,
    fm: FleetModel,
    cluster: Cluster,
    p: int,
    decode: list[Engine],
    decode_s: float,
    step_tier: int = 0,
    *,
    kv: str | None = None,
    same_node: bool | None = None,
) -> str:
    """Why pool p holds no `role` engine of the model (of KV-cache dtype `kv`; None: any allowed),
    naming the rule that binds with its numbers (the filters of `decode_engines` / `prefill_engines`
    in order: memory, vLLM's NIXL connector, the TPOT limit or the TTFT budget, node granularity); ""
    when it holds one. `decode_s`: the first decode step the prefill budget takes, the bound of
    first-step tier `step_tier` (`step_ladder`: a faster tier's reason is its fastest tier's,
    `disagg_plan.why_infeasible`, whose bound is the fastest decode candidate's step). `same_node`:
    the KV transfers run over NVLink (None: `single_node(cluster)`)."""
    from autoparallel.solvers.deployment.explain import why_no_engine

    w = space.workload
    pool = f"{space.cluster.nodes}x{space.cluster.gpus_per_node}x{space.cluster.gpu.name}"
    kvs = set(space.options.kv_cache_dtypes) if kv is None else {kv}
    starts = [
        i
        for i in range(len(space.tables.evaluated))
        if _starts(space, i)
        and space.runtimes[space.unflat(i)[1]].kv_cache_dtype in kvs
        and space.runtimes[space.unflat(i)[1]].engine == "vllm"
    ]
    if not starts:
        return why_no_engine(space)  # nothing fits in memory: the aggregated space's own numbers
    shapes = sorted(
        {space.unflat(i)[0] for i in starts},
        key=lambda s: (space.shapes[s].pp, space.shapes[s].gpus_per_replica, s),
    )
    refused = {s: nixl_role_problem(space.model, space.shapes[s].pp, role) for s in shapes}
    runs = [i for i in starts if refused[space.unflat(i)[0]] is None]
    if not runs:
        least = space.shapes[shapes[0]]
        top = max(shape.tp for shape in space.shapes)
        return (
            f"on {pool}: every shape that fits in memory has pipeline stages (the fewest: {least.label}, "
            f"{least.gpus_per_replica} GPUs; TP searched up to {top}), and {refused[shapes[0]]} "
            "(engine_support.nixl_role_problem)"
        )
    times = {i: _times(space, *space.unflat(i)) for i in runs}
    if role == "decode" and w.tpot_ms is not None:
        best = min(runs, key=lambda i: times[i].decode_s)
        if units.us_up(times[best].decode_s) > units.us_down(w.tpot_ms / 1e3):
            label = space.shapes[space.unflat(best)[0]].label
            return (
                f"on {pool}: the fastest pure decode step {times[best].decode_s * 1e3:.1f} ms ({label}, "
                f"max_num_seqs {space.max_num_seqs_of(best)}) > TPOT {w.tpot_ms:g} ms"
            )
    if role == "prefill" and w.ttft_ms is not None:
        pools = {d.pool for d in decode}
        slack = {
            i: prefill_budget_s(
                fm, cluster, p, sh.tp, decode, decode_s, sh.pp, decode_pools=pools, same_node=same_node
            )
            - times[i].prefill_s
            for i in runs
            for sh in (space.shapes[space.unflat(i)[0]],)
        }
        best = max(runs, key=lambda i: slack[i])
        if slack[best] <= 0:
            label = space.shapes[space.unflat(best)[0]].label
            budget = slack[best] + times[best].prefill_s
            return (
                f"on {pool}: the fastest prompt's prefill {times[best].prefill_s * 1e3:.0f} ms ({label}) "
                f"leaves no queueing room in the TTFT budget {round(budget * 1e3)} ms (TTFT {w.ttft_ms:g} ms "
                f"less the request overhead, the first decode step at its bound {decode_s * 1e3:.1f} ms ("
                + (
                    "the fastest first-step tier's, within which its fastest decode engines step"
                    if step_tier
                    else "the TPOT limit"
                    if w.tpot_ms is not None
                    else "the slowest decode candidate's step"
                )
                + ")"
                + (
                    f", {slot_reserve_s(fm.workload) * 1e3:g} ms for a decode slot"
                    if fm.workload.slot_rated
                    else ""
                )
                + " and the slowest KV transfer)"
            )
    if all(granularity(space, space.unflat(i)[0]) is None for i in runs):
        sizes = sorted(
            {
                sh.gpus_per_replica * (sh.ep_replicas if sh.ep else 1)
                for sh in (space.shapes[space.unflat(i)[0]] for i in runs)
            }
        )
        return (
            f"on {pool}: the {role} shapes that run take {', '.join(map(str, sizes))} GPUs, neither a power "
            f"of two up to the node / NVLink domain of {space.cluster.gpus_per_node} GPUs nor whole nodes"
        )
    return ""


@dataclasses.dataclass
class RoleSpace:
    """A disaggregated deployment space and the float times of its engines (by engine index)."""

    space: DeploymentSpace
    times: list[RoleTimes]
    decode_step_bound_s: list[float]
    """Per model: the first decode step the prefill budget assumed."""
    floor: LinkFloor | None = None
    """The link floor this space was built at (module doc; None: decode engines on every pool)."""
    faster: tuple[RoleSpace, ...] = ()
    """The spaces of the other tiers (link floors fastest first, each floor's first-step tiers
    fastest first, `build_role_space`); empty on those spaces themselves and where there is one."""
    step_tier: int = 0
    """The first-step tier of this space (`step_ladder`): 0 the loosest, its bounds those of
    `decode_step_bound_s`."""
    same_node: bool | None = None
    """Whether its KV transfers run over NVLink (`single_node` of the pools that can hold an engine,
    `usable_pools`); None: `single_node(cluster)`."""

    @property
    def nvlink(self) -> bool:
        """Whether its KV transfers run over NVLink (`same_node`)."""
        return single_node(self.space.cluster) if self.same_node is None else self.same_node

    def tiers(self) -> list[RoleSpace]:
        """The space of every tier, link floors fastest first, this one (the slowest floor's loosest
        tier: decode engines on every pool, the first step bounded as without tiers) last: the union
        of their deployments is the disaggregated deployment space (module doc)."""
        return [*self.faster, self]

    @property
    def decode_pools(self) -> tuple[int, ...] | None:
        """The pools the prefill budget assumed may hold a decode engine (None: every pool)."""
        return self.floor.decode_pools if self.floor is not None else None


def smallest_pair(engines: Collection[Engine]) -> tuple[Engine, Engine] | None:
    """The smallest prefill engine and the smallest decode engine of `engines` (GPUs, then TP and PP);
    None where a role has none."""
    least = []
    for role in ("prefill", "decode"):
        mine = [e for e in engines if e.role == role]
        if not mine:
            return None
        least.append(min(mine, key=lambda e: (e.gpus, e.tp, e.pp)))
    return least[0], least[1]


def pair_problem(
    engines: Collection[Engine], workload: Serving, cluster: Cluster, step_bound_ms: float | None = None
) -> str | None:
    """Why no prefill engine and decode engine of `engines` (one model's role candidates, each already
    meeting its limit: a decode engine's pure decode step the TPOT limit, a prefill engine its TTFT
    budget) run side by side: the smallest of each role take more GPUs together than the pools the
    candidates run on hold; None when they fit or a role has no candidate (said apart). Shared by
    `disagg_plan._why_infeasible` and the mixed space's note (mixed.py), so that a pair too big for
    the cluster is named one way with its numbers, each role's own smallest engine: the smallest of
    either role twice said "fits" for Llama-3.1-70B on 1x8xA100-80G at TPOT 20 ms, whose smallest
    decode engine is tp8 and smallest prefill engine tp4. `step_bound_ms`: the first-step bound of a
    faster tier (`step_ladder`), which its decode engines step within rather than the TPOT limit."""
    pair = smallest_pair(engines)
    if pair is None:
        return None
    pools = sorted({e.pool for e in engines})
    usable = sum(cluster.pools[p].world_size for p in pools)
    p, d = pair
    if p.gpus + d.gpus <= usable:
        return None
    where = "the cluster has" if len(pools) == len(cluster.pools) else "the pools that run it have"
    head = "disaggregation needs a prefill and a decode engine"
    if p.gpus == d.gpus:
        return f"{head}: the smallest takes {p.gpus} GPUs, {where} {usable}"
    tpot = f" meeting TPOT {workload.tpot_ms:g} ms" if workload.tpot_ms is not None else ""
    if step_bound_ms is not None:
        tpot = f" stepping within {step_bound_ms:.1f} ms (a faster first-step tier's bound)"
    ttft = f" meeting TTFT {workload.ttft_ms:g} ms" if workload.ttft_ms is not None else ""
    return (
        f"{head}: the smallest decode engine{tpot} is {d.label} ({d.gpus} GPUs) and the smallest prefill "
        f"engine{ttft} {p.label} ({p.gpus} GPUs): {p.gpus} + {d.gpus} = {p.gpus + d.gpus} GPUs, {where} "
        f"{usable}"
    )


def burst_problem(fm: FleetModel) -> str | None:
    """Why model `fm` gets no disaggregated deployment: N prompts sent at once under a TTFT limit. The
    prefill engines are rated for arrivals at a rate (an M/G/n wait within the TTFT budget); a burst's
    drain through the prefill and decode roles is not modelled, so no disaggregated plan may claim
    the limit (the aggregated ones are charged their drain)."""
    if fm.burst_prompts is None or fm.workload.ttft_ms is None:
        return None
    return (
        f"{fm.burst_prompts} prompts sent at once at TTFT {fm.workload.ttft_ms:g} ms: a disaggregated "
        "deployment's drain of a burst is not modelled (its prefill engines are rated for arrivals at a "
        "rate), so none is offered; plan it aggregated (--disagg off) or without a TTFT limit"
    )


STEP_TIERS = 10
"""Geometric first-step bounds per link floor at most, the loosest included (`step_ladder`; the
prefill shapes' critical bounds come on top)."""
STEP_RATIO = 0.8
"""Successive first-step bounds of the ladder are at least this factor apart (`step_ladder`)."""
STEP_TIER_GAIN = 0.05
"""A faster first-step tier is kept where it raises some prefill engine's rating by more than this
fraction over the slower tier kept before it (`raises_prefill`)."""


PREFILL_TARGETS = (0.0, 0.5, 0.8)
"""Utilisations of a prefill shape's ranks at which `critical_bounds` places a first-step bound: just
feasible (no queueing), half and 80% loaded."""


def step_ladder(base_s: float, steps_s: Collection[float], critical_s: Collection[float] = ()) -> list[float]:
    """The first-step bounds of a model's faster tiers (module doc), slowest first, below its loosest
    bound `base_s` (`loosest_bound_s`), each snapped down to the
    slowest of `steps_s` (its decode candidates' pure decode steps, every entry's) within it (a bound
    between two steps admits the entries of the lower one and leaves the prefill less budget):
    geometric targets from the base down to the fastest step, at most `STEP_TIERS` − 1 of them and
    each at most `STEP_RATIO` of the one before, the fastest step itself, and the `critical_s` bounds
    (`critical_bounds`: where a prefill shape just fits, or carries a `PREFILL_TARGETS` load; a
    geometric ladder alone stepped over the 21.5 ms entry Llama-3.1-70B's tp4 prefill needs at TTFT
    90 ms, and TPOT 30 ms planned 53% below TPOT 45); [] when no candidate is faster than the base.
    Shared by the role space (`build_role_space`) and the mixed front (mixed.py)."""
    steps = sorted({units.us_up(x) for x in steps_s if units.us_up(x) < units.us_down(base_s)})
    if not steps:
        return []
    top, fastest = units.us_down(base_s), steps[0]

    def snap(target: float) -> int | None:
        """The slowest step within `target` µs (None: none)."""
        k = bisect.bisect_right(steps, target * (1 + 1e-9))
        return steps[k - 1] if k else None

    ratio = min(STEP_RATIO, (fastest / top) ** (1.0 / (STEP_TIERS - 1)))
    targets = [top * ratio**k for k in range(1, STEP_TIERS) if top * ratio**k > fastest * (1 + 1e-9)]
    targets += [fastest, *(x * units.US_PER_S for x in critical_s if x * units.US_PER_S < top)]
    bounds = {b for b in map(snap, targets) if b is not None}
    return [x / units.US_PER_S for x in sorted(bounds, reverse=True)]


def critical_bounds(
    fm: FleetModel,
    cluster: Cluster,
    prefill: dict[int, list[PrefillCandidate]],
    spaces: dict[int, ServingSpace],
    decode: list[Engine],
    same_node: bool | None = None,
) -> list[float]:
    """First-step bounds at which a prefill shape of `fm` (each pool's, each (TP, PP)'s fastest
    candidate in `prefill`, by pool) meets the TTFT limit at each `PREFILL_TARGETS` utilisation of its
    ranks: the limit less its lead against `decode` (the loosest tier's decode engines, every pool:
    the slowest transfer, so the bound is safe at any tier), the slot reserve, its prefill and its
    M/G/n wait at that load (`perf.disagg.prefill_wait_s`); [] without a TTFT limit."""
    limit = fm.workload.ttft_ms
    if limit is None or not decode:
        return []
    out = []
    for p, candidates in prefill.items():
        fastest: dict[tuple[int, int], PrefillCandidate] = {}
        for c in candidates:
            shape = spaces[p].shapes[c.shape]
            key = (shape.tp, shape.pp)
            if key not in fastest or c.prefill_s < fastest[key].prefill_s:
                fastest[key] = c
        for (tp, pp), c in fastest.items():
            shape = spaces[p].shapes[c.shape]
            ranks = shape.ep_replicas if shape.ep else 1
            lead = prefill_lead_s(fm, cluster, p, tp, decode, pp, same_node=same_node)
            for rho in PREFILL_TARGETS:
                wait = (
                    disagg.prefill_wait_s(c.prefill_s, rho / c.prefill_s, c.service_cv2, ranks)
                    if rho
                    else 0.0
                )
                out.append(limit / 1e3 - slot_reserve_s(fm.workload) - lead - c.prefill_s - wait)
    return [b for b in out if b > 0]


def build_role_space(
    models: tuple[FleetModel, ...] | list[FleetModel],
    cluster: Cluster,
    options: ServingOptions | None = None,
    *,
    prune: bool = True,
    deadline: float | None = None,
) -> RoleSpace:
    """Prefill and decode candidate engines of every model on every pool (`prune`: undominated only;
    `deadline`: as `build_deployment_space` takes it), one space per allowed KV-cache dtype, link floor
    and kept first-step tier (module doc; `RoleSpace.tiers`).

    Raises:
        InputError / InfeasibleError / SolverTimeoutError: as `build_deployment_space`.
    """
    from autoparallel.solvers.deployment.space import build_deployment_space

    fleet = tuple(models)
    aggregated = build_deployment_space(
        fleet, cluster, options, prune=prune, deadline=deadline, scale_rates=False
    )  # + tables
    pools = range(len(cluster.pools))
    live = [m for m, fm in enumerate(fleet) if burst_problem(fm) is None]
    dtypes = kv_dtypes(next(iter(aggregated.serving.values())).options)
    prefill = {
        (kv, m, p): prefill_candidates(aggregated.serving[m, p], deadline=deadline, kv=kv)
        for kv in dtypes
        for m in live
        for p in pools
    }

    def decode_of(same_node: bool) -> dict[tuple[str, int, int], list[DecodeCandidate]]:
        return {
            (kv, m, p): decode_candidates(
                aggregated.serving[m, p], fleet[m].workload, same_node=same_node, deadline=deadline, kv=kv
            )
            for kv in dtypes
            for m in live
            for p in pools
        }

    candidates = decode_of(single_node(cluster))
    nvlink = single_node(cluster, usable_pools(candidates, prefill))
    if nvlink != single_node(cluster):  # the pools that hold no engine of the model left out
        candidates = decode_of(nvlink)
    times: dict[int, RoleTimes] = {}
    tiers: list[RoleSpace] = []
    for kv in dtypes:
        tiers += _dtype_tiers(
            aggregated,
            fleet,
            cluster,
            {(m, p): cs for (k, m, p), cs in candidates.items() if k == kv},
            {(m, p): cs for (k, m, p), cs in prefill.items() if k == kv},
            times,
            nvlink,
            kv if len(dtypes) > 1 else None,
            prune=prune,
            deadline=deadline,
        )
    return dataclasses.replace(tiers[-1], faster=tuple(tiers[:-1]))


def _dtype_tiers(
    aggregated: DeploymentSpace,
    fleet: tuple[FleetModel, ...],
    cluster: Cluster,
    candidates: dict[tuple[int, int], list[DecodeCandidate]],
    prefill: dict[tuple[int, int], list[PrefillCandidate]],
    times: dict[int, RoleTimes],
    nvlink: bool,
    kv: str | None,
    *,
    prune: bool,
    deadline: float | None,
) -> list[RoleSpace]:
    """The spaces of one KV-cache dtype's link floors and kept first-step tiers (`RoleSpace.tiers`
    order), from its role candidates by (model, pool); `kv`: the dtype where several are allowed."""
    pools = range(len(cluster.pools))
    live = [m for m, fm in enumerate(fleet) if burst_problem(fm) is None]

    def decode_at(bounds: list[float]) -> dict[tuple[int, int], list[Engine]]:
        """Each (model, pool)'s decode engines within the models' first-step `bounds`."""
        return {
            (m, p): decode_engines(
                aggregated.serving[m, p], m, p, times, fleet[m], candidates[m, p], bounds[m]
            )
            for m in live
            for p in pools
        }

    of_model = {m: [c for (n, _), cs in candidates.items() if n == m for c in cs] for m in range(len(fleet))}
    loosest = [loosest_bound_s(fm, of_model[m]) for m, fm in enumerate(fleet)]
    decode = decode_at(list(loosest))
    ladders: list[list[float]] = []
    for m, fm in enumerate(fleet):
        own = [e for (n, _), d in decode.items() if n == m for e in d]
        spaces = {p: aggregated.serving[m, p] for p in pools}
        critical = critical_bounds(
            fm, cluster, {p: prefill[m, p] for p in pools if m in live}, spaces, own, nvlink
        )
        ladders.append(model_ladder(fm, loosest[m], of_model[m], critical) if own else [])
    faster: dict[int, dict[tuple[int, int], list[Engine]]] = {}  # tier k ≥ 1 -> its decode engines

    def tier(floor: LinkFloor, k: int) -> RoleSpace | None:
        """Tier k's space at `floor` (0: the loosest; k: each model's bound ladder[k − 1], its last
        where its ladder is shorter); None where a model has no decode engine within its bound."""
        bounds = [
            ladder[min(k, len(ladder)) - 1] if k and ladder else b
            for ladder, b in zip(ladders, loosest, strict=True)
        ]
        if k and k not in faster:
            faster[k] = decode_at(bounds)
        tier_decode = faster[k] if k else decode
        if k and any(not any(tier_decode[m, p] for p in floor.decode_pools) for m in live):
            return None
        space = _floor_space(
            aggregated,
            fleet,
            cluster,
            floor,
            tier_decode,
            times,
            bounds,
            prefill,
            prune=prune,
            deadline=deadline,
            same_node=nvlink,
        )
        return dataclasses.replace(space, step_tier=k)

    top = max(map(len, ladders), default=0)
    tiers: list[RoleSpace] = []
    used = sorted({p for (_, p), d in decode.items() if d})
    for floor in link_floors(cluster, used, same_node=nvlink, kv_cache_dtype=kv):
        kept = keep_tiers(functools.partial(tier, floor), top, lambda t: t.space.engines)
        tiers += reversed(kept)  # each floor's fastest first: the last is the slowest floor's loosest
    return tiers


def within_cap(fm: FleetModel, candidates: Iterable[DecodeCandidate]) -> list[DecodeCandidate]:
    """The decode candidates one replica of which fits `fm`'s concurrency cap (all without one)."""
    cap = fm.concurrency
    return [c for c in candidates if cap is None or c.batch * c.dp <= cap]


def loosest_bound_s(fm: FleetModel, candidates: Iterable[DecodeCandidate]) -> float:
    """Model `fm`'s loosest first-step bound (module doc): the TPOT limit, or without one the slowest
    pure decode step of its decode candidates within its cap (`candidates`: every pool's), its loosest
    tier's every decode engine within it; the bound its prefill budget takes for the first decode
    step and its decode slots' room is measured from (`decode_slot_room_s`), so that no TPOT limit
    plans as a limit at that step does (it gave the slots 1 ms: gpt-oss-120b's D tp4 b32 at 7.15 ms
    was rated 13.74 req/s without a TPOT limit and 14.46 at TPOT 20 ms)."""
    if fm.workload.tpot_ms is not None:
        return fm.workload.tpot_ms / 1e3
    return max((c.times.decode_s for c in within_cap(fm, candidates)), default=0.0)


def model_ladder(
    fm: FleetModel, base_s: float, candidates: Iterable[DecodeCandidate], critical_s: Collection[float]
) -> list[float]:
    """The first-step bounds of model `fm`'s faster tiers (`step_ladder`): below its loosest bound
    `base_s` (`loosest_bound_s`), over the steps of its decode candidates within its cap, with its
    prefill shapes' `critical_s` bounds; [] without a TTFT limit (the bound enters only the TTFT
    budget). One ladder for the role space (`plan`) and the mixed front (`pareto`)."""
    if fm.workload.ttft_ms is None:
        return []
    return step_ladder(base_s, [c.times.decode_s for c in within_cap(fm, candidates)], critical_s)


T = TypeVar("T")


def keep_tiers(
    build: Callable[[int], T | None], top: int, engines: Callable[[T], Collection[Engine]]
) -> list[T]:
    """One link floor's kept first-step tiers, loosest first (module doc): tier 0 (`build(0)`, never
    None); then, where the fastest tier with a decode engine (`build(k)` for k = `top` … 1, None where
    it has none) raises a prefill rating over tier 0 (`raises_prefill` on `engines(tier)`), each
    faster tier that raises one over the last kept, the fastest last. Shared by the role space and
    the mixed front."""
    loosest = build(0)
    assert loosest is not None  # tier 0 is always built
    kept = [loosest]
    fastest = next(((k, t) for k in range(top, 0, -1) if (t := build(k)) is not None), None)
    # the fastest tier has the most prefill budget (`raises_prefill`): none gains where it does not
    if fastest is None or not raises_prefill(engines(fastest[1]), engines(loosest)):
        return kept
    for k in range(1, fastest[0]):
        t = build(k)
        if t is not None and raises_prefill(engines(t), engines(kept[-1])):
            kept.append(t)
    if raises_prefill(engines(fastest[1]), engines(kept[-1])):
        kept.append(fastest[1])
    return kept


def raises_prefill(tier: Collection[Engine], slower: Collection[Engine]) -> bool:
    """Whether a faster tier's space can hold a deployment the slower tier's has no near equal of: one
    of its prefill engines (by model, pool and shape) is new or rated more than `STEP_TIER_GAIN` above
    the slower tier's. Its decode engines are fewer (the entries within its bound), so without a
    prefill gain it buys little; with a TTFT limit far above the first step (chatbot: 2 s against a
    50 ms TPOT) the gain is a few tenths of a percent, and its CP-SAT solve is not worth its share of
    the time limit. A faster tier's decode shapes are a subset of a slower one's, so its prefill
    budget (a smaller bound, a transfer to fewer decode TPs), link rate and ratings are at least
    theirs: where the fastest tier gains nothing over the loosest, none does (`build_role_space` tries
    it first). Kept too where the slower tier has no prefill engine: if none has, the infeasibility's
    reason is the fastest tier's (`disagg_plan.why_infeasible`)."""

    def ratings(engines: Collection[Engine]) -> dict[tuple[int, int, int], int]:
        best: dict[tuple[int, int, int], int] = {}
        for e in engines:
            if e.role == "prefill":
                key = (e.model, e.pool, e.shape)
                best[key] = max(best.get(key, 0), e.rating)
        return best

    before = ratings(slower)
    if not before:
        return True
    return any(r > (1 + STEP_TIER_GAIN) * before.get(key, 0) for key, r in ratings(tier).items())


def _floor_space(
    aggregated: DeploymentSpace,
    fleet: tuple[FleetModel, ...],
    cluster: Cluster,
    floor: LinkFloor,
    decode: dict[tuple[int, int], list[Engine]],
    times: dict[int, RoleTimes],
    step_bounds_s: list[float],
    prefill_of: dict[tuple[int, int], list[PrefillCandidate]],
    *,
    prune: bool,
    deadline: float | None,
    same_node: bool | None = None,
) -> RoleSpace:
    """The role space at link floor `floor` and the models' first-step bounds `step_bounds_s` (module
    doc; `loosest_bound_s` at the loosest tier): each model's decode engines (`decode`, by (model,
    pool)) on the floor's pools, its prefill engines on every pool rated against them."""
    engines: list[Engine] = []
    bounds: list[float] = []
    for m, fm in enumerate(fleet):
        if burst_problem(fm) is not None:
            bounds.append(0.0)
            continue
        mine = {p: decode[m, p] if p in floor.decode_pools else [] for p in range(len(cluster.pools))}
        every_decode = [e for d in mine.values() for e in d]
        decode_pools = [p for p, d in mine.items() if d]
        bound = step_bounds_s[m]
        bounds.append(bound)
        for p in range(len(cluster.pools)):
            serving = aggregated.serving[m, p]
            prefill = prefill_engines(
                serving,
                fm,
                cluster,
                m,
                p,
                every_decode,
                bound,
                times,
                deadline=deadline,
                decode_pools=decode_pools,
                candidates=prefill_of[m, p],
                same_node=same_node,
            )
            for role_engines in (prefill, mine[p]):
                engines += undominated(role_engines, fm.concurrency is not None) if prune else role_engines
    space = dataclasses.replace(
        aggregated, engines=tuple(engines), disaggregated=True, dominated=0, left_out=aggregated.left_out
    )
    space.unpruned_enumeration_size = space.enumeration_size()
    return RoleSpace(space, [times[id(e)] for e in engines], bounds, floor, same_node=same_node)


def ttft_below_transfer(rs: RoleSpace, workload: Serving, cluster: Cluster) -> str:
    """When the TTFT limit is below the fastest KV transfer + first decode step + overhead, the numbers:
    the transfer within the pool of the fastest link (P and D both there, the least any pair pays)."""
    if workload.ttft_ms is None:
        return ""
    fm = rs.space.models[0]
    tps = sorted({e.tp for tier in rs.tiers() for e in tier.space.engines} | {1})
    same_node = rs.nvlink
    # the dtype of the least KV bytes: each dtype's engines pair among themselves (module doc)
    kvs = {e.config.kv_cache_dtype for tier in rs.tiers() for e in tier.space.engines} or {"auto"}
    first = min((t.decode_s for tier in rs.tiers() for t in tier.times), default=0.0)

    def least(pool: int) -> tuple[float, float]:
        """(the fastest transfer, the request overhead) within pool `pool`."""
        sub = cluster.pool_cluster(pool)
        fastest = min(
            disagg.kv_transfer_s(
                fm.model, sub, kv, workload.isl, tp_prefill=t, tp_decode=t, same_node=same_node
            )
            for t in tps
            for kv in sorted(kvs)
        )
        return fastest, efficiency_for(sub.gpu).request_overhead_s

    pool = min(range(len(cluster.pools)), key=lambda q: sum(least(q)))
    fastest, overhead = least(pool)
    floor_ms = (fastest + overhead + first) * 1e3
    if workload.ttft_ms >= floor_ms:
        return ""
    where = "over NVLink" if same_node else "over the NIC"
    if len(cluster.pools) > 1:
        where += f" of pool {pool}, the fastest"
    return (
        f"TTFT limit {workload.ttft_ms:g} ms < KV transfer {fastest * 1e3:.1f} ms "
        f"({workload.isl} prompt tokens {where}) "
        f"+ first decode step {first * 1e3:.1f} ms + request overhead {overhead * 1e3:.0f} ms "
        f"= {floor_ms:.1f} ms, before any prefill"
    )
