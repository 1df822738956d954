"""Disaggregated serving: one request through a prefill (P) engine, a KV transfer and a decode (D) engine.

The float model of a disaggregated request (vLLM's P/D split with the NIXL KV connector):

    TTFT = W_p + S_p + X + T_d(b) + overhead
    TPOT = T_d(b)

- S_p: the P engine's prefill of one prompt of `isl` tokens alone (`StepTimes.prefill_s` from
  perf/serving_steps.py: the same roofline as the aggregated engine, no decode work beside it).
- W_p: queueing before the prefill. Each data-parallel rank of a P engine is an M/D/1 queue
  (Poisson arrivals, deterministic service S_p): W_p = ρ · S_p / (2 (1 − ρ)) at utilisation ρ = λ · S_p.
  A P rank prefills one prompt at a time (no credit for pipelining prompts through pp stages).
- X: the KV transfer. Every layer's KV of the isl prompt tokens leaves the P ranks and lands on the
  D ranks, rank to rank in parallel. The busiest rank moves max(bytes per P rank, bytes per D rank)
  (`kv_bytes_per_sequence_per_gpu` at each side's TP: with different TP the layout differs: a D
  rank of lower TP gathers its heads from tp_p / tp_d P ranks, one of higher TP reads a slice of
  one P rank's blocks; MLA's latent is whole on every rank), over NVLink when both engines share a
  node, else over the GPU's own NIC; plus one link latency per read (tp_p / tp_d reads when P has
  more TP).
- T_d(b): the D engine's pure decode step at its running batch b (`StepTimes.decode_s`): the D
  engine runs no prefill, so TPOT has no prefill interference. The first token after the transfer
  comes with the next decode step.
- Decode capacity (Little's law): a D rank holding b sequences finishes b / (osl · T_d(b)) requests/s.
  Its KV cache holds the b transferred sequences (the serving tables' memory check at max_num_seqs = b).
- Prefill capacity at a TTFT budget B (what is left of the limit after X, T_d and the overhead): the
  highest ρ with S_p + W_p ≤ B, ρ* = 2 (B − S_p) / (2B − S_p), i.e. isl · ρ* / S_p tokens/s per rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from autoparallel.perf import comm
from autoparallel.perf.serving_facts import kv_bytes_per_sequence_per_gpu

if TYPE_CHECKING:
    from autoparallel.hardware import Cluster
    from autoparallel.models.spec import ModelSpec

__all__ = [
    "DisaggRequest",
    "decode_capacity_rps",
    "disagg_request",
    "kv_transfer_bytes_per_rank",
    "kv_transfer_s",
    "max_prefill_utilisation",
    "prefill_capacity_tokens_per_s",
    "prefill_wait_s",
    "transfer_link",
]


def kv_transfer_bytes_per_rank(
    model: ModelSpec, kv_cache_dtype: str, isl: int, *, tp_prefill: int, tp_decode: int
) -> float:
    """Bytes the busiest rank moves for one prompt's KV: max(bytes per P rank, bytes per D rank)."""
    sent = kv_bytes_per_sequence_per_gpu(model, kv_cache_dtype, tp_prefill, 1, float(isl), engine="vllm")
    received = kv_bytes_per_sequence_per_gpu(model, kv_cache_dtype, tp_decode, 1, float(isl), engine="vllm")
    return max(sent, received)


def transfer_link(cluster: Cluster, *, same_node: bool) -> comm.Link:
    """NVLink inside a node; across nodes one GPU's own NIC (the transfer is point to point)."""
    if same_node:
        return comm.Link(
            bytes_per_s=cluster.intra_node_gbps * comm.GB * comm.NVLINK_EFFICIENCY,
            latency_s=comm.NVLINK_LATENCY_S,
        )
    return comm.Link(
        bytes_per_s=cluster.inter_node_gbps * comm.GB * comm.NETWORK_EFFICIENCY,
        latency_s=comm.NETWORK_LATENCY_S,
    )


def kv_transfer_s(
    model: ModelSpec,
    cluster: Cluster,
    kv_cache_dtype: str,
    isl: int,
    *,
    tp_prefill: int,
    tp_decode: int,
    same_node: bool,
) -> float:
    """Seconds to move one prompt's KV from the P engine to the D engine (module doc)."""
    link = transfer_link(cluster, same_node=same_node)
    moved = kv_transfer_bytes_per_rank(model, kv_cache_dtype, isl, tp_prefill=tp_prefill, tp_decode=tp_decode)
    reads = max(1, tp_prefill // tp_decode)
    return moved / link.bytes_per_s + reads * link.latency_s


def prefill_wait_s(prefill_s: float, rate_per_rank: float) -> float:
    """M/D/1 mean wait before service at `rate_per_rank` prompts/s: ρ S / (2 (1 − ρ)); inf when ρ ≥ 1
    (to rounding: a rank run at full load, rate 1 / S, gives ρ = 1 − 2^-53, and a wait of 10^19 ms)."""
    rho = rate_per_rank * prefill_s
    if rho >= 1.0 - 1e-9:
        return float("inf")
    return rho * prefill_s / (2.0 * (1.0 - rho))


def max_prefill_utilisation(prefill_s: float, budget_s: float) -> float:
    """Highest ρ with S + ρ S / (2 (1 − ρ)) ≤ B: 2 (B − S) / (2B − S); 0 when the prefill alone exceeds B."""
    if budget_s <= prefill_s or prefill_s <= 0:
        return 0.0
    return 2.0 * (budget_s - prefill_s) / (2.0 * budget_s - prefill_s)


def prefill_capacity_tokens_per_s(prefill_s: float, budget_s: float, isl: int) -> float:
    """Prompt tokens/s one P rank sustains with queueing + prefill within `budget_s`: isl · ρ* / S."""
    rho = max_prefill_utilisation(prefill_s, budget_s)
    return isl * rho / prefill_s if rho > 0 else 0.0


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

    @property
    def ttft_ms(self) -> float:
        """Queueing + prefill + KV transfer + first decode step + the server's per-request overhead."""
        return (
            self.prefill_wait_ms
            + self.prefill_ms
            + self.transfer_ms
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
) -> DisaggRequest:
    """TTFT parts and TPOT of a request: P rank at `prefill_rate_per_rank` prompts/s (M/D/1), the KV
    transfer, then the D engine's pure decode step `decode_s` for the first token and every next one."""
    return DisaggRequest(
        prefill_wait_ms=prefill_wait_s(prefill_s, prefill_rate_per_rank) * 1e3,
        prefill_ms=prefill_s * 1e3,
        transfer_ms=transfer_s * 1e3,
        first_decode_ms=decode_s * 1e3,
        overhead_ms=overhead_s * 1e3,
        tpot_ms=decode_s * 1e3,
    )
