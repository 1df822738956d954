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


def test_the_link_floors_print_the_links_the_copies_are_priced_at() -> None:
    """The floors' labels gave the L40S pool's 100 GB/s NIC where its copies are priced at its PCIe link,
    so "links >= 100 GB/s (pools 0, 1)" read above the H100 pool's 50."""
    from autoparallel.solvers.deployment.roles import link_floors

    cluster = Cluster.parse("1x8xH100+1x8xL40S,ib=800")
    floors = sorted(link_floors(cluster, (0, 1)), key=lambda f: f.bytes_per_s)
    assert [f.gbps for f in floors] == [32, 50]  # the L40S pool's PCIe 32, the H100 pool's IB 50
    assert floors[0].decode_pools == (0, 1) and floors[1].decode_pools == (0,)
