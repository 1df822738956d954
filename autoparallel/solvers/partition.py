"""Exact partition of layers into contiguous pipeline stages, by dynamic programming.

Given `num_items` layers in order and `num_stages` stages, choose stage boundaries
0 = b_0 < b_1 < ... < b_S = num_items (every stage non-empty) minimizing the largest stage cost
max_s cost(s, b_s, b_{s+1}). `stage_cost` may return None for a stage that is infeasible (it does not
fit in memory), which rules that range out for that stage.

    best[s][j] = min over i < j of max(best[s-1][i], cost(s-1, i, j))        O(S · N²) cost calls

This is the classic linear-partition recurrence (Skiena, The Algorithm Design Manual, §8.5), with
stage-dependent costs so that the first stage can carry the embedding, the last the LM head and
logits, and stage s hold (pp - s) micro-batches of activations under 1F1B. The CP-SAT training
encoder solves the same problem jointly with every other knob; this module is its test oracle
(tests/solvers/test_partition.py) and its warm start (training_enumerate.partitioned_point), and
needs nothing but Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import BaseModel, ConfigDict

from autoparallel.configs import even_split
from autoparallel.errors import InternalError

StageCost = Callable[[int, int, int], "float | None"]
"""cost(stage, start, stop) of putting layers [start, stop) on `stage`; None when it cannot hold them."""


class StagePartition(BaseModel):
    """An optimal contiguous partition."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    layers_per_stage: tuple[int, ...]
    """Layers on each stage, in order; they sum to the number of layers."""
    stage_costs: tuple[float, ...]
    """cost(stage, start, stop) of each stage of the partition."""
    max_cost: float
    """The largest stage cost: the minimized objective."""


def even_partition(num_items: int, num_stages: int) -> tuple[int, ...]:
    """Megatron's default split (`configs.even_split`), each stage non-empty."""
    if num_stages < 1 or num_items < num_stages:
        raise ValueError(f"cannot split {num_items} layers into {num_stages} non-empty stages")
    return even_split(num_items, num_stages)


def min_max_partition(num_items: int, num_stages: int, stage_cost: StageCost) -> StagePartition | None:
    """The contiguous partition of `num_items` layers into `num_stages` non-empty stages that
    minimizes the largest `stage_cost`; None when no partition has every stage feasible.

    Ties are broken towards the earliest boundaries (deterministic).
    """
    if num_stages < 1 or num_items < num_stages:
        return None
    inf = float("inf")
    # best[s][j]: the least max-cost of putting layers [0, j) on stages 0..s-1; arg[s][j]: start of s-1.
    best = [[inf] * (num_items + 1) for _ in range(num_stages + 1)]
    arg = [[-1] * (num_items + 1) for _ in range(num_stages + 1)]
    best[0][0] = 0.0
    for s in range(1, num_stages + 1):
        remaining = num_stages - s  # later stages each need a layer
        for j in range(s, num_items - remaining + 1):
            for i in range(s - 1, j):
                prev = best[s - 1][i]
                if prev == inf:
                    continue
                cost = stage_cost(s - 1, i, j)
                if cost is None:
                    continue
                value = max(prev, cost)
                if value < best[s][j]:
                    best[s][j] = value
                    arg[s][j] = i
    if best[num_stages][num_items] == inf:
        return None
    bounds = [num_items]
    for s in range(num_stages, 0, -1):
        bounds.append(arg[s][bounds[-1]])
    bounds.reverse()
    layers = tuple(bounds[k + 1] - bounds[k] for k in range(num_stages))
    costs = tuple(_checked(stage_cost(k, bounds[k], bounds[k + 1])) for k in range(num_stages))
    return StagePartition(layers_per_stage=layers, stage_costs=costs, max_cost=max(costs))


def additive_stage_cost(
    layer_costs: Sequence[float],
    *,
    stage_extra: Callable[[int], float] | None = None,
    layer_memory: Sequence[float] | None = None,
    stage_memory_extra: Callable[[int], float] | None = None,
    memory_scale: Callable[[int], float] | None = None,
    memory_limit: float | None = None,
) -> StageCost:
    """A `StageCost` that sums per-layer costs (prefix sums), plus a per-stage extra, under a memory limit.

    memory(stage, range) = memory_scale(stage) · Σ layer_memory + stage_memory_extra(stage)
    must not exceed `memory_limit` (e.g. scale = micro-batches in flight for activations).
    """
    prefix = _prefix(layer_costs)
    mem_prefix = _prefix(layer_memory) if layer_memory is not None else None

    def cost(stage: int, start: int, stop: int) -> float | None:
        if mem_prefix is not None and memory_limit is not None:
            scale = memory_scale(stage) if memory_scale is not None else 1.0
            extra = stage_memory_extra(stage) if stage_memory_extra is not None else 0.0
            if scale * (mem_prefix[stop] - mem_prefix[start]) + extra > memory_limit:
                return None
        extra_cost = stage_extra(stage) if stage_extra is not None else 0.0
        return prefix[stop] - prefix[start] + extra_cost

    return cost


def _prefix(values: Sequence[float]) -> list[float]:
    out = [0.0]
    for v in values:
        out.append(out[-1] + v)
    return out


def _checked(cost: float | None) -> float:
    if cost is None:  # pragma: no cover - the recurrence only keeps feasible ranges
        raise InternalError("an infeasible stage in a feasible partition")
    return cost
