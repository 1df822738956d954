"""Mixed GPU pools, prices, custom GPU files and hostile cluster strings."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoparallel.errors import InputError
from autoparallel.hardware import GPU, Cluster, Pool, get_gpu, parse_prices


def test_two_pools_parse_with_their_own_interconnect() -> None:
    cluster = Cluster.parse("2x8xH100+4x8xA100-80G,ib=200")
    assert [p.gpu.name for p in cluster.pools] == ["H100-SXM", "A100-SXM-80G"]
    assert cluster.world_size == 48
    assert cluster.pools[0].inter_node_gbps == 50
    assert cluster.pools[1].inter_node_gbps == 25
    assert cluster.pools[1].intra_node_gbps == 300
    assert cluster.spec == "2x8xH100-SXM+4x8xA100-SXM-80G,ib=200"
    assert Cluster.parse(cluster.spec) == cluster
    assert " + " in cluster.describe()
    assert cluster.is_mixed


def test_single_pool_attributes_refuse_a_mixed_cluster() -> None:
    cluster = Cluster.parse("1x8xH100+1x8xA100")
    with pytest.raises(InputError, match="has 2 GPU pools; this needs one GPU type"):
        _ = cluster.gpu
    one = cluster.pool_cluster(1)
    assert (one.nodes, one.gpus_per_node, one.gpu.name) == (1, 8, "A100-SXM-80G")


def test_pools_in_python() -> None:
    h100 = get_gpu("H100")
    pool = Pool(nodes=2, gpus_per_node=8, gpu=h100, intra_node_gbps=450, inter_node_gbps=50)
    cluster = Cluster(pools=(pool, Cluster.single("L4", 4).pools[0]))
    assert cluster.world_size == 20
    keywords = {"nodes": 2, "gpus_per_node": 8, "gpu": h100, "intra_node_gbps": 450, "inter_node_gbps": 50}
    assert Cluster.model_validate(keywords) == Cluster(pools=(pool,))


def test_prices_replace_catalog_prices() -> None:
    prices = parse_prices("H100=2.49, A100-80G=1.2")
    cluster = Cluster.parse("2x8xH100+4x8xA100-80G", prices=prices)
    assert [p.usd_per_hour for p in cluster.pools] == [2.49, 1.2]
    assert cluster.usd_per_hour == pytest.approx(16 * 2.49 + 32 * 1.2)
    assert cluster.pool_cluster(0).gpu.usd_per_hour == 2.49


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("H100=-1", "must be in [0.001, 10000]"),
        ("H100=0", "must be in [0.001, 10000]"),
        ("H100=nan", "must be in [0.001, 10000]"),
        ("H100=inf", "must be in [0.001, 10000]"),
        ("H100=1e-7", "must be in [0.001, 10000]"),  # rounded to 0 micro-US$: every GPU free
        ("H100", "malformed price"),
        ("H100=cheap", "is not a number"),
        ("H100=1,H100=2", "given twice"),
        ("H100=" + "9" * 5000, "too long a number"),
    ],
)
def test_bad_prices_are_one_line_errors(text: str, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        parse_prices(text)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_price_for_a_gpu_no_pool_has() -> None:
    with pytest.raises(InputError, match="no pool of cluster"):
        Cluster.parse("8xH100", prices={"A100": 1.0})


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("1x8xH100🚀", "characters other than ASCII"),
        ("9" * 5000 + "x8xH100", "count too large"),
        ("1x" + "9" * 5000 + "xH100", "count too large"),
        ("8xH100,ib=1e-300", "outside 1..100000 Gbit/s"),
        ("8xH100,nvlink=1e-12", "outside 1..100000 GB/s"),
        ("8xH100,ib=1e300", "outside"),
        ("8xH100,ib=" + "1" * 5000, "must be a positive number"),
        ("200000x8xH100", "at most 100000 per pool"),
        ("2x8xH100+", "empty pool"),
        ("2x8xH100++1x8xA100", "empty pool"),
        ("2x8xH100+2x8xH1000", "unknown GPU 'H1000'"),
        ("+".join(["1xH100"] * 17), "at most 16"),
    ],
)
def test_hostile_cluster_strings(spec: str, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        Cluster.parse(spec)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert len(message) < 400


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_custom_gpu_from_yaml_with_a_base(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "gpus.yaml",
        "gpus:\n  - name: H100-lowclock\n    base: H100\n    bf16_tflops: 700\n    usd_per_hour: 1.9\n",
    )
    (gpu,) = GPU.from_file(path)
    assert (gpu.name, gpu.bf16_tflops, gpu.hbm_tbps, gpu.usd_per_hour) == ("H100-lowclock", 700, 3.35, 1.9)
    assert any("gpus.yaml" in s for s in gpu.sources)
    cluster = Cluster.parse("2x8xH100-lowclock+1x8xH100", gpus=[gpu], prices={"h100-lowclock": 1.5})
    assert cluster.pools[0].gpu.bf16_tflops == 700
    assert cluster.pools[0].usd_per_hour == 1.5


def test_prices_name_a_custom_gpu_of_the_clusters_own_pools(tmp_path: Path) -> None:
    """A cluster parsed with custom GPUs, priced afterwards without passing them again, raised
    "unknown GPU 'H100-slow'": the names were looked up in the catalog only."""
    path = _write(tmp_path, "gpus.yaml", "gpus:\n  - name: H100-slow\n    base: H100\n    aliases: [slowh]\n")
    cluster = Cluster.parse("1x8xH100-slow+1x8xH100", gpus=GPU.from_file(path))
    priced = cluster.with_prices({"H100-slow": 0.5, "SLOWH": 0.5, "H100": 2.0})
    assert [p.usd_per_hour for p in priced.pools] == [0.5, 2.0]
    with pytest.raises(InputError, match="unknown GPU 'H100-fast'"):
        cluster.with_prices({"H100-fast": 0.5})


def test_custom_gpu_from_json_with_every_field(tmp_path: Path) -> None:
    entry = get_gpu("L4").model_dump(mode="json")
    entry.update(name="MyL4", aliases=[])
    import json

    path = _write(tmp_path, "gpus.json", json.dumps([entry]))
    (gpu,) = GPU.from_file(path)
    assert gpu.name == "MyL4"
    assert gpu.memory_gib == get_gpu("L4").memory_gib


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("gpus: [", "not valid YAML or JSON"),
        ("gpus: 3", "non-empty list"),
        ("[]", "non-empty list"),
        ("- 3", "entry 1: expected a mapping"),
        ("- name: H100\n  base: H100", "is the catalog GPU H100-SXM"),
        ("- name: 'x y'\n  base: H100", "name must be"),
        ("- name: G1\n  base: H1000", "base: unknown GPU 'H1000'"),
        ("- name: G1\n  base: H100\n  hbm_tbps: -1", "GPU 'G1': hbm_tbps: Input should be greater"),
        ("- name: G1\n  base: H100\n  hbm_tbps: .inf", "hbm_tbps"),
        ("- name: G1\n  base: H100\n  speed: 3", "speed: Extra inputs are not permitted"),
        ("- name: G1\n  vendor: nvidia", "GPU 'G1': arch: Field required"),
        ("- name: G1\n  base: H100\n- name: g1\n  base: H100", "listed twice"),
        ("- name: MyGPU\n  base: H100\n  aliases: [H100]", "alias 'H100' is the catalog GPU H100-SXM"),
        ("- name: MyGPU\n  base: H100\n  aliases: ['a100 80g']", "is the catalog GPU A100-SXM-80G"),
        (
            "- name: G1\n  base: H100\n- name: G2\n  base: H100\n  aliases: [g1]",
            "GPUs 'G1' and 'G2' share the name or alias 'g1'",
        ),
    ],
)
def test_bad_gpu_files_are_one_line_errors(tmp_path: Path, text: str, fragment: str) -> None:
    path = _write(tmp_path, "bad.yaml", text)
    with pytest.raises(InputError) as info:
        GPU.from_file(path)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_gpu_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read GPU file"):
        GPU.from_file(tmp_path / "nope.yaml")


@pytest.mark.parametrize("arch, read", [("Ampere", "ampere"), (" HOPPER ", "hopper")])
def test_a_custom_gpus_architecture_is_read_in_lower_case(tmp_path: Path, arch: str, read: str) -> None:
    """Every engine rule compares the name exactly: `arch: Ampere` skipped them all."""
    path = tmp_path / "gpus.yaml"
    path.write_text(f"gpus: [{{name: A2, base: A100, arch: '{arch}'}}]\n")
    (gpu,) = GPU.from_file(path)
    assert gpu.arch == read


def test_an_unknown_architecture_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "gpus.yaml"
    path.write_text("gpus: [{name: A2, base: A100, arch: Amperee}]\n")
    with pytest.raises(InputError, match="unknown nvidia architecture 'Amperee'"):
        GPU.from_file(path)
