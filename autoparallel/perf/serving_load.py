"""A finite serving benchmark under load: N prompts sent at once or at a rate, replayed step by step.

`vllm bench serve --request-rate inf` (and offline runs such as `trtllm-bench`) queue every prompt at
t = 0 and measure until the last one finishes; `--request-rate R` sends them as a Poisson process of
rate R instead. The steady-state model (perf/serving.py) says how fast a full batch runs; this module
says what such a run measures, by replaying the engine's scheduler on one replica, one engine step at
a time:

- **Lengths**: prompt and output lengths drawn from a measured distribution when the workload has one
  (`Serving.isl_quantiles` / `osl_quantiles`, from `autoparallel profile`), else from a log-normal
  of the workload's mean and spread (`Serving.isl_cv`, `Serving.osl_cv`; 0 = fixed lengths); from a
  fixed seed (deterministic), prompt and output drawn independently.
- **Arrivals** (with the workload's `request_rate`): the send times `vllm bench serve` draws
  (`arrival_times`); a request joins the queue when it is sent, an engine with nothing to do idles
  until the next one, and a run of identical decode steps ends at the first step boundary past an
  arrival. Without a rate every prompt is queued at t = 0.
- **Scheduler, KV cache and preemption**: each engine's admission rules replayed step by step
  (perf/serving_replay.py).
- **Step time**: the mixed-step roofline of perf/serving_steps.py (`rotation_s`) at the step's real
  decode count, mean context and prefill tokens, so chunked-prefill interleaving lengthens exactly
  the steps that carry prompt chunks (the ITL/TPOT of the requests decoding beside them).
- **Ramp-down tail**: as requests finish and the queue empties, the batch shrinks and the step's
  fixed costs (weights, host time) are spread over fewer tokens; a long-output tail dominates the
  run's end.
- **Replicas**: one length draw for the whole run, dealt round robin over the data-parallel replicas
  (vLLM's DP load balancer); every replica replays its share, and the run lasts until the slowest
  one's last token. A share's longest request is shorter than the draw's, so replaying one share
  for all would cut the ramp-down tail (with 8 replicas of 125 ShareGPT-like requests, the longest
  output of one share is well under that of the 1,000). Replicas that are separate engines replay
  independently. The data-parallel ranks of one engine that share the experts (vLLM DP + EP, SGLang
  and TensorRT-LLM attention DP) replay in lock-step (`serving_replay.lockstep`): vLLM's docs ("forward passes
  must be aligned", idle ranks run dummy passes), SGLang's `prepare_mlp_sync_batch_raw` (idle
  batches, the MLP gather every step): each step lasts as long as its slowest rank's, and a rank
  carrying a prompt chunk takes the others' decode CUDA graphs away (`PROMPT_STEP_GRAPHS`).

Metrics follow `vllm bench serve`: output tokens/s = all output tokens / duration; TTFT from each
prompt's send (t = 0 when all are sent at once: queueing included) plus the server's per-request
overhead; TPOT per request = (e2e − TTFT) / (output − 1), averaged over requests; ITL = all
inter-token gaps averaged; the most output tokens in one second. Its median and P99 lines too:
over requests for TTFT and TPOT, over every inter-token gap for ITL (a decode that waits out a
prompt-only step, SGLang's default, sees one gap as long as the wait).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict

from autoparallel.errors import InputError
from autoparallel.memo import Memo, memoized
from autoparallel.memory.vllm_versions import DEFAULT_VLLM_VERSION
from autoparallel.perf.serving_efficiency import efficiency_for
from autoparallel.perf.serving_replay import (
    SGLANG_DP_ATTENTION_CONSERVATIVENESS,
    PassBudget,
    Pool,
    Work,
    alone,
    lengths_text,
    lockstep,
    per_second,
    rank_steps,
)
from autoparallel.perf.serving_steps import (
    PROMPT_STEP_GRAPHS,
    SCHEDULING,
    ReplicaShape,
    StepConstants,
    _rotation_s,
    step_constants,
    vllm_graph_max_batch,
)
from autoparallel.workload import LENGTH_CAP, lengths_at

if TYPE_CHECKING:
    from autoparallel.configs import ServingConfig
    from autoparallel.hardware import GPU, Cluster
    from autoparallel.memory.engine_kv import EngineKv
    from autoparallel.memory.serving import VllmMemoryReport
    from autoparallel.models.spec import ModelSpec
    from autoparallel.workload import Serving

LENGTH_SEED = 20240601
"""Seed of the length draw (any fixed value: runs must be repeatable)."""
ARRIVAL_SEED = 20240603
"""Seed of the arrival draw (any fixed value: runs must be repeatable)."""
MAX_REPLAY_PASSES = 75_000
"""Most scheduler passes one benchmark replay takes, over all the replicas it steps, counted in passes at
an almost empty batch (`serving_replay.PassBudget` says what a pass counts): 4-10 s on this project's
2-core machine, at the 58-126 µs a unit that `benchmarks/replay_speed.py` measures (two runs) from one
replica to 64 lock-step ranks. Every development row replays within 10,000 passes. Under KV pressure
the replay steps one engine step at a time: 1,000 prompts of 1,000,000 output tokens on a pool that
holds 13 of them at once are 77 waves of a million steps each, which ran until killed. The replicas
share the budget: split evenly (40,000 passes before), it refused 5,000 ShareGPT-like prompts on a
64-rank DP + EP engine, whose lock-step ranks take 57,000 passes of 23 running requests (62,000 units,
4 s)."""


class BenchmarkRun(BaseModel):
    """What a finite benchmark of N prompts sent at once measures (vllm bench serve's metrics)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    num_prompts: int
    """Prompts sent (all replicas)."""
    request_rate: float | None = None
    """Prompts sent per second (`vllm bench serve --request-rate`). None: all are sent at t = 0."""
    burstiness: float = 1.0
    """The gamma shape of the gaps between sends at `request_rate` (1: a Poisson process)."""
    max_concurrency: int | None = None
    """The client's cap on requests in flight (`vllm bench serve --max-concurrency`, the workload's
    `concurrency`): a prompt is sent when an earlier one ends. None: all are sent at t = 0."""
    duration_s: float
    """From the first prompt sent to the last token received, s."""
    output_tokens_per_s: float
    """All output tokens / duration (all replicas)."""
    mean_ttft_ms: float
    """Mean time to first token from each prompt's send (t = 0 without a rate or a cap: queueing
    included), ms."""
    mean_tpot_ms: float
    """Mean over requests of (e2e − TTFT) / (output tokens − 1), ms."""
    mean_itl_ms: float
    """Mean inter-token latency over all tokens, ms."""
    median_ttft_ms: float
    """Median time to first token over requests, ms."""
    p99_ttft_ms: float
    """99th percentile of time to first token over requests, ms."""
    median_tpot_ms: float
    """Median over requests of (e2e − TTFT) / (output tokens − 1), ms."""
    p99_tpot_ms: float
    """99th percentile of the same, ms."""
    median_itl_ms: float
    """Median of every inter-token gap of every request, ms."""
    p99_itl_ms: float
    """99th percentile of the same, ms."""
    peak_output_tokens_per_s: float
    """Most output tokens (all replicas) in one whole second of the run, counted from its start
    (`vllm bench serve`'s "Peak output token throughput")."""
    peak_batch: int
    """Most requests running at once on one replica."""
    mean_batch: float
    """Running requests per replica averaged over engine steps."""
    preemptions: int
    """Requests preempted because the KV cache filled (all replicas)."""
    steps: int
    """Engine steps of the replica that ran the most."""
    tail_fraction: float
    """Share of the run spent with fewer than half the peak batch running (the ramp-down tail when
    all are sent at once; idle and lightly loaded time too when they are sent at a rate)."""

    @property
    def title(self) -> str:
        """What was replayed, for people: "1000 prompts sent at once", "1000 prompts at 2 requests/s,
        Poisson arrivals", either with ", at most 32 in flight"."""
        if self.request_rate is None:
            sent = f"{self.num_prompts} prompts sent at once"
        else:
            how = (
                "Poisson arrivals"
                if self.burstiness == 1.0
                else f"gamma arrivals, burstiness {self.burstiness:g}"
            )
            sent = f"{self.num_prompts} prompts at {self.request_rate:g} requests/s, {how}"
        if self.max_concurrency is None:
            return sent
        return f"{sent}, at most {self.max_concurrency} in flight"

    def report_rows(self) -> list[tuple[str, object]]:
        """(metric, value) lines for people, in `vllm bench serve`'s order."""
        at_once = self.max_concurrency is None and self.request_rate is None
        since = "queueing included" if at_once else "from each prompt's send"
        tail = (
            "share of time in the ramp-down tail"
            if self.request_rate is None
            else "share of time below half the peak batch"
        )
        return [
            ("output tokens/s", self.output_tokens_per_s),
            ("peak output tokens/s (one second)", self.peak_output_tokens_per_s),
            ("duration s", self.duration_s),
            (f"mean TTFT ms ({since})", self.mean_ttft_ms),
            ("median / P99 TTFT ms", f"{self.median_ttft_ms:,.0f} / {self.p99_ttft_ms:,.0f}"),
            ("mean TPOT ms", self.mean_tpot_ms),
            ("median / P99 TPOT ms", f"{self.median_tpot_ms:,.1f} / {self.p99_tpot_ms:,.1f}"),
            ("mean ITL ms", self.mean_itl_ms),
            ("median / P99 ITL ms", f"{self.median_itl_ms:,.1f} / {self.p99_itl_ms:,.1f}"),
            ("peak / mean running batch", f"{self.peak_batch} / {self.mean_batch:.0f}"),
            ("preemptions (KV cache full)", self.preemptions),
            (tail, f"{self.tail_fraction:.0%}"),
        ]


def run_benchmark(
    model: ModelSpec,
    cluster: Cluster,
    config: ServingConfig,
    workload: Serving,
    *,
    memory: VllmMemoryReport | None = None,
    num_prompts: int | None = None,
    vllm_version: str = DEFAULT_VLLM_VERSION,
    engine: str = "vllm",
    engine_kv: EngineKv | None = None,
) -> BenchmarkRun:
    """`simulate_benchmark` with the KV pool and step budget `engine` gives `config`.

    vLLM: its memory report and block layout (`perf.serving.kv_layout`), `max_num_seqs`, and
    `vllm_version`'s release rules in the step (`ReplicaShape.of`: its scheduling, its sparse-MLA
    prompt kernels). SGLang
    and TensorRT-LLM: `engine_kv` (memory/sglang.py, memory/trtllm.py; their defaults when None).
    """
    from autoparallel.memory.serving import serving_memory
    from autoparallel.perf.serving import kv_layout

    if memory is None:
        priced = config
        if engine == "sglang":
            from autoparallel.memory.sglang import sglang_priced_config

            priced = sglang_priced_config(model, cluster.gpu, config)
        memory = serving_memory(model, cluster.gpu, priced, vllm_version=vllm_version, engine=engine)
    if engine == "vllm":
        layout = kv_layout(model, cluster.gpu, config, workload, vllm_version=vllm_version)
        return simulate_benchmark(
            model,
            cluster,
            config,
            workload,
            kv_blocks=memory.num_gpu_blocks - layout.null_blocks,
            block_size=layout.block_size,
            blocks_per_seq=layout.blocks_per_seq,
            batched_tokens=layout.batched_tokens,
            num_prompts=num_prompts,
            # vLLM V1's largest captured graph (larger decode batches run eagerly): the memory
            # model's capture sizes, so one rule prices the graphs' memory and their reach.
            graph_max_batch=vllm_graph_max_batch(
                config.max_num_seqs, layout.batched_tokens, cluster.gpu, vllm_version
            ),
            vllm_version=vllm_version,
        )
    if engine_kv is None:
        engine_kv = default_engine_kv(engine, model, memory, cluster.gpu, config)
    context = math.ceil(workload.running_context)
    return simulate_benchmark(
        model,
        cluster,
        config,
        workload,
        kv_blocks=engine_kv.kv_cache_tokens // engine_kv.block_size,
        block_size=engine_kv.block_size,
        blocks_per_seq=math.ceil(context / engine_kv.block_size),
        batched_tokens=engine_kv.step_tokens,
        num_prompts=num_prompts,
        engine=engine,
        max_running=engine_kv.max_running,
        graph_max_batch=engine_kv.cuda_graph_max_batch,
        graph_batch_sizes=engine_kv.cuda_graph_batch_sizes,
        chunked_prefill=engine_kv.chunked_prefill,
        nsa_backends=engine_kv.nsa_backends,
        kv_pool_tokens=engine_kv.pool_tokens_read(model.has_sparse_attention),
    )


def default_engine_kv(
    engine: str, model: ModelSpec, memory: VllmMemoryReport, gpu: GPU, config: ServingConfig
) -> EngineKv:
    """The KV pool `engine` builds for `config` with its default settings (and `config.max_num_seqs`
    as its cap)."""
    if engine == "sglang":
        from autoparallel.memory.sglang import sglang_server_kv

        return sglang_server_kv(model, memory, gpu, config)
    if engine == "trtllm":
        from autoparallel.memory.trtllm import trtllm_server_kv

        return trtllm_server_kv(model, memory, gpu, config)
    from autoparallel.errors import InputError

    raise InputError(f"unknown serving engine {engine!r}; choose one of: vllm, sglang, trtllm")


def draw_lengths(
    mean: int, cv: float, n: int, seed: int, quantiles: tuple[float, ...] | None = None
) -> np.ndarray:
    """`n` integer lengths ≥ 1 with the given mean, deterministic for a seed: shaped like
    `quantiles` (lengths at evenly spaced probabilities 0…1) when given, else a log-normal of spread
    `cv` (0: all `mean`).

    A measured shape is sampled by strata: the i-th of n draws sits at probability (i + ½) / n of
    the interpolated quantile function, and the n draws are dealt in a seeded random order, so the
    sample has the shape's short and long shares exactly, not up to sampling noise."""
    rng = np.random.default_rng(seed)
    if quantiles is not None and n >= 1:
        return lengths_at((rng.permutation(n) + 0.5) / n, mean, cv, quantiles).astype(np.int64)
    if cv <= 0 or n <= 1:
        return np.full(n, mean, dtype=np.int64)
    sigma = math.sqrt(math.log1p(cv * cv))
    raw = rng.lognormal(mean=-sigma * sigma / 2.0, sigma=sigma, size=n)
    raw = np.minimum(raw, LENGTH_CAP)
    raw *= mean / raw.mean()  # the sample's mean is the workload's mean
    return np.maximum(np.rint(raw), 1).astype(np.int64)


def arrival_times(
    n: int, rate: float | None, burstiness: float = 1.0, seed: int = ARRIVAL_SEED
) -> np.ndarray:
    """When each of `n` prompts is sent, s from the benchmark's start, as `vllm bench serve
    --request-rate R --burstiness B` (no ramp-up) sends them (vLLM 0.32 `benchmarks/serve.py`,
    `get_request`): gaps drawn from a gamma of shape B and mean 1 / R (B = 1: exponential, a Poisson
    process), the first prompt waiting one gap too, summed, then scaled so that the last prompt is
    sent at exactly n / R ("to close the gap for stabilizing the throughput data from different
    random seeds"). `rate` None (inf): every prompt at t = 0."""
    if rate is None or n < 1:
        return np.zeros(max(n, 0))
    gaps = np.random.default_rng(seed).gamma(burstiness, 1.0 / (rate * burstiness), size=n)
    sends = np.cumsum(gaps)
    if not sends[-1] > 0.0:  # every gap underflowed (a gamma of tiny shape): one clump, at n / R
        return np.full(n, n / rate)
    return sends * (n / rate / float(sends[-1]))


def weighted_percentiles(values: np.ndarray, weights: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """The `qs`-th percentiles (0–100) of `values` each repeated `weights` times (linear between
    neighbouring order statistics, as `np.percentile` on the repeated list); 0 when empty."""
    if not len(values) or weights.sum() <= 0:
        return [0.0 for _ in qs]
    order = np.argsort(values)
    v, ends = values[order], np.cumsum(weights[order])  # ends: last index + 1 of each value
    out = []
    for q in qs:
        pos = q / 100.0 * (float(ends[-1]) - 1.0)  # fractional index into the repeated list
        lo, hi = np.searchsorted(ends, [math.floor(pos), math.ceil(pos)], side="right")
        frac = pos - math.floor(pos)
        out.append(float(v[min(lo, len(v) - 1)] * (1.0 - frac) + v[min(hi, len(v) - 1)] * frac))
    return out


def _send_times(finish: np.ndarray, in_flight: int, arrive: np.ndarray, delay: float = 0.0) -> np.ndarray:
    """When a capped client's requests reach the engine (in their order): at its arrival (`arrive`,
    all 0 without a rate) once fewer than `in_flight` are out, i.e. request k past the cap no earlier
    than `delay` s after the k-th finish (requests are sent in order and only sent ones finish, so
    the k-th slot to free is the k-th finish; `delay`: the per-request overhead, the client's HTTP
    round and the server's own time, spent in the slot outside the engine). The replay releases its
    requests by the same rule as it runs (`serving_replay.rank_steps`, `loop`)."""
    sends = arrive.astype(float)
    if len(finish) > in_flight:
        ends = np.sort(finish)[: len(finish) - in_flight] + delay
        sends[in_flight:] = np.maximum(sends[in_flight:], ends)
    return sends


def simulate_benchmark(
    model: ModelSpec,
    cluster: Cluster,
    config: ServingConfig,
    workload: Serving,
    *,
    kv_blocks: int,
    block_size: int,
    blocks_per_seq: int,
    batched_tokens: int,
    num_prompts: int | None = None,
    engine: str = "vllm",
    max_running: int | None = None,
    graph_max_batch: int | None = None,
    graph_batch_sizes: tuple[int, ...] = (),
    chunked_prefill: bool = True,
    nsa_backends: tuple[str | None, str | None] = (None, None),
    kv_pool_tokens: int = 0,
    vllm_version: str = DEFAULT_VLLM_VERSION,
) -> BenchmarkRun:
    """Replay `num_prompts` (default `workload.num_prompts`, else 1,000) prompts sent at once, or at the
    workload's `request_rate` (`arrival_times`), by a client that keeps at most the workload's
    `concurrency` in flight when it has one (TTFT from each send).

    `kv_blocks`, `block_size`, `blocks_per_seq` and `batched_tokens` describe one replica's KV pool
    and step budget as the engine sizes them; `max_running` caps running requests (default
    `config.max_num_seqs`); decode batches above `graph_max_batch` run without CUDA graphs, and a
    decode-only batch is padded up to the next of `graph_batch_sizes` when the engine pads (its GEMMs
    run at the padded size). Without `chunked_prefill` a prompt is admitted only whole, into a step
    with room for all of it. `nsa_backends` (SGLang's DeepSeek Sparse Attention kernels as passed)
    and `kv_pool_tokens` (the pool's tokens per GPU) go to the step model (`ReplicaShape`), built with
    `vllm_version`'s release rules (`ReplicaShape.of`: whether the host schedules the next step while
    the GPU runs this one, whether short sparse-MLA prompt steps run as dense MHA).
    """
    n_total = num_prompts or workload.num_prompts or 1000
    replicas = min(config.replicas, n_total)
    cap = workload.concurrency
    if cap is not None:
        # A client with at most `cap` requests out keeps at most `cap` replicas busy at once (its
        # round robin hands the next request to the next replica as one finishes): the draw is dealt
        # over that many, each with its share of the cap (ceil(cap / replicas) each let 4 replicas
        # run 4 requests at --concurrency 1).
        replicas = min(replicas, cap)
    # No request is longer than the deployment accepts (a benchmark cannot send one).
    longest = config.max_model_len
    isl_all = np.minimum(
        draw_lengths(workload.isl, workload.isl_cv, n_total, LENGTH_SEED, workload.isl_quantiles),
        longest - 1,
    )
    osl_all = np.minimum(
        draw_lengths(workload.osl, workload.osl_cv, n_total, LENGTH_SEED + 1, workload.osl_quantiles),
        longest - isl_all,
    )
    arrive_all = arrival_times(n_total, workload.request_rate, workload.burstiness)
    if not chunked_prefill and int(isl_all.max()) > batched_tokens:
        raise InputError(
            f"the benchmark replay: a {int(isl_all.max())}-token prompt does not fit the "
            f"{batched_tokens}-token step budget with chunked prefill off"
        )
    context = math.ceil(workload.running_context)
    groups = blocks_per_seq / max(1, math.ceil(context / block_size))
    pool = Pool(max(kv_blocks, 0), block_size, max(groups, 1e-9))
    shape = dataclasses.replace(
        ReplicaShape.of(config, vllm_version),
        engine=engine,
        nsa_backends=nsa_backends,
        kv_pool_tokens=kv_pool_tokens,
    )
    engine_limit = max_running or config.max_num_seqs
    # The client keeps at most `cap` requests in flight over the deployment, dealt evenly: a replica
    # is sent at most its share (cap // replicas, one more for the first cap % replicas) and runs at
    # most the smaller of that share and the engine's limit. A share above the engine's limit waits
    # in the server's queue (`vllm bench serve` caps only the client, an asyncio.Semaphore around
    # each request, `limited_request_func`), and each request's TTFT counts from its send, the
    # client slot's freeing (`_send_times`). The slot is held for the request's whole life, the
    # per-request overhead (HTTP round, the server's own time) included: the next request reaches
    # the engine that long after the last one ended (`rank_steps`' `loop`), so C clients complete
    # C / (client-seen e2e) requests a second (Little's law), not C / (engine time).
    delay = efficiency_for(cluster.gpu, engine).request_overhead_s
    clients = [
        cap // replicas + (r < cap % replicas) if cap is not None else n_total for r in range(replicas)
    ]
    limits = [min(engine_limit, c) for c in clients]
    policy = SCHEDULING[engine]
    # Every replica replays its own share of one draw (the DP load balancer deals requests round
    # robin): the run lasts until the slowest replica's last token, so the longest requests of the
    # whole draw set the duration, not those of one replica's share.
    firsts, finishes, sends, gap_values, gap_counts = [], [], [], [], []
    seconds, second_tokens = [], []  # output tokens of each replica by whole second
    steps = peak = preempted = 0
    batch_sum = tail_s = 0.0
    # Replicas dealt the same lengths (and sends) replay alike (fixed lengths, an even deal, all sent
    # at once): one replay each. One engine whose data-parallel ranks share the experts (vLLM DP + EP,
    # SGLang attention DP, TensorRT-LLM attention DP): every forward pass is aligned across its ranks.
    aligned = replicas > 1 and shape.ep_ranks > shape.tp
    conservativeness = SGLANG_DP_ATTENTION_CONSERVATIVENESS if aligned and engine == "sglang" else 1.0
    keys = [
        (
            isl_all[r::replicas].tobytes(),
            osl_all[r::replicas].tobytes(),
            arrive_all[r::replicas].tobytes(),
            limits[r],
            clients[r],
        )
        for r in range(replicas)
    ]
    shares: dict[tuple[bytes, bytes, bytes, int, int], int] = {}  # each distinct share, by its first replica
    for r, key in enumerate(keys):
        shares.setdefault(key, r)
    passes = PassBudget(MAX_REPLAY_PASSES, f"{lengths_text(isl_all, osl_all)} over {replicas} replica(s)")
    ranks = {
        key: rank_steps(
            shape,
            limits[r],
            graph_max_batch,
            graph_batch_sizes,
            policy,
            isl_all[r::replicas],
            osl_all[r::replicas],
            pool,
            batched_tokens,
            chunked_prefill,
            conservativeness,
            PROMPT_STEP_GRAPHS[engine],
            arrive_all[r::replicas],
            passes=passes,
            loop=(clients[r], delay) if cap is not None else None,
        )
        for key, r in shares.items()
    }

    constants: dict[bool, StepConstants] = {}

    def price(work: Work) -> float:
        return _step_s(model, cluster, shape, constants, work)

    if aligned:
        replayed = dict(
            zip(ranks, lockstep(list(ranks.values()), price, PROMPT_STEP_GRAPHS[engine]), strict=True)
        )
    else:
        replayed = {key: alone(rank, price) for key, rank in ranks.items()}
    for r, key in enumerate(keys):
        run = replayed[key]
        firsts.append(run.first)
        arrive = arrive_all[r::replicas]
        sends.append(_send_times(run.finish, clients[r], arrive, delay) if cap is not None else arrive)
        finishes.append(run.finish)
        gap_values.append(run.gaps)
        gap_counts.append(run.gap_counts)
        seconds.append(run.seconds)
        second_tokens.append(run.second_tokens)
        steps, preempted = max(steps, run.steps), preempted + run.preemptions
        peak = max(peak, run.peak)
        batch_sum += run.mean_batch
        tail_s = max(tail_s, run.tail_s)
    first, finish = np.concatenate(firsts), np.concatenate(finishes)
    osl = np.concatenate([osl_all[r::replicas] for r in range(replicas)])
    mean_batch = batch_sum / replicas
    eff = efficiency_for(cluster.gpu, engine)
    overhead = eff.request_overhead_s
    duration = float(finish.max()) + overhead
    out_tokens = float(osl.sum())
    multi = osl > 1
    gaps = (finish - first)[multi]
    tpots = gaps / (osl[multi] - 1)
    tpot = float(tpots.mean()) if multi.any() else 0.0
    itl = float(gaps.sum() / (osl[multi] - 1).sum()) if multi.any() else 0.0
    ttfts = first - np.concatenate(sends) + overhead  # from each prompt's send
    itl_p50, itl_p99 = weighted_percentiles(
        np.concatenate(gap_values), np.concatenate(gap_counts), (50.0, 99.0)
    )
    return BenchmarkRun(
        num_prompts=n_total,
        request_rate=workload.request_rate,
        burstiness=workload.burstiness,
        max_concurrency=cap,
        duration_s=duration,
        output_tokens_per_s=out_tokens / duration,
        mean_ttft_ms=float(ttfts.mean()) * 1e3,
        mean_tpot_ms=tpot * 1e3,
        mean_itl_ms=itl * 1e3,
        median_ttft_ms=float(np.percentile(ttfts, 50)) * 1e3,
        p99_ttft_ms=float(np.percentile(ttfts, 99)) * 1e3,
        median_tpot_ms=float(np.percentile(tpots, 50)) * 1e3 if multi.any() else 0.0,
        p99_tpot_ms=float(np.percentile(tpots, 99)) * 1e3 if multi.any() else 0.0,
        median_itl_ms=itl_p50 * 1e3,
        p99_itl_ms=itl_p99 * 1e3,
        peak_output_tokens_per_s=float(
            per_second(np.concatenate(seconds), np.concatenate(second_tokens))[1].max(initial=0.0)
        ),
        peak_batch=peak,
        mean_batch=mean_batch,
        preemptions=preempted,
        steps=steps,
        tail_fraction=tail_s / max(float(finish.max()), 1e-12),
    )


def _step_s(
    model: ModelSpec,
    cluster: Cluster,
    shape: ReplicaShape,
    constants: dict[bool, StepConstants],
    work: Work,
) -> float:
    """Seconds of one engine step doing `work` (the mixed-step roofline, `rotation_s`). `constants`
    keeps one replay's `step_constants` of `shape` and of its eager copy, by `work.eager`, from their
    first step on: within a replay the model, the cluster, the shape and the engine's factors they are
    built from do not change, so its steps skip the memo's look-ups (a few µs of each step's price)."""
    c = constants.get(work.eager)
    if c is None:
        c = constants[work.eager] = step_constants(model, cluster, _eager(shape) if work.eager else shape)
    step, _ = _rotation_s(
        c,
        work.decode_seqs,
        work.context_tokens,
        work.prefill_tokens,
        work.prefill_context,
        work.steps,
        work.padded_seqs,
        work.prefill_longest,
    )
    return step


_EAGER_SHAPES: Memo[ReplicaShape] = {}


def _eager(shape: ReplicaShape) -> ReplicaShape:
    """`shape` without CUDA graphs, one object per shape object (a replay prices every step carrying
    a prompt in it)."""
    return memoized(_EAGER_SHAPES, (shape,), (), lambda: dataclasses.replace(shape, enforce_eager=True))
