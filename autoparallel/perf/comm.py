"""Collective-communication cost formulas, shared by the training and serving models.

Bandwidth terms are the standard ring / bus-bandwidth formulas (NCCL `doc/PERFORMANCE.md`: "busbw":
all-reduce moves 2(n−1)/n of the buffer per rank, all-gather and reduce-scatter (n−1)/n,
all-to-all (n−1)/n); a latency term per collective is α·⌈log2 n⌉ (NCCL's tree / hierarchical
algorithms, α per hop). Bandwidths are per GPU, one way, bytes/s; a group that stays inside one
node runs at the scale-up link (NVLink), a group that crosses nodes at the per-GPU network link
(one NIC per GPU, rail-optimised, as on DGX A100 / H100).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from autoparallel.hardware import Cluster

GB = 1e9
# Per-hop latency of one collective step. NCCL all-reduce of small messages takes ~10 µs inside an
# NVLink node and ~20-30 µs across InfiniBand (nccl-tests small-size rows); α is that per log2 hop.
NVLINK_LATENCY_S = 3e-6
NETWORK_LATENCY_S = 8e-6
# Achieved fraction of the link's one-way bandwidth ("busbw" / link rate) for large messages:
# nccl-tests all_reduce on DGX H100 reach ~360 of 450 GB/s NVLink (0.8); ~45 of 50 GB/s on NDR IB (0.9).
NVLINK_EFFICIENCY = 0.8
NETWORK_EFFICIENCY = 0.9


class Link(BaseModel):
    """What one rank of a communication group sees."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bytes_per_s: float
    """Achievable one-way bandwidth per GPU, bytes/s."""
    latency_s: float
    """Latency per collective hop, s."""


def group_link(cluster: Cluster, size: int, stride: int = 1) -> Link:
    """The link a group of `size` ranks, `stride` apart in the rank order, communicates over.

    Ranks are numbered node-major, so the group spans size·stride consecutive ranks: inside one node
    when that is at most `gpus_per_node`, else across the network. A cross-node group with g members
    per node moves its inter-node traffic over g NICs at once (NCCL runs one ring / tree channel per
    NIC and replicates inside the node over NVLink), so its per-rank bandwidth is g × the per-GPU
    network link, capped by the scale-up link (nccl-tests on DGX H100: multi-node all-reduce busbw
    approaches the 8 × 50 GB/s of the node's NICs).
    """
    intra = cluster.intra_node_gbps * GB * NVLINK_EFFICIENCY
    if size <= 1 or size * stride <= cluster.gpus_per_node:
        return Link(bytes_per_s=intra, latency_s=NVLINK_LATENCY_S)
    per_node = max(1, min(size, cluster.gpus_per_node // stride)) if stride < cluster.gpus_per_node else 1
    network = cluster.inter_node_gbps * GB * NETWORK_EFFICIENCY * per_node
    return Link(bytes_per_s=min(network, intra), latency_s=NETWORK_LATENCY_S)


def p2p_link(cluster: Cluster, size: int, stride: int = 1) -> Link:
    """The link the neighbour-to-neighbour sends of a group of `size` ranks, `stride` apart, run over
    (ring attention's K/V hand-off, pipeline stages' activations).

    Inside one node: the scale-up link, as `group_link`. Across nodes a send between two GPUs leaves
    through one NIC (NCCL's p2p uses the NIC nearest the GPU, or with PXN the peer's rail: one NIC per
    pair either way), so the cross-node pair gets the per-GPU network link, not `group_link`'s g × it
    (that is NCCL's multi-channel collectives); the ring or pipeline step waits for that slowest pair.
    """
    intra = cluster.intra_node_gbps * GB * NVLINK_EFFICIENCY
    if size <= 1 or size * stride <= cluster.gpus_per_node:
        return Link(bytes_per_s=intra, latency_s=NVLINK_LATENCY_S)
    network = cluster.inter_node_gbps * GB * NETWORK_EFFICIENCY
    return Link(bytes_per_s=min(network, intra), latency_s=NETWORK_LATENCY_S)


def all_to_all_link(cluster: Cluster, size: int, stride: int = 1) -> Link:
    """The link an all-to-all of `size` ranks, `stride` apart, runs over.

    Unlike ring collectives, an all-to-all is point-to-point: the bytes a rank sends to other nodes
    leave through its own NIC, so a cross-node group gets the per-GPU network bandwidth, not g × it
    (DeepSeek-V3 technical report §3.2.2: cross-node all-to-all is bound by the ~50 GB/s IB link
    per GPU, while NVLink carries the intra-node part). Of a rank's (n−1)/n outgoing share, only
    (n−g)/n crosses the network when the group has g members per node; the returned bandwidth
    folds that in, so `all_to_all_s` stays (n−1)/n · bytes / bandwidth.
    """
    intra = cluster.intra_node_gbps * GB * NVLINK_EFFICIENCY
    if size <= 1 or size * stride <= cluster.gpus_per_node:
        return Link(bytes_per_s=intra, latency_s=NVLINK_LATENCY_S)
    per_node = max(1, min(size, cluster.gpus_per_node // stride)) if stride < cluster.gpus_per_node else 1
    network = cluster.inter_node_gbps * GB * NETWORK_EFFICIENCY
    off_node = (size - per_node) / (size - 1)
    return Link(bytes_per_s=min(intra, network / off_node), latency_s=NETWORK_LATENCY_S)


def _latency_s(n: int, link: Link) -> float:
    return link.latency_s * math.ceil(math.log2(n))


def all_reduce_s(buffer_bytes: float, n: int, link: Link) -> float:
    """Ring all-reduce of a `buffer_bytes` buffer over n ranks: 2(n−1)/n · bytes / bandwidth + latency."""
    if n <= 1 or buffer_bytes <= 0:
        return 0.0
    return 2.0 * (n - 1) / n * buffer_bytes / link.bytes_per_s + 2.0 * _latency_s(n, link)


def all_gather_s(gathered_bytes: float, n: int, link: Link) -> float:
    """All-gather producing a `gathered_bytes` buffer on each of n ranks: (n−1)/n · bytes / bandwidth."""
    if n <= 1 or gathered_bytes <= 0:
        return 0.0
    return (n - 1) / n * gathered_bytes / link.bytes_per_s + _latency_s(n, link)


def reduce_scatter_s(buffer_bytes: float, n: int, link: Link) -> float:
    """Reduce-scatter of a `buffer_bytes` buffer over n ranks: (n−1)/n · bytes / bandwidth."""
    return all_gather_s(buffer_bytes, n, link)


def all_to_all_s(send_bytes: float, n: int, link: Link) -> float:
    """All-to-all where each rank sends `send_bytes` in total (1/n of it to itself): (n−1)/n · bytes / bw."""
    if n <= 1 or send_bytes <= 0:
        return 0.0
    return (n - 1) / n * send_bytes / link.bytes_per_s + _latency_s(n, link)


def p2p_s(message_bytes: float, link: Link) -> float:
    """One point-to-point send of `message_bytes`: bytes / bandwidth + one hop of latency."""
    if message_bytes <= 0:
        return 0.0
    return message_bytes / link.bytes_per_s + link.latency_s
