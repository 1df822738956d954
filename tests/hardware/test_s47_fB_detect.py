"""detect refuses what it cannot model (session 47): several hosts of a rack-scale GPU, MIG devices,
a stuck NVML, and scheduler variables it cannot use, each naming the variable and its value."""

from __future__ import annotations

import sys
import threading
import types

import pytest

from autoparallel.errors import InputError
from autoparallel.hardware import Cluster, detect
from autoparallel.hardware.detect import NvmlQuery, detect_cluster, query_nvml

H100_NAME = "NVIDIA H100 80GB HBM3"
GB200_NAME = "NVIDIA GB200"


def nvml(*names: str) -> NvmlQuery:
    """An NVML query returning fixed GPU names."""
    return lambda: names


def _refusal(env: dict[str, str], query: NvmlQuery) -> str:
    with pytest.raises(InputError) as info:
        detect_cluster(env, query)
    message = str(info.value)
    assert "\n" not in message
    return message


# 1. Rack-scale GPUs: Slurm / torchrun count 4-GPU GB200 trays; the planner's node is the NVLink domain.


def test_gb200_trays_of_one_rack_are_not_planned_as_ib_nodes() -> None:
    message = _refusal({"SLURM_NNODES": "18"}, nvml(*[GB200_NAME] * 4))
    assert message.startswith(
        "detect cannot tell how the 18 hosts (SLURM_NNODES=18) of 4 GB200 GPUs share NVLink domains"
    )
    assert "1x72xGB200 if all 18 share one NVLink domain (one NVL72 rack)" in message
    assert "2x36xGB200 for 2 domains of 9 hosts" in message
    assert "18x4xGB200 if no two share one" in message
    for spec in ("1x72xGB200", "2x36xGB200", "18x4xGB200"):  # every suggestion parses
        Cluster.parse(spec)


def test_gb200_torchrun_hosts_are_refused() -> None:
    env = {"WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4"}
    message = _refusal(env, nvml(*[GB200_NAME] * 4))
    assert "2 hosts (WORLD_SIZE=8 / LOCAL_WORLD_SIZE=4)" in message
    assert "1x8xGB200 if both share one NVLink domain, 2x4xGB200 if no two share one" in message


def test_one_gb200_host_and_several_h100_nodes_stay_detected() -> None:
    assert detect_cluster({}, nvml(*[GB200_NAME] * 4)) == Cluster.parse("1x4xGB200")
    env = {"SLURM_NNODES": "18"}
    assert detect_cluster(env, nvml(*[H100_NAME] * 8)) == Cluster.parse("18x8xH100")


# 2. MIG: a slice is not the catalog's whole GPU.


@pytest.mark.parametrize(
    "visible", ["MIG-4f1e7a2c-0000-5000-8000-000000000001", "MIG-a,MIG-b", "GPU-1234,MIG-a"]
)
def test_mig_devices_in_cuda_visible_devices_are_refused(visible: str) -> None:
    env = {"CUDA_VISIBLE_DEVICES": visible, "SLURM_GPUS_ON_NODE": "1"}
    message = _refusal(env, nvml(H100_NAME))
    assert message == (
        f"CUDA_VISIBLE_DEVICES={visible!r} names MIG devices; MIG slices are not modelled; "
        "pass --cluster with the whole GPUs you will use, e.g. 2x8xH100"
    )


class _FakeNvmlError(Exception):
    pass


def _fake_pynvml(mig_modes: list[object] | None) -> types.ModuleType:
    """A pynvml stand-in with two H100s; `mig_modes` per GPU (an exception instance is raised), or
    None for a binding without nvmlDeviceGetMigMode."""
    module = types.ModuleType("pynvml")
    module.NVMLError = _FakeNvmlError  # type: ignore[attr-defined]
    module.nvmlInit = lambda: None  # type: ignore[attr-defined]
    module.nvmlShutdown = lambda: None  # type: ignore[attr-defined]
    module.nvmlDeviceGetCount = lambda: 2  # type: ignore[attr-defined]
    module.nvmlDeviceGetHandleByIndex = lambda index: index  # type: ignore[attr-defined]
    module.nvmlDeviceGetName = lambda handle: H100_NAME  # type: ignore[attr-defined]
    if mig_modes is not None:

        def get_mig_mode(handle: int) -> object:
            mode = mig_modes[handle]
            if isinstance(mode, Exception):
                raise mode
            return mode

        module.nvmlDeviceGetMigMode = get_mig_mode  # type: ignore[attr-defined]
    return module


def test_nvml_mig_mode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml([[0, 0], [1, 1]]))
    with pytest.raises(InputError) as info:
        query_nvml()
    assert str(info.value) == (
        f"GPU 1 ({H100_NAME}) has MIG mode enabled; MIG slices are not modelled; "
        "pass --cluster with the whole GPUs you will use, e.g. 2x8xH100"
    )


@pytest.mark.parametrize("modes", [None, [[0, 0], [0, 1]], [_FakeNvmlError("Not Supported")] * 2])
def test_nvml_without_mig_mode_is_detected(
    monkeypatch: pytest.MonkeyPatch, modes: list[object] | None
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(modes))
    assert query_nvml() == (H100_NAME, H100_NAME)


# 3. A stuck NVML (a wedged driver) ends in one line, not a hang.


def test_stuck_nvml_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    monkeypatch.setattr(detect, "NVML_TIMEOUT_S", 0.05)

    def stuck() -> tuple[str, ...]:
        release.wait(5)
        return (H100_NAME,)

    try:
        message = _refusal({}, stuck)
    finally:
        release.set()
    assert message == "NVML did not answer within 0.05 s (a stuck GPU driver?); pass --cluster e.g. 2x8xH100"


def test_nvml_errors_still_come_through_the_thread() -> None:
    def broken() -> tuple[str, ...]:
        raise InputError("no NVIDIA GPU found on this machine (NVML: Driver Not Loaded)")

    assert "Driver Not Loaded" in _refusal({}, broken)


# 4. Scheduler variables: errors name the variable and its value; per-node counts are checked.


@pytest.mark.parametrize("var", ["SLURM_GPUS_ON_NODE", "LOCAL_WORLD_SIZE", "SLURM_GPUS_PER_NODE"])
def test_gpus_per_node_above_what_nvml_sees_is_refused(var: str) -> None:
    message = _refusal({var: "16"}, nvml(*[H100_NAME] * 8))
    assert message == (
        f"{var}=16 is more than the 8 GPUs NVML sees on this host; pass --cluster e.g. 2x8xH100"
    )


def test_too_many_nodes_names_the_variable() -> None:
    message = _refusal({"SLURM_NNODES": "2000000"}, nvml(*[H100_NAME] * 8))
    assert message == (
        "SLURM_NNODES=2000000 and NVML device count (8) give no valid cluster: "
        "nodes: Input should be less than or equal to 100000; pass --cluster e.g. 2x8xH100"
    )


def test_too_large_a_node_names_the_source() -> None:
    message = _refusal({}, nvml(*["NVIDIA L40S"] * 10))
    assert message.startswith("NVML device count (10) gives no valid cluster: 10 GPUs per node is more than")
    assert message.endswith("e.g. 2x5xL40S")


def test_a_failed_shutdown_and_undecodable_names_are_no_internal_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """NVML failing at shutdown after the names were read, and a name that is not UTF-8, ended in an
    internal error (exit 3): the names are kept, the undecodable bytes replaced."""
    module = _fake_pynvml(None)

    def failed_shutdown() -> None:
        raise _FakeNvmlError("shutdown failed")

    module.nvmlShutdown = failed_shutdown  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", module)
    assert query_nvml() == (H100_NAME, H100_NAME)
    module.nvmlDeviceGetName = lambda handle: b"\xff\xfeNVIDIA H100"  # type: ignore[attr-defined]
    assert query_nvml() == ("\ufffd\ufffdNVIDIA H100",) * 2
