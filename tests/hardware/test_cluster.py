"""Cluster: parsing cluster strings, defaults, node splitting and errors."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from autoparallel.errors import InputError
from autoparallel.hardware import Cluster, get_gpu


def test_nodes_by_gpus_by_gpu() -> None:
    cluster = Cluster.parse("2x8xH100")
    assert (cluster.nodes, cluster.gpus_per_node, cluster.world_size) == (2, 8, 16)
    assert cluster.gpu.name == "H100-SXM"
    assert cluster.intra_node_gbps == 450
    assert cluster.inter_node_gbps == 50
    assert cluster.describe() == "2 nodes x 8 x H100-SXM (NVLink 450 GB/s, IB 50 GB/s)"


def test_count_by_gpu_is_one_node() -> None:
    cluster = Cluster.parse("8xA100-80G")
    assert (cluster.nodes, cluster.gpus_per_node) == (1, 8)
    assert cluster.gpu.name == "A100-SXM-80G"
    assert cluster.describe() == "1 node x 8 x A100-SXM-80G (NVLink 300 GB/s, IB 50 GB/s)"


@pytest.mark.parametrize(
    ("spec", "nodes", "per_node"),
    [
        ("16xH200", 2, 8),
        ("4xH100", 1, 4),
        ("1xL4", 1, 1),
        ("64xB200", 8, 8),
        ("72xGB200", 1, 72),
        ("144xGB200", 2, 72),
        ("3x4xH100", 3, 4),
    ],
)
def test_counts_split_into_full_nodes(spec: str, nodes: int, per_node: int) -> None:
    cluster = Cluster.parse(spec)
    assert (cluster.nodes, cluster.gpus_per_node) == (nodes, per_node)


def test_options_set_bandwidths() -> None:
    cluster = Cluster.parse("16xH200,ib=400")
    assert cluster.inter_node_gbps == 50
    cluster = Cluster.parse("2x8xH100, ib=100 ,nvlink=300")
    assert cluster.inter_node_gbps == 12.5
    assert cluster.intra_node_gbps == 300


def test_spelling_is_forgiving() -> None:
    assert Cluster.parse(" 2 X 8 x h100-sxm5-80gb ") == Cluster.parse("2x8xH100")
    assert Cluster.parse("8xRTX 4090").gpu.name == "RTX-4090"
    assert Cluster.parse("8x4090").gpu.name == "RTX-4090"
    assert Cluster.parse("8xMI300X").gpu.name == "MI300X"


def test_pcie_only_gpus_use_their_pcie_link_inside_a_node() -> None:
    cluster = Cluster.parse("8xL4")
    assert cluster.intra_node_gbps == 32
    assert cluster.describe() == "1 node x 8 x L4 (PCIe 32 GB/s, IB 50 GB/s)"
    assert Cluster.parse("2xH100-PCIe").intra_node_gbps == 64
    assert (
        Cluster.parse("2xH100-NVL,nvlink=300").describe().startswith("1 node x 2 x H100-NVL (NVLink 300 GB/s")
    )


def test_amd_scale_up_is_infinity_fabric() -> None:
    assert (
        Cluster.parse("8xMI300X").describe() == "1 node x 8 x MI300X (Infinity Fabric 448 GB/s, IB 50 GB/s)"
    )


@pytest.mark.parametrize(
    "spec", ["2x8xH100", "16xH200,ib=200", "4xL4,nvlink=100", "1x72xGB200", "3x4xA100-40G,ib=800,nvlink=250"]
)
def test_spec_round_trips(spec: str) -> None:
    cluster = Cluster.parse(spec)
    assert Cluster.parse(cluster.spec) == cluster


def test_spec_is_canonical() -> None:
    assert Cluster.parse("16xH200,ib=400").spec == "2x8xH200"
    assert Cluster.parse("2x8xh100,ib=200").spec == "2x8xH100-SXM,ib=200"


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("", "empty cluster spec"),
        ("H100", "malformed cluster spec 'H100'"),
        ("8x", "malformed cluster spec"),
        ("x8xH100", "malformed cluster spec"),
        ("0xH100", "GPU count must be at least 1, got 0"),
        ("0x8xH100", "node count must be at least 1, got 0"),
        ("-2x8xH100", "node count must be at least 1, got -2"),
        ("2x0xH100", "GPUs per node must be at least 1, got 0"),
        ("2x16xH100", "16 GPUs per node is more than a H100-SXM node holds (8)"),
        ("12xH100", "12 H100-SXM GPUs do not fill whole nodes of 8"),
        ("12xH100", "e.g. 2x6xH100-SXM"),
        ("8xH100-SMX", "unknown GPU 'H100-SMX', did you mean H100-SXM"),
        ("8xH100,ibb=100", "unknown option 'ibb'"),
        ("8xH100,ibb=100", "did you mean ib?"),
        ("8xH100,ib", "malformed option 'ib'"),
        ("8xH100,ib=fast", "option ib='fast' is not a number"),
        ("8xH100,ib=0", "option ib=0 must be a positive number"),
        ("8xH100,nvlink=-5", "option nvlink=-5 must be a positive number"),
        ("8xH100,ib=inf", "must be a positive number"),
        ("8xH100,ib=100,ib=200", "option 'ib' given twice"),
    ],
)
def test_bad_specs_raise_one_line_input_errors(spec: str, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        Cluster.parse(spec)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_malformed_specs_list_the_valid_forms() -> None:
    with pytest.raises(InputError, match=r"valid forms: NODESxGPUSxGPU \(2x8xH100\), COUNTxGPU"):
        Cluster.parse("eight H100s")


def test_single_node_helper() -> None:
    assert Cluster.single("H100", 8) == Cluster.parse("8xH100")
    assert Cluster.single(get_gpu("L4")).world_size == 1
    with pytest.raises(InputError, match="more than a H100-SXM node holds"):
        Cluster.single("H100", 16)
    with pytest.raises(InputError, match="GPU count must be at least 1"):
        Cluster.single("H100", 0)
    with pytest.raises(InputError, match="unknown GPU"):
        Cluster.single("H1000", 8)


def test_cluster_is_frozen_and_validated() -> None:
    cluster = Cluster.parse("2x8xH100")
    with pytest.raises(ValidationError):
        cluster.nodes = 4  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Cluster.model_validate(
            {
                "nodes": 0,
                "gpus_per_node": 8,
                "gpu": cluster.gpu,
                "intra_node_gbps": 450,
                "inter_node_gbps": 50,
            }
        )
    with pytest.raises(ValidationError):
        Cluster.model_validate({**cluster.model_dump(), "racks": 1})


def test_from_shape_fills_default_bandwidths() -> None:
    cluster = Cluster.from_shape(nodes=2, gpus_per_node=4, gpu=get_gpu("A10G"))
    assert (cluster.intra_node_gbps, cluster.inter_node_gbps) == (32, 50)


def test_a_cluster_built_directly_keeps_the_node_size_rule_of_parse() -> None:
    """`Cluster.parse("1x16xH100")` is refused (an H100 node holds 8), but `from_shape` and
    `Cluster(...)` built the same 16-GPU node and planned on it. Every construction applies the rule."""
    h100 = get_gpu("H100")
    with pytest.raises(InputError, match=r"16 GPUs per node is more than a H100-SXM node holds \(8\)"):
        Cluster.from_shape(nodes=1, gpus_per_node=16, gpu=h100)
    with pytest.raises(ValidationError, match="more than a H100-SXM node holds"):
        Cluster(nodes=1, gpus_per_node=16, gpu=h100, intra_node_gbps=450, inter_node_gbps=50)
    with pytest.raises(InputError, match="nodes: Input should be greater than or equal to 1"):
        Cluster.from_shape(nodes=0, gpus_per_node=8, gpu=h100)
    assert Cluster.from_shape(nodes=1, gpus_per_node=72, gpu=get_gpu("GB200")).spec == "1x72xGB200"


def test_every_field_is_documented() -> None:
    assert [name for name, field in Cluster.model_fields.items() if not field.description] == []


def test_one_spec_is_one_cluster_so_the_float_models_memos_are_shared() -> None:
    """The float model memoizes its step times by the cluster object. A single-model plan parsed its
    cluster string once for the plan and once for the whole-cluster deployment, whose pool was a third
    object: its tables were computed again (`plan Qwen/Qwen3-235B-A22B --cluster 16x8xH200 --engine
    auto`: 9-12 s, now 7-10 s). One catalog spec is now one frozen object, and a one-pool cluster is
    its own pool."""
    from autoparallel.hardware import GPU

    cluster = Cluster.parse("2x8xH100,ib=400")
    assert Cluster.parse("2x8xH100,ib=400") is cluster
    assert cluster.pool_cluster(0) is cluster
    with pytest.raises(IndexError):
        cluster.pool_cluster(1)
    mixed = Cluster.parse("1x8xH100+1x8xA100-80G")
    assert mixed.pool_cluster(1).gpu.name == "A100-SXM-80G" and mixed.pool_cluster(1) is not mixed
    # A custom GPU or a price makes another cluster, never the catalog one.
    cheap = GPU.model_validate(
        {**get_gpu("H100").model_dump(), "name": "H100-cheap", "aliases": (), "usd_per_hour": 1.0}
    )
    assert Cluster.parse("2x8xH100-cheap", gpus=[cheap]).gpu.usd_per_hour == 1.0
    priced = Cluster.parse("2x8xH100,ib=400", prices={"H100": 9.0})
    assert priced.gpu.usd_per_hour == 9.0 and Cluster.parse("2x8xH100,ib=400").gpu.usd_per_hour != 9.0
