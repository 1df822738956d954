"""Serving cost model: latency and throughput of ONE vLLM deployment, in floats.

Everything a user sees about speed comes from here; `solvers/` turns it into integer tables.

The model (per replica of tp × pp GPUs, continuous batching with chunked prefill, steady state):

- A replica keeps `b` sequences running, clamp(b, 1, pp) micro-batches in flight; each step carries
  one decode token per sequence plus the whole prompts that came since the last one, a Poisson
  count (those replacing finished requests, or arrivals at a rate). One replica step is a
  mixed-step roofline plus exposed communication, pipeline hops and host overhead, and T(b) is its
  mean over that count (perf/serving_steps.py gives the formulas, `replica_step_times`); TPOT = T(b).
- TTFT = the rest of the step in progress + the step that carries the prompt, to its first token,
  + the server's per-request overhead, + the client's wait in the server's queue
  (`client_queue_s`: a closed loop's requests beyond the running batch, a burst's drain, an
  arrival rate's wait for a free slot, perf/slot_queue.py).
- Each running slot serves one request per t_first + (osl − 1) · T(b) (t_first: the GPU part of
  TTFT), so output tokens/s per replica = b · osl / (t_first + (osl − 1) · T(b)) ≈ b / T(b).
- The running batch is min(max_num_seqs, KV capacity in sequences of the running set's mean context
  (`Serving.running_context`: isl + osl/2 for fixed lengths, more when outputs spread) counted in
  vLLM's own blocks (memory/vllm_kv.py), the workload's concurrency / replicas).

Efficiency factors per GPU (`VLLM_EFFICIENCY`, perf/serving_efficiency.py) are calibrated on the vLLM
rows of reference/inference_benchmarks_dev.csv; `benchmarks/serving_accuracy.py` reports the error.

Layout: perf/serving_efficiency.py (the calibrated factors), perf/serving_facts.py (per-model sums,
memoized), perf/serving_steps.py (step times of one replica); this module turns step times into the
deployment's results (`ServingPerf`, `ServingEstimate`). Their public names are re-exported here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from autoparallel.hardware.gpu import host_size
from autoparallel.memo import Memo, memoized
from autoparallel.memory.serving import VllmMemoryReport  # a field type of ServingEstimate
from autoparallel.memory.vllm_config import kv_dtype_bytes, loaded_on
from autoparallel.memory.vllm_versions import DEFAULT_VLLM_VERSION
from autoparallel.perf.serving_efficiency import (
    DEFAULT_EFFICIENCY,
    VLLM_EFFICIENCY,
    ServingEfficiency,
    efficiency_for,
)
from autoparallel.perf.serving_facts import (
    kv_bytes_per_sequence_per_gpu,
)
from autoparallel.perf.serving_steps import (
    ACTIVATION_BYTES,
    ReplicaShape,
    StepTimes,
    aligned_ranks,
    replica_step_times,
    stage_step_s,
    vllm_graph_max_batch,
)
from autoparallel.perf.slot_queue import slot_wait_s
from autoparallel.workload import ms_over

if TYPE_CHECKING:
    from autoparallel.configs import ServingConfig
    from autoparallel.hardware import GPU, Cluster
    from autoparallel.models.spec import ModelSpec
    from autoparallel.workload import Serving

__all__ = [
    "ACTIVATION_BYTES",
    "DEFAULT_EFFICIENCY",
    "NEGLIGIBLE_WAIT_S",
    "VLLM_EFFICIENCY",
    "ClosedLoop",
    "KvLayout",
    "OfferedLoad",
    "ReplicaShape",
    "ServingEfficiency",
    "ServingEstimate",
    "ServingPerf",
    "StepTimes",
    "client_queue_s",
    "closed_loop_rates",
    "deployment_problems",
    "efficiency_for",
    "evaluate_serving",
    "kv_bytes_per_sequence_per_gpu",
    "kv_layout",
    "lone_cycle_s",
    "offered_load",
    "perf_at_batch",
    "rate_slot_wait_s",
    "replica_rates",
    "replica_step_times",
    "replicas_on",
    "running_batch",
    "serving_perf",
    "slo_violations",
    "slot_cycle_s",
    "slot_variability",
    "stage_step_s",
    "step_times_at",
    "sub_domain_size",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


# ----- one deployment --------------------------------------------------------------------------------
class ServingPerf(_Frozen):
    """Predicted speed and cost of one deployment under one workload (steady state)."""

    ttft_ms: float
    """Time to first token: the rest of the step in progress and the step that carries the prompt
    (`replica_step_times`) plus the server's per-request overhead, and the wait in the server's
    queue of the client's requests the engine does not run (`client_queue_s`, `closed_loop_rates`),
    ms."""
    slot_wait_ms: float = 0.0
    """Of `ttft_ms`, the wait for a free slot at the workload's arrival rate (`rate_slot_wait_s`), ms."""
    tpot_ms: float
    """Time per output token: one replica step T(b) with interleaved prefill work, ms."""
    decode_step_ms: float
    """A pure decode step at the running batch (no prefill work), ms."""
    prefill_ms: float
    """One prompt of `isl` tokens alone through the pipeline, ms."""
    prompt_ms: float = 0.0
    """The time one more prompt adds to a full prefill step, ms (`StepTimes.prompt_s`): what a burst's
    first wave queues on, prompt after prompt."""
    batch_size: float
    """Running sequences per replica in steady state (under a closed-loop client, the requests its
    share keeps out, at most the engine's limit: those in their per-request overhead outside the
    engine included, `closed_loop_rates`)."""
    batch_limit: str
    """What sets the batch: `max_num_seqs`, `kv_cache` or `concurrency`."""
    kv_capacity_seqs: int
    """Sequences of the running context (`Serving.running_context`) the KV cache of one replica holds
    (vLLM's block accounting)."""
    kv_headroom_gib: float
    """KV-cache memory the running batch leaves unused on the tightest GPU, GiB (a fractional batch
    counted whole: the replica with the larger share holds ⌈batch⌉ sequences)."""
    memory_bound: bool
    """The step is limited by HBM traffic (True) or by FLOPs (False)."""
    output_tokens_per_s: float
    """Output tokens per second of the whole deployment (all replicas)."""
    output_tokens_per_s_per_replica: float
    """Output tokens per second of one replica: batch / T(b)."""
    output_tokens_per_s_per_gpu: float
    """Output tokens per second per GPU."""
    requests_per_s: float
    """Completed requests per second of the whole deployment."""
    usd_per_million_tokens: float
    """US$ per million output tokens at the GPU's default hourly price."""
    sustains_request_rate: bool
    """The deployment's throughput covers the workload's arrival rate (True when none is given)."""
    efficiency: ServingEfficiency
    """The efficiency factors used."""


@dataclass(frozen=True)
class KvLayout:
    """How vLLM's KV pool is spent on one sequence of the workload (memory/vllm_kv.py layout)."""

    block_size: int
    """Tokens per block (smallest over the KV cache groups)."""
    bytes_per_block: tuple[int, ...]
    """Per pipeline stage: bytes of one pool block on one GPU."""
    blocks_per_seq: int
    """Pool blocks one average running sequence (`Serving.running_context`) occupies over all groups."""
    batched_tokens: int
    """The step token budget (`max_num_batched_tokens`, resolved default)."""
    null_blocks: int
    """Blocks the pool holds back (vLLM's null block, from 0.25)."""


_LAYOUTS: Memo[KvLayout] = {}


def kv_layout(
    model: ModelSpec,
    gpu: GPU,
    config: ServingConfig,
    workload: Serving,
    *,
    vllm_version: str = DEFAULT_VLLM_VERSION,
) -> KvLayout:
    """The KV layout of `config` (memoized): blocks per average sequence and bytes per block per stage.

    A sequence of c tokens takes the blocks vLLM would give a request of max_model_len = c
    (`vllm_kv.bytes_for_request`): ceil(c / block) for full attention, window-capped for sliding
    layers, one state page for linear attention.
    """
    key = (
        gpu,  # the GPU itself: two custom GPUs may share a name
        config.tp,
        config.pp,
        config.kv_cache_dtype,
        config.quantization,
        config.max_model_len,
        config.max_num_seqs,
        config.max_num_batched_tokens,
        math.ceil(workload.running_context),  # all the layout reads of the workload (spreads included)
        vllm_version,
    )
    return memoized(_LAYOUTS, (model,), key, lambda: _kv_layout(model, gpu, config, workload, vllm_version))


def _kv_layout(
    model: ModelSpec, gpu: GPU, config: ServingConfig, workload: Serving, vllm_version: str
) -> KvLayout:
    from autoparallel.memory import vllm_kv, vllm_profile
    from autoparallel.memory.serving import kv_block_size, layer_kv_specs, resolve_batch_defaults
    from autoparallel.memory.vllm_versions import parse_vllm_version, rules_for

    rules = rules_for(parse_vllm_version(vllm_version))
    _, tokens = resolve_batch_defaults(
        rules, gpu, config.max_model_len, config.max_num_seqs, config.max_num_batched_tokens
    )
    # The cache of an `auto` dtype is the dtype vLLM loads the model in (`load_dtype`).
    model = loaded_on(model, gpu, config.quantization)
    stages = vllm_profile.pp_partition(model.num_layers, config.pp)
    layers = layer_kv_specs(
        model, stages, config.tp, kv_dtype_bytes(model, config.kv_cache_dtype, engine="vllm")
    )
    plan = vllm_kv.plan_kv(
        layers,
        [0.0] * config.pp,
        block_size=kv_block_size(model, gpu, rules, config.kv_cache_dtype),
        rules=rules,
        max_model_len=config.max_model_len,
        max_num_batched_tokens=tokens,
        moe=model.is_moe,
    )
    context = math.ceil(workload.running_context)
    need = vllm_kv.bytes_for_request(plan, 0, context, rules, tokens, config.pp)
    blocks = need // plan.bytes_per_block[0] if plan.bytes_per_block[0] else 0
    return KvLayout(
        block_size=plan.block_size,
        bytes_per_block=plan.bytes_per_block,
        blocks_per_seq=max(int(blocks), 1),
        batched_tokens=tokens,
        null_blocks=1 if rules.reserves_null_block else 0,
    )


def running_batch(config: ServingConfig, workload: Serving, kv_capacity_seqs: float) -> tuple[float, str]:
    """Steady-state running sequences per replica and what limits them (first listed wins ties)."""
    options = [(float(config.max_num_seqs), "max_num_seqs"), (max(kv_capacity_seqs, 0.0), "kv_cache")]
    if workload.in_flight is not None:
        options.append((workload.in_flight / config.replicas, "concurrency"))
    return min(options, key=lambda item: item[0])


def serving_perf(
    model: ModelSpec,
    cluster: Cluster,
    config: ServingConfig,
    workload: Serving,
    *,
    memory: VllmMemoryReport,
    vllm_version: str = DEFAULT_VLLM_VERSION,
) -> ServingPerf:
    """Latency, throughput and cost of `config` serving `workload`, given vLLM's memory report."""
    layout = kv_layout(model, cluster.gpu, config, workload, vllm_version=vllm_version)
    capacity = max(memory.num_gpu_blocks - layout.null_blocks, 0) // layout.blocks_per_seq
    batch, limit = running_batch(config, workload, capacity)
    available = [stage.kv_cache_gib * 2**30 for stage in memory.stages]
    held = math.ceil(batch)  # the replica with the larger share (8 of 15 clients on 2) holds this many
    per_seq = [(held * layout.blocks_per_seq + layout.null_blocks) * b for b in layout.bytes_per_block]
    headroom = min(a - need for a, need in zip(available, per_seq, strict=True))
    return perf_at_batch(
        model,
        cluster,
        config,
        workload,
        batch=batch,
        batch_limit=limit,
        batched_tokens=layout.batched_tokens,
        kv_capacity_seqs=capacity,
        kv_headroom_bytes=headroom,
        vllm_version=vllm_version,
        graph_max_batch=vllm_graph_max_batch(
            config.max_num_seqs, layout.batched_tokens, cluster.gpu, vllm_version
        ),
    )


def replica_rates(
    times: StepTimes, *, batch: float, osl: int, gpu: GPU, engine: str = "vllm"
) -> tuple[float, float]:
    """(TTFT seen by a client, s; output tokens/s of one replica) from its step times.

    Each running slot serves one request per t_first + (osl − 1) · T(b), where t_first is the GPU
    part of TTFT, so tokens/s = b · osl / (t_first + (osl − 1) · T(b)) (≈ b / T(b) for long
    outputs): the engine's rate at b running. A closed-loop client's slot also spends the
    per-request overhead outside the engine (`closed_loop_rates`).
    """
    cycle_s = times.ttft_s + (osl - 1) * times.step_s
    return times.ttft_s + efficiency_for(gpu, engine).request_overhead_s, batch * osl / cycle_s


def client_queue_s(
    workload: Serving,
    replicas: int,
    batch: float,
    tokens_per_s: float,
    prompt_s: float = 0.0,
    overhead_s: float = 0.0,
    lone_cycle: Callable[[], float] | None = None,
) -> float:
    """Mean seconds a client's request waits in the server's queue before it runs, with only `batch`
    running per replica (max_num_seqs or the KV cache binds) at `tokens_per_s` per replica; `prompt_s`
    is the time one more prompt adds to a prefill (one prompt alone / pipeline stages).
    `vllm bench serve` caps only the client (`--max-concurrency`: an asyncio.Semaphore around each
    request), and TTFT counts from the send, so the wait is part of it:
    - a closed loop (`workload.closed_loop` = C in flight): the C / replicas − batch queued, less the
      X · `overhead_s` in their per-request overhead outside the engine (X the replica's requests/s),
      each wait that many completions (Little's law; `closed_loop_rates` solves the whole loop);
    - N prompts sent at once without a cap: each replica's n = N / replicas arrive together. The first
      wave of w = min(n, batch) is prefilled first come first served (vLLM's scheduler admits the
      waiting queue in order), the k-th after k − 1 others: (w − 1) / 2 · prompt_s on average. The
      q = n − batch queued start as requests complete, the k-th at the k-th completion; slots that
      all started at once complete in waves, and by renewal theory (M(t) = t / μ + (σ² − μ²) /
      (2μ²) + o(1), Smith 1954) the k-th completion of b slots comes at k · μ / b + κ · μ / 2, μ the
      cycle b / rate, κ = 1 − cv² of the output lengths (at least 0: fixed lengths κ = 1, exponential
      ones κ = 0). On average over the n: q ((1 − κ) q + 1 + κ n) / (2n) completions, and the released
      prompts arrive κ-synchronised into the prefill queue: (w − 1) / 2 · prompt_s · (w + κ q) / n.
      `prompt_s` is a prompt's share of a full prefill step (`StepTimes.prompt_s`). Qwen3-8B on one
      H100, 300 prompts at max_num_seqs 256: 0.37 s without both terms, 5.7 s with them, 6.1 s in
      the replay;
    - with an arrival rate (open loop): the wait for a free slot of the replica's ⌊batch⌋, which a
      lone request holds `lone_cycle()` s and each of a full load batch / (`tokens_per_s` / osl)
      (`rate_slot_wait_s`; 0 without `lone_cycle`)."""
    if tokens_per_s <= 0:
        return 0.0
    per_s = tokens_per_s / workload.osl  # requests a replica completes per second
    if workload.request_rate is not None:
        return rate_slot_wait_s(workload, replicas, batch, per_s, lone_cycle)
    if workload.closed_loop is not None:
        return _loop_queue_s(workload.closed_loop / replicas, batch, per_s, overhead_s)
    if workload.num_prompts is not None:
        n = workload.num_prompts / replicas
        queued = max(n - batch, 0.0)
        wave = min(n, batch)
        kappa = burst_sync(workload)
        drain = queued * ((1.0 - kappa) * queued + 1.0 + kappa * n) / (2 * n) / per_s
        prefill = max(wave - 1.0, 0.0) / 2 * prompt_s * (wave + kappa * queued) / n
        return drain + prefill
    return 0.0


def rate_slot_wait_s(
    workload: Serving, replicas: int, batch: float, per_s: float, lone_cycle: Callable[[], float] | None
) -> float:
    """Mean seconds a request arriving at `workload.request_rate` waits for a running slot of the
    `replicas` replicas of ⌊`batch`⌋ slots each, which complete `per_s` requests/s each when all are
    busy (perf/slot_queue.py: a birth–death chain whose n running complete n / cycle(n) requests/s,
    cycle affine from a lone request's `lone_cycle()` s to the full load's, scaled by Allen and
    Cunneen's (c_a² + c_s²) / 2).

    The replicas' slots are pooled: vLLM's data-parallel front end sends each request to the rank of
    fewest waiting · 4 + running (`DPLBAsyncMPClient.get_core_engine_for_request`), which keeps the
    ranks about as busy as one queue over all their slots; treating them as independent queues of a
    random split charged dp8 at 80% of capacity 3.7x the replay's TTFT. c_a² is the whole stream's
    gamma gaps (1 / `Serving.burstiness`), c_s² the output lengths' (`output_spread`: a slot's time is
    its prefill and its osl − 1 decode steps, and the prefill's share only lowers its spread).

    The lone cycle costs one more step evaluation, so it is asked for only where the wait can
    matter: every slot busy for the full cycle waits at least as long (each state's service is no
    faster), and where that bound is under `NEGLIGIBLE_WAIT_S` the bound is the answer.

    0 without a rate or `lone_cycle`; 0 where the client's requests in flight (its concurrency, a
    finite benchmark's prompts) fit the slots: none ever waits for one (the rest wait in `vllm bench
    serve`'s semaphore, before TTFT's clock starts); 0 at or beyond capacity too: the queue grows
    without bound there, which the rate's own check says (`ServingPerf.sustains_request_rate`, the
    planners' `request_rate` family)."""
    rate = workload.request_rate
    ranks = max(replicas, 1)
    total = per_s * ranks
    if rate is None or lone_cycle is None or rate >= total:
        return 0.0
    if workload.in_flight is not None and workload.in_flight <= batch * ranks:
        return 0.0
    slots = max(math.floor(batch * ranks), 1)
    full_s = slots / total  # a slot's cycle at full load, the pool completing `total`
    variability = slot_variability(workload, split=False)
    bound = slot_wait_s(rate, slots, full_s, full_s, variability)
    if bound < NEGLIGIBLE_WAIT_S:
        return bound
    return slot_wait_s(rate, slots, lone_cycle(), full_s, variability)


def slot_variability(workload: Serving, *, split: bool) -> float:
    """(c_a² + c_s²) / 2 of `rate_slot_wait_s`: c_a² = 1 / burstiness of the whole stream, or with `split`
    (separate engines behind a router, whose shares the deployment solver chooses: random thinning
    moves c_a² toward 1) the largest over any split, max(1 / burstiness, 1)."""
    arrivals = 1.0 / workload.burstiness
    return ((max(arrivals, 1.0) if split else arrivals) + workload.output_spread) / 2.0


NEGLIGIBLE_WAIT_S = 1e-6
"""A slot wait below a microsecond, the tables' unit, is taken as its full-cycle bound without pricing
a lone request (`rate_slot_wait_s`)."""


def slot_cycle_s(p: ServingPerf, osl: int) -> float:
    """Seconds one request holds a slot in `p`'s steady state: its prefill (TTFT without the request
    overhead outside the engine) and its osl − 1 decode steps."""
    return (p.ttft_ms - p.efficiency.request_overhead_s * 1e3 + (osl - 1) * p.tpot_ms) / 1e3


def lone_cycle_s(times_at: Callable[[float], StepTimes], osl: int) -> float:
    """Seconds a lone request holds its slot: the GPU part of its TTFT and its osl − 1 steps at a running
    batch of one (`rate_slot_wait_s`'s cycle(1))."""
    alone = times_at(1.0)
    return alone.ttft_s + (osl - 1) * alone.step_s


def _loop_queue_s(clients: float, batch: float, per_s: float, overhead_s: float) -> float:
    """Seconds a closed loop's request waits in the server's queue: of `clients` requests out, `batch`
    run and X · `overhead_s` are in their per-request overhead (X = `per_s` requests/s, Little's law);
    the rest queue, each for as many completions; inf when nothing completes (an engine that holds
    no request: its KV cache or its limit of 0)."""
    if per_s <= 0:
        return math.inf
    return max(clients - batch - per_s * overhead_s, 0.0) / per_s


@dataclass(frozen=True)
class ClosedLoop:
    """One replica under a closed-loop client's share (`closed_loop_rates`)."""

    batch: float
    """Requests in the engine, on average (at most its limit)."""
    times: StepTimes
    """The step times at that batch."""
    ttft_s: float
    """TTFT as the client sees it: the GPU part, the per-request overhead and the queue wait, s."""
    queue_s: float
    """The wait in the server's queue (the engine at its limit), s."""
    tokens_per_s: float
    """Output tokens/s of the replica."""


def closed_loop_rates(
    times_at: Callable[[float], StepTimes],
    *,
    clients: float,
    limit: float,
    osl: int,
    overhead_s: float,
) -> ClosedLoop:
    """A replica under `clients` closed-loop clients (`vllm bench serve --max-concurrency`) whose
    engine runs at most `limit` requests; `times_at(b)`: its step times at b running
    (`step_times_at`); `overhead_s`: the per-request overhead outside the GPU
    (`ServingEfficiency.request_overhead_s`). The one rule of `perf_at_batch`, the serving planner's
    tables (`solvers/serving/space.py`) and the accuracy harness's capped rows.

    vLLM's client holds a slot for a request's whole life (vllm/benchmarks/serve.py
    `limited_request_func`: `async with semaphore: await request_func(...)`), TTFT timed inside it,
    so a slot cycles through e(b) + overhead + queue, e(b) = GPU TTFT + (osl − 1) · T(b) the engine's
    time at b running, and by Little's law the replica completes X = clients / (e + overhead + queue)
    requests a second. Of the clients, X · overhead are outside the engine:

    - below the limit the engine holds b = clients · e(b) / (e(b) + overhead), no queue, and
      tokens/s = clients · osl / (e(b) + overhead). The right side grows with b (e does), so the
      iteration from b = limit falls monotonically to that fixed point (the largest one). A
      request that ends on the same rotation as the tagged one (`StepTimes.together`: every one
      at osl 1 with prompts within the budget) comes back with it, so a request sees those beside
      it always and the rest e / (e + overhead) of the time: b = clients · (s + (1 − s) · e / (e +
      overhead)), s that chance (prefill-only clients move as one group, the engine idling while
      they are in their overhead: Qwen3-8B on one H100, 1,024 / 1 tokens, 8 clients: 25.8
      tokens/s, the replay's 25.8);
    - at the limit (clients · e / (e + overhead) ≥ limit) the engine runs `limit`, X = limit / e,
      and the clients neither running nor in their overhead queue (`_loop_queue_s`).

    Qwen3-30B-A3B on one H100, 256 / 4 tokens, 16 clients: the engine's own cycle alone gave 315
    tokens/s (SGLang) where the step times' own TTFT and TPOT give 255."""

    def share(t: StepTimes) -> float:
        """Requests in the engine beside the clients' cycle through it at these step times."""
        cycle = t.ttft_s + (osl - 1) * t.step_s
        return clients * (t.together + (1.0 - t.together) * cycle / (cycle + overhead_s))

    full = times_at(limit)
    e_full = full.ttft_s + (osl - 1) * full.step_s
    if clients * e_full >= limit * (e_full + overhead_s):
        per_s = limit / e_full
        queue = _loop_queue_s(clients, limit, per_s, overhead_s)
        return ClosedLoop(limit, full, full.ttft_s + overhead_s + queue, queue, per_s * osl)
    batch, times = limit, full
    for _ in range(LOOP_ITERATIONS):
        nxt = min(share(times), limit)
        done = abs(nxt - batch) <= LOOP_TOLERANCE * max(batch, 1.0)
        batch = nxt
        times = times_at(batch)
        if done:
            break
    cycle = times.ttft_s + (osl - 1) * times.step_s
    return ClosedLoop(batch, times, times.ttft_s + overhead_s, 0.0, clients * osl / (cycle + overhead_s))


LOOP_ITERATIONS = 100
"""Most fixed-point steps `closed_loop_rates` takes (each a step-time evaluation); it contracts by
the cycle's slope, clients · overhead · e'(b) / (e + overhead)², a few hundredths where measured."""
LOOP_TOLERANCE = 1e-6
"""Relative change of the engine's batch at which `closed_loop_rates` stops."""


def step_times_at(
    model: ModelSpec,
    cluster: Cluster,
    shape: ReplicaShape,
    workload: Serving,
    *,
    batched_tokens: int,
    arrivals_per_s: float | None = None,
) -> Callable[[float], StepTimes]:
    """`replica_step_times` of `shape` under `workload` as a function of the running batch b: a
    busy replica steps at a batch of at least one, and where fewer than one request runs per
    replica (fewer clients than replicas) the ranks aligned with it hold the others,
    (ranks · b − 1) / (ranks − 1) each."""
    ranks = aligned_ranks(shape)

    def at(batch: float) -> StepTimes:
        others = max((ranks * batch - 1.0) / (ranks - 1), 0.0) if batch < 1.0 and ranks > 1 else None
        return replica_step_times(
            model,
            cluster,
            shape,
            batch=max(batch, 1.0),
            isl=workload.isl,
            osl=workload.osl,
            batched_tokens=batched_tokens,
            arrivals_per_s=arrivals_per_s,
            prompt_spread=workload.prompt_spread,
            context=workload.running_context,
            others_batch=others,
        )

    return at


def burst_sync(workload: Serving) -> float:
    """κ = 1 − cv² of the output lengths, at least 0: how much the slots of a burst's first wave
    complete together (fixed lengths: 1, one wave after another; exponential: 0, as a Poisson stream)."""
    return max(1.0 - workload.output_spread, 0.0)


def perf_at_batch(
    model: ModelSpec,
    cluster: Cluster,
    config: ServingConfig,
    workload: Serving,
    *,
    batch: float,
    batch_limit: str,
    batched_tokens: int,
    kv_capacity_seqs: int,
    kv_headroom_bytes: float,
    engine: str = "vllm",
    nsa_backends: tuple[str | None, str | None] = (None, None),
    kv_pool_tokens: int = 0,
    vllm_version: str = DEFAULT_VLLM_VERSION,
    arrivals_per_s: float | None = None,
    graph_max_batch: int | None = None,
    graph_sizes: tuple[int, ...] = (),
    clients: float | None = None,
) -> ServingPerf:
    """`serving_perf` at a given running batch per replica (`engine`'s efficiency factors;
    `nsa_backends` and `kv_pool_tokens` as `ReplicaShape` takes them; `vllm_version`'s release
    rules, `ReplicaShape.of`). `arrivals_per_s`: requests arrive per replica as a Poisson process of
    that rate; None: each finished request is replaced at once (full load, a closed loop;
    `replica_step_times`). `clients`: a closed-loop client's requests per replica (default: the
    workload's `closed_loop` / replicas), which `closed_loop_rates` turns into the engine's batch
    (at most `batch`), its speed and the client's TTFT."""
    gpu = cluster.gpu
    eff = efficiency_for(gpu, engine)
    shape = dataclasses.replace(
        ReplicaShape.of(config, vllm_version),
        engine=engine,
        nsa_backends=nsa_backends,
        kv_pool_tokens=kv_pool_tokens,
        graph_max_batch=graph_max_batch,
        graph_sizes=graph_sizes,
    )
    # Fewer clients than replicas leave some idle, not each running a fraction of a request: a busy
    # replica steps at a batch of at least one (its throughput is still `batch` requests' worth), and
    # the ranks aligned with it hold the other clients (`step_times_at`).
    times_at = step_times_at(
        model, cluster, shape, workload, batched_tokens=batched_tokens, arrivals_per_s=arrivals_per_s
    )
    slot_wait_ms = 0.0
    if clients is None and workload.closed_loop is not None and arrivals_per_s is None:
        clients = workload.closed_loop / config.replicas
    if clients is not None:
        loop = closed_loop_rates(
            times_at,
            clients=clients,
            limit=min(batch, clients),
            osl=workload.osl,
            overhead_s=eff.request_overhead_s,
        )
        times, ttft_s, per_replica = loop.times, loop.ttft_s, loop.tokens_per_s
    else:
        times = times_at(batch)
        ttft_s, per_replica = replica_rates(times, batch=batch, osl=workload.osl, gpu=gpu, engine=engine)
        if arrivals_per_s is None:  # at the offered load `offered_load` adds the full load's wait
            wait_s = client_queue_s(
                workload,
                config.replicas,
                batch,
                per_replica,
                times.prompt_s / shape.pp,
                lone_cycle=lambda: lone_cycle_s(times_at, workload.osl),
            )
            slot_wait_ms = (wait_s if workload.request_rate is not None else 0.0) * 1e3
            ttft_s += wait_s
    total = per_replica * config.replicas
    usd = gpu.usd_per_hour * config.gpus / (total * 3600.0) * 1e6 if total > 0 else math.inf
    rate_ok = workload.request_rate is None or total / workload.osl >= workload.request_rate
    return ServingPerf(
        ttft_ms=ttft_s * 1e3,
        slot_wait_ms=slot_wait_ms,
        tpot_ms=times.step_s * 1e3,
        decode_step_ms=times.decode_s * 1e3,
        prefill_ms=times.prefill_s * 1e3,
        prompt_ms=times.prompt_s * 1e3,
        batch_size=batch,
        batch_limit=batch_limit,
        kv_capacity_seqs=kv_capacity_seqs,
        kv_headroom_gib=kv_headroom_bytes / 2**30,
        memory_bound=times.memory_bound,
        output_tokens_per_s=total,
        output_tokens_per_s_per_replica=per_replica,
        output_tokens_per_s_per_gpu=total / config.gpus,
        requests_per_s=total / workload.osl,
        usd_per_million_tokens=usd,
        sustains_request_rate=rate_ok,
        efficiency=eff,
    )


class OfferedLoad(_Frozen):
    """The steady state at the workload's arrival rate, when the deployment has capacity to spare.

    `ServingPerf` is the engine at full load (its running batch at `max_num_seqs`, the KV cache or
    the workload's concurrency), which is what the planner checks the limits against. Requests
    arriving at λ per second keep fewer running: by Little's law a replica holds
    b = λ / replicas · (t_first + (osl − 1) · T(b)) requests, the rate its batch completes them at,
    with T(b) and t_first those of Poisson arrivals (`replica_step_times` with `arrivals_per_s`)."""

    request_rate: float
    """Arriving requests per second (all replicas)."""
    batch_size: float
    """Running requests per replica at that rate."""
    ttft_ms: float
    """Time to first token at that batch, with the full load's wait for a free slot
    (`ServingPerf.slot_wait_ms`: a property of the rate, the slots and their cycles), ms."""
    tpot_ms: float
    """Time per output token at that batch, ms."""


def offered_load(
    workload: Serving, replicas: int, full: ServingPerf, perf_at: Callable[[float], ServingPerf]
) -> OfferedLoad | None:
    """The steady state at `workload.request_rate` (None: no rate, or one the deployment cannot
    sustain). `full`: the deployment at full load; `perf_at(b)`: the same at b running requests
    per replica (`perf_at_batch`). b solves b = λ/replicas · cycle(b) by bisection on [0, full
    batch]: the rate a batch completes, b / cycle(b), grows with b."""
    rate = workload.request_rate
    if rate is None or not full.sustains_request_rate:
        return None
    per_replica = rate / replicas

    lo, hi = 0.0, full.batch_size
    for _ in range(40):
        mid = (lo + hi) / 2.0
        held = per_replica * slot_cycle_s(perf_at(max(mid, 1.0)), workload.osl)  # Little's law at mid
        lo, hi = (mid, hi) if held > mid else (lo, mid)
    at = perf_at(max(hi, 1.0))  # a lone request runs as a batch of one
    return OfferedLoad(
        request_rate=rate, batch_size=hi, ttft_ms=at.ttft_ms + full.slot_wait_ms, tpot_ms=at.tpot_ms
    )


class ServingEstimate(_Frozen):
    """Memory (vLLM's own accounting) and speed of one deployment, and whether it can run."""

    memory: VllmMemoryReport
    """Per-GPU memory as vLLM 0.32 accounts it."""
    perf: ServingPerf
    """Latency, throughput and cost."""
    fits: bool
    """vLLM starts: the weights fit, the KV cache holds max_model_len, the GPUs exist."""
    problems: tuple[str, ...] = ()
    """Why it does not fit / cannot run, one sentence each with numbers."""
    slo_violations: tuple[str, ...] = ()
    """Service-level limits of the workload the prediction misses."""


def sub_domain_size(gpus: int, node: int, host: int) -> bool:
    """Whether a process group of `gpus` < `node` GPUs packs into nodes (NVLink domains) of `node` GPUs
    in hosts of `host` (`hardware.gpu.host_size`) without straddling a node or splitting a host: a
    power of two that takes whole hosts or fits inside one. Powers of two form a divisibility chain, so
    groups placed at multiples of their size stay host-aligned: a GB200 NVL36 domain (9 hosts of 4)
    holds four 8-GPU tensor-parallel groups. The serving space's shapes (`solvers.serving.space`) and
    the deployment planners' per-size packing (`solvers.deployment.space.granularity`) read this rule."""
    if gpus < 1 or gpus >= node or gpus & (gpus - 1):
        return False
    if host >= node:
        return True
    return gpus % host == 0 if gpus >= host else host % gpus == 0


def replicas_on(width: int, gpus: int, node: int) -> int:
    """Replicas of `width` GPUs that `gpus` GPUs of nodes of `node` hold when none straddles a node:
    gpus // width for whole-node replicas; narrower ones ⌊node / width⌋ per node, and ⌊rest / width⌋
    on a partly used node (1x36xGB200: four 8-GPU replicas, not ⌊36 / 8⌋ = 4.5; 2x36: eight, not 9)."""
    if width >= node:
        return gpus // width
    whole, rest = divmod(gpus, node)
    return whole * (node // width) + rest // width


def _on_hosts(tp: int, cluster: Cluster) -> bool:
    """A tensor-parallel group that does not divide a node of several hosts still fits it on whole hosts
    or inside one (`sub_domain_size`: tp 8 on a GB200 NVL36 domain of 9 hosts of 4); False on a node that
    is one host (`_tp_problem` there admits any tp of an engine inside the node)."""
    node = cluster.gpus_per_node
    host = host_size(cluster.gpu.name, node)
    return host < node and sub_domain_size(tp, node, host)


def _tp_problem(cluster: Cluster, config: ServingConfig) -> str | None:
    """Why `config`'s tensor-parallel groups cannot be placed on `cluster`'s nodes, or None.

    An engine (`ServingConfig.engine_gpus`: tp · pp GPUs, an EP engine's data ranks together) inside one
    node that is one host runs on any tp of its GPUs, as vLLM, SGLang and TensorRT-LLM place it (tp=4 on
    a 6-GPU H100 node, 2 GPUs idle). An engine wider than the node places its pipeline stages on whole
    nodes, so there tp divides the node; a TP group wider than a node takes whole nodes. Nodes of
    several hosts (GB200 NVL36 / NVL72 domains) keep their host rule (`_on_hosts`)."""
    tp, node = config.tp, cluster.gpus_per_node
    if tp > node and tp % node:
        return f"tp={tp} spans {tp / node:g} nodes of {node} GPUs; a TP group takes whole nodes"
    if tp >= node or not node % tp:
        return None
    if host_size(cluster.gpu.name, node) < node and not _on_hosts(tp, cluster):
        return f"tp={tp} does not fit inside a node of {node} GPUs"
    width = config.engine_gpus  # wider than a node (of one host or several: a GB200 domain), stages align
    if width <= node:
        return None
    if config.shares_experts:
        return (
            f"tp={tp} does not divide a node of {node} GPUs: an expert-parallel engine of {width} GPUs "
            f"spans nodes, and the planner lays its data ranks of {config.gpus_per_replica} GPUs on whole "
            "nodes"
        )
    return (
        f"tp={tp} does not divide a node of {node} GPUs: a replica of {width} GPUs spans nodes and places "
        "its pipeline stages on whole nodes"
    )


def deployment_problems(cluster: Cluster, config: ServingConfig, workload: Serving) -> list[str]:
    """Placement problems of `config` beyond vLLM's own start-up checks."""
    out: list[str] = []
    if config.gpus > cluster.world_size:
        out.append(
            f"needs {config.gpus} GPUs (tp={config.tp} x pp={config.pp} x "
            f"replicas={config.replicas}); the cluster has {cluster.world_size}"
        )
    node = cluster.gpus_per_node
    # A tensor-parallel group over whole nodes runs (vLLM over Ray, SGLang --nnodes, TensorRT-LLM one MPI
    # world) and is priced over the network (`comm.group_link`); the planner keeps tp inside a node.
    if (tp_problem := _tp_problem(cluster, config)) is not None:
        out.append(tp_problem)
    width = config.tp * config.pp
    most = replicas_on(width, cluster.world_size, node)
    if not config.enable_expert_parallel and width < node and node % width and config.replicas > most:
        out.append(
            f"{config.replicas} replicas of {width} GPUs: a node (NVLink domain) of {node} GPUs holds "
            f"{node // width} without one straddling two, so the cluster holds {most}"
        )
    if config.max_model_len < workload.required_len:
        out.append(
            f"max_model_len={config.max_model_len} is shorter than the workload's requests "
            f"({workload.required_len} tokens)"
        )
    return out


def slo_violations(perf: ServingPerf, workload: Serving) -> list[str]:
    """The workload's service-level limits the prediction misses."""
    out: list[str] = []
    at = f" at {perf.batch_size:.4g} running per replica ({perf.batch_limit})"
    if workload.ttft_ms is not None and perf.ttft_ms > workload.ttft_ms:
        out.append(
            f"TTFT {ms_over(perf.ttft_ms, workload.ttft_ms, 0)} ms > limit {workload.ttft_ms:g} ms{at}"
        )
    if workload.tpot_ms is not None and perf.tpot_ms > workload.tpot_ms:
        out.append(
            f"TPOT {ms_over(perf.tpot_ms, workload.tpot_ms, 1)} ms > limit {workload.tpot_ms:g} ms{at}"
        )
    if not perf.sustains_request_rate:
        out.append(f"{perf.requests_per_s:.2f} requests/s < arrival rate {workload.request_rate} /s")
    return out


def evaluate_serving(
    model: ModelSpec,
    cluster: Cluster,
    config: ServingConfig,
    workload: Serving,
    *,
    vllm_version: str = DEFAULT_VLLM_VERSION,
    memory: VllmMemoryReport | None = None,
) -> ServingEstimate:
    """Memory (vLLM's accounting) and speed of `config` on `cluster` serving `workload`.

    `memory`: vLLM's report for this config when the caller already has it (else computed).

    Raises:
        InputError: a degree the model or vLLM rejects (see `memory.serving.vllm_memory`).
    """
    from autoparallel.memory.serving import serving_memory

    if memory is None:
        memory = serving_memory(model, cluster.gpu, config, vllm_version=vllm_version)
    perf = serving_perf(model, cluster, config, workload, memory=memory, vllm_version=vllm_version)
    problems = list(memory.problems) + deployment_problems(cluster, config, workload)
    if memory.fits and perf.kv_capacity_seqs < 1:
        problems.append(
            f"the KV cache ({memory.kv_cache_gib:.2f} GiB per GPU) holds no whole sequence of "
            f"{workload.isl + workload.osl // 2} tokens"
        )
    return ServingEstimate(
        memory=memory,
        perf=perf,
        fits=not problems,
        problems=tuple(dict.fromkeys(problems)),
        slo_violations=tuple(slo_violations(perf, workload)),
    )
