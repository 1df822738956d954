"""Disaggregated serving: one request through a prefill (P) engine, a KV transfer and a decode (D) engine.

The float model of a disaggregated request (vLLM's P/D split with the NIXL KV connector):

    TTFT = W_p + S_p + X + W_d + T_d(b) + overhead
    TPOT = T_d(b)

- S_p: the P engine's prefill of one prompt of `isl` tokens alone (`StepTimes.prefill_s` from
  perf/serving_steps.py: the same roofline as the aggregated engine, no decode work beside it).
- W_p: queueing before the prefill. A P engine of n data-parallel ranks is one M/G/n queue (Poisson
  arrivals, each rank one prompt at a time): its API server sends each request to the least loaded
  rank (vLLM `DPLBAsyncMPClient.get_core_engine_for_request`, as the aggregated slot queue pools
  them), so a prompt waits only while every rank is busy. The mean wait is Allen and Cunneen's
  W_p = C(n, a) · S_p / (n (1 − ρ)) · (1 + c²) / 2 at utilisation ρ = λ · S_p / n, a = n ρ, C Erlang's
  delay probability and c the coefficient of variation of the service time (0: prompts of one
  length; roles.py derives c from the workload's prompt lengths through the prefill time model);
  for one rank C = ρ and it is Pollaczek-Khinchine's ρ · S_p · (1 + c²) / (2 (1 − ρ)), exact. Taken
  as n separate M/G/1 queues, DeepSeek-V3's 16-rank prefill engine at ρ 0.955 was charged 1,726 ms
  where the pooled ranks wait about 90. A P rank prefills one prompt at a time (no credit for
  pipelining prompts through pp stages).
- X: the KV transfer. Every layer's KV of the isl prompt tokens leaves the P ranks and lands on the
  D ranks, rank to rank in parallel, each D rank reading what it holds from the P ranks
  (`kv_bytes_per_sequence_per_gpu` at each side's TP). vLLM's NIXL connector
  (vllm/distributed/kv_transfer/kv_connector/utils.py, `TpKVTopology`): a D rank of lower TP reads
  from tp_p / tp_d P ranks (`get_target_remote_ranks`); D ranks of higher TP read from one P rank in
  groups of tp_d / tp_p (`tp_ratio`), each its own copy of what it holds, so a P rank sends
  tp_d / tp_p times a D rank's bytes: its own bytes when the heads split, more where the D side
  replicates them (MLA's latent always, `replicates_kv_cache`; softmax KV when tp_d > KV heads).
  The busiest rank moves max(bytes a P rank sends, bytes a D rank receives), over NVLink when both
  engines share a node, else over the GPUs' own NICs within their own links (a PCIe GPU's); plus one
  link latency per read (tp_p / tp_d reads when P has more TP). The D rank pulls: vLLM's NIXL
  connector posts a point-to-point READ from the decode worker to the prefill rank
  (vllm/distributed/kv_transfer/kv_connector/v1/nixl_connector.py,
  `NixlConnectorWorker.start_load_kv` -> `_read_blocks`), so one copy crosses
  both ends' links and runs at the slower of the two (`pair_link`: P and D in pools of different
  networks).
- Link rate: the same bytes cap the requests/s a rank carries: a P rank sends and a D rank receives
  its bytes of every request over its link, so each carries at most link bytes/s ÷ its bytes per
  request (`link_rate_rps`).
- T_d(b): the D engine's pure decode step at its running batch b (`StepTimes.decode_s`): the D
  engine runs no prefill, so TPOT has no prefill interference. The first token after the transfer
  comes with the next decode step.
- Decode capacity (Little's law): a D rank holding b sequences finishes b / (osl · T_d(b)) requests/s.
  Its KV cache holds the b transferred sequences (the serving tables' memory check at max_num_seqs = b).
- W_d: the wait for a free slot on the D engine (perf/slot_queue.py; roles.py rates a D engine at an
  arrival rate with a TTFT limit at the rate whose wait fits its room, `decode_slot_room_s`).
- Prefill capacity at a TTFT budget B (what is left of the limit after X, T_d and the overhead): the
  highest ρ with S_p + W_p ≤ B (for one rank ρ* = (B − S_p) / (B − S_p + S_p (1 + c²) / 2), by
  bisection for more), i.e. isl · ρ* / S_p tokens/s per rank.
- A client of C requests in flight (`vllm bench serve --max-concurrency C`): every request is
  somewhere in its cycle, so by Little's law C ≥ X · (overhead + X̄ + T) + Σ over P ranks of the
  requests at each, waiting or in prefill (`prefill_in_system`, ρ + C(n, a) ρ (1 + c²) / (2n (1 − ρ)),
  Little's law on W_p + S_p; for one rank ρ + ρ² (1 + c²) / (2 (1 − ρ))), T the time a request holds
  its decode slot; the carried rate is the highest X
  that holds it (`closed_loop_rps`), where the rates of the roles alone would ignore the prompts
  queued at the P ranks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from autoparallel.perf import comm
from autoparallel.perf.serving_facts import kv_bytes_per_sequence_per_gpu

if TYPE_CHECKING:
    from autoparallel.hardware import Cluster
    from autoparallel.models.spec import ModelSpec

__all__ = [
    "DisaggRequest",
    "PrefillRanks",
    "closed_loop_rps",
    "decode_capacity_rps",
    "disagg_request",
    "erlang_c",
    "kv_received_bytes_per_rank",
    "kv_sent_bytes_per_rank",
    "kv_transfer_bytes_per_rank",
    "kv_transfer_s",
    "link_rate_rps",
    "max_prefill_utilisation",
    "pair_link",
    "prefill_capacity_tokens_per_s",
    "prefill_in_system",
    "prefill_service_spread",
    "prefill_wait_s",
    "transfer_link",
]


def kv_sent_bytes_per_rank(
    model: ModelSpec,
    kv_cache_dtype: str,
    isl: int,
    *,
    tp_prefill: int,
    tp_decode: int,
    pp_prefill: int = 1,
) -> float:
    """Bytes one P rank sends for one prompt (module doc): its own KV when tp_d ≤ tp_p; else each of
    the tp_d / tp_p D ranks that read from it (vLLM `TpKVTopology.tp_ratio`) takes its own copy of
    what it holds (a D rank's bytes; more than a share of the P rank's where the D side replicates
    the KV: MLA, or tp_d above the KV heads). `pp_prefill` stages each hold their layers only."""
    own = kv_bytes_per_sequence_per_gpu(
        model, kv_cache_dtype, tp_prefill, pp_prefill, float(isl), engine="vllm"
    )
    if tp_decode <= tp_prefill:
        return own
    readers = math.ceil(tp_decode / tp_prefill)
    each = kv_bytes_per_sequence_per_gpu(
        model, kv_cache_dtype, tp_decode, pp_prefill, float(isl), engine="vllm"
    )
    return max(own, readers * each)


def kv_received_bytes_per_rank(model: ModelSpec, kv_cache_dtype: str, isl: int, *, tp_decode: int) -> float:
    """Bytes one D rank receives for one prompt: every layer's KV it holds at its TP."""
    return kv_bytes_per_sequence_per_gpu(model, kv_cache_dtype, tp_decode, 1, float(isl), engine="vllm")


def kv_transfer_bytes_per_rank(
    model: ModelSpec,
    kv_cache_dtype: str,
    isl: int,
    *,
    tp_prefill: int,
    tp_decode: int,
    pp_prefill: int = 1,
) -> float:
    """Bytes the busiest rank moves for one prompt's KV: max(bytes a P rank sends, a D rank receives)."""
    sent = kv_sent_bytes_per_rank(
        model, kv_cache_dtype, isl, tp_prefill=tp_prefill, tp_decode=tp_decode, pp_prefill=pp_prefill
    )
    received = kv_received_bytes_per_rank(model, kv_cache_dtype, isl, tp_decode=tp_decode)
    return max(sent, received)


def link_rate_rps(link: comm.Link, bytes_per_request: float) -> float:
    """Requests/s a rank's link carries when each request moves `bytes_per_request` over it (inf: none)."""
    return link.bytes_per_s / bytes_per_request if bytes_per_request > 0 else math.inf


def transfer_link(cluster: Cluster, *, same_node: bool) -> comm.Link:
    """NVLink inside a node; across nodes one GPU's own NIC (the transfer is point to point,
    `comm.p2p_link`), within what the GPU's own scale-up link carries: a PCIe GPU's GPUDirect send
    leaves through its PCIe link (2x8xL40S with 800 Gb/s NICs: 25.6 GB/s, not the NIC's 90)."""
    if same_node:
        return comm.Link(
            bytes_per_s=cluster.intra_node_gbps * comm.GB * comm.NVLINK_EFFICIENCY,
            latency_s=comm.NVLINK_LATENCY_S,
        )
    return comm.p2p_link(cluster, 2, stride=cluster.gpus_per_node)


def pair_link(prefill: Cluster, decode: Cluster | None, *, same_node: bool) -> comm.Link:
    """The link one KV copy from a P rank of pool `prefill` to a D rank of pool `decode` (None: the
    same pool) runs at: the D rank reads over both ends' links (module doc), so the slower one's
    bandwidth and the longer latency."""
    ends = [transfer_link(prefill, same_node=same_node)]
    if decode is not None and decode is not prefill:
        ends.append(transfer_link(decode, same_node=same_node))
    return comm.Link(bytes_per_s=min(e.bytes_per_s for e in ends), latency_s=max(e.latency_s for e in ends))


def kv_transfer_s(
    model: ModelSpec,
    cluster: Cluster,
    kv_cache_dtype: str,
    isl: int,
    *,
    tp_prefill: int,
    tp_decode: int,
    same_node: bool,
    pp_prefill: int = 1,
    decode_cluster: Cluster | None = None,
) -> float:
    """Seconds to move one prompt's KV from the P engine (on `cluster`, its pool) to the D engine (on
    `decode_cluster`, its pool; None: the same pool), over the slower end's link (module doc)."""
    link = pair_link(cluster, decode_cluster, same_node=same_node)
    moved = kv_transfer_bytes_per_rank(
        model, kv_cache_dtype, isl, tp_prefill=tp_prefill, tp_decode=tp_decode, pp_prefill=pp_prefill
    )
    reads = max(1, tp_prefill // tp_decode)
    return moved / link.bytes_per_s + reads * link.latency_s


def erlang_c(ranks: int, rho: float) -> float:
    """Erlang's delay probability C(n, a) of n = `ranks` servers at utilisation ρ (a = n ρ offered
    erlangs): the chance an arrival finds every server busy; ρ itself for one server. From Erlang B's
    recursion B(k) = a B(k − 1) / (k + a B(k − 1)), C = B / (1 − ρ (1 − B)) (stable at any n)."""
    if ranks <= 1:
        return rho
    a, b = ranks * rho, 1.0
    for k in range(1, ranks + 1):
        b = a * b / (k + a * b)
    return b / (1.0 - rho * (1.0 - b))


def prefill_wait_s(prefill_s: float, rate_per_rank: float, service_cv2: float = 0.0, ranks: int = 1) -> float:
    """Mean wait before a prefill on a P engine of `ranks` pooled ranks (module doc: M/G/n, Allen and
    Cunneen), each at `rate_per_rank` prompts/s, service times of mean S and squared coefficient of
    variation `service_cv2`: C(n, a) S (1 + c²) / (2n (1 − ρ)), for one rank Pollaczek-Khinchine's
    ρ S (1 + c²) / (2 (1 − ρ)); inf when ρ ≥ 1 (to rounding: a rank run at full load, rate 1 / S,
    gives ρ = 1 − 2^-53, and a wait of 10^19 ms)."""
    rho = rate_per_rank * prefill_s
    if rho >= 1.0 - 1e-9:
        return float("inf")
    return erlang_c(ranks, rho) * prefill_s * (1.0 + service_cv2) / (2.0 * ranks * (1.0 - rho))


def prefill_in_system(rho: float, service_cv2: float = 0.0, ranks: int = 1) -> float:
    """Mean requests per rank of a P engine of `ranks` pooled ranks at utilisation ρ, waiting or in
    prefill (Little's law on `prefill_wait_s` + S): ρ + C(n, a) ρ (1 + c²) / (2n (1 − ρ)), for one rank
    ρ + ρ² (1 + c²) / (2 (1 − ρ)); inf when ρ ≥ 1 (as `prefill_wait_s`)."""
    if rho >= 1.0 - 1e-9:
        return float("inf")
    return rho + erlang_c(ranks, rho) * rho * (1.0 + service_cv2) / (2.0 * ranks * (1.0 - rho))


@dataclass(frozen=True)
class PrefillRanks:
    """Ranks of one P engine in a closed loop: `ranks` of them, each getting `share` of the carried
    requests (round robin over the role's replicas, then its data-parallel ranks), `pooled` to an
    engine (its data-parallel ranks, one queue: `prefill_in_system`)."""

    ranks: int
    share: float
    prefill_s: float
    service_cv2: float = 0.0
    pooled: int = 1


def closed_loop_rps(clients: float, cycle_s: float, prefill: list[PrefillRanks], top_rps: float) -> float:
    """The highest rate X ≤ `top_rps` at which `clients` requests in flight hold every request's cycle
    (module doc): X · `cycle_s` (what a request spends outside the P ranks: overhead, KV transfer,
    decode) + Σ ranks · `prefill_in_system`(X · share · S) ≤ clients. The left side is increasing
    and convex in X, so bisection finds it (to 1e-9 of `top_rps`)."""

    def held(x: float) -> float:
        return x * cycle_s + sum(
            p.ranks * prefill_in_system(x * p.share * p.prefill_s, p.service_cv2, p.pooled) for p in prefill
        )

    if top_rps <= 0 or held(top_rps) <= clients:
        return max(top_rps, 0.0)
    lo, hi = 0.0, top_rps
    while hi - lo > 1e-9 * top_rps:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if held(mid) <= clients else (lo, mid)
    return lo


def max_prefill_utilisation(
    prefill_s: float, budget_s: float, service_cv2: float = 0.0, ranks: int = 1
) -> float:
    """Highest ρ with S + `prefill_wait_s` ≤ B on a P engine of `ranks` pooled ranks; for one rank
    (B − S) / (B − S + S (1 + c²) / 2), which is 2 (B − S) / (2B − S) for c = 0, for more by bisection
    (the wait grows with ρ), never below the one rank's; 0 when the prefill alone exceeds B."""
    if budget_s <= prefill_s or prefill_s <= 0:
        return 0.0
    slack = budget_s - prefill_s
    if service_cv2 == 0.0:
        alone = 2.0 * slack / (2.0 * budget_s - prefill_s)
    else:
        alone = slack / (slack + prefill_s * (1.0 + service_cv2) / 2.0)
    if ranks <= 1:
        return alone
    lo, hi = alone, 1.0
    for _ in range(50):  # to 10⁻¹⁵ of full load
        mid = (lo + hi) / 2.0
        wait = prefill_wait_s(prefill_s, mid / prefill_s, service_cv2, ranks)
        lo, hi = (mid, hi) if wait <= slack else (lo, mid)
    return lo


def prefill_capacity_tokens_per_s(
    prefill_s: float, budget_s: float, isl: int, service_cv2: float = 0.0, ranks: int = 1
) -> float:
    """Prompt tokens/s one rank of a P engine of `ranks` pooled ranks sustains with queueing +
    prefill within `budget_s`: isl · ρ* / S."""
    rho = max_prefill_utilisation(prefill_s, budget_s, service_cv2, ranks)
    return isl * rho / prefill_s if rho > 0 else 0.0


def prefill_service_spread(
    at_mean_s: float, sample_s: list[float], sample_tokens: list[float], prompt_spread: float
) -> tuple[float, float]:
    """(mean prefill time ÷ the time `at_mean_s` of a prompt of the mean length, squared coefficient
    of variation of the prefill time) over prompts of spread lengths, from the prefill times
    `sample_s` of `sample_tokens`-token prompts at evenly spaced probabilities of the length
    distribution (their mean the workload's mean) and the distribution's own squared coefficient of
    variation `prompt_spread` (`Serving.prompt_spread`).

    A sample at a few probabilities misses the far tail of a long-tailed (log-normal) distribution,
    so the spread of the times is the sample's relative spread of times over its relative spread of
    lengths (the elasticity of time in length), times `prompt_spread`: a prefill time linear in tokens
    through 0 gives c² = prompt_spread exactly, a fixed part lowers it, attention's quadratic part
    raises it. (1, 0) for prompts of one length."""
    n = len(sample_s)
    if prompt_spread <= 0 or n < 2 or at_mean_s <= 0:
        return 1.0, 0.0
    mean_t, mean_l = sum(sample_s) / n, sum(sample_tokens) / n
    var_t = sum((t - mean_t) ** 2 for t in sample_s) / n / mean_t**2
    var_l = sum((x - mean_l) ** 2 for x in sample_tokens) / n / mean_l**2
    return mean_t / at_mean_s, (prompt_spread * var_t / var_l if var_l > 0 else 0.0)


def decode_capacity_rps(batch: float, osl: int, decode_s: float) -> float:
    """Requests/s one D rank finishes holding `batch` sequences (Little's law): b / (osl · T_d(b))."""
    return batch / (osl * decode_s)


@dataclass(frozen=True)
class DisaggRequest:
    """One request through a P engine, a KV transfer and a D engine, milliseconds."""

    prefill_wait_ms: float
    prefill_ms: float
    transfer_ms: float
    first_decode_ms: float
    overhead_ms: float
    tpot_ms: float
    slot_wait_ms: float = 0.0
    """The wait for a free slot on the D engine (perf/slot_queue.py; 0 where it is not rated by it)."""

    @property
    def ttft_ms(self) -> float:
        """Queueing + prefill + KV transfer + the wait for a decode slot + first decode step + the
        server's per-request overhead."""
        return (
            self.prefill_wait_ms
            + self.prefill_ms
            + self.transfer_ms
            + self.slot_wait_ms
            + self.first_decode_ms
            + self.overhead_ms
        )


def disagg_request(
    *,
    prefill_s: float,
    prefill_rate_per_rank: float,
    transfer_s: float,
    decode_s: float,
    overhead_s: float,
    service_cv2: float = 0.0,
    slot_wait_s: float = 0.0,
    prefill_ranks: int = 1,
) -> DisaggRequest:
    """TTFT parts and TPOT of a request: P ranks at `prefill_rate_per_rank` prompts/s each,
    `prefill_ranks` of them pooled (M/G/n of service spread `service_cv2`), the KV transfer,
    `slot_wait_s` for a free slot on the D engine, then its pure decode step `decode_s` for the first
    token and every next one."""
    return DisaggRequest(
        prefill_wait_ms=prefill_wait_s(prefill_s, prefill_rate_per_rank, service_cv2, prefill_ranks) * 1e3,
        prefill_ms=prefill_s * 1e3,
        transfer_ms=transfer_s * 1e3,
        first_decode_ms=decode_s * 1e3,
        overhead_ms=overhead_s * 1e3,
        tpot_ms=decode_s * 1e3,
        slot_wait_ms=slot_wait_s * 1e3,
    )
