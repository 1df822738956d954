"""Find the cluster this process runs on, from SLURM / torchrun variables and NVML.

Where each number comes from, first match wins:
    nodes          SLURM_JOB_NUM_NODES, SLURM_NNODES, WORLD_SIZE / LOCAL_WORLD_SIZE (torchrun), else 1
    gpus per node  SLURM_GPUS_ON_NODE, SLURM_GPUS_PER_NODE, LOCAL_WORLD_SIZE, CUDA_VISIBLE_DEVICES,
                   else the number of GPUs NVML sees
    GPU model      the names NVML reports (pynvml from nvidia-ml-py, imported only when needed)

Bandwidths are the catalog defaults (`Cluster.parse` documents them); nothing measures the fabric.
The environment and the NVML query are parameters, so tests run without GPUs.

Refused (InputError, exit 2), each with what to pass as --cluster instead: MIG devices (in
CUDA_VISIBLE_DEVICES or MIG mode on in NVML: slices are not modelled); an NVML that does not answer
within `NVML_TIMEOUT_S`; a GPUs-per-node variable above the GPUs NVML sees; several hosts of a
rack-scale GPU (GB200: the launcher's "node" is a 4-GPU tray, the planner's node an NVLink domain of
up to 72, and nothing here tells how the trays share domains).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from autoparallel.errors import InputError
from autoparallel.hardware.cluster import Cluster
from autoparallel.hardware.gpu import GPU, GPUS_PER_HOST, get_gpu

NvmlQuery = Callable[[], tuple[str, ...]]
"""Returns the name of every GPU on this machine, as NVML reports it ("NVIDIA H100 80GB HBM3")."""

_PASS_CLUSTER = "pass --cluster e.g. 2x8xH100"
_NOT_MIG = "MIG slices are not modelled; pass --cluster with the whole GPUs you will use, e.g. 2x8xH100"

NVML_TIMEOUT_S = 10.0
"""Longest wait for the NVML query: a wedged driver leaves `nvmlInit` stuck for ever."""
_NVML_MIG_ENABLED = 1
"""pynvml's NVML_DEVICE_MIG_ENABLE: the current mode `nvmlDeviceGetMigMode` reports when MIG is on."""


def detect_cluster(env: Mapping[str, str] | None = None, nvml_query: NvmlQuery | None = None) -> Cluster:
    """The cluster this process runs on.

    Args:
        env: environment variables to read; os.environ when None.
        nvml_query: lists the local GPU names; `query_nvml` (real NVML) when None.

    Raises:
        InputError: no NVIDIA GPU or NVML, GPUs of several models, a GPU missing from the catalog,
            or inconsistent scheduler variables. Each message ends with what to pass instead.
    """
    cluster, _ = detect_cluster_with_sources(env, nvml_query)
    return cluster


def detect_cluster_with_sources(
    env: Mapping[str, str] | None = None, nvml_query: NvmlQuery | None = None
) -> tuple[Cluster, dict[str, str]]:
    """`detect_cluster`, plus where each value came from: {"nodes": "SLURM_JOB_NUM_NODES=2", ...}."""
    environ: Mapping[str, str] = os.environ if env is None else env
    _refuse_mig_devices(environ)
    names = _bounded(nvml_query or query_nvml)
    gpu = _gpu_model(names)
    nodes, nodes_source = _nodes(environ)
    gpus_per_node, per_node_source = _gpus_per_node(environ, len(names))
    if gpus_per_node > len(names):
        raise InputError(
            f"{per_node_source} is more than the {_gpus(len(names))} NVML sees on this host; {_PASS_CLUSTER}"
        )
    if nodes > 1:
        _refuse_rack_scale_hosts(gpu, nodes, nodes_source, gpus_per_node)
    try:
        cluster = Cluster.from_shape(nodes=nodes, gpus_per_node=gpus_per_node, gpu=gpu)
    except InputError as exc:
        given = [src for src in (nodes_source, per_node_source) if not src.startswith("default")]
        why = str(exc).removeprefix("cluster: ")
        remedy = "" if "e.g." in why else f"; {_PASS_CLUSTER}"
        verb = "give" if len(given) > 1 else "gives"
        raise InputError(f"{' and '.join(given)} {verb} no valid cluster: {why}{remedy}") from None
    sources = {
        "nodes": nodes_source,
        "gpus_per_node": per_node_source,
        "gpu": f"NVML: {names[0]!r} -> {gpu.name}",
        "bandwidth": "catalog defaults (intra-node NVLink or PCIe, 400 Gbit/s network per GPU)",
    }
    return cluster, sources


def query_nvml() -> tuple[str, ...]:
    """The names of the GPUs NVML sees on this machine (all of them; NVML ignores CUDA_VISIBLE_DEVICES).

    Raises:
        InputError: pynvml is not installed, NVML fails to start, it sees no GPU, or a GPU has MIG
            mode enabled (checked where the binding has `nvmlDeviceGetMigMode`).
    """
    try:
        import pynvml
    except ImportError:
        raise _no_gpu("pynvml is not installed; pip install nvidia-ml-py") from None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise _no_gpu(str(exc) or type(exc).__name__) from None
    try:
        names = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            # an undecodable name is refused as unknown by the catalog, not a traceback
            names.append(name.decode(errors="replace") if isinstance(name, bytes) else str(name))
            if _mig_enabled(pynvml, handle):
                raise InputError(f"GPU {index} ({names[-1]}) has MIG mode enabled; {_NOT_MIG}")
    except pynvml.NVMLError as exc:
        raise _no_gpu(str(exc) or type(exc).__name__) from None
    finally:
        with contextlib.suppress(pynvml.NVMLError):  # the names are read; a failed shutdown changes nothing
            pynvml.nvmlShutdown()
    if not names:
        raise _no_gpu("0 devices")
    return tuple(names)


def _mig_enabled(pynvml: Any, handle: object) -> bool:
    """Whether NVML reports MIG mode on for the GPU `handle`; False where the binding lacks
    `nvmlDeviceGetMigMode` or the GPU does not support MIG (NVML answers NotSupported)."""
    get_mode = getattr(pynvml, "nvmlDeviceGetMigMode", None)
    if get_mode is None:
        return False
    try:
        mode = get_mode(handle)  # [current, pending]
    except pynvml.NVMLError:
        return False
    current = mode[0] if isinstance(mode, list | tuple) and mode else mode
    return isinstance(current, int) and current == _NVML_MIG_ENABLED


def _bounded(query: NvmlQuery) -> tuple[str, ...]:
    """`query()` in a daemon thread, waiting at most `NVML_TIMEOUT_S`: a stuck driver must not hang
    the command (the thread is left behind; the process exits without it)."""
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["names"] = query()
        except BaseException as exc:  # handed to the caller below
            outcome["exc"] = exc

    worker = threading.Thread(target=work, name="autoparallel-nvml", daemon=True)
    worker.start()
    worker.join(NVML_TIMEOUT_S)
    if worker.is_alive():
        raise InputError(
            f"NVML did not answer within {NVML_TIMEOUT_S:g} s (a stuck GPU driver?); {_PASS_CLUSTER}"
        )
    if "exc" in outcome:
        raise outcome["exc"]
    return tuple(outcome["names"])


def _refuse_mig_devices(env: Mapping[str, str]) -> None:
    """Refuse CUDA_VISIBLE_DEVICES naming MIG devices: a slice is not the catalog's whole GPU."""
    raw = env.get("CUDA_VISIBLE_DEVICES", "").strip()
    if any(entry.strip().startswith("MIG-") for entry in raw.split(",")):
        raise InputError(f"CUDA_VISIBLE_DEVICES={raw!r} names MIG devices; {_NOT_MIG}")


def _refuse_rack_scale_hosts(gpu: GPU, hosts: int, hosts_source: str, per_host: int) -> None:
    """Refuse several hosts of a rack-scale GPU (one whose host holds fewer GPUs than its NVLink
    domain, `GPUS_PER_HOST`): the schedulers count hosts, the planner's node is the NVLink domain, and
    whether the hosts share one domain (an NVL72 rack), several (NVL36 pairs) or none is not visible
    here. The message gives the --cluster spelling of each layout."""
    host = GPUS_PER_HOST.get(gpu.name)
    domain = gpu.max_gpus_per_node
    if host is None or host >= domain:
        return
    total = hosts * per_host
    sizes = [s for s in range(per_host, domain + 1, per_host) if total % s == 0]
    largest = max(sizes)
    options = []
    if largest == total:
        rack = f" (one NVL{domain} rack)" if total == domain else ""
        every = "both" if hosts == 2 else f"all {hosts}"
        options.append(f"1x{total}x{gpu.name} if {every} share one NVLink domain{rack}")
    else:
        options.append(
            f"{total // largest}x{largest}x{gpu.name} for {total // largest} NVLink domains "
            f"of {largest // per_host} hosts"
        )
    half = largest // 2
    if half > per_host and half in sizes:
        options.append(
            f"{total // half}x{half}x{gpu.name} for {total // half} domains of {half // per_host} hosts"
        )
    options.append(f"{hosts}x{per_host}x{gpu.name} if no two share one")
    raise InputError(
        f"detect cannot tell how the {hosts} hosts ({hosts_source}) of {per_host} {gpu.name} GPUs share "
        f"NVLink domains (up to {domain} GPUs, {host} per host); pass --cluster " + ", ".join(options)
    )


def _gpus(count: int) -> str:
    """The count and its noun: "1 GPU", "8 GPUs"."""
    return f"{count} GPU" + ("" if count == 1 else "s")


def _no_gpu(reason: str) -> InputError:
    """The error for a machine where NVML finds nothing."""
    return InputError(f"no NVIDIA GPU found on this machine (NVML: {reason}); {_PASS_CLUSTER}")


def _gpu_model(names: tuple[str, ...]) -> GPU:
    """The one catalog GPU behind the NVML names; mixed models are refused."""
    if not names:
        raise _no_gpu("0 devices")
    distinct = sorted(set(names))
    if len(distinct) > 1:
        raise InputError(
            f"this machine mixes GPU models {distinct}; autoparallel plans one model; {_PASS_CLUSTER}"
        )
    try:
        return get_gpu(names[0])
    except InputError as exc:
        raise InputError(f"detected GPU is not in the catalog: {exc}; {_PASS_CLUSTER}") from None


def _nodes(env: Mapping[str, str]) -> tuple[int, str]:
    """Node count and the variable it came from."""
    for var in ("SLURM_JOB_NUM_NODES", "SLURM_NNODES"):
        if env.get(var, "").strip():
            return _positive_int(env, var), f"{var}={env[var].strip()}"
    if env.get("WORLD_SIZE", "").strip() and env.get("LOCAL_WORLD_SIZE", "").strip():
        world = _positive_int(env, "WORLD_SIZE")
        local = _positive_int(env, "LOCAL_WORLD_SIZE")
        if world % local:
            raise InputError(
                f"WORLD_SIZE={world} is not a multiple of LOCAL_WORLD_SIZE={local}; "
                f"nodes must hold equal GPU counts; {_PASS_CLUSTER}"
            )
        return world // local, f"WORLD_SIZE={world} / LOCAL_WORLD_SIZE={local}"
    return 1, "default: 1 (no SLURM_JOB_NUM_NODES, SLURM_NNODES or WORLD_SIZE/LOCAL_WORLD_SIZE)"


def _gpus_per_node(env: Mapping[str, str], nvml_count: int) -> tuple[int, str]:
    """GPUs per node and the variable it came from."""
    if env.get("SLURM_GPUS_ON_NODE", "").strip():
        return _positive_int(env, "SLURM_GPUS_ON_NODE"), f"SLURM_GPUS_ON_NODE={env['SLURM_GPUS_ON_NODE']}"
    if env.get("SLURM_GPUS_PER_NODE", "").strip():
        raw = env["SLURM_GPUS_PER_NODE"].strip()
        return _slurm_gpu_count(raw), f"SLURM_GPUS_PER_NODE={raw}"
    if env.get("LOCAL_WORLD_SIZE", "").strip():
        return _positive_int(env, "LOCAL_WORLD_SIZE"), f"LOCAL_WORLD_SIZE={env['LOCAL_WORLD_SIZE']}"
    if "CUDA_VISIBLE_DEVICES" in env:
        raw = env["CUDA_VISIBLE_DEVICES"].strip()
        count = _visible_count(raw, nvml_count)
        if not count:
            raise InputError(f"CUDA_VISIBLE_DEVICES={raw!r} hides every GPU; {_PASS_CLUSTER}")
        return count, f"CUDA_VISIBLE_DEVICES={raw}"
    return nvml_count, f"NVML device count ({nvml_count})"


def _visible_count(raw: str, nvml_count: int) -> int:
    """GPUs CUDA makes visible under CUDA_VISIBLE_DEVICES=`raw`: the entries before the first invalid
    one (CUDA C Programming Guide, "CUDA Environment Variables": "If one of the indices is invalid,
    only the devices whose index precedes the invalid index are visible"), read as PyTorch mirrors
    CUDA (torch/cuda/__init__.py `_parse_visible_devices`, `_device_count_nvml`): each index is the
    number an entry starts with ("1gpu" is 1); a negative, missing or (where NVML saw `nvml_count`
    GPUs) out-of-range index ends the list; a repeated one hides every GPU. A list starting GPU- or
    MIG- holds UUIDs: it ends at the first entry without that prefix."""
    entries = [e.strip() for e in raw.split(",")]
    seen: list[str] = []
    prefix = next((p for p in ("GPU-", "MIG-") if raw.startswith(p)), None)
    for entry in entries:
        if prefix is not None:
            key = entry
            if not entry.startswith(prefix):
                break
        else:
            lead = re.match(r"[+-]?[0-9]+", entry)  # ASCII digits: strtoul takes no "²"
            index = int(lead.group()) if lead else -1
            if index < 0 or 0 < nvml_count <= index:
                break
            key = str(index)
        if key in seen:
            return 0
        seen.append(key)
    return len(seen)


def _slurm_gpu_count(raw: str) -> int:
    """GPUs in a SLURM gres count: "4", "h100:4", "gpu:h100:4", or "a100:2,a100:2" (summed)."""
    total = 0
    for part in re.sub(r"\([^)]*\)", "", raw).split(","):
        count = part.strip().rsplit(":", 1)[-1]
        if not (count.isascii() and count.isdigit()):  # str.isdigit alone takes "²", which int() refuses
            raise InputError(f"cannot read a GPU count from SLURM_GPUS_PER_NODE={raw!r}; {_PASS_CLUSTER}")
        total += int(count)
    if total < 1:
        raise InputError(f"SLURM_GPUS_PER_NODE={raw!r} gives no GPUs; {_PASS_CLUSTER}")
    return total


def _positive_int(env: Mapping[str, str], var: str) -> int:
    """A positive integer environment variable, or InputError naming it."""
    raw = env[var].strip()
    try:
        if not re.fullmatch(r"[+-]?[0-9]+", raw):  # ASCII digits only (int() takes "٣" and "1_0")
            raise ValueError(raw)
        value = int(raw)
    except ValueError:
        raise InputError(f"{var}={raw!r} is not an integer; {_PASS_CLUSTER}") from None
    if value < 1:
        raise InputError(f"{var}={raw} must be at least 1; {_PASS_CLUSTER}")
    return value
