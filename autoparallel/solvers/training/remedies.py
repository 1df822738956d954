"""The nearest feasible changes to a training job that no layout fits in memory, each checked on the
planner's own space and memory model: `--grad-reduce-in-bf16` (Megatron's ZeRO 0-3), `--engine
deepspeed`, and more GPUs of the same type (the cluster grown as serving's remedies grow it,
`serving.remedies.grown_cluster`).

A change is the job's space rebuilt with that one change (`build_space`, `build_tables`) and its least
per-GPU footprint (`smallest_footprint`): the even split of a (shape, micro-batch, state mode) with its
lightest recompute, a complete allowed layout (batch identity, ZeRO/pipeline rule, stages), so a
footprint within the usable memory is a layout that fits, never a guess. A change that does not fit
is left out, as are those the call's deadline does not leave time for. The sentences land in
`InfeasibleError.fixes`, printed under "nearest feasible changes" as serving's are.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from autoparallel.errors import InfeasibleError, InputError, SolverTimeoutError
from autoparallel.memory.training import GIB
from autoparallel.solvers.serving.remedies import GROWTH, grown_cluster
from autoparallel.solvers.settings import check_deadline
from autoparallel.solvers.training.decoder import recompute_rank
from autoparallel.solvers.training.points import Point, evaluate_point, zero_pipeline_ok
from autoparallel.solvers.training.space import TrainingOptions, build_space
from autoparallel.solvers.training.tables import MIB_BYTES, TrainingTables, build_tables

if TYPE_CHECKING:
    from autoparallel.hardware import Cluster

BF16_FLAG = "--grad-reduce-in-bf16"


def smallest_footprint(t: TrainingTables, deadline: float | None = None) -> tuple[float, str] | None:
    """The least peak GiB per GPU (fragmentation included) of any allowed layout, each (shape,
    micro-batch, state mode) taken with its even split and lightest recompute, with that layout's
    label; None when no shape meets the batch identity. `deadline` is checked once a shape (a
    SolverTimeoutError, as the tables do)."""
    sp = t.space
    best: tuple[float, str] | None = None
    lightest = max(range(len(sp.recompute_modes)), key=lambda c: recompute_rank(sp.recompute_modes[c]))
    for i, shape in enumerate(sp.shapes):
        check_deadline(deadline)
        for m in range(len(sp.micro_batches)):
            if not t.grad_accum[i][m]:
                continue
            for z, mode in enumerate(sp.state_modes):
                if not zero_pipeline_ok(t, i, z):  # not an allowed layout: ZeRO-2/3 with pp > 1
                    continue
                layers = tuple(sp.config(shape, 1, mode).stage_layers(sp.num_layers))
                point = Point(shape=i, micro=m, state=z, layers=layers, recompute=(lightest,) * shape.pp)
                gib = max(evaluate_point(t, point).memory_mib) * MIB_BYTES * (1 + t.fragmentation) / GIB
                if best is None or gib < best[0]:
                    best = (
                        gib,
                        f"{shape.label()}, micro-batch {sp.micro_batches[m]}, {mode.label()}, "
                        f"{sp.recompute_modes[lightest].value} recompute",
                    )
    return best


def bf16_left_out(t: TrainingTables) -> tuple[str, ...]:
    """The ZeRO stages (`0`, `1`, ...) the space left out only for Megatron's fp32 gradients, which
    `--grad-reduce-in-bf16` plans (`space._state_modes`; none under DeepSpeed, with the flag, or
    in fp16)."""
    left = t.space.excluded.get("framework_zero_stages", ())
    return tuple(r.split(":", 1)[0].removeprefix("zero=") for r in left if BF16_FLAG in r)


def zero_text(stages: tuple[str, ...]) -> str:
    """`ZeRO 0-3` for all four stages, else `ZeRO 0/1`."""
    return "ZeRO 0-3" if stages == ("0", "1", "2", "3") else f"ZeRO {'/'.join(stages)}"


def nearest_fixes(t: TrainingTables, deadline: float) -> tuple[str, ...]:
    """One sentence per single change that fits the job `t` plans (infeasible by memory) in memory,
    with its least footprint and the layout that has it: `--grad-reduce-in-bf16` where Megatron's
    fp32 gradients left ZeRO stages out (`bf16_left_out`), `--engine deepspeed` for a Megatron job
    not given that flag, and the cluster grown 2x, 3x, then 4x (the smallest that fits, as serving's
    remedies; not under a `world_sizes` restriction, which `solve._world_sizes_reason` names).
    Llama-3.1-70B on 2x8xH100 at seq_len 8192 needs 79.12 GiB under zero=dist, 70.49 GiB with the
    flag (zero=0), 76.81 GiB usable."""
    sp = t.space
    opts = sp.options
    tries: list[tuple[str, str, Cluster, TrainingOptions]] = []
    if opts.framework == "megatron" and not opts.grad_reduce_in_bf16:
        if stages := bf16_left_out(t):
            # only the layouts the flag adds: those the space keeps already do not fit
            added = tuple(z for z in opts.zero_stages if z.value in stages)
            bf16 = opts.model_copy(update={"grad_reduce_in_bf16": True, "zero_stages": added})
            label = f"{BF16_FLAG} ({zero_text(stages)}, bf16 gradient reduction)"
            tries.append((label, "bf16", sp.cluster, bf16))
        try:  # built anew: DeepSpeed's validator evens the stages (model_copy runs no validator)
            ds = TrainingOptions.model_validate(
                {
                    **opts.model_dump(),
                    "framework": "deepspeed",
                    "non_uniform_stages": False,
                    "per_stage_recompute": False,
                }
            )
        except ValueError:
            pass
        else:
            label = "--engine deepspeed (DeepSpeed's ZeRO, bf16 gradients)"
            tries.append((label, "deepspeed", sp.cluster, ds))
    if opts.world_sizes is None and len(sp.cluster.pools) == 1:
        for factor in GROWTH:
            if (bigger := grown_cluster(sp.cluster, factor)) is not None:
                tries.append((f"--cluster {bigger.spec} ({factor}x the GPUs)", "gpus", bigger, opts))
    out: list[str] = []
    worked: set[str] = set()  # the kinds of change one of which already fits (the smallest first)
    for label, kind, cluster, options in tries:
        if kind in worked:
            continue
        if time.perf_counter() >= deadline:
            break
        try:
            relaxed = build_tables(build_space(sp.model, cluster, sp.workload, options, deadline), deadline)
            best = smallest_footprint(relaxed, deadline)
        except (InfeasibleError, InputError, SolverTimeoutError):
            continue
        usable = relaxed.usable_bytes / GIB
        if best is None or best[0] > usable:
            continue
        worked.add(kind)
        out.append(
            f"with {label}: the smallest per-GPU footprint is {best[0]:.2f} GiB ({best[1]}), which fits "
            f"the {usable:.2f} GiB usable"
        )
    return tuple(out)
