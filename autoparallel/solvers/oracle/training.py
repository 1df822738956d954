"""The enumeration oracle over the training space, without CP-SAT (no ortools import, STYLE.md §2).

`enumerate_training` brute-forces the UNIFORM-stage space (Megatron's even split), evaluating every
point with the float cost model (memory/training.py, perf/training.py). Property tests compare the
CP-SAT optimum with it; benchmarks time it.

It reads only the space (`solvers/training/space.py`) and the float model: none of the CP-SAT
player's tables, hints or types.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from autoparallel.configs import Recompute, TrainingConfig
from autoparallel.errors import InfeasibleError
from autoparallel.memory.training import TrainingMemoryReport
from autoparallel.perf.training import TrainingPerf
from autoparallel.solvers.partition import even_partition
from autoparallel.solvers.training.space import (
    ZERO_WITHOUT_PIPELINE,
    Shape,
    StateMode,
    TrainingOptions,
    TrainingSpace,
    build_space,
    speed_rank,
)

if TYPE_CHECKING:
    from autoparallel.hardware import Cluster
    from autoparallel.models.spec import ModelSpec
    from autoparallel.workload import Training


class TrainingEnumeration(BaseModel):
    """The best uniform-stage point by brute force, with the float model's numbers."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    config: TrainingConfig
    """The best configuration."""
    memory: TrainingMemoryReport
    """Its per-stage memory."""
    perf: TrainingPerf
    """Its step time and speed."""
    objective_value: float
    """Its objective: step time s (throughput), GPUs × step s (mfu, cost) or peak GiB (memory)."""
    evaluated: int
    """Points evaluated."""
    wall_s: float
    """Time taken, seconds."""


def enumerate_training(
    model: ModelSpec,
    cluster: Cluster,
    workload: Training,
    *,
    objective: str = "throughput",
    options: TrainingOptions | None = None,
) -> TrainingEnumeration:
    """Brute force over the uniform-stage space (Megatron's even split), evaluated by the float model.

    Every (shape, micro-batch, state mode) that passes the batch identity and the ZeRO/pipeline rule is
    evaluated; recompute is one mode for all stages, or with `options.per_stage_recompute` each stage's
    fastest mode that fits (exact for the time objectives: the step time grows with every stage time).
    Objectives: throughput (least step time), mfu / cost (least GPUs × step time; over several GPU
    counts its ties, equal up to `FLOAT_TIE`, go to the least step time, as the planner breaks them),
    memory (least peak, then least step time: the planner's chain, `objectives.DEFAULT_CHAINS`).

    Raises:
        InfeasibleError: no point fits.
    """
    from autoparallel.memory.training import training_memory
    from autoparallel.perf.training import training_perf

    opts = options or TrainingOptions()
    space = build_space(model, cluster, workload, opts)
    modes = sorted(space.recompute_modes, key=speed_rank)
    if objective == "memory":
        modes = modes[::-1]
    start = time.perf_counter()
    best: tuple[tuple[float, ...], TrainingConfig, TrainingMemoryReport, TrainingPerf] | None = None
    evaluated = 0
    weighed = objective in ("mfu", "cost") and len({s.world for s in space.shapes}) > 1
    fitting: list[tuple[float, float, TrainingConfig, TrainingMemoryReport, TrainingPerf]] = []
    for shape in space.shapes:
        for micro in space.micro_batches:
            if not space.grad_accum(shape, micro):
                continue
            for state in space.state_modes:
                if shape.pp > 1 and state.zero in ZERO_WITHOUT_PIPELINE:
                    continue
                for cfg, memory in _fitting_configs(
                    space, shape, micro, state, modes, opts.per_stage_recompute, training_memory
                ):
                    perf = training_perf(model, cluster, cfg)
                    evaluated += 1
                    value = {"throughput": perf.step_time_s, "memory": memory.peak_gib}.get(
                        objective, perf.step_time_s * cfg.world_size
                    )
                    rank: tuple[float, ...] = (value, perf.step_time_s) if objective == "memory" else (value,)
                    if weighed:
                        fitting.append((value, perf.step_time_s, cfg, memory, perf))
                    if best is None or rank < best[0]:
                        best = (rank, cfg, memory, perf)
    if best is None:
        raise InfeasibleError(
            f"no uniform-stage training layout of {model.name} fits {cluster.world_size} x "
            f"{cluster.gpu.name}",
            ("enumeration found no point that fits",),
        )
    if weighed:  # ties: the shortest step, then the least GPUs × step
        least = best[0][0]
        tied = [f for f in fitting if f[0] <= least * (1 + FLOAT_TIE)]
        value, _, cfg, memory, perf = min(tied, key=lambda f: (f[1], f[0]))
        best = ((value,), cfg, memory, perf)
    rank, cfg, memory, perf = best
    return TrainingEnumeration(
        config=cfg,
        memory=memory,
        perf=perf,
        objective_value=rank[0],
        evaluated=evaluated,
        wall_s=time.perf_counter() - start,
    )


FLOAT_TIE = 1e-9
"""GPUs × step times within this relative difference are one value (8 GPUs × T and 64 × T / 8 of a
step that scales with the data-parallel degree differ by float noise only)."""


def _fitting_configs(
    space: TrainingSpace,
    shape: Shape,
    micro: int,
    state: StateMode,
    modes: list[Recompute],
    per_stage: bool,
    memory_of: Callable[..., TrainingMemoryReport],
) -> list[tuple[TrainingConfig, TrainingMemoryReport]]:
    """The configs worth evaluating: each uniform mode that fits, or the per-stage preferred mode."""
    layers = even_partition(space.num_layers, shape.pp)
    reports = []
    for mode in modes:
        cfg = space.config(shape, micro, state, mode, layers_per_stage=layers)
        reports.append((cfg, memory_of(space.model, space.cluster.gpu, cfg, margins=space.options.margins)))
    if not per_stage:
        return [(cfg, rep) for cfg, rep in reports if rep.fits]
    chosen = []
    for s in range(shape.pp):
        fit = [
            mode
            for mode, (_, rep) in zip(modes, reports, strict=True)
            if rep.stages[s].total_gib <= rep.usable_gib
        ]
        if not fit:
            return []
        chosen.append(fit[0])
    cfg = space.config(shape, micro, state, chosen[0], layers_per_stage=layers, stage_recompute=tuple(chosen))
    return [(cfg, memory_of(space.model, space.cluster.gpu, cfg, margins=space.options.margins))]
