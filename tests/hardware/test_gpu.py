"""The GPU catalog: datasheet values, sources, name lookup, and the `gpus` command."""

from __future__ import annotations

import argparse
import json

import pytest
from pydantic import ValidationError

from autoparallel.cli.hardware_cmd import add_gpus_parser, cmd_gpus
from autoparallel.errors import InputError, InternalError
from autoparallel.hardware import GPU, get_gpu, list_gpus
from autoparallel.hardware.gpu import _Catalog, normalize_gpu_name

NUMERIC_FIELDS = (
    "memory_gb_nominal",
    "memory_gib",
    "bf16_tflops",
    "fp8_tflops",
    "fp4_tflops",
    "fp16_tflops",
    "hbm_tbps",
    "nvlink_gbps",
    "pcie_gen",
    "pcie_gbps",
    "max_gpus_per_node",
    "usd_per_hour",
)


def test_h100_sxm_matches_its_datasheet() -> None:
    h100 = get_gpu("H100")
    assert h100.name == "H100-SXM"
    assert h100.bf16_tflops == 989.0  # 1,979 with sparsity
    assert h100.fp16_tflops == 989.0
    assert h100.fp8_tflops == 1979.0
    assert h100.fp4_tflops is None
    assert h100.hbm_tbps == 3.35
    assert h100.nvlink_gbps == 450  # 900 GB/s bidirectional
    assert (h100.pcie_gen, h100.pcie_gbps) == (5, 64)
    assert h100.memory_gb_nominal == 80
    assert h100.memory_gib == pytest.approx(79.19)
    assert h100.memory_bytes == int(79.19 * 2**30)


@pytest.mark.parametrize(
    ("name", "memory_gib", "bf16", "fp8", "hbm_tbps", "nvlink"),
    [
        ("H200", 139.81, 989.0, 1979.0, 4.8, 450),
        ("H100-PCIe", 79.19, 756.5, 1513.0, 2.0, 0),
        ("H800", 79.19, 989.0, 1979.0, 3.35, 200),
        ("H20", 95.01, 148.0, 296.0, 4.0, 450),
        ("A100-SXM-80G", 79.15, 312.0, None, 2.039, 300),
        ("A100-SXM-40G", 39.56, 312.0, None, 1.555, 300),
        ("A100-PCIe-80G", 79.15, 312.0, None, 1.935, 0),
        ("L4", 22.16, 121.0, 242.5, 0.3, 0),
        ("L40S", 44.39, 362.05, 733.0, 0.864, 0),
        ("RTX-4090", 23.63, 165.2, 330.3, 1.008, 0),
        ("T4", 14.74, 65.0, None, 0.32, 0),
        ("B200", 178.36, 2250.0, 4500.0, 7.7, 900),
        ("GB200", 184.31, 2500.0, 5000.0, 8.0, 900),
        ("MI300X", 191.98, 1307.4, 2614.9, 5.3, 448),
        ("MI325X", 255.98, 1307.4, 2614.9, 6.0, 448),
    ],
)
def test_catalog_values(
    name: str, memory_gib: float, bf16: float, fp8: float | None, hbm_tbps: float, nvlink: float
) -> None:
    gpu = get_gpu(name)
    assert gpu.memory_gib == pytest.approx(memory_gib)
    assert gpu.bf16_tflops == pytest.approx(bf16)
    assert gpu.fp8_tflops == (None if fp8 is None else pytest.approx(fp8))
    assert gpu.hbm_tbps == pytest.approx(hbm_tbps)
    assert gpu.nvlink_gbps == pytest.approx(nvlink)


def test_blackwell_has_fp4_and_gb200_is_one_nvlink_rack() -> None:
    assert get_gpu("B200").fp4_tflops == 9000.0
    gb200 = get_gpu("GB200")
    assert gb200.fp4_tflops == 10000.0
    assert gb200.max_gpus_per_node == 72
    assert gb200.pcie_gen == 0  # NVLink-C2C host link


def test_catalog_holds_the_required_gpus() -> None:
    names = {gpu.name for gpu in list_gpus()}
    required = {
        "H100-SXM", "H100-PCIe", "H100-NVL", "H200", "H20", "H800", "A100-SXM-40G", "A100-SXM-80G",
        "A100-PCIe-40G", "A100-PCIe-80G", "A10G", "A10", "L4", "L40S", "L40", "RTX-4090", "RTX-6000-Ada",
        "T4", "V100-SXM2-16G", "V100-SXM2-32G", "B200", "GB200", "MI300X", "MI325X",
    }  # fmt: skip
    assert required <= names


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("H100", "H100-SXM"),
        ("h100-sxm", "H100-SXM"),
        ("h100-sxm5-80gb", "H100-SXM"),
        ("NVIDIA H100 80GB HBM3", "H100-SXM"),
        ("NVIDIA H100 PCIe", "H100-PCIe"),
        ("NVIDIA H100 NVL", "H100-NVL"),
        ("A100", "A100-SXM-80G"),
        ("A100-80G", "A100-SXM-80G"),
        ("A100-80GB", "A100-SXM-80G"),
        ("NVIDIA A100-SXM4-80GB", "A100-SXM-80G"),
        ("A100-SXM4-40GB", "A100-SXM-40G"),
        ("NVIDIA A100-PCIE-40GB", "A100-PCIe-40G"),
        ("NVIDIA A100 80GB PCIe", "A100-PCIe-80G"),
        ("NVIDIA A10G", "A10G"),
        ("a10", "A10"),
        ("NVIDIA L4", "L4"),
        ("l40s", "L40S"),
        ("L40", "L40"),
        ("RTX 4090", "RTX-4090"),
        ("RTX4090", "RTX-4090"),
        ("NVIDIA GeForce RTX 4090", "RTX-4090"),
        ("NVIDIA RTX 6000 Ada Generation", "RTX-6000-Ada"),
        ("T4", "T4"),
        ("Tesla T4", "T4"),
        ("V100", "V100-SXM2-16G"),
        ("Tesla V100-SXM2-32GB", "V100-SXM2-32G"),
        ("H200", "H200"),
        ("NVIDIA H200", "H200"),
        ("NVIDIA H20", "H20"),
        ("NVIDIA H800", "H800"),
        ("B200", "B200"),
        ("NVIDIA B200", "B200"),
        ("GB200", "GB200"),
        ("NVIDIA GB200", "GB200"),
        ("MI300X", "MI300X"),
        ("mi300x", "MI300X"),
        ("AMD Instinct MI300X", "MI300X"),
        ("AMD Instinct MI325X", "MI325X"),
    ],
)
def test_get_gpu_accepts_common_spellings(spelling: str, canonical: str) -> None:
    assert get_gpu(spelling).name == canonical


@pytest.mark.parametrize(("short", "long"), [("A10", "A100"), ("L40", "L40S"), ("H20", "H200")])
def test_prefix_names_stay_distinct(short: str, long: str) -> None:
    assert get_gpu(short).name != get_gpu(long).name


def test_unknown_gpu_raises_input_error_with_nearest_names() -> None:
    with pytest.raises(InputError) as info:
        get_gpu("H100-SMX")
    message = str(info.value)
    assert "unknown GPU 'H100-SMX'" in message
    assert "did you mean H100-SXM" in message
    assert "known GPUs: H100-SXM, H100-PCIe" in message
    assert "\n" not in message
    assert isinstance(info.value, ValueError)


def test_unknown_gpu_without_close_match_still_lists_the_catalog() -> None:
    with pytest.raises(InputError, match=r"unknown GPU 'TPU-v5e'; known GPUs: .*MI325X"):
        get_gpu("TPU-v5e")


def test_normalize_gpu_name() -> None:
    assert normalize_gpu_name("NVIDIA A100-SXM4-80GB") == "a100sxm480g"
    assert normalize_gpu_name("a100 sxm4 80g") == "a100sxm480g"
    assert normalize_gpu_name("Tesla T4") == "t4"


def test_every_number_names_its_source() -> None:
    for gpu in list_gpus():
        covered: set[str] = set()
        for source in gpu.sources:
            label, sep, text = source.partition(": ")
            assert sep and text, f"{gpu.name}: source without 'fields: text' form: {source!r}"
            covered.update(field.strip() for field in label.split(","))
        for field in NUMERIC_FIELDS:
            if getattr(gpu, field) is not None:
                assert field in covered, f"{gpu.name}.{field} has no source"
        if not gpu.bf16_native:
            assert "bf16_native" in covered


def test_catalog_is_internally_consistent() -> None:
    names = [gpu.name for gpu in list_gpus()]
    assert len(names) == len(set(names))
    for gpu in list_gpus():
        # The driver reports a little less than the nominal size, read as GiB.
        assert 0.9 * gpu.memory_gb_nominal <= gpu.memory_gib <= gpu.memory_gb_nominal, gpu.name
        if gpu.fp8_tflops is not None:
            assert gpu.fp8_tflops >= gpu.bf16_tflops, gpu.name
        if gpu.fp4_tflops is not None:
            assert gpu.fp8_tflops is not None and gpu.fp4_tflops >= gpu.fp8_tflops, gpu.name
        assert gpu.fp16_tflops == gpu.bf16_tflops, gpu.name
        assert gpu.bf16_native == (gpu.arch not in ("volta", "turing")), gpu.name
        if gpu.arch in ("volta", "turing", "ampere"):
            assert gpu.fp8_tflops is None, gpu.name
        assert gpu.vendor == ("amd" if gpu.name.startswith("MI") else "nvidia")
        assert gpu.pcie_gbps == {0: gpu.pcie_gbps, 3: 16, 4: 32, 5: 64}[gpu.pcie_gen], gpu.name


def test_catalog_refuses_names_that_collide() -> None:
    h100 = get_gpu("H100")
    clash = h100.model_copy(update={"name": "H100-clone", "aliases": ("h100 sxm",)})
    with pytest.raises(InternalError, match="both normalize to 'h100sxm'"):
        _Catalog((h100, clash))


def test_every_field_is_documented() -> None:
    missing = [name for name, field in GPU.model_fields.items() if not field.description]
    assert missing == []


def test_gpu_is_frozen_and_strict() -> None:
    h100 = get_gpu("H100")
    with pytest.raises(ValidationError):
        h100.bf16_tflops = 1.0  # type: ignore[misc]
    with pytest.raises(ValidationError):
        GPU.model_validate({**h100.model_dump(), "tflops": 1.0})


def test_list_gpus_is_loaded_once() -> None:
    assert list_gpus() is list_gpus()
    assert get_gpu("H100") is list_gpus()[0]


def test_cmd_gpus_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd_gpus(argparse.Namespace(json=False)) == 0
    out = capsys.readouterr().out
    header, first = out.splitlines()[:2]
    assert header.split()[:3] == ["GPU", "vendor", "mem"]
    assert first.split()[:6] == ["H100-SXM", "nvidia", "79.19", "80", "989", "1979"]


def test_cmd_gpus_json_round_trips(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_gpus_parser(parser.add_subparsers())
    args = parser.parse_args(["gpus", "--json"])
    assert args.func(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [GPU.model_validate(row) for row in rows] == list(list_gpus())
