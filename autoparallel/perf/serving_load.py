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
- **Scheduler** (vLLM V1 `Scheduler.schedule`, FCFS, chunked prefill): running requests first, each
  decode takes one token of the step budget (`max_num_batched_tokens`), an unfinished prompt takes
  what is left; then waiting requests are admitted in order while fewer than `max_num_seqs` run,
  budget remains and their first chunk's KV blocks are free.
- **KV cache and preemption**: a request holds ceil(tokens / block) blocks per KV-cache group; when a
  decode needs a block and none is free, the most recently admitted running request is preempted
  (vLLM V1 recompute: its blocks freed, it goes back to the front of the queue and re-prefills its
  prompt and the tokens it had generated).
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
  and TensorRT-LLM attention DP) replay in lock-step (`_lockstep`): vLLM's docs ("forward passes
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

import bisect
import dataclasses
import math
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict

from autoparallel.errors import InputError, InternalError
from autoparallel.memory.vllm_versions import DEFAULT_VLLM_VERSION
from autoparallel.perf.serving_efficiency import efficiency_for
from autoparallel.perf.serving_steps import (
    PROMPT_STEP_GRAPHS,
    SCHEDULING,
    ReplicaShape,
    micro_batches,
    rotation_s,
)

if TYPE_CHECKING:
    from autoparallel.configs import ServingConfig
    from autoparallel.hardware import GPU, Cluster
    from autoparallel.memory.engine_kv import EngineKv
    from autoparallel.memory.serving import VllmMemoryReport
    from autoparallel.models.spec import ModelSpec
    from autoparallel.workload import Serving

LENGTH_SEED = 20240601
"""Seed of the length draw (any fixed value: runs must be repeatable)."""
LENGTH_CAP = 8.0
"""Drawn lengths are capped at this multiple of their mean (benchmarks drop pathological samples)."""
ARRIVAL_SEED = 20240603
"""Seed of the arrival draw (any fixed value: runs must be repeatable)."""


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


SGLANG_CLIP_MAX_NEW_TOKENS = 4096
"""SGLang's cap on the output a request is assumed to still write (`CLIP_MAX_NEW_TOKENS_ESTIMATION`)."""
SGLANG_INIT_NEW_TOKEN_RATIO = 0.7
SGLANG_MIN_NEW_TOKEN_RATIO_FACTOR = 0.14
SGLANG_NEW_TOKEN_RATIO_DECAY_STEPS = 600
SGLANG_DP_ATTENTION_CONSERVATIVENESS = 0.3
"""SGLang multiplies `--schedule-conservativeness` (default 1.0) by 0.3 with `--enable-dp-attention`
(`ServerArgs._handle_data_parallelism`); the scheduler's initial ratio is 0.7 × conservativeness
(capped at 1), its floor the initial ratio × 0.14, reached over 600 decode steps
(`Scheduler.init_new_token_ratio`, `min_new_token_ratio`, `new_token_ratio_decay`)."""


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
    from autoparallel.memory.vllm_profile import capture_sizes
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
            graph_max_batch=capture_sizes(
                config.max_num_seqs, layout.batched_tokens, blackwell=cluster.gpu.arch == "blackwell"
            )[-1],
            vllm_version=vllm_version,
        )
    if engine_kv is None:
        engine_kv = default_engine_kv(engine, model, memory, cluster.gpu, config)
    context = math.ceil(workload.isl + workload.osl / 2.0)
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
        from autoparallel.memory.trtllm import tokens_per_block, trtllm_kv

        return trtllm_kv(
            memory, gpu, max_batch_size=config.max_num_seqs, block_tokens=tokens_per_block(model, gpu)
        )
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
        probs = np.linspace(0.0, 1.0, len(quantiles))
        raw = np.interp((rng.permutation(n) + 0.5) / n, probs, np.asarray(quantiles, dtype=float))
        raw *= mean / raw.mean()  # the shape's scale is the workload's mean
        return np.maximum(np.rint(raw), 1).astype(np.int64)
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


@dataclass(frozen=True)
class _ReplicaRun:
    """One replica's replay."""

    first: np.ndarray  # first-token time of each request, s
    finish: np.ndarray  # last-token time of each request, s
    steps: int
    peak: int  # most requests running at once
    mean_batch: float  # running requests averaged over steps
    preemptions: int
    tail_s: float  # seconds with fewer than half the peak batch running
    gaps: np.ndarray  # inter-token gaps, s
    gap_counts: np.ndarray  # how many tokens came after each
    seconds: np.ndarray  # the whole seconds of the run (from t = 0) in which tokens came out ...
    second_tokens: np.ndarray  # ... and how many (sparse: a run at 10^-9 requests/s lasts 10^12 s)


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


@dataclass(frozen=True)
class _Pool:
    blocks: int
    block_size: int
    groups: float  # blocks per block_size tokens over all KV-cache groups


def _send_times(finish: np.ndarray, in_flight: int, arrive: np.ndarray) -> np.ndarray:
    """When a capped client sends each of a replica's requests (in their order): at its arrival
    (`arrive`, all 0 without a rate) once fewer than `in_flight` are out, i.e. request k past the cap
    no earlier than the k-th finish (requests are sent in order and only sent ones finish, so the
    k-th slot to free is the k-th finish)."""
    sends = arrive.astype(float)
    if len(finish) > in_flight:
        sends[in_flight:] = np.maximum(sends[in_flight:], np.sort(finish)[: len(finish) - in_flight])
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
    context = math.ceil(workload.isl + workload.osl / 2.0)
    groups = blocks_per_seq / max(1, math.ceil(context / block_size))
    pool = _Pool(max(kv_blocks, 0), block_size, max(groups, 1e-9))
    shape = dataclasses.replace(
        ReplicaShape.of(config, vllm_version),
        engine=engine,
        nsa_backends=nsa_backends,
        kv_pool_tokens=kv_pool_tokens,
    )
    limit = max_running or config.max_num_seqs
    cap = workload.concurrency
    if cap is not None:
        # The client keeps at most `cap` requests in flight over the deployment, dealt evenly: a
        # replica never runs more than its share, whatever its own limits.
        limit = min(limit, max(1, math.ceil(cap / replicas)))
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
    lockstep = replicas > 1 and shape.ep_ranks > shape.tp
    conservativeness = SGLANG_DP_ATTENTION_CONSERVATIVENESS if lockstep and engine == "sglang" else 1.0
    keys = [
        (isl_all[r::replicas].tobytes(), osl_all[r::replicas].tobytes(), arrive_all[r::replicas].tobytes())
        for r in range(replicas)
    ]
    shares: dict[tuple[bytes, bytes, bytes], int] = {}  # each distinct share, by its first replica
    for r, key in enumerate(keys):
        shares.setdefault(key, r)
    max_passes = max(1, MAX_REPLAY_PASSES // len(shares))  # the replay's passes, split over what it steps
    ranks = {
        key: _rank_steps(
            shape,
            limit,
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
            max_passes=max_passes,
        )
        for key, r in shares.items()
    }

    def price(work: _Work) -> float:
        return _step_s(model, cluster, shape, work)

    if lockstep:
        replayed = dict(
            zip(ranks, _lockstep(list(ranks.values()), price, PROMPT_STEP_GRAPHS[engine]), strict=True)
        )
    else:
        replayed = {key: _alone(rank, price) for key, rank in ranks.items()}
    for r, key in enumerate(keys):
        run = replayed[key]
        firsts.append(run.first)
        arrive = arrive_all[r::replicas]
        sends.append(_send_times(run.finish, limit, arrive) if cap is not None else arrive)
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
            _per_second(np.concatenate(seconds), np.concatenate(second_tokens))[1].max(initial=0.0)
        ),
        peak_batch=peak,
        mean_batch=mean_batch,
        preemptions=preempted,
        steps=steps,
        tail_fraction=tail_s / max(float(finish.max()), 1e-12),
    )


@dataclass(frozen=True)
class _Work:
    """What one replica asks of its next engine step (one micro-batch's share, as `rotation_s` takes
    it), and how many identical decode-only steps it could run in a row."""

    decode_seqs: float
    context_tokens: float
    prefill_tokens: float
    prefill_context: float
    steps: float
    padded_seqs: float | None  # the captured CUDA-graph batch a decode-only step is padded to
    eager: bool  # no CUDA graph: a decode batch above the largest captured one, or a prompt step
    span: int  # identical decode-only steps the replica can run before anything else changes
    prefill_longest: float | None = None  # the longest prompt sequence (context and chunk) in the step
    until_s: float = math.inf  # to the replica's next arrival: a span ends at the first step past it
    idle: bool = False  # nothing to run until then (no GPU work of its own)


IDLE_SPAN = 1 << 62
"""An idle replica's span: it waits as many steps of the others as its next arrival takes."""


def _steps_run(work: _Work, step_s: float) -> int:
    """Steps of `step_s` seconds a replica runs of `work`: its span, cut at the first step boundary at
    or past its next arrival."""
    if math.isinf(work.until_s):
        return work.span
    return max(1, min(work.span, math.ceil(work.until_s / step_s - 1e-9)))


_Rank = Generator[_Work, tuple[float, int], _ReplicaRun]
"""A replica's replay: yields each step's work, is sent (seconds per step, steps run), returns its run."""


def _rank_steps(
    shape: ReplicaShape,
    max_running: int,
    graph_max_batch: int | None,
    graph_sizes: tuple[int, ...],
    policy: str,
    isl: np.ndarray,
    osl: np.ndarray,
    pool: _Pool,
    budget: int,
    chunked: bool = True,
    conservativeness: float = 1.0,
    prompt_graphs: str = "piecewise",
    arrive: np.ndarray | None = None,
    *,
    max_passes: int,
) -> _Rank:
    """One replica's engine steps, as a generator (its step times come from the driver: `_alone` or
    `_lockstep`); returns (first-token times, finish times, steps, peak batch, mean batch over steps,
    preemptions, seconds with fewer than half the peak batch, ...). Request i joins the queue at
    `arrive[i]` s (in order; None: all at t = 0). More than `max_passes` scheduler passes (its part of
    `MAX_REPLAY_PASSES`) is an InputError."""
    n = len(isl)
    arrive = np.zeros(n) if arrive is None else arrive
    prompt = isl.astype(np.int64).copy()  # tokens to prefill (grows by the output on preemption)
    done_pf = np.zeros(n, dtype=np.int64)  # prompt tokens already computed
    generated = np.zeros(n, dtype=np.int64)
    held = np.zeros(n, dtype=np.int64)  # KV blocks held
    first = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    last = np.full(n, np.nan)  # time of each request's latest token
    gaps: list[np.ndarray] = []  # distinct inter-token gaps, s ...
    gap_tokens: list[np.ndarray] = []  # ... and how many tokens came after each
    # The last steps' gaps, one per token, folded into distinct values with their counts once they
    # pass GAP_FOLD (a step's decodes mostly share one gap; a float per token kept 1.6 GB for 10^6
    # prompts, and folding every step on its own cost a sort per step).
    pending: list[np.ndarray] = []
    pending_len = 0

    def fold() -> None:
        nonlocal pending_len
        if pending:
            values, tokens = np.unique(np.concatenate(pending), return_counts=True)
            gaps.append(values)
            gap_tokens.append(tokens)
            pending.clear()
            pending_len = 0

    spans: list[tuple[float, int]] = []  # (gap, tokens after it) of decode spans
    out_times: list[float] = []  # when tokens come out, s ...
    out_tokens: list[int] = []  # ... and how many

    def emit(requests: np.ndarray, at: float) -> None:
        """`requests` (each already holding a token) emit one more at `at`."""
        nonlocal pending_len
        pending.append(at - last[requests])
        pending_len += len(requests)
        if pending_len > GAP_FOLD:
            fold()
        last[requests] = at
        out_times.append(at)
        out_tokens.append(len(requests))

    waiting: deque[int] = deque()
    sent = 0  # requests that have arrived (they arrive in order)
    running = np.zeros(0, dtype=np.int64)  # admission order
    free = pool.blocks
    bs, groups = pool.block_size, pool.groups
    now = 0.0
    steps = preemptions = 0
    times: list[float] = []  # seconds of each span of identical steps
    batches: list[int] = []  # running requests during the span
    counts: list[int] = []  # steps in the span

    def blocks_for(tokens: np.ndarray) -> np.ndarray:
        if groups == 1.0:  # one KV-cache group: integer arithmetic (the replay's hot path)
            return -(-tokens // bs)
        return np.ceil(np.ceil(tokens / bs) * groups).astype(np.int64)

    if int(blocks_for(np.asarray([prompt.min() + 1]))[0]) > pool.blocks:
        raise InputError("the benchmark replay: the KV cache holds no single request")
    _check_replay_work(isl, osl, pool.blocks, blocks_for, max_running, policy)
    passes = 0

    def padded(seqs: float, eager: bool) -> float | None:
        """The captured batch a decode-only batch of `seqs` is padded to (None: no padding)."""
        if eager or not graph_sizes:
            return None
        i = bisect.bisect_left(graph_sizes, math.ceil(seqs - 1e-9))
        return float(graph_sizes[i]) if i < len(graph_sizes) else None

    # SGLang's new_token_ratio (`prefill_first` only): from its initial value down to its floor.
    init_ratio = min(SGLANG_INIT_NEW_TOKEN_RATIO * conservativeness, 1.0)
    min_ratio = init_ratio * SGLANG_MIN_NEW_TOKEN_RATIO_FACTOR
    decay = (init_ratio - min_ratio) / SGLANG_NEW_TOKEN_RATIO_DECAY_STEPS
    ratio = init_ratio

    def sglang_fits(r: int, admitted: list[int], pool_free: int) -> bool:
        """SGLang's `PrefillAdder` budget: waiting request `r`'s remaining prompt and clipped output fit
        the free pool less what the running requests may still write (remaining prompt, remaining
        output times `ratio`) and what this step already admitted (whole)."""
        clip = SGLANG_CLIP_MAX_NEW_TOKENS
        left_out = np.clip(osl[running] - generated[running], 0, clip)
        owed = float((prompt[running] - done_pf[running]).sum()) + float(left_out.sum()) * ratio
        for a in (*admitted, r):
            owed += int(prompt[a] - done_pf[a]) + min(max(int(osl[a] - generated[a]), 0), clip)
        return int(blocks_for(np.asarray([math.ceil(owed)]))[0]) < pool_free

    max_steps = int(n * (int(osl.max()) + 2) + prompt.sum() // max(budget, 1) + 10)
    while (waiting or len(running) or sent < n) and steps < max_steps:
        passes += 1
        if passes > max_passes:
            raise InputError(_replay_too_long(n, isl, osl, None, max_passes))
        while sent < n and arrive[sent] <= now + 1e-12:
            waiting.append(sent)
            sent += 1
        until = float(arrive[sent]) - now if sent < n else math.inf  # s to the next arrival
        if not waiting and not len(running):
            # Nothing to run until the next request arrives: the engine idles (beside the others' steps
            # when its ranks run in lock-step).
            step, waited = yield _Work(
                0.0, 0.0, 0.0, 0.0, 1.0, None, False, IDLE_SPAN, until_s=until, idle=True
            )
            now += step * waited
            times.append(step * waited)
            batches.append(0)
            counts.append(0)
            continue
        # 0. Nothing can change but the decodes: jump to the next request's last token at once.
        span = _decode_span(
            running,
            waiting,
            prompt,
            done_pf,
            generated,
            osl,
            held,
            free,
            max_running,
            policy,
            budget,
            blocks_for,
        )
        if span > 1 and policy == "prefill_first" and waiting and len(running) < max_running:
            span = 0  # SGLang's admission budget moves with the decaying ratio: step by step
        if span > 1:
            d = len(running)
            k = micro_batches(float(d), shape.pp)
            ctx = float((prompt[running] + generated[running]).mean()) + span / 2.0
            eager = graph_max_batch is not None and d / k > graph_max_batch
            step, span = yield _Work(
                d / k, ctx, 0.0, 0.0, 1.0, padded(d / k, eager), eager, span, until_s=until
            )
            grow = np.maximum(blocks_for(prompt[running] + generated[running] + span) - held[running], 0)
            free -= int(grow.sum())
            held[running] += grow
            generated[running] += span
            emit(running, now + step)
            spans.append((step, d * (span - 1)))
            out_times.extend((now + step * np.arange(2, span + 1)).tolist())
            out_tokens.extend([d] * (span - 1))
            last[running] = now + span * step
            now += span * step
            steps += span
            ratio = max(min_ratio, ratio - span * decay)
            times.append(span * step)
            batches.append(d)
            counts.append(span)
            over = generated[running] >= osl[running]
            finish[running[over]] = now
            free += int(held[running[over]].sum())
            held[running[over]] = 0
            running = running[~over]
            continue
        # 1. Running requests, in admission order: one decode token or the next prompt chunk, until
        #    the budget is spent; preempt the latest admitted when their KV blocks do not fit.
        rem = prompt[running] - done_pf[running]
        prefill_only = policy == "prefill_first" and (
            bool((rem > 0).any())
            or (
                bool(waiting)
                and len(running) < max_running
                and int(blocks_for(np.asarray([min(int(prompt[waiting[0]]), budget)]))[0]) <= free
                and sglang_fits(waiting[0], [], free)
            )
        )
        preempted_now = False
        while True:
            rem = prompt[running] - done_pf[running]
            want = np.where(rem > 0, rem, 0 if prefill_only else 1)
            before = np.cumsum(want) - want
            take = np.minimum(np.maximum(budget - before, 0), want)
            tokens = np.where(rem > 0, done_pf[running] + take, prompt[running] + generated[running])
            # A request that does not run this step (a decode beside SGLang's prompt-only step, one past
            # the token budget) takes no new block: slots are allocated for the tokens a step writes.
            need = np.where(take > 0, np.maximum(blocks_for(tokens) - held[running], 0), 0)
            if int(need.sum()) <= free or len(running) <= 1:
                break
            victim = int(running[-1])
            running = running[:-1]
            free += int(held[victim])
            held[victim] = 0
            prompt[victim] = isl[victim] + generated[victim]
            done_pf[victim] = 0
            waiting.appendleft(victim)
            preemptions += 1
            ratio = init_ratio
            preempted_now = True
        if len(running) and int(need.sum()) > free:
            raise InputError(
                "the benchmark replay: one request outgrows the KV cache "
                "(raise the KV memory or lower max_model_len)"
            )
        free -= int(need.sum())
        held[running] += need
        sched = take > 0
        is_decode = (rem <= 0) & sched
        left = budget - int(take.sum())
        # 2. Waiting requests, first come first served; none in a step that preempted (vLLM V1
        #    `Scheduler.schedule`: "if not preempted_reqs", so a victim is not re-admitted at once).
        new: list[int] = []
        new_take: list[int] = []
        free_before = free  # SGLang sizes a step's admissions against the pool as the step starts
        while waiting and not preempted_now and left > 0 and len(running) + len(new) < max_running:
            r = waiting[0]
            t = min(int(prompt[r] - done_pf[r]), left)
            if not chunked and t < prompt[r] - done_pf[r]:
                break  # no chunking: the prompt waits for a step with room for all of it
            if policy == "prefill_first" and not sglang_fits(r, new, free_before):
                break
            reserve = prompt[r] + osl[r] if policy == "no_evict" else done_pf[r] + t
            nb = int(blocks_for(np.asarray([reserve]))[0])
            if nb > free:
                break
            waiting.popleft()
            new.append(r)
            new_take.append(t)
            free -= nb
            held[r] = nb
            left -= t
        if new:
            running = np.concatenate([running, np.asarray(new, dtype=np.int64)])
            take = np.concatenate([take, np.asarray(new_take, dtype=np.int64)])
            is_decode = np.concatenate([is_decode, np.zeros(len(new), dtype=bool)])
        chunk = np.where(is_decode, 0, take)
        if not is_decode.any() and not chunk.any():
            raise InputError("the benchmark replay: the scheduler can make no progress (KV cache too small)")
        # 3. The step's time: the mixed-step roofline at this step's real work.
        dec = running[is_decode]
        d = len(dec)
        ctx = float((prompt[dec] + generated[dec]).mean()) if d else 0.0
        p_tokens = float(chunk.sum())
        p_ctx = float(((done_pf[running] + chunk / 2.0) * chunk).sum() / p_tokens) if p_tokens else 0.0
        p_longest = float((done_pf[running] + chunk)[chunk > 0].max()) if p_tokens else None
        k = micro_batches(float(max(d, 1)), shape.pp)
        eager = (graph_max_batch is not None and d / k > graph_max_batch) or (
            p_tokens > 0 and prompt_graphs == "eager"
        )
        step, _ = yield _Work(
            d / k,
            ctx,
            p_tokens / k,
            p_ctx,
            max(1.0, p_tokens / k / budget),
            # CUDA graphs (and their padding) replay decode-only steps; a step with a prompt chunk
            # runs at its own size.
            padded(d / k, eager) if p_tokens == 0 and d else None,
            eager,
            1,
            p_longest,
        )
        now += step
        steps += 1
        times.append(step)
        batches.append(len(running))
        counts.append(1)
        # 4. Tokens come out: a decode token each; a prompt whose last chunk ran samples its first.
        generated[dec] += 1
        if d:
            ratio = max(min_ratio, ratio - decay)
        emit(dec, now)
        pf = running[chunk > 0]
        done_pf[pf] += chunk[chunk > 0]
        completed = pf[done_pf[pf] >= prompt[pf]]
        fresh = completed[generated[completed] == 0]
        first[fresh] = now
        last[fresh] = now
        out_times.append(now)
        out_tokens.append(len(fresh))
        emit(completed[generated[completed] > 0], now)  # resumed after a preemption
        generated[completed] = np.minimum(generated[completed] + 1, osl[completed])
        over = (generated[running] >= osl[running]) & (done_pf[running] >= prompt[running])
        if over.any():
            gone = running[over]
            finish[gone] = now
            free += int(held[gone].sum())
            held[gone] = 0
            running = running[~over]
    if waiting or len(running):
        raise InternalError("the benchmark replay did not finish")
    fold()
    peak = max(batches, default=0)
    tail = float(sum(t for t, b in zip(times, batches, strict=True) if 2 * b < peak))
    mean_batch = sum(b * c for b, c in zip(batches, counts, strict=True)) / max(sum(counts), 1)
    return _ReplicaRun(
        first,
        finish,
        steps,
        peak,
        mean_batch,
        preemptions,
        tail,
        np.concatenate([*gaps, np.asarray([g for g, _ in spans], dtype=float)]),
        np.concatenate([*gap_tokens, np.asarray([c for _, c in spans], dtype=np.int64)]),
        *_per_second(np.floor(np.asarray(out_times)), np.asarray(out_tokens, dtype=float)),
    )


def _per_second(seconds: np.ndarray, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct whole `seconds` and the `tokens` summed in each."""
    distinct, where = np.unique(seconds, return_inverse=True)
    return distinct, np.bincount(where, weights=tokens, minlength=len(distinct))


GAP_FOLD = 1 << 20
"""Inter-token gaps a replica's replay holds one per token before folding them into distinct values
with counts (8 MiB)."""
MAX_REPLAY_PASSES = 40_000
"""Most scheduler passes one benchmark replay takes, over all the replicas it steps (about 7 s on this
project's 2-core machine, at 150-200 µs a pass; every development row replays within 10,000: none is
refused with the limit lowered to that). Its replicas that replay distinct shares split it. Under KV pressure
the replay steps one engine step at a time: 1,000 prompts of 1,000,000 output tokens on a pool that
holds 13 of them at once are 77 waves of a million steps each, which ran until killed; 131,072
prompts sent at once are about 140,000 passes (26 s, under an earlier limit of 250,000)."""


MAX_REPLAY_ESTIMATE = 250_000
"""The most scheduler passes `_check_replay_work`'s up-front estimate lets a replay start with. The
estimate steps every KV-bound wave one engine step at a time, where the replay jumps decode spans
between finishes: on the development rows it says 42,000-54,000 for replays that run in under
4,000, so it refuses only what is far past `MAX_REPLAY_PASSES` (1,000 prompts of 30,000 output
tokens on a pool that holds 4: 7.5 million); the pass counter holds the limit itself."""


def _replay_too_long(n: int, isl: np.ndarray, osl: np.ndarray, passes: float | None, limit: int) -> str:
    """Why a replay is refused: its estimated `passes`, or (None) the count run past `limit`."""
    what = f"{n:,} prompts of {float(isl.mean()):,.0f} + {float(osl.mean()):,.0f} tokens a replica"
    if passes is None:
        took = f"ran past its {limit:,} scheduler passes ({what})"
    else:
        took = f"would take about {passes:,.0f} scheduler passes ({what}; at most {limit:,})"
    return (
        f"the benchmark replay {took}: give fewer prompts or shorter outputs, or no prompt count for "
        "the steady-state model"
    )


def _check_replay_work(
    isl: np.ndarray,
    osl: np.ndarray,
    pool_blocks: int,
    blocks_for: Callable[[np.ndarray], np.ndarray],
    max_running: int,
    policy: str,
) -> None:
    """Refuse up front a replay whose KV pool, not its running-request cap, limits the batch, when the
    waves that forces, stepped one engine step at a time as a full pool makes them, pass
    `MAX_REPLAY_ESTIMATE`. (Below the cap with room in the pool, decode spans jump to each finish.)
    A request holds its prompt and half its output on average, or all of both where the scheduler
    reserves them at admission (`no_evict`).

    Raises:
        InputError: the estimate is above the limit.
    """
    n = len(isl)
    held = isl + (osl if policy == "no_evict" else osl // 2)
    kv_at_once = pool_blocks // max(1, int(blocks_for(held).mean()))
    if kv_at_once >= min(n, max_running):
        return  # the pool is not what limits the batch: the decode spans jump to each finish
    estimate = math.ceil(n / max(kv_at_once, 1)) * float(osl.mean())
    if estimate > MAX_REPLAY_ESTIMATE:
        raise InputError(_replay_too_long(n, isl, osl, estimate, MAX_REPLAY_ESTIMATE))


def _step_s(model: ModelSpec, cluster: Cluster, shape: ReplicaShape, work: _Work) -> float:
    """Seconds of one engine step doing `work` (the mixed-step roofline, `rotation_s`)."""
    step, _ = rotation_s(
        model,
        cluster,
        dataclasses.replace(shape, enforce_eager=True) if work.eager else shape,
        decode_seqs=work.decode_seqs,
        context_tokens=work.context_tokens,
        prefill_tokens=work.prefill_tokens,
        prefill_context=work.prefill_context,
        steps=work.steps,
        padded_seqs=work.padded_seqs,
        prefill_longest=work.prefill_longest,
    )
    return step


def _alone(rank: _Rank, price: Callable[[_Work], float]) -> _ReplicaRun:
    """Drive one replica that steps on its own: each step takes its own work's time; an idle replica
    waits for its next arrival."""
    work = next(rank)
    while True:
        step = work.until_s if work.idle else price(work)
        try:
            work = rank.send((step, _steps_run(work, step)))
        except StopIteration as done:
            return done.value


def _synced(work: _Work, prompt_in_step: bool, graphs: str) -> _Work:
    """`work` as its rank runs it in a lock-step engine step (see `_lockstep`)."""
    if not prompt_in_step or work.prefill_tokens > 0:
        return work
    return dataclasses.replace(work, padded_seqs=None, eager=work.eager or graphs == "eager")


def _lockstep(ranks: list[_Rank], price: Callable[[_Work], float], graphs: str) -> list[_ReplicaRun]:
    """Drive the data-parallel ranks of one engine whose forward passes are aligned (the experts'
    all-to-all or all-gather needs every rank in every step): each step lasts as long as its slowest
    rank's, identical decode-only steps run together only as long as every rank can, and a rank that
    carries a prompt chunk takes the others' decode CUDA graphs away (`graphs`: `PROMPT_STEP_GRAPHS`).
    A rank with nothing left, or nothing until its next arrival, runs dummy steps (not timed: the
    busiest rank sets the step); when every rank waits, the engine idles to the first arrival."""
    works: list[_Work | None] = [next(rank) for rank in ranks]
    runs: list[_ReplicaRun | None] = [None] * len(ranks)
    while True:
        live = [(i, w) for i, w in enumerate(works) if w is not None]
        if not live:
            break
        busy = [w for _, w in live if not w.idle]
        if busy:
            prompt = any(w.prefill_tokens > 0 for w in busy)
            step = max(price(_synced(w, prompt, graphs)) for w in busy)
            n = min(_steps_run(w, step) for _, w in live)
        else:
            step, n = min(w.until_s for _, w in live), 1
        for i, _ in live:
            try:
                works[i] = ranks[i].send((step, n))
            except StopIteration as done:
                works[i], runs[i] = None, done.value
    return [run for run in runs if run is not None]


def _decode_span(
    running: np.ndarray,
    waiting: deque[int],
    prompt: np.ndarray,
    done_pf: np.ndarray,
    generated: np.ndarray,
    osl: np.ndarray,
    held: np.ndarray,
    free: int,
    max_running: int,
    policy: str,
    budget: int,
    blocks_for: Callable[[np.ndarray], np.ndarray],
) -> int:
    """Decode-only steps that can run before anything but the decodes changes (0 or 1: step one by
    one): no prompt in flight, no request admissible, until the first finish or the last step before
    the running requests' new KV blocks outgrow the free pool (a preemption)."""
    if not len(running) or bool((done_pf[running] < prompt[running]).any()) or len(running) > budget:
        return 0
    if waiting and len(running) < max_running:
        r = waiting[0]
        first_chunk = prompt[r] + osl[r] if policy == "no_evict" else min(int(prompt[r]), budget)
        if int(blocks_for(np.asarray([first_chunk]))[0]) <= free:
            return 0
    span = int((osl[running] - generated[running]).min())
    if span <= 1:
        return 0
    context = prompt[running] + generated[running]
    held_now = held[running]

    def fits(s: int) -> bool:
        return int(np.maximum(blocks_for(context + s) - held_now, 0).sum()) <= free

    if fits(span):
        return span
    if not fits(2):
        return 0
    # The longest span whose new KV blocks still fit (growth is monotone in the span): the steps
    # up to the next preemption run as one span too.
    lo, hi = 0, span
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo
