"""A disaggregated KV copy across nodes leaves through one GPU's NIC and its own PCIe link: on L40S
(PCIe Gen4) with 800 Gb/s NICs it was priced at the NIC's 90 GB/s, past the 25.6 GB/s its bus carries."""

from __future__ import annotations

from autoparallel.hardware import Cluster
from autoparallel.perf import comm, disagg


def test_a_cross_node_kv_copy_is_bound_by_the_gpus_own_link() -> None:
    pcie = Cluster.parse("2x8xL40S,ib=800")
    link = disagg.transfer_link(pcie, same_node=False)
    assert link == comm.p2p_link(pcie, 2, stride=8)
    assert link.bytes_per_s == pcie.intra_node_gbps * comm.GB * comm.NVLINK_EFFICIENCY < 90e9


def test_an_nvlink_gpus_cross_node_copy_is_one_nic() -> None:
    sxm = Cluster.parse("2x8xH100")
    link = disagg.transfer_link(sxm, same_node=False)
    assert link.bytes_per_s == sxm.inter_node_gbps * comm.GB * comm.NETWORK_EFFICIENCY
