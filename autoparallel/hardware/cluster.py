"""A cluster: N nodes of M identical GPUs, with the bandwidth inside and between nodes.

Usage:
    >>> from autoparallel.hardware import Cluster
    >>> Cluster.parse("2x8xH100").describe()
    '2 nodes x 8 x H100-SXM (NVLink 450 GB/s, IB 50 GB/s)'
    >>> Cluster.parse("16xH200,ib=400").nodes
    2
"""

from __future__ import annotations

import difflib
import re

from pydantic import BaseModel, ConfigDict, Field

from autoparallel.errors import InputError
from autoparallel.hardware.gpu import GPU, get_gpu

DEFAULT_IB_GBITPS = 400.0
"""Default network per GPU, Gbit/s one way: one 400 Gb/s InfiniBand NDR (ConnectX-7) port per GPU, as on
DGX H100 / DGX B200 (NVIDIA DGX H100 user guide)."""

_BITS_PER_BYTE = 8.0

_VALID_FORMS = (
    "valid forms: NODESxGPUSxGPU (2x8xH100), COUNTxGPU (8xA100-80G, 16xH200), "
    "then options ,ib=<Gbit/s per GPU> ,nvlink=<GB/s per GPU>"
)
_OPTIONS = ("ib", "nvlink")
# Optional node count, GPU count, then the GPU name. Counts take a sign so that "-2x8xH100" is reported
# as a bad count rather than as an unknown GPU.
_SHAPE = re.compile(r"^\s*([+-]?\d+)\s*[x×*]\s*(?:([+-]?\d+)\s*[x×*]\s*)?(\S.*?)\s*$", re.IGNORECASE)


class Cluster(BaseModel):
    """`nodes` nodes of `gpus_per_node` identical GPUs.

    Bandwidths are per GPU and one way, in GB/s, as the cost model uses them: TP collectives inside a
    node run at `intra_node_gbps`, collectives that cross nodes at `inter_node_gbps`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    nodes: int = Field(ge=1)
    """Number of nodes (scale-up domains)."""
    gpus_per_node: int = Field(ge=1)
    """GPUs in each node."""
    gpu: GPU
    """The GPU model, the same on every node."""
    intra_node_gbps: float = Field(gt=0)
    """Per-GPU scale-up bandwidth inside a node, GB/s one way: the GPU's NVLink if it has one, else PCIe."""
    inter_node_gbps: float = Field(gt=0)
    """Per-GPU network bandwidth across nodes, GB/s one way (default 400 Gbit/s InfiniBand NDR = 50 GB/s)."""

    @property
    def world_size(self) -> int:
        """All GPUs in the cluster: nodes * gpus_per_node."""
        return self.nodes * self.gpus_per_node

    @property
    def spec(self) -> str:
        """The canonical `Cluster.parse` string for this cluster, e.g. "2x8xH100-SXM,ib=200"."""
        text = f"{self.nodes}x{self.gpus_per_node}x{self.gpu.name}"
        if self.inter_node_gbps != default_inter_node_gbps():
            text += f",ib={_fmt(self.inter_node_gbps * _BITS_PER_BYTE)}"
        if self.intra_node_gbps != default_intra_node_gbps(self.gpu):
            text += f",nvlink={_fmt(self.intra_node_gbps)}"
        return text

    @classmethod
    def single(cls, gpu: GPU | str, n: int = 1) -> Cluster:
        """One node of `n` GPUs with default bandwidths; `gpu` is a GPU or any name `get_gpu` accepts.

        Raises:
            InputError: unknown GPU, n < 1, or n above the GPU's `max_gpus_per_node`.
        """
        model = get_gpu(gpu) if isinstance(gpu, str) else gpu
        spec = f"{n}x{model.name}"
        _check_count("GPU count", n, spec)
        _check_node_size(n, model, spec)
        return cls.from_shape(nodes=1, gpus_per_node=n, gpu=model)

    @classmethod
    def parse(cls, spec: str) -> Cluster:
        """Parse a cluster string.

        Forms:
            "2x8xH100"        2 nodes x 8 GPUs per node x GPU.
            "8xA100-80G"      COUNT x GPU. COUNT GPUs fit one node when COUNT <= the GPU's
                              `max_gpus_per_node` (8 for most GPUs, 72 for GB200); above that, COUNT must
                              be a multiple of it and is split into full nodes of that size:
                              "16xH200" = 2 nodes x 8, "12xH100" is rejected (write "3x4xH100").
            ",ib=400"         option: network per GPU in Gbit/s one way (default 400 = 50 GB/s).
            ",nvlink=300"     option: intra-node bandwidth per GPU in GB/s one way (default: the GPU's
                              NVLink, or its PCIe link when it has none).
        The GPU is any name `get_gpu` accepts; case and spaces do not matter.

        Raises:
            InputError: malformed string, zero or negative counts, unknown GPU or option, or more GPUs
                per node than the GPU's `max_gpus_per_node`.
        """
        if not isinstance(spec, str) or not spec.strip():
            raise InputError(f"empty cluster spec {spec!r}; {_VALID_FORMS}")
        shape, *option_texts = spec.split(",")
        match = _SHAPE.match(shape)
        if match is None:
            raise InputError(f"malformed cluster spec {spec!r}; {_VALID_FORMS}")
        first, second, gpu_name = match.groups()
        gpu = _lookup_gpu(gpu_name, spec)
        options = _parse_options(option_texts, spec)
        if second is None:
            nodes, gpus_per_node = _split_count(int(first), gpu, spec)
        else:
            nodes, gpus_per_node = int(first), int(second)
            _check_count("node count", nodes, spec)
            _check_count("GPUs per node", gpus_per_node, spec)
            _check_node_size(gpus_per_node, gpu, spec)
        return cls.from_shape(
            nodes=nodes,
            gpus_per_node=gpus_per_node,
            gpu=gpu,
            intra_node_gbps=options.get("nvlink"),
            inter_node_gbps=None if "ib" not in options else options["ib"] / _BITS_PER_BYTE,
        )

    @classmethod
    def from_shape(
        cls,
        *,
        nodes: int,
        gpus_per_node: int,
        gpu: GPU,
        intra_node_gbps: float | None = None,
        inter_node_gbps: float | None = None,
    ) -> Cluster:
        """A cluster with the default bandwidths wherever none is given (no node-size check)."""
        return cls(
            nodes=nodes,
            gpus_per_node=gpus_per_node,
            gpu=gpu,
            intra_node_gbps=default_intra_node_gbps(gpu) if intra_node_gbps is None else intra_node_gbps,
            inter_node_gbps=default_inter_node_gbps() if inter_node_gbps is None else inter_node_gbps,
        )

    def describe(self) -> str:
        """One line for people, e.g. "2 nodes x 8 x H100-SXM (NVLink 450 GB/s, IB 50 GB/s)"."""
        node_word = "node" if self.nodes == 1 else "nodes"
        return (
            f"{self.nodes} {node_word} x {self.gpus_per_node} x {self.gpu.name} "
            f"({self._intra_label()} {_fmt(self.intra_node_gbps)} GB/s, IB {_fmt(self.inter_node_gbps)} GB/s)"
        )

    def _intra_label(self) -> str:
        """What the intra-node link is called: NVLink, Infinity Fabric or PCIe."""
        if not self.gpu.has_nvlink and self.intra_node_gbps == self.gpu.pcie_gbps:
            return "PCIe"
        return "Infinity Fabric" if self.gpu.vendor == "amd" else "NVLink"


def default_intra_node_gbps(gpu: GPU) -> float:
    """The GPU's all-to-all NVLink / Infinity Fabric bandwidth, or its PCIe link when it has none (GB/s)."""
    return gpu.nvlink_gbps if gpu.has_nvlink else gpu.pcie_gbps


def default_inter_node_gbps() -> float:
    """The default network per GPU, GB/s one way: 400 Gbit/s / 8 = 50."""
    return DEFAULT_IB_GBITPS / _BITS_PER_BYTE


def _fmt(value: float) -> str:
    """A number without trailing zeros: 50.0 -> "50", 0.5 -> "0.5"."""
    return f"{value:g}"


def _lookup_gpu(name: str, spec: str) -> GPU:
    """`get_gpu`, with the cluster spec named in the error."""
    try:
        return get_gpu(name)
    except InputError as exc:
        raise InputError(f"in cluster spec {spec!r}: {exc}") from None


def _check_count(what: str, value: int, spec: str) -> None:
    """Reject zero or negative counts."""
    if value < 1:
        raise InputError(f"{what} must be at least 1, got {value} in cluster spec {spec!r}; {_VALID_FORMS}")


def _check_node_size(gpus_per_node: int, gpu: GPU, spec: str) -> None:
    """Reject nodes bigger than the GPU's usual node."""
    if gpus_per_node > gpu.max_gpus_per_node:
        raise InputError(
            f"{gpus_per_node} GPUs per node is more than a {gpu.name} node holds "
            f"({gpu.max_gpus_per_node}), in cluster spec {spec!r}; "
            f"write NODESxGPUSxGPU, e.g. {_example_split(gpus_per_node, gpu)}"
        )


def _split_count(count: int, gpu: GPU, spec: str) -> tuple[int, int]:
    """(nodes, gpus_per_node) for "COUNTxGPU": one node up to max_gpus_per_node, else full nodes of it."""
    _check_count("GPU count", count, spec)
    size = gpu.max_gpus_per_node
    if count <= size:
        return 1, count
    if count % size == 0:
        return count // size, size
    raise InputError(
        f"{count} {gpu.name} GPUs do not fill whole nodes of {size}, in cluster spec {spec!r}; "
        f"write NODESxGPUSxGPU, e.g. {_example_split(count, gpu)}"
    )


def _example_split(count: int, gpu: GPU) -> str:
    """A valid "NxMxGPU" spelling of `count` GPUs: the largest node size that divides it."""
    size = max(d for d in range(1, gpu.max_gpus_per_node + 1) if count % d == 0)
    return f"{count // size}x{size}x{gpu.name}"


def _parse_options(texts: list[str], spec: str) -> dict[str, float]:
    """{"ib": Gbit/s, "nvlink": GB/s} from ["ib=400", "nvlink=300"]; each at most once, each > 0."""
    options: dict[str, float] = {}
    for text in texts:
        key, sep, raw = (part.strip() for part in text.partition("="))
        key = key.lower()
        if not sep or not key:
            raise InputError(f"malformed option {text.strip()!r} in cluster spec {spec!r}; {_VALID_FORMS}")
        if key not in _OPTIONS:
            close = difflib.get_close_matches(key, _OPTIONS, n=1)
            hint = f", did you mean {close[0]}?" if close else ""
            raise InputError(
                f"unknown option {key!r} in cluster spec {spec!r}{hint}; options: ib=<Gbit/s>, nvlink=<GB/s>"
            )
        if key in options:
            raise InputError(f"option {key!r} given twice in cluster spec {spec!r}; {_VALID_FORMS}")
        try:
            value = float(raw)
        except ValueError:
            raise InputError(
                f"option {key}={raw!r} is not a number, in cluster spec {spec!r}; {_VALID_FORMS}"
            ) from None
        if not value > 0 or value == float("inf"):
            raise InputError(
                f"option {key}={raw} must be a positive number, in cluster spec {spec!r}; {_VALID_FORMS}"
            )
        options[key] = value
    return options
