"""Collective cost formulas (ring / bus-bandwidth model, NCCL's PERFORMANCE.md)."""

from __future__ import annotations

import math

import pytest

from autoparallel.hardware import Cluster
from autoparallel.perf import comm

LINK = comm.Link(bytes_per_s=100e9, latency_s=0.0)
SLOW = comm.Link(bytes_per_s=100e9, latency_s=5e-6)


@pytest.mark.parametrize("n", [2, 4, 8, 64])
def test_bandwidth_terms(n: int) -> None:
    b = 1e9
    assert comm.all_reduce_s(b, n, LINK) == pytest.approx(2 * (n - 1) / n * b / 100e9)
    assert comm.all_gather_s(b, n, LINK) == pytest.approx((n - 1) / n * b / 100e9)
    assert comm.reduce_scatter_s(b, n, LINK) == pytest.approx((n - 1) / n * b / 100e9)
    assert comm.all_to_all_s(b, n, LINK) == pytest.approx((n - 1) / n * b / 100e9)
    # An all-reduce is a reduce-scatter followed by an all-gather.
    assert comm.all_reduce_s(b, n, LINK) == pytest.approx(
        comm.reduce_scatter_s(b, n, LINK) + comm.all_gather_s(b, n, LINK)
    )


def test_latency_terms() -> None:
    assert comm.all_gather_s(0.0, 8, SLOW) == 0.0
    assert comm.all_gather_s(1.0, 8, SLOW) == pytest.approx(1e-11 * 7 / 8 + 5e-6 * math.log2(8))
    assert comm.all_reduce_s(1.0, 8, SLOW) == pytest.approx(2e-11 * 7 / 8 + 2 * 5e-6 * 3)
    assert comm.p2p_s(1e6, SLOW) == pytest.approx(1e6 / 100e9 + 5e-6)
    assert comm.p2p_s(0.0, SLOW) == 0.0


def test_single_rank_is_free() -> None:
    for fn in (comm.all_reduce_s, comm.all_gather_s, comm.reduce_scatter_s, comm.all_to_all_s):
        assert fn(1e9, 1, SLOW) == 0.0


def test_group_link_inside_and_across_nodes() -> None:
    cluster = Cluster.parse("4x8xH100")  # NVLink 450 GB/s, IB 400 Gb/s = 50 GB/s per GPU
    nvlink = 450e9 * comm.NVLINK_EFFICIENCY
    ib = 50e9 * comm.NETWORK_EFFICIENCY
    assert comm.group_link(cluster, 8).bytes_per_s == pytest.approx(nvlink)
    assert comm.group_link(cluster, 4, stride=2).bytes_per_s == pytest.approx(nvlink)
    # One member per node (TP = 8 inside, DP across): one NIC per rank.
    assert comm.group_link(cluster, 4, stride=8).bytes_per_s == pytest.approx(ib)
    assert comm.group_link(cluster, 4, stride=8).latency_s == comm.NETWORK_LATENCY_S
    # Two members per node: their traffic leaves over two NICs.
    assert comm.group_link(cluster, 8, stride=4).bytes_per_s == pytest.approx(2 * ib)
    # All 32 GPUs: 8 NICs per node, capped by NVLink.
    assert comm.group_link(cluster, 32).bytes_per_s == pytest.approx(min(8 * ib, nvlink))
