"""The `gpus` and `detect` subcommands: print the GPU catalog, or the cluster this process runs on.

Both print a table for people by default and JSON with --json. Errors (InputError) propagate to the
caller, which prints them as one line.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from autoparallel.cli._output import strict_json
from autoparallel.hardware.detect import detect_cluster_with_sources
from autoparallel.hardware.gpu import GPU, list_gpus

_GPU_COLUMNS = (
    "GPU",
    "vendor",
    "mem GiB",
    "GB",
    "BF16 TF",
    "FP8 TF",
    "FP4 TF",
    "INT8 TOPS",
    "HBM TB/s",
    "NVLink GB/s",
    "PCIe GB/s",
    "node",
    "$/h",
)


def add_gpus_parser(
    subparsers: argparse._SubParsersAction[Any],
) -> argparse.ArgumentParser:
    """Register `gpus [--json]`; the parser's `func` default is `cmd_gpus`."""
    parser = subparsers.add_parser(
        "gpus",
        help="list the GPU catalog",
        description="List the GPUs autoparallel knows, with datasheet numbers (dense TFLOP/s, one-way GB/s).",
    )
    parser.add_argument("--json", action="store_true", help="print JSON (every field, with sources)")
    parser.set_defaults(func=cmd_gpus)
    return parser


def add_detect_parser(
    subparsers: argparse._SubParsersAction[Any],
) -> argparse.ArgumentParser:
    """Register `detect [--json]`; the parser's `func` default is `cmd_detect`."""
    parser = subparsers.add_parser(
        "detect",
        help="detect the cluster this process runs on",
        description="Detect nodes, GPUs per node and GPU model from SLURM / torchrun variables and NVML.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=cmd_detect)
    return parser


def cmd_gpus(args: argparse.Namespace) -> int:
    """Print the GPU catalog; returns the exit status (0)."""
    gpus = list_gpus()
    if args.json:
        print(strict_json([gpu.model_dump(mode="json") for gpu in gpus]))
    else:
        print(_table(_GPU_COLUMNS, [_gpu_row(gpu) for gpu in gpus]))
        print("TFLOP/s are dense (no sparsity); * = FP16 rate, no native BF16; - = not supported.")
        print("Sources for every number: autoparallel gpus --json")
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    """Print the detected cluster and where each value came from; returns the exit status (0)."""
    cluster, sources = detect_cluster_with_sources()
    if args.json:
        payload = {"spec": cluster.spec, "cluster": cluster.model_dump(mode="json"), "sources": sources}
        print(strict_json(payload))
    else:
        print(cluster.describe())
        print(f"spec: {cluster.spec}")
        print(_table(("value", "from"), [(key, source) for key, source in sources.items()]))
    return 0


def _gpu_row(gpu: GPU) -> tuple[str, ...]:
    """One catalog row as display strings."""
    return (
        gpu.name,
        gpu.vendor,
        f"{gpu.memory_gib:.2f}",
        f"{gpu.memory_gb_nominal:g}",
        f"{gpu.bf16_tflops:g}" + ("" if gpu.bf16_native else "*"),
        _optional(gpu.fp8_tflops),
        _optional(gpu.fp4_tflops),
        _optional(gpu.int8_tops),
        f"{gpu.hbm_tbps:g}",
        f"{gpu.nvlink_gbps:g}" if gpu.has_nvlink else "-",
        f"{gpu.pcie_gbps:g}",
        str(gpu.max_gpus_per_node),
        f"{gpu.usd_per_hour:.2f}",
    )


def _optional(value: float | None) -> str:
    """A number, or "-" for None."""
    return "-" if value is None else f"{value:g}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned text columns separated by two spaces."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]
    return "\n".join(lines)
