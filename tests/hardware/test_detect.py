"""detect_cluster from SLURM / torchrun variables and an injected NVML query; no GPU needed."""

from __future__ import annotations

import argparse
import json
import sys
import types

import pytest

from autoparallel.cli import hardware_cmd
from autoparallel.errors import InputError
from autoparallel.hardware import Cluster, detect_cluster
from autoparallel.hardware.detect import NvmlQuery, detect_cluster_with_sources, query_nvml

H100_NAME = "NVIDIA H100 80GB HBM3"


def nvml(*names: str) -> NvmlQuery:
    """An NVML query returning fixed GPU names."""
    return lambda: names


def h100s(count: int = 8) -> NvmlQuery:
    """An NVML query for a machine with `count` H100 SXM GPUs."""
    return nvml(*[H100_NAME] * count)


def test_slurm_job() -> None:
    env = {"SLURM_JOB_NUM_NODES": "2", "SLURM_GPUS_ON_NODE": "8"}
    assert detect_cluster(env, h100s()) == Cluster.parse("2x8xH100")


def test_slurm_nnodes_and_gres_counts() -> None:
    env = {"SLURM_NNODES": "4", "SLURM_GPUS_PER_NODE": "h100:4"}
    cluster = detect_cluster(env, h100s(4))
    assert (cluster.nodes, cluster.gpus_per_node) == (4, 4)


@pytest.mark.parametrize(
    ("raw", "count"),
    [("8", 8), ("h100:4", 4), ("gpu:h100:4(IDX:0-3)", 4), ("gpu:2(IDX:0,1)", 2), ("a100:2,a100:2", 4)],
)
def test_slurm_gpus_per_node_forms(raw: str, count: int) -> None:
    assert detect_cluster({"SLURM_GPUS_PER_NODE": raw}, h100s()).gpus_per_node == count


def test_torchrun_world() -> None:
    env = {"WORLD_SIZE": "32", "LOCAL_WORLD_SIZE": "8", "RANK": "3"}
    cluster, sources = detect_cluster_with_sources(env, h100s())
    assert (cluster.nodes, cluster.gpus_per_node) == (4, 8)
    assert sources["nodes"] == "WORLD_SIZE=32 / LOCAL_WORLD_SIZE=8"
    assert sources["gpus_per_node"] == "LOCAL_WORLD_SIZE=8"
    assert sources["gpu"] == f"NVML: {H100_NAME!r} -> H100-SXM"


def test_slurm_wins_over_torchrun() -> None:
    env = {"SLURM_JOB_NUM_NODES": "2", "SLURM_GPUS_ON_NODE": "8", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "4"}
    assert detect_cluster(env, h100s()).world_size == 16


def test_cuda_visible_devices_limits_the_node() -> None:
    cluster = detect_cluster({"CUDA_VISIBLE_DEVICES": "0,1,2,3"}, h100s())
    assert (cluster.nodes, cluster.gpus_per_node) == (1, 4)


def test_plain_machine_uses_the_nvml_count() -> None:
    cluster, sources = detect_cluster_with_sources({}, nvml(*["NVIDIA L40S"] * 4))
    assert cluster == Cluster.parse("4xL40S")
    assert sources["nodes"].startswith("default: 1")
    assert sources["gpus_per_node"] == "NVML device count (4)"


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SLURM_JOB_NUM_NODES", "SLURM_NNODES", "SLURM_GPUS_ON_NODE", "SLURM_GPUS_PER_NODE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "16")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert detect_cluster(nvml_query=h100s()) == Cluster.parse("2x8xH100")


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"SLURM_JOB_NUM_NODES": "two"}, "SLURM_JOB_NUM_NODES='two' is not an integer"),
        ({"SLURM_JOB_NUM_NODES": "0"}, "SLURM_JOB_NUM_NODES=0 must be at least 1"),
        ({"SLURM_GPUS_ON_NODE": "-1"}, "SLURM_GPUS_ON_NODE=-1 must be at least 1"),
        ({"SLURM_GPUS_PER_NODE": "h100"}, "cannot read a GPU count from SLURM_GPUS_PER_NODE='h100'"),
        ({"SLURM_GPUS_PER_NODE": "h100:0"}, "gives no GPUs"),
        (
            {"WORLD_SIZE": "12", "LOCAL_WORLD_SIZE": "8"},
            "WORLD_SIZE=12 is not a multiple of LOCAL_WORLD_SIZE=8",
        ),
        ({"CUDA_VISIBLE_DEVICES": ""}, "hides every GPU"),
        ({"CUDA_VISIBLE_DEVICES": "-1"}, "hides every GPU"),
    ],
)
def test_bad_scheduler_variables(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(InputError) as info:
        detect_cluster(env, h100s())
    assert fragment in str(info.value)
    assert str(info.value).endswith("pass --cluster e.g. 2x8xH100")


def test_mixed_gpu_models_are_refused() -> None:
    with pytest.raises(InputError, match="mixes GPU models"):
        detect_cluster({}, nvml(H100_NAME, "NVIDIA A100-SXM4-80GB"))


def test_gpu_missing_from_the_catalog() -> None:
    with pytest.raises(
        InputError, match=r"detected GPU is not in the catalog: unknown GPU 'NVIDIA GH200 480GB'"
    ):
        detect_cluster({}, nvml("NVIDIA GH200 480GB"))


def test_no_devices() -> None:
    with pytest.raises(InputError, match=r"no NVIDIA GPU found on this machine \(NVML: 0 devices\)"):
        detect_cluster({}, nvml())


class _FakeNvmlError(Exception):
    pass


def _fake_pynvml(names: list[bytes | str], fail_init: bool = False) -> types.ModuleType:
    """A stand-in for the pynvml module."""
    module = types.ModuleType("pynvml")
    state = {"shutdown": False}

    def init() -> None:
        if fail_init:
            raise _FakeNvmlError("Driver Not Loaded")

    def shutdown() -> None:
        state["shutdown"] = True

    module.NVMLError = _FakeNvmlError  # type: ignore[attr-defined]
    module.nvmlInit = init  # type: ignore[attr-defined]
    module.nvmlShutdown = shutdown  # type: ignore[attr-defined]
    module.nvmlDeviceGetCount = lambda: len(names)  # type: ignore[attr-defined]
    module.nvmlDeviceGetHandleByIndex = lambda index: index  # type: ignore[attr-defined]
    module.nvmlDeviceGetName = lambda handle: names[handle]  # type: ignore[attr-defined]
    module.state = state  # type: ignore[attr-defined]
    return module


def test_query_nvml_reads_device_names(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_pynvml([b"NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3"])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert query_nvml() == (H100_NAME, H100_NAME)
    assert fake.state["shutdown"]
    assert detect_cluster({}) == Cluster.parse("2xH100")


def test_query_nvml_without_pynvml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    with pytest.raises(InputError) as info:
        query_nvml()
    assert str(info.value) == (
        "no NVIDIA GPU found on this machine (NVML: pynvml is not installed; pip install nvidia-ml-py); "
        "pass --cluster e.g. 2x8xH100"
    )


def test_query_nvml_when_the_driver_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml([], fail_init=True))
    with pytest.raises(InputError, match=r"\(NVML: Driver Not Loaded\); pass --cluster"):
        query_nvml()


def test_query_nvml_with_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml([]))
    with pytest.raises(InputError, match=r"\(NVML: 0 devices\)"):
        query_nvml()


def _fake_detect(env: object = None, nvml_query: object = None) -> tuple[Cluster, dict[str, str]]:
    return detect_cluster_with_sources({"SLURM_JOB_NUM_NODES": "2"}, h100s())


def test_cmd_detect_prints_the_cluster(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(hardware_cmd, "detect_cluster_with_sources", _fake_detect)
    assert hardware_cmd.cmd_detect(argparse.Namespace(json=False)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "2 nodes x 8 x H100-SXM (NVLink 450 GB/s, IB 50 GB/s)"
    assert out[1] == "spec: 2x8xH100-SXM"
    assert any("SLURM_JOB_NUM_NODES=2" in line for line in out)


def test_cmd_detect_json(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(hardware_cmd, "detect_cluster_with_sources", _fake_detect)
    parser = argparse.ArgumentParser()
    hardware_cmd.add_detect_parser(parser.add_subparsers())
    args = parser.parse_args(["detect", "--json"])
    assert args.func(args) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["spec"] == "2x8xH100-SXM"
    assert Cluster.model_validate(payload["cluster"]) == Cluster.parse("2x8xH100")
    assert payload["sources"]["nodes"] == "SLURM_JOB_NUM_NODES=2"
