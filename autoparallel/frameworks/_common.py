"""Shared by the training emitters: launcher arithmetic and the precision the GPUs can run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from autoparallel.errors import InputError
from autoparallel.validation import job_precision

if TYPE_CHECKING:
    from autoparallel.hardware import Cluster
    from autoparallel.models.spec import ModelSpec


def node_shape(world_size: int, cluster: Cluster) -> tuple[int, int]:
    """(nodes, processes per node) that a launcher starts for `world_size` ranks on `cluster`.

    Raises:
        InputError: more ranks than the cluster has GPUs, or ranks that do not fill whole nodes
            (deepspeed and torchrun start the same number of processes on every node).
    """
    if world_size > cluster.world_size:
        raise InputError(
            f"the plan needs {world_size} GPUs but cluster {cluster.spec} has {cluster.world_size}"
        )
    if world_size <= cluster.gpus_per_node:
        return 1, world_size
    if world_size % cluster.gpus_per_node:
        raise InputError(
            f"{world_size} GPUs do not fill whole nodes of {cluster.gpus_per_node}; a launcher starts the "
            "same number of processes on every node"
        )
    return world_size // cluster.gpus_per_node, cluster.gpus_per_node


def effective_precision(precision: str, cluster: Cluster | None) -> str:
    """The training precision to emit: `bf16`, `fp8` or `fp16`.

    bf16 becomes fp16 (with dynamic loss scaling) on GPUs without BF16 tensor cores (V100, T4), as
    the GPU catalog's `bf16_native` says frameworks do there.

    Raises:
        InputError: an unknown precision, or fp8 on GPUs without FP8 tensor cores.
    """
    if precision not in ("bf16", "fp8", "fp16"):
        raise InputError(f"precision={precision!r} is not supported; use bf16, fp8 or fp16")
    if cluster is None:
        return precision
    if precision == "fp8" and cluster.gpu.fp8_tflops is None:
        raise InputError(f"precision='fp8' needs FP8 tensor cores; {cluster.gpu.name} has none (use bf16)")
    return job_precision(precision, cluster.gpu)


def vision_tower_note(model: ModelSpec) -> str | None:
    """What a training plan of a multimodal model leaves out (None: a text model): the training
    memory and step time model the decoder stack alone."""
    if model.vision_params <= 0:
        return None
    return (
        f"the vision tower ({model.vision_params / 1e9:.2f}B parameters) is outside the plan: memory and "
        "step time cover the language model; freeze it, or add its weights, gradients and optimizer "
        "states to the first stage."
    )
