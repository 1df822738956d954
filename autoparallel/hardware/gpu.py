"""GPU specifications: the `GPU` model, the shipped catalog (gpus.json) and name lookup.

The catalog is data, not code: every number in gpus.json carries a `sources` entry naming the
fields it backs. It is read once, on first use (`list_gpus` / `get_gpu`), never at import.

Usage:
    >>> from autoparallel.hardware import get_gpu
    >>> get_gpu("NVIDIA H100 80GB HBM3").bf16_tflops
    989.0
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from autoparallel.bounds import UserInput, clean_text, first_error
from autoparallel.errors import InputError, InternalError
from autoparallel.yaml_file import read_yaml

_CATALOG_FILE = "gpus.json"
_MAX_FILE_BYTES = 1 << 20
"""Largest GPU file `GPU.from_file` reads."""
_CUSTOM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


ARCH_COMPUTE_CAPABILITY = {"volta": 70, "turing": 75, "ampere": 80, "ada": 89, "hopper": 90, "blackwell": 100}
"""The lowest compute capability (major·10 + minor) of the catalog's NVIDIA architectures (A100 8.0,
A10 8.6 both Ampere: 8.0 is the one every rule can rely on)."""
ARCHITECTURES = {"nvidia": tuple(ARCH_COMPUTE_CAPABILITY), "amd": ("cdna", "cdna2", "cdna3")}
"""The architecture names each vendor's rules read (engine_support, serving_efficiency, ...)."""


GPUS_PER_HOST: dict[str, int] = {"GB200": 4}
"""GPUs per host (one operating system, where a launcher starts its processes) of the catalog GPUs
whose node, the NVLink domain `Cluster.gpus_per_node` counts, spans several hosts. A GB200 NVL72 rack
is one NVLink domain of 72 GPUs in 18 compute trays, each 2 GB200 superchips of 1 Grace CPU and 2
GPUs: 4 GPUs per host (NVIDIA GB200 NVL72 specification, the source gpus.json cites; its
`max_gpus_per_node` note: "treated as one node (Slurm sees 4-GPU trays)"). Every other GPU's host is
its node."""


def host_size(gpu_name: str, gpus_per_node: int) -> int:
    """GPUs of one host of a node of `gpus_per_node` `gpu_name` GPUs: `GPUS_PER_HOST` for a rack-scale
    GPU whose node is larger, else the node."""
    return min(GPUS_PER_HOST.get(gpu_name, gpus_per_node), gpus_per_node)


def launchable_world(world: int, gpu_name: str, gpus_per_node: int) -> bool:
    """Whether a launcher starts `world` ranks as the cost model places them (node-major on whole
    nodes): within one host, on whole hosts, or within one node (as many on each host used). Ranks over
    several nodes that do not fill whole hosts (8 + 1 on nodes of 8) do not start: the launch lines
    start one process count on every host (torchrun's `--nproc-per-node`, DeepSpeed's hostfile
    `slots`). The one rule of the training space's world sizes and the launchers'
    (`frameworks._common.node_shape`)."""
    host = host_size(gpu_name, gpus_per_node)
    return world <= host or world % host == 0 or world <= gpus_per_node


MIN_USD_PER_GPU_HOUR = 0.001
"""Least GPU-hour price read (a tenth of a cent): costs are solved in micro-US$, where a price of
5e-7 $/h rounded to 0 and made every GPU free."""
MAX_USD_PER_GPU_HOUR = 10_000.0
"""Largest GPU-hour price read."""


class GPU(UserInput):
    """One GPU model: datasheet facts in explicit units, with their sources."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    name: str
    """Canonical catalog name, e.g. "H100-SXM", "A100-SXM-80G", "L40S", "MI300X"."""
    aliases: tuple[str, ...] = ()
    """Other spellings `get_gpu` accepts (nvidia-smi names, short forms); matched case-insensitively."""
    vendor: Literal["nvidia", "amd"]
    """Who makes it: "nvidia" or "amd"."""
    arch: str
    """Architecture family, lower case: "volta", "turing", "ampere", "ada", "hopper", "blackwell", "cdna3"."""

    @field_validator("arch", mode="before")
    @classmethod
    def _known_arch(cls, value: object, info: ValidationInfo) -> object:
        """Lower case, one of the vendor's `ARCHITECTURES`: every rule compares the name exactly, so a
        GPU file's `arch: Ampere` skipped them all (an FP8 KV cache for MLA on an Ampere GPU was planned)."""
        if not isinstance(value, str):
            return value
        name = value.strip().lower()
        known = ARCHITECTURES.get(str(info.data.get("vendor")), ())
        if known and name not in known:
            raise ValueError(
                f"unknown {info.data.get('vendor')} architecture {value!r}; one of {', '.join(known)}"
            )
        return name

    memory_gb_nominal: float = Field(ge=1, le=100_000, allow_inf_nan=False)
    """Memory on the datasheet, decimal-marketing GB (80 for an H100)."""
    memory_gib: float = Field(ge=1, le=100_000, allow_inf_nan=False)
    """Total memory as the driver reports it (torch.cuda.mem_get_info total), GiB: 79.19 for an H100 80GB."""
    bf16_tflops: float = Field(ge=1, le=1_000_000, allow_inf_nan=False)
    """Dense (no sparsity) BF16 tensor-core peak, TFLOP/s. Where `bf16_native` is False, the FP16 rate."""
    bf16_native: bool = True
    """False on GPUs without BF16 tensor cores (V100, T4): frameworks run bf16 models in FP16 there."""
    fp8_tflops: float | None = Field(default=None, ge=1, le=1_000_000, allow_inf_nan=False)
    """Dense FP8 tensor-core peak, TFLOP/s; None where the GPU has no FP8 tensor cores."""
    fp4_tflops: float | None = Field(default=None, ge=1, le=1_000_000, allow_inf_nan=False)
    """Dense FP4 tensor-core peak, TFLOP/s; None where the GPU has no FP4 tensor cores."""
    int8_tops: float | None = Field(default=None, ge=1, le=1_000_000, allow_inf_nan=False)
    """Dense INT8 tensor-core peak, TOPS (the rate INT8 W8A8 GEMMs run at); None where the GPU has no
    INT8 tensor cores (Volta)."""
    fp16_tflops: float = Field(ge=1, le=1_000_000, allow_inf_nan=False)
    """Dense FP16 tensor-core peak with FP32 accumulate, TFLOP/s (equal to BF16 on most GPUs)."""
    hbm_tbps: float = Field(ge=0.01, le=1_000, allow_inf_nan=False)
    """Peak device-memory bandwidth (HBM or GDDR), TB/s."""
    nvlink_gbps: float = Field(ge=0, le=100_000, allow_inf_nan=False)
    """All-to-all scale-up bandwidth per GPU inside a node, GB/s one way (H100 SXM NVLink4: 450 = 900
    bidirectional; MI300X Infinity Fabric: 448). 0 when GPUs in a node talk over PCIe only."""
    pcie_gen: int = Field(ge=0, le=16)
    """PCIe generation of the host link; 0 where the host link is not PCIe (GB200: NVLink-C2C)."""
    pcie_gbps: float = Field(ge=1, le=100_000, allow_inf_nan=False)
    """Host link bandwidth per GPU, GB/s one way (PCIe Gen4 x16: 32, Gen5 x16: 64)."""
    max_gpus_per_node: int = Field(ge=1, le=1024)
    """Largest usual node (scale-up domain) for this GPU; `Cluster.parse` splits bigger counts into
    nodes of this size (8 for HGX / OAM / PCIe servers, 72 for a GB200 NVL72 rack)."""
    usd_per_hour: float = Field(ge=MIN_USD_PER_GPU_HOUR, le=MAX_USD_PER_GPU_HOUR, allow_inf_nan=False)
    """Default on-demand cloud price per GPU-hour, US$ (an estimate unless `sources` says otherwise)."""
    sources: tuple[str, ...] = Field(min_length=1)
    """Where each number comes from, as "field, field: datasheet name or URL, and any derivation"."""

    @property
    def memory_bytes(self) -> int:
        """Driver-reported total memory in bytes (memory_gib * 2**30, rounded down)."""
        return int(self.memory_gib * 2**30)

    @property
    def fused_attention(self) -> bool:
        """Training attention runs a fused kernel here (FlashAttention or cuDNN). Transformer Engine's
        `get_attention_backend`, which Megatron-Core's `TEDotProductAttention` uses, turns both off
        below compute capability 8.0 ("Filter: Compute capability"). That leaves
        `UnfusedDotProductAttention`, which keeps the s x s scores and "does not support context
        parallelism". So it is False on NVIDIA Volta and Turing (`sm80`)."""
        return self.sm80

    @property
    def compute_capability(self) -> int | None:
        """NVIDIA compute capability (major·10 + minor) of the architecture, `ARCH_COMPUTE_CAPABILITY`;
        None for another vendor or an architecture the catalog does not know."""
        return ARCH_COMPUTE_CAPABILITY.get(self.arch) if self.vendor == "nvidia" else None

    @property
    def sm80(self) -> bool:
        """Compute capability 8.0 or newer, or not an NVIDIA architecture the catalog knows to be
        older (Volta, Turing): the floor of Transformer Engine's fused attention (`fused_attention`)
        and of Megatron-Core's grouped expert GEMMs (arguments.py `validate_args`: "Unsupported
        compute capability for GroupedGEMM kernels")."""
        cc = self.compute_capability
        return cc is None or cc >= 80

    @property
    def has_nvlink(self) -> bool:
        """True when GPUs in one node are joined all-to-all by NVLink / Infinity Fabric."""
        return self.nvlink_gbps > 0

    @classmethod
    def from_file(cls, path: str | Path) -> tuple[GPU, ...]:
        """Custom GPU types from a YAML or JSON file.

        The file holds a list of entries, or {"gpus": [...]}. Each entry has every `GPU` field, or
        `base: <catalog GPU>` and the fields that differ from it; `sources` defaults to the file's
        name. Names are letters, digits, '.', '_', '-'; a name or alias must not be a catalog name or
        alias (it would replace that catalog GPU in a cluster string), nor another entry's.

        Example:
            gpus:
              - name: H100-lowclock
                base: H100
                bf16_tflops: 700
                usd_per_hour: 1.9

        Raises:
            InputError: unreadable file, not YAML/JSON, wrong shape, or an entry that fails validation
                (the message names the entry and the field).
        """
        file = Path(path)
        data = read_yaml(file, "GPU file", _MAX_FILE_BYTES)
        entries = data.get("gpus") if isinstance(data, dict) else data
        if not isinstance(entries, list) or not entries:
            raise InputError(f"GPU file {str(file)!r} must hold a non-empty list of GPUs (or gpus: [...])")
        gpus = tuple(_custom_gpu(entry, number, file) for number, entry in enumerate(entries, start=1))
        check_distinct_gpus(gpus, f"GPU file {str(file)!r}")
        return gpus


def _custom_gpu(entry: Any, number: int, file: Path) -> GPU:
    """One validated entry of a GPU file."""
    where = f"GPU file {str(file)!r}, entry {number}"
    if not isinstance(entry, dict):
        raise InputError(f"{where}: expected a mapping of GPU fields, got {type(entry).__name__}")
    fields = dict(entry)
    name = _custom_name(fields.get("name"), where)
    where = f"GPU file {str(file)!r}, GPU {name!r}"
    _check_name_not_catalog(name, where, "use base: {}")
    base = fields.pop("base", None)
    if base is not None:
        if not isinstance(base, str):
            raise InputError(f"{where}: base must be a catalog GPU name, got {base!r}")
        try:
            parent = get_gpu(base)
        except InputError as exc:
            raise InputError(f"{where}: base: {exc}") from None
        fields = {**parent.model_dump(), "aliases": (), **fields}
        fields.setdefault("sources", ())
        fields["sources"] = (*fields["sources"], f"every field not set in {file.name}: catalog {parent.name}")
    fields.setdefault("sources", (f"all fields: user file {file.name}",))
    try:
        gpu = GPU.model_validate(fields)
    except ValidationError as exc:
        raise InputError(f"{where}: {first_error(exc)}") from None
    _check_aliases_not_catalog(gpu, where)
    return gpu


def check_custom_gpu(gpu: GPU, where: str) -> bool:
    """Whether `gpu`, a custom GPU given as an object (already validated field by field, e.g. by
    `bounds.revalidated`), is a new GPU: False for a catalog GPU passed unchanged (it replaces
    nothing). The rules of a GPU file's entry (`GPU.from_file`) hold for it too, whatever its origin:
    an object built with `model_copy` named "H100" (or "H100-SXM", or with the alias "H100") took the
    catalog GPU's place in every cluster string, and one named "", "Н100" (Cyrillic) or "H100🚀" was
    taken though no cluster string can name it. `where` names the object in errors ("gpus[0]").

    Raises:
        InputError: a name that is not 1-64 of letters, digits, '.', '_', '-', or a name or alias
            that is a catalog GPU's name or alias.
    """
    catalog = _catalog().index.get(normalize_gpu_name(gpu.name))
    if catalog is not None and gpu.model_dump() == catalog.model_dump():
        return False
    name = _custom_name(gpu.name, where)
    where = f"{where}, GPU {name!r}"
    _check_name_not_catalog(name, where, "a copy of {} under a new name with aliases=(); prices= reprices it")
    _check_aliases_not_catalog(gpu, where)
    return True


def check_distinct_gpus(gpus: tuple[GPU, ...], where: str) -> None:
    """Refuse two custom GPUs that share a name or an alias, ignoring case: `cluster.lookup_gpu`
    takes the first custom GPU a spelling names, so the second was silently never used. `where`
    names the list in errors (a GPU file, "gpus").

    Raises:
        InputError: naming the GPUs and the shared spelling.
    """
    for number, gpu in enumerate(gpus):
        for other in gpus[:number]:
            if other.name.lower() == gpu.name.lower():
                raise InputError(f"{where}: GPU {gpu.name!r} is listed twice")
            shared = {s.lower() for s in (gpu.name, *gpu.aliases)} & {
                s.lower() for s in (other.name, *other.aliases)
            }
            if shared:
                raise InputError(
                    f"{where}: GPUs {other.name!r} and {gpu.name!r} share the name or "
                    f"alias {sorted(shared)[0]!r}"
                )


def _custom_name(name: object, where: str) -> str:
    """`name`, refused where a cluster string cannot name it (`_CUSTOM_NAME`)."""
    if not isinstance(name, str) or not _CUSTOM_NAME.fullmatch(name):
        shown = clean_text(repr(name), 80)
        raise InputError(f"{where}: name must be 1-64 of letters, digits, '.', '_', '-', got {shown}")
    return name


def _check_name_not_catalog(name: str, where: str, remedy: str) -> None:
    """Refuse a custom GPU named like a catalog GPU (it would replace it in a cluster string);
    `remedy` is the hint in brackets, "{}" standing for the catalog GPU's name."""
    clash = _catalog().index.get(normalize_gpu_name(name))
    if clash is not None:
        raise InputError(
            f"{where}: the name is the catalog GPU {clash.name}; choose another ({remedy.format(clash.name)})"
        )


def _check_aliases_not_catalog(gpu: GPU, where: str) -> None:
    """Refuse a custom GPU with an alias that names a catalog GPU."""
    for alias in gpu.aliases:
        clash = _catalog().index.get(normalize_gpu_name(alias))
        if clash is not None:
            raise InputError(
                f"{where}: alias {clean_text(repr(alias), 80)} is the catalog GPU {clash.name}; a custom "
                "GPU's names and aliases must not be catalog names (it would replace the catalog GPU)"
            )


_VENDOR_WORDS = re.compile(r"\b(nvidia|geforce|tesla|amd|instinct)\b")
_GB_SUFFIX = re.compile(r"(\d+)\s*gb\b")


def normalize_gpu_name(name: str) -> str:
    """The lookup key of a GPU name: lower case, vendor words and punctuation dropped, "80GB" -> "80g".

    "NVIDIA A100-SXM4-80GB", "a100 sxm4 80g" and "A100_SXM4_80GB" all give "a100sxm480g".
    """
    key = _VENDOR_WORDS.sub(" ", name.lower())
    key = _GB_SUFFIX.sub(r"\1g", key)
    return re.sub(r"[^a-z0-9]", "", key)


class _Catalog:
    """The parsed catalog: GPUs in file order and an index from normalized name to GPU."""

    def __init__(self, gpus: tuple[GPU, ...]) -> None:
        self.gpus = gpus
        self.index: dict[str, GPU] = {}
        for gpu in gpus:
            for spelling in (gpu.name, *gpu.aliases):
                key = normalize_gpu_name(spelling)
                other = self.index.get(key)
                if other is not None and other.name != gpu.name:
                    raise InternalError(
                        f"{_CATALOG_FILE}: {spelling!r} of {gpu.name} and a name of {other.name} "
                        f"both normalize to {key!r}"
                    )
                self.index[key] = gpu


@functools.cache
def _catalog() -> _Catalog:
    """Read and validate gpus.json once."""
    text = resources.files("autoparallel.hardware").joinpath(_CATALOG_FILE).read_text(encoding="utf-8")
    entries = json.loads(text)["gpus"]
    return _Catalog(tuple(GPU.model_validate(entry) for entry in entries))


def list_gpus() -> tuple[GPU, ...]:
    """Every GPU in the catalog, in catalog order."""
    return _catalog().gpus


def get_gpu(name: str) -> GPU:
    """Look a GPU up by its canonical name or any alias, ignoring case, spaces, dashes and "NVIDIA".

    Accepts what nvidia-smi prints ("NVIDIA H100 80GB HBM3"), short forms ("H100" -> H100-SXM,
    "A100" -> A100-SXM-80G) and catalog names ("L40S", "MI300X").

    Raises:
        InputError: the name is not in the catalog; the message lists the nearest names.
    """
    if not isinstance(name, str):
        raise InputError(f"a GPU name must be a string, got {type(name).__name__}")
    catalog = _catalog()
    key = normalize_gpu_name(name)
    gpu = catalog.index.get(key)
    if gpu is not None:
        return gpu
    raise InputError(
        f"unknown GPU {name!r}{_did_you_mean(key, catalog)}; known GPUs: {_known_names(catalog)}"
    )


def _did_you_mean(key: str, catalog: _Catalog) -> str:
    """The "did you mean" clause naming the catalog GPUs closest to a normalized key, or ""."""
    close_keys = difflib.get_close_matches(key, list(catalog.index), n=6, cutoff=0.6)
    names: list[str] = []
    for close in close_keys:
        canonical = catalog.index[close].name
        if canonical not in names:
            names.append(canonical)
    if not names:
        return ""
    return ", did you mean " + " or ".join(names[:3]) + "?"


def _known_names(catalog: _Catalog) -> str:
    """The canonical names, comma separated."""
    return ", ".join(gpu.name for gpu in catalog.gpus)
