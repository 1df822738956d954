"""Shared launcher arithmetic: how many nodes and processes per node a training job starts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from autoparallel.errors import InputError

if TYPE_CHECKING:
    from autoparallel.hardware import Cluster


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
