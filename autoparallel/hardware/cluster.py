"""A cluster: one or more pools, each N nodes of M identical GPUs with the bandwidth inside and
between its nodes, and a price per GPU-hour.

Usage:
    >>> from autoparallel.hardware import Cluster
    >>> Cluster.parse("2x8xH100").describe()
    '2 nodes x 8 x H100-SXM (NVLink 450 GB/s, IB 50 GB/s)'
    >>> Cluster.parse("16xH200,ib=400").nodes
    2
    >>> Cluster.parse("2x8xH100+4x8xA100-80G").world_size
    48

A single-pool cluster answers `nodes`, `gpus_per_node`, `gpu` and the bandwidths directly (the
serving and training planners use those); a mixed cluster raises InputError there and is read pool
by pool (`cluster.pools`, `cluster.pool_cluster(i)`), as the deployment planner does.
"""

from __future__ import annotations

import difflib
import functools
import math
import numbers
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from autoparallel.bounds import UserInput, clean_text, first_error, revalidated
from autoparallel.errors import InputError
from autoparallel.hardware.gpu import (
    GPU,
    MAX_USD_PER_GPU_HOUR,
    MIN_USD_PER_GPU_HOUR,
    check_custom_gpu,
    check_distinct_gpus,
    get_gpu,
)

DEFAULT_IB_GBITPS = 400.0
"""Default network per GPU, Gbit/s one way: one 400 Gb/s InfiniBand NDR (ConnectX-7) port per GPU, as on
DGX H100 / DGX B200 (NVIDIA DGX H100 user guide)."""

MAX_NODES = 100_000
"""Most nodes one pool may have (the largest public clusters hold ~10^5 GPUs)."""
MAX_POOLS = 16
"""Most pools one cluster string may list."""
IB_GBITPS_RANGE = (1.0, 100_000.0)
"""Accepted network per GPU, Gbit/s (1 Gbit/s Ethernet up to far beyond today's 1.6 Tbit/s ports)."""
NVLINK_GBPS_RANGE = (1.0, 100_000.0)
"""Accepted scale-up bandwidth per GPU, GB/s (PCIe Gen1 x4 up to far beyond NVLink5's 900 GB/s)."""

_BITS_PER_BYTE = 8.0

_VALID_FORMS = (
    "valid forms: NODESxGPUSxGPU (2x8xH100), COUNTxGPU (8xA100-80G, 16xH200), "
    "then options ,ib=<Gbit/s per GPU> ,nvlink=<GB/s per GPU>; pools joined by + (2x8xH100+4x8xA100-80G)"
)
_OPTIONS = ("ib", "nvlink")
# Optional node count, GPU count, then the GPU name. Counts take a sign so that "-2x8xH100" is reported
# as a bad count rather than as an unknown GPU; at most 9 digits, so that a 5000-digit count is
# refused by the pattern rather than by int().
_SHAPE = re.compile(
    r"^\s*([+-]?\d{1,9})\s*[x×*]\s*(?:([+-]?\d{1,9})\s*[x×*]\s*)?(\S.*?)\s*$", re.IGNORECASE | re.ASCII
)
_LONG_NUMBER = re.compile(r"\d{10,}")
_GPU_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
"""Characters a GPU name may use in a cluster string (ASCII letters, digits, space, '.', '_', '-')."""


class Pool(UserInput):
    """`nodes` nodes of `gpus_per_node` identical GPUs.

    Bandwidths are per GPU and one way, in GB/s, as the cost model uses them: TP collectives inside a
    node run at `intra_node_gbps`, collectives that cross nodes at `inter_node_gbps`. The price of a
    GPU-hour is `gpu.usd_per_hour` (`Cluster.with_prices` replaces it).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    nodes: int = Field(ge=1, le=MAX_NODES)
    """Number of nodes (scale-up domains)."""
    gpus_per_node: int = Field(ge=1)
    """GPUs in each node."""
    gpu: GPU
    """The GPU model, the same on every node of the pool."""
    intra_node_gbps: float = Field(gt=0, allow_inf_nan=False)
    """Per-GPU scale-up bandwidth inside a node, GB/s one way: the GPU's NVLink if it has one, else PCIe."""
    inter_node_gbps: float = Field(gt=0, allow_inf_nan=False)
    """Per-GPU network bandwidth across nodes, GB/s one way (default 400 Gbit/s InfiniBand NDR = 50 GB/s)."""

    @model_validator(mode="after")
    def _node_fits_the_gpu(self) -> Pool:
        """The node-size rule `Cluster.parse` applies (`node_size_problem`), for a pool built directly."""
        problem = node_size_problem(self.gpus_per_node, self.gpu)
        if problem is not None:
            raise ValueError(problem)
        return self

    @property
    def world_size(self) -> int:
        """All GPUs in the pool: nodes * gpus_per_node."""
        return self.nodes * self.gpus_per_node

    @property
    def usd_per_hour(self) -> float:
        """Price of one GPU-hour in this pool, US$."""
        return self.gpu.usd_per_hour

    @property
    def spec(self) -> str:
        """The canonical `Cluster.parse` string for this pool, e.g. "2x8xH100-SXM,ib=200"."""
        text = f"{self.nodes}x{self.gpus_per_node}x{self.gpu.name}"
        if self.inter_node_gbps != default_inter_node_gbps():
            text += f",ib={_fmt(self.inter_node_gbps * _BITS_PER_BYTE)}"
        if self.intra_node_gbps != default_intra_node_gbps(self.gpu):
            text += f",nvlink={_fmt(self.intra_node_gbps)}"
        return text

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


class Cluster(BaseModel):
    """One or more GPU pools. `Cluster(nodes=..., gpus_per_node=..., gpu=..., ...)` builds one pool.

    The single-pool attributes (`nodes`, `gpus_per_node`, `gpu`, `intra_node_gbps`,
    `inter_node_gbps`) raise InputError on a mixed cluster: a planner that needs one GPU type must
    say so rather than silently use the first pool.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    pools: tuple[Pool, ...] = Field(min_length=1, max_length=MAX_POOLS)
    """The pools, in the order the cluster string lists them."""

    @model_validator(mode="before")
    @classmethod
    def _one_pool_form(cls, data: Any) -> Any:
        """Accept the single-pool keyword form: Cluster(nodes=2, gpus_per_node=8, gpu=..., ...)."""
        if isinstance(data, dict) and "pools" not in data and "gpu" in data:
            return {"pools": (data,)}
        return data

    # ----- single-pool view (the serving and training planners) ---------------------------------
    @property
    def single_pool(self) -> Pool:
        """The only pool. Raises InputError on a mixed cluster."""
        if len(self.pools) != 1:
            raise InputError(
                f"cluster {self.spec!r} has {len(self.pools)} GPU pools; this needs one GPU type "
                "(the serving deployment planner takes several: `plan MODEL` or `plan --fleet`)"
            )
        return self.pools[0]

    @property
    def nodes(self) -> int:
        """Number of nodes of the single pool."""
        pools = self.pools  # `single_pool`, inlined on this hot path
        return pools[0].nodes if len(pools) == 1 else self.single_pool.nodes

    @property
    def gpus_per_node(self) -> int:
        """GPUs in each node of the single pool."""
        pools = self.pools  # `single_pool`, inlined on this hot path
        return pools[0].gpus_per_node if len(pools) == 1 else self.single_pool.gpus_per_node

    @property
    def gpu(self) -> GPU:
        """The GPU model of the single pool."""
        pools = self.pools  # `single_pool`, inlined on this hot path
        return pools[0].gpu if len(pools) == 1 else self.single_pool.gpu

    @property
    def intra_node_gbps(self) -> float:
        """Per-GPU scale-up bandwidth of the single pool, GB/s one way."""
        pools = self.pools  # `single_pool`, inlined on this hot path
        return pools[0].intra_node_gbps if len(pools) == 1 else self.single_pool.intra_node_gbps

    @property
    def inter_node_gbps(self) -> float:
        """Per-GPU network bandwidth of the single pool, GB/s one way."""
        pools = self.pools  # `single_pool`, inlined on this hot path
        return pools[0].inter_node_gbps if len(pools) == 1 else self.single_pool.inter_node_gbps

    @property
    def is_mixed(self) -> bool:
        """More than one pool."""
        return len(self.pools) > 1

    # ----- whole cluster --------------------------------------------------------------------------
    @property
    def world_size(self) -> int:
        """All GPUs in the cluster, every pool."""
        return sum(pool.world_size for pool in self.pools)

    @property
    def usd_per_hour(self) -> float:
        """Price of every GPU of the cluster for one hour, US$."""
        return sum(pool.world_size * pool.usd_per_hour for pool in self.pools)

    @property
    def spec(self) -> str:
        """The canonical `Cluster.parse` string, e.g. "2x8xH100-SXM,ib=200+4x8xA100-SXM-80G"."""
        return "+".join(pool.spec for pool in self.pools)

    def describe(self) -> str:
        """One line for people, e.g. "2 nodes x 8 x H100-SXM (NVLink 450 GB/s, IB 50 GB/s)"."""
        return " + ".join(pool.describe() for pool in self.pools)

    def pool_cluster(self, index: int) -> Cluster:
        """Pool `index` as a single-pool cluster (what the per-engine float model takes): the cluster
        itself when it has one pool, so that the float model's memos, keyed by the cluster object,
        serve a single-model plan's tables and its whole-cluster deployment's alike."""
        pool = self.pools[index]
        return self if len(self.pools) == 1 else Cluster(pools=(pool,))

    def with_prices(self, prices: Mapping[str, float] | str, gpus: Iterable[GPU] = ()) -> Cluster:
        """The cluster with the GPU-hour price of each named GPU replaced.

        `prices` maps any name `get_gpu` accepts, a custom GPU of `gpus` or a GPU of the cluster's own
        pools (a custom GPU the cluster was parsed with) to US$ per GPU-hour, or is the text
        `parse_prices` reads ("H100=2.49,A100-80G=1.2", as `solve_fleet` and `--price` take it).

        Raises:
            InputError: an unknown GPU, a GPU no pool has, two different prices under two names of
                one GPU (an alias and its catalog name), or a price that is not in (0, 10000].
        """
        extra = (*custom_gpus(gpus), *(pool.gpu for pool in self.pools))
        by_name: dict[str, float] = {}
        spelled: dict[str, str] = {}
        for name, given in price_map(prices).items():
            gpu = lookup_gpu(name, extra)
            price = check_price(name, given)
            if not any(pool.gpu.name == gpu.name for pool in self.pools):
                raise InputError(
                    f"price given for {name!r} ({gpu.name}) but no pool of cluster {self.spec!r} has it"
                )
            if gpu.name in spelled and by_name[gpu.name] != price:  # the same price twice is no conflict
                raise InputError(
                    f"two prices for {gpu.name}: {by_name[gpu.name]:g} as {spelled[gpu.name]!r} and "
                    f"{price:g} as {name!r}; give one"
                )
            spelled[gpu.name] = name
            by_name[gpu.name] = price
        pools = tuple(
            pool.model_copy(
                update={"gpu": pool.gpu.model_copy(update={"usd_per_hour": by_name[pool.gpu.name]})}
            )
            if pool.gpu.name in by_name
            else pool
            for pool in self.pools
        )
        return Cluster(pools=pools)

    # ----- constructors ---------------------------------------------------------------------------
    @classmethod
    def single(cls, gpu: GPU | str, n: int = 1) -> Cluster:
        """One node of `n` GPUs with default bandwidths; `gpu` is a GPU or any name `get_gpu` accepts.

        Raises:
            InputError: unknown GPU, n < 1, or n above the GPU's `max_gpus_per_node`.
        """
        model = _gpu_argument(gpu)
        spec = f"{n}x{model.name}"
        _check_count("GPU count", n, spec)
        _check_node_size(n, model, spec)
        return cls.from_shape(nodes=1, gpus_per_node=n, gpu=model)

    @classmethod
    def parse(
        cls, spec: str, *, gpus: Iterable[GPU] = (), prices: Mapping[str, float] | str | None = None
    ) -> Cluster:
        """Parse a cluster string: one pool, or several joined by "+".

        Forms of a pool:
            "2x8xH100"        2 nodes x 8 GPUs per node x GPU.
            "8xA100-80G"      COUNT x GPU. COUNT GPUs fit one node when COUNT <= the GPU's
                              `max_gpus_per_node` (8 for most GPUs, 72 for GB200); above that, COUNT must
                              be a multiple of it and is split into full nodes of that size:
                              "16xH200" = 2 nodes x 8, "12xH100" is rejected (write "3x4xH100").
            ",ib=400"         option: network per GPU in Gbit/s one way (default 400 = 50 GB/s).
            ",nvlink=300"     option: intra-node bandwidth per GPU in GB/s one way (default: the GPU's
                              NVLink, or its PCIe link when it has none).
        "2x8xH100+4x8xA100-80G,ib=200" is two pools, each with its own options. The GPU is any name
        `get_gpu` accepts (case, spaces and dashes do not matter), or one of the custom `gpus`.
        `prices` ({GPU name: US$ per GPU-hour}, or "H100=2.49,...") replaces catalog prices
        (`with_prices`).

        Raises:
            InputError: malformed string, counts out of range, unknown GPU or option, options out of
                range, more GPUs per node than the GPU's `max_gpus_per_node`, a custom GPU that is no
                valid GPU, or prices that are no GPU-hour prices.
        """
        if not isinstance(spec, str):
            raise InputError(f"a cluster spec must be a string, got {type(spec).__name__}; {_VALID_FORMS}")
        extra, given = custom_gpus(gpus), price_map(prices)
        if not extra and not given:
            return _parse_catalog(spec)
        return cls._parse(spec, extra, given)

    @classmethod
    def _parse(cls, spec: str, extra: tuple[GPU, ...], prices: Mapping[str, float] | None) -> Cluster:
        if not spec.strip():
            raise InputError(f"empty cluster spec {spec!r}; {_VALID_FORMS}")
        texts = spec.split("+")
        if len(texts) > MAX_POOLS:
            raise InputError(f"cluster spec lists {len(texts)} pools; at most {MAX_POOLS}")
        pools = []
        for text in texts:
            if not text.strip():
                raise InputError(f"empty pool in cluster spec {_short(spec)}; {_VALID_FORMS}")
            pools.append(_parse_pool(text, spec, extra))
        cluster = cls(pools=tuple(pools))
        return cluster.with_prices(prices, extra) if prices else cluster

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
        """A one-pool cluster with the default bandwidths wherever none is given.

        Raises:
            InputError: a field out of range, or more GPUs per node than the GPU's `max_gpus_per_node`
                (the rule `parse` applies).
        """
        model = _gpu_argument(gpu)
        try:
            return cls(pools=(_pool(nodes, gpus_per_node, model, intra_node_gbps, inter_node_gbps),))
        except ValidationError as exc:
            raise InputError(f"cluster: {first_error(exc)}") from None


def parse_prices(text: str) -> dict[str, float]:
    """{"H100": 2.49, "A100-80G": 1.2} from "H100=2.49,A100-80G=1.2" (US$ per GPU-hour).

    Raises:
        InputError: malformed entry, a name given twice, or a price outside (0, 10000]. (Two
            spellings of one GPU, "H100" and "H100-SXM", are refused by `Cluster.with_prices`, which
            resolves names against the cluster's own and custom GPUs.)
    """
    if not isinstance(text, str):
        raise InputError(f"prices must be a string like H100=2.49,A100-80G=1.2, got {type(text).__name__}")
    out: dict[str, float] = {}
    for item in text.split(","):
        name, sep, raw = (part.strip() for part in item.partition("="))
        if not sep or not name or not raw:
            raise InputError(
                f"malformed price {_short(item.strip())}; write GPU=USD_PER_GPU_HOUR, e.g. H100=2.49"
            )
        if len(raw) > 32:
            raise InputError(f"price for {_short(name)} is too long a number: {_short(raw)}")
        try:
            value = float(raw)
        except ValueError:
            raise InputError(f"price for {_short(name)} is not a number: {_short(raw)}") from None
        check_price(name, value)
        if name in out:
            raise InputError(f"price for {_short(name)} given twice")
        out[name] = value
    return out


def check_price(name: str, price: Any) -> float:
    """`price` as a float, once it is a finite number in [MIN_USD_PER_GPU_HOUR, MAX_USD_PER_GPU_HOUR]:
    any real type passes (numpy's included, as `bounds.check_number` takes them), a bool does not.

    Raises:
        InputError: not such a number.
    """
    number = isinstance(price, numbers.Real) and not isinstance(price, bool)
    value = float(price) if number else math.nan
    if not MIN_USD_PER_GPU_HOUR <= value <= MAX_USD_PER_GPU_HOUR:  # NaN fails both comparisons
        shown = f"{value:g}" if number else clean_text(repr(price), 40)
        raise InputError(
            f"price for {_short(str(name))} must be in [{MIN_USD_PER_GPU_HOUR:g}, "
            f"{MAX_USD_PER_GPU_HOUR:g}] US$ per GPU-hour, got {shown}"
        )
    return value


def price_map(prices: Mapping[str, float] | str | None) -> dict[str, float]:
    """GPU-hour prices by GPU name from a mapping, or from the text `parse_prices` reads; None: none.
    The names are looked up where they are used (`lookup_gpu`), the prices checked by `check_price`.

    Raises:
        InputError: neither a mapping, a string nor None, malformed text, or a name that is no string.
    """
    if prices is None:
        return {}
    if isinstance(prices, str):
        return parse_prices(prices)
    if not isinstance(prices, Mapping):
        raise InputError(
            f"prices must be {{GPU name: US$ per GPU-hour}} or 'H100=2.49,...', got {type(prices).__name__}"
        )
    for name in prices:
        if not isinstance(name, str):
            raise InputError(
                f"prices: a GPU name must be a string, got {type(name).__name__} {clean_text(repr(name), 40)}"
            )
    return dict(prices)


def custom_gpus(gpus: Iterable[GPU]) -> tuple[GPU, ...]:
    """Custom GPU types given as objects, each validated again (`bounds.revalidated`: a copy of a
    catalog GPU with 0 TFLOP/s or NaN GiB) and held to a GPU file's rules (`gpu.check_custom_gpu`,
    `gpu.check_distinct_gpus`: a copy named "H100" replaced the catalog H100, two named "X1" and "x1"
    kept the first). A catalog GPU passed unchanged is dropped: it replaces nothing.

    Raises:
        InputError: not a list of GPU, a GPU that breaks a field's rule, a name a cluster string
            cannot name, a name or alias of a catalog GPU, or two GPUs sharing a name or alias.
    """
    if isinstance(gpus, str | bytes | Mapping) or not isinstance(gpus, Iterable):
        raise InputError(f"gpus must be a list of GPU (custom GPU types), got {type(gpus).__name__}")
    out = []
    for n, gpu in enumerate(gpus):
        if not isinstance(gpu, GPU):
            raise InputError(f"gpus[{n}] must be a GPU (a custom GPU type), got {type(gpu).__name__}")
        checked = revalidated(gpu, f"gpus[{n}] ({clean_text(str(gpu.name), 64)})")
        if check_custom_gpu(checked, f"gpus[{n}]"):
            out.append(checked)
    check_distinct_gpus(tuple(out), "gpus")
    return tuple(out)


def _gpu_argument(gpu: Any) -> GPU:
    """A GPU argument: a GPU, validated again, or any name `get_gpu` accepts.

    Raises:
        InputError: neither, an unknown name, or a GPU that breaks a field's rule.
    """
    if isinstance(gpu, GPU):
        return revalidated(gpu, "gpu")
    if isinstance(gpu, str):
        return get_gpu(gpu)
    raise InputError(f"gpu must be a GPU or its name, got {type(gpu).__name__}")


def lookup_gpu(name: str, extra: tuple[GPU, ...] = ()) -> GPU:
    """A custom GPU (exact name, case-insensitive) or any name `get_gpu` accepts.

    Raises:
        InputError: not a string, a name with characters outside ASCII letters, digits, space, '.',
            '_', '-' (so that "H100🚀" is not read as H100), or an unknown GPU.
    """
    if not isinstance(name, str):
        raise InputError(
            f"a GPU name must be a string, got {type(name).__name__} {clean_text(repr(name), 40)}"
        )
    if not _GPU_NAME.match(name):
        raise InputError(
            f"GPU name {_short(name)} has characters other than ASCII letters, digits, space, '.', '_', '-'"
        )
    for gpu in extra:
        if name.strip().lower() in (gpu.name.lower(), *(a.lower() for a in gpu.aliases)):
            return gpu
    gpu = get_gpu(name)
    return gpu


def default_intra_node_gbps(gpu: GPU) -> float:
    """The GPU's all-to-all NVLink / Infinity Fabric bandwidth, or its PCIe link when it has none (GB/s)."""
    return gpu.nvlink_gbps if gpu.has_nvlink else gpu.pcie_gbps


def default_inter_node_gbps() -> float:
    """The default network per GPU, GB/s one way: 400 Gbit/s / 8 = 50."""
    return DEFAULT_IB_GBITPS / _BITS_PER_BYTE


def _pool(
    nodes: int, gpus_per_node: int, gpu: GPU, intra_node_gbps: float | None, inter_node_gbps: float | None
) -> Pool:
    return Pool(
        nodes=nodes,
        gpus_per_node=gpus_per_node,
        gpu=gpu,
        intra_node_gbps=default_intra_node_gbps(gpu) if intra_node_gbps is None else intra_node_gbps,
        inter_node_gbps=default_inter_node_gbps() if inter_node_gbps is None else inter_node_gbps,
    )


@functools.lru_cache(maxsize=256)
def _parse_catalog(spec: str) -> Cluster:
    """`Cluster.parse` of catalog GPUs at catalog prices, one object per spec string (the object is
    frozen): the float model memoizes its tables by the cluster object, so the sections of one command
    (a plan, its whole-cluster deployment, its disaggregation comparison) share them."""
    return Cluster._parse(spec, (), None)


def _parse_pool(text: str, spec: str, extra: tuple[GPU, ...]) -> Pool:
    """One pool of a cluster string: "2x8xH100,ib=200"."""
    shape, *option_texts = text.split(",")
    if _LONG_NUMBER.search(shape):
        raise InputError(f"count too large in cluster spec {_short(spec)}: at most {MAX_NODES} nodes")
    match = _SHAPE.match(shape)
    if match is None:
        raise InputError(f"malformed cluster spec {_short(spec)}; {_VALID_FORMS}")
    first, second, gpu_name = match.groups()
    gpu = _lookup_gpu(gpu_name, spec, extra)
    options = _parse_options(option_texts, spec)
    if second is None:
        nodes, gpus_per_node = _split_count(int(first), gpu, spec)
    else:
        nodes, gpus_per_node = int(first), int(second)
        _check_count("node count", nodes, spec)
        _check_count("GPUs per node", gpus_per_node, spec)
        _check_node_size(gpus_per_node, gpu, spec)
    if nodes > MAX_NODES:
        raise InputError(f"{nodes} nodes in cluster spec {_short(spec)}: at most {MAX_NODES} per pool")
    return _pool(
        nodes,
        gpus_per_node,
        gpu,
        options.get("nvlink"),
        None if "ib" not in options else options["ib"] / _BITS_PER_BYTE,
    )


def _short(text: str, limit: int = 60) -> str:
    """repr of `text`, cut to `limit` characters so that an error line stays one short line."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _fmt(value: float) -> str:
    """A number without trailing zeros: 50.0 -> "50", 0.5 -> "0.5"."""
    return f"{value:g}"


def _lookup_gpu(name: str, spec: str, extra: tuple[GPU, ...]) -> GPU:
    """`lookup_gpu`, with the cluster spec named in the error."""
    try:
        return lookup_gpu(name, extra)
    except InputError as exc:
        raise InputError(f"in cluster spec {_short(spec)}: {exc}") from None


def _check_count(what: str, value: int, spec: str) -> None:
    """Reject zero or negative counts."""
    if value < 1:
        raise InputError(f"{what} must be at least 1, got {value} in cluster spec {spec!r}; {_VALID_FORMS}")


def node_size_problem(gpus_per_node: int, gpu: GPU, spec: str = "") -> str | None:
    """Why a node of `gpus_per_node` GPUs does not exist, or None: more than the GPU's
    `max_gpus_per_node` (its largest NVLink / board domain: 8 on HGX/DGX and OAM boards, 72 on GB200
    NVL72). `Cluster.parse` and a Pool built directly both apply it."""
    if gpus_per_node <= gpu.max_gpus_per_node:
        return None
    where = f", in cluster spec {spec!r}" if spec else ""
    return (
        f"{gpus_per_node} GPUs per node is more than a {gpu.name} node holds "
        f"({gpu.max_gpus_per_node}){where}; write NODESxGPUSxGPU, e.g. {_example_split(gpus_per_node, gpu)}"
    )


def _check_node_size(gpus_per_node: int, gpu: GPU, spec: str) -> None:
    """Reject nodes bigger than the GPU's usual node."""
    problem = node_size_problem(gpus_per_node, gpu, spec)
    if problem is not None:
        raise InputError(problem)


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
    """{"ib": Gbit/s, "nvlink": GB/s} from ["ib=400", "nvlink=300"]; each at most once, each in range."""
    options: dict[str, float] = {}
    for text in texts:
        key, sep, raw = (part.strip() for part in text.partition("="))
        key = key.lower()
        if not sep or not key:
            raise InputError(
                f"malformed option {_short(text.strip())} in cluster spec {_short(spec)}; {_VALID_FORMS}"
            )
        if key not in _OPTIONS:
            close = difflib.get_close_matches(key, _OPTIONS, n=1)
            hint = f", did you mean {close[0]}?" if close else ""
            raise InputError(
                f"unknown option {_short(key)} in cluster spec {_short(spec)}{hint}; "
                "options: ib=<Gbit/s>, nvlink=<GB/s>"
            )
        if key in options:
            raise InputError(f"option {key!r} given twice in cluster spec {spec!r}; {_VALID_FORMS}")
        try:
            value = float(raw) if len(raw) <= 32 else math.nan
        except ValueError:
            raise InputError(
                f"option {key}={_short(raw)} is not a number, in cluster spec {_short(spec)}; {_VALID_FORMS}"
            ) from None
        if not value > 0 or value == float("inf"):
            raise InputError(
                f"option {key}={_short(raw)[1:-1]} must be a positive number, "
                f"in cluster spec {_short(spec)}; {_VALID_FORMS}"
            )
        low, high = IB_GBITPS_RANGE if key == "ib" else NVLINK_GBPS_RANGE
        unit = "Gbit/s" if key == "ib" else "GB/s"
        if not low <= value <= high:
            raise InputError(
                f"option {key}={raw} is outside {low:g}..{high:g} {unit} per GPU, "
                f"in cluster spec {_short(spec)}"
            )
        options[key] = value
    return options
