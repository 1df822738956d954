"""Neighbour sends (ring attention's K/V hand-off, pipeline hand-offs) across nodes go through one
NIC per pair (`comm.p2p_link`), not the g NICs a multi-channel collective spreads over
(`comm.group_link`); inside one node they stay on NVLink."""

from __future__ import annotations

import pytest

from autoparallel.configs import Recompute, TrainingConfig
from autoparallel.hardware import Cluster, get_gpu
from autoparallel.memory.training import gpt_like_spec
from autoparallel.memory.training_activations import sequence_parallel_divisor
from autoparallel.perf import comm
from autoparallel.perf.training import layer_time_breakdown, stage_time_s
from autoparallel.perf.training_layer import activation_message_bytes

H100 = get_gpu("H100")
# gpt2-xl's shapes: 25 heads of 64 (MHA), hidden 1600.
GPT2_XL = gpt_like_spec(2, 1600, 25, 50257, 32768)


def _cluster(nodes: int, ib_gbps: float) -> Cluster:
    return Cluster.from_shape(nodes=nodes, gpus_per_node=8, gpu=H100, inter_node_gbps=ib_gbps)


def _one_nic(cluster: Cluster) -> float:
    return cluster.inter_node_gbps * comm.GB * comm.NETWORK_EFFICIENCY


def test_p2p_link_is_one_nic_across_nodes_and_nvlink_inside() -> None:
    cluster = _cluster(2, 50.0)
    across = comm.p2p_link(cluster, 16)
    assert across.bytes_per_s == pytest.approx(_one_nic(cluster))
    assert across.latency_s == comm.NETWORK_LATENCY_S
    # The collective link of the same group spreads over the node's 8 NICs (capped by NVLink).
    assert comm.group_link(cluster, 16).bytes_per_s > 7 * across.bytes_per_s
    assert comm.p2p_link(cluster, 8) == comm.group_link(cluster, 8)
    assert comm.p2p_link(cluster, 4, stride=2) == comm.group_link(cluster, 4, stride=2)


def test_cross_node_cp_ring_waits_for_one_nic() -> None:
    """cp = 16 over 2 nodes: each of the 15 ring steps × 3 passes sends a 2,048-token K/V chunk
    (25 heads × (64 + 64) × 2 B) over the cross-node pair's one NIC; the exposed part is that minus the
    attention core, so doubling the NIC's bandwidth saves exactly half the transfer time."""
    cfg = TrainingConfig(cp=16, seq_len=32768, global_batch=1)
    layer = GPT2_XL.layers[0]
    kv_bytes = 32768 / 16 * 25 * 128 * 2
    cps = {}
    for ib in (50.0, 100.0):
        cluster = _cluster(2, ib)
        cps[ib] = layer_time_breakdown(GPT2_XL, layer, cluster, cfg, Recompute.NONE).cp_comm_s
    transfer_50 = 15 * 3 * kv_bytes / _one_nic(_cluster(2, 50.0))
    assert cps[50.0] - cps[100.0] == pytest.approx(transfer_50 / 2, rel=1e-9)
    assert cps[50.0] > 0.008  # ~9.5 ms exposed per layer (13.5 ms of sends, ~3.9 ms of attention)


def test_intra_node_cp_ring_is_unchanged_by_the_network() -> None:
    """cp = 8 with tp = 1 stays inside a node (dp = 2 spans the two): NVLink only."""
    cfg = TrainingConfig(cp=8, dp=2, seq_len=32768, global_batch=2)
    layer = GPT2_XL.layers[0]
    slow = layer_time_breakdown(GPT2_XL, layer, _cluster(2, 12.5), cfg, Recompute.NONE).cp_comm_s
    fast = layer_time_breakdown(GPT2_XL, layer, _cluster(2, 100.0), cfg, Recompute.NONE).cp_comm_s
    assert slow == fast


def test_cross_node_pipeline_hand_off_at_one_nic() -> None:
    """tp = 4, pp = 4 on 2 × 8: stages 4 ranks apart, two per node; the stage 1 → 2 hand-off crosses
    nodes through one NIC (before: 2 × the NIC, as a collective with 2 members per node)."""
    cluster = _cluster(2, 50.0)
    cfg = TrainingConfig(tp=4, pp=4, seq_len=4096, global_batch=8)
    msg = activation_message_bytes(GPT2_XL, cfg) / sequence_parallel_divisor(cfg)
    hop = msg / _one_nic(cluster) + comm.NETWORK_LATENCY_S
    assert stage_time_s(GPT2_XL, cluster, cfg, 1, (), Recompute.NONE) == pytest.approx(2 * hop, rel=1e-9)
