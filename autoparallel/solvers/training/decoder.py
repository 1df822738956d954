"""From a CP-SAT training solution to a checked `TrainingConfig`, with provenance.

The decoder reads the knobs, builds the Megatron/DeepSpeed configuration (layers per stage, recompute
per stage), re-evaluates it with the float model (memory/training.py, perf/training.py: the numbers
users see) and raises InternalError when the solver's scaled stage memory / time disagree with the
float model beyond rounding. ortools is imported only inside the solving functions, so that the
enumeration oracle can share these result types without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict

from autoparallel.configs import Recompute, TrainingConfig
from autoparallel.errors import InternalError
from autoparallel.memory.training import GIB, TrainingMemoryReport, training_memory
from autoparallel.perf.training import TrainingCost, TrainingPerf, training_perf
from autoparallel.solvers.settings import SolverStats
from autoparallel.solvers.training.objective import GPU_WEIGHED
from autoparallel.solvers.training.points import (
    Point,
    StageValues,
    evaluate_point,
)
from autoparallel.solvers.training.space import TrainingSpace
from autoparallel.solvers.training.tables import MIB_BYTES, TrainingTables

Objective = str | Sequence[str] | Mapping[str, float]
"""An objective name, a lexicographic order of names, or weights {name: weight}."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class RunnerUp(_Frozen):
    """The best plan with another (tp, pp, cp, ep) shape, and why it lost."""

    config: TrainingConfig
    """Its configuration."""
    step_time_s: float
    """Its step time (float model)."""
    reason: str
    """Why it lost, in numbers."""


class TrainingSolution(_Frozen):
    """A decided training layout, evaluated by the float model."""

    config: TrainingConfig
    """The layout (with layers_per_stage and stage_recompute)."""
    memory: TrainingMemoryReport
    """Per-stage memory (float model)."""
    perf: TrainingPerf
    """Step time, tokens/s, MFU (float model)."""
    cost: TrainingCost | None
    """Time and money to the workload's token budget (None without one)."""
    objective: str
    """The objective as asked, e.g. `throughput`, `throughput>memory`, `throughput=1,memory=0.1`."""
    stats: SolverStats
    """Solver status, bound and gap, settings."""
    binding: tuple[str, ...]
    """The constraints that shape this plan, in numbers."""
    runner_up: RunnerUp | None
    """The best plan of another shape (None when none fits or it was not asked for)."""


# ----- decoding ---------------------------------------------------------------------------------------
def to_config(space: TrainingSpace, p: Point) -> TrainingConfig:
    """The TrainingConfig of a point (recompute = the first stage's mode; stage_recompute per stage
    where the stages differ, else None: one mode, as the frameworks take it)."""
    modes = tuple(space.recompute_modes[c] for c in p.recompute)
    return space.config(
        space.shapes[p.shape],
        space.micro_batches[p.micro],
        space.state_modes[p.state],
        modes[0],
        layers_per_stage=p.layers,
        stage_recompute=modes if len(set(modes)) > 1 else None,
    )


def check_against_float(
    t: TrainingTables, p: Point, values: StageValues, memory: TrainingMemoryReport, perf: TrainingPerf
) -> None:
    """Solver-scaled stage memory / time and step time agree with the float model up to rounding.

    Each table entry is rounded up by less than one unit, so a stage's scaled value may exceed the
    float one by at most its number of summed entries (`memory_terms`, `time_terms`), never fall below.

    Raises:
        InternalError: a disagreement beyond that (the tables drifted from the float model).
    """
    frag = 1.0 + t.fragmentation
    for s, stage in enumerate(memory.stages):
        allocated_mib = stage.total_gib * GIB / frag / MIB_BYTES
        diff = values.memory_mib[s] - allocated_mib
        if not -1e-6 * allocated_mib - 1e-3 <= diff <= values.memory_terms[s] + 1e-3:
            raise InternalError(
                f"stage {s} memory: solver {values.memory_mib[s]} MiB vs float model "
                f"{allocated_mib:.3f} MiB allocated (tolerance {values.memory_terms[s]} MiB)"
            )
    for s, seconds in enumerate(perf.stage_times_s):
        diff = values.time_us[s] - seconds * 1e6
        if not -1e-6 * seconds * 1e6 - 1e-3 <= diff <= values.time_terms[s] + 1e-3:
            raise InternalError(
                f"stage {s} time: solver {values.time_us[s]} µs vs float model "
                f"{seconds * 1e6:.3f} µs (tolerance {values.time_terms[s]} µs)"
            )
    ga = t.grad_accum[p.shape][p.micro]
    slack = (ga + len(p.layers)) * max(values.time_terms) + 4 * (t.space.num_layers + 8)
    if abs(values.step_us - perf.step_time_s * 1e6) > slack + 1e-6 * values.step_us:
        raise InternalError(
            f"step time: solver {values.step_us} µs vs float model "
            f"{perf.step_time_s * 1e6:.1f} µs (tolerance {slack} µs)"
        )


def binding_constraints(
    t: TrainingTables,
    p: Point,
    config: TrainingConfig,
    memory: TrainingMemoryReport,
    perf: TrainingPerf,
    objective: str = "throughput",
) -> tuple[str, ...]:
    """What shapes the plan: the GPUs it uses where fewer than the cluster's (or all of a cluster whose
    size has an odd factor the global batch does not divide, which narrows the degrees), the batch
    identity, full stages, recompute per stage, the slowest stage. `objective`: the primary objective."""
    sp = t.space
    out = []
    counts = sorted({s.world for s in sp.shapes})
    if (gpus := config.world_size) < (world := sp.cluster.world_size):  # options.world_sizes allow it
        why = f"the GPU counts allowed are {list(sp.options.world_sizes or counts)} (options.world_sizes)"
        if objective in GPU_WEIGHED and len(counts) > 1:
            why += f"; objective {objective} weighs GPUs × step time"
        out.append(f"gpus: the plan uses {gpus} of the cluster's {world} GPUs: {why}")
    elif objective in GPU_WEIGHED and len(counts) == 1:
        out.append(
            f"gpus: objective {objective} (GPUs × step time) on the cluster's {world} GPUs ranks the step "
            "time alone; --world-sizes (TrainingOptions.world_sizes) lets it weigh fewer GPUs"
        )
    elif sp.options.world_sizes is None and config.global_batch % (world // (world & -world)):
        # 72 = 8 x 9 GPUs left dp in {1, 2, 4, 8} at a global batch of 64: 64 of them ran 8% faster
        out.append(
            f"gpus: all {world} GPUs, the default: the odd factor {world // (world & -world)} of {world} "
            f"does not divide the global batch {config.global_batch}, which narrows the degrees whose "
            "product fills it; --world-sizes (TrainingOptions.world_sizes) lets the planner weigh fewer"
        )
    out.append(
        f"global_batch: micro-batch {config.micro_batch} × dp {config.dp} × grad-accum "
        f"{config.grad_accum} = {config.global_batch} sequences"
    )
    usable = memory.usable_gib
    for st in memory.stages:
        if st.total_gib >= 0.95 * usable:
            out.append(
                f"memory: stage {st.stage} uses {st.total_gib:.2f} of {usable:.2f} GiB usable "
                f"({100 * st.total_gib / usable:.0f}%, {st.layers} layers)"
            )
    fastest = min(range(len(sp.recompute_modes)), key=lambda c: recompute_rank(sp.recompute_modes[c]))
    slowed = [s for s, c in enumerate(p.recompute) if c != fastest]
    if slowed:
        if len(slowed) == len(p.recompute) and len(set(p.recompute)) == 1:
            who = f"every stage recomputes ({sp.recompute_modes[p.recompute[0]].value})"
        else:
            modes = ", ".join(f"{s}:{sp.recompute_modes[p.recompute[s]].value}" for s in slowed)
            who = f"stages {modes} recompute activations"
        keep = sp.recompute_modes[fastest].value
        out.append(f"recompute: {who}; keeping activations ({keep}) would not fit or not pay off")
    cp_rule = sp.excluded.get("cp_comm_rule", ())
    if config.cp == 1 and cp_rule and all(shape.cp == 1 for shape in sp.shapes):
        # Every cp > 1 the sequence allowed was removed by how its ranks would exchange
        # (`validation.cp_comm_problem`): say so, or the plan reads as if cp = 1 had won on speed.
        out.append(f"cp_comm_rule: cp stays 1: {cp_rule[0]}")
    if config.pp > 1:
        times = perf.stage_times_s
        slow = max(range(len(times)), key=lambda s: times[s])
        out.append(
            f"pipeline: stage {slow} is the slowest ({times[slow] * 1e3:.2f} ms per micro-batch; stages "
            f"{min(times) * 1e3:.2f}-{max(times) * 1e3:.2f} ms), layers per stage {config.layers_per_stage}"
        )
    return tuple(out)


def recompute_rank(mode: Recompute) -> int:
    return {Recompute.NONE: 0, Recompute.SELECTIVE: 1, Recompute.FULL: 2}[mode]


def why_lost(
    best: TrainingPerf,
    other: TrainingPerf,
    peaks_gib: tuple[float, float] | None = None,
    gpus: tuple[int, int] | None = None,
) -> str:
    """The runner-up's step-time difference and the component that grew most; with `peaks_gib` (the
    chosen plan's and the runner-up's peak stage memory: the memory objective), its peak difference
    instead, and its step time beside the chosen one's; with `gpus` (the chosen plan's and the
    runner-up's GPU counts: mfu / cost, where they differ), its GPU-seconds per step instead, which
    those objectives rank (a runner-up on fewer GPUs may have the shorter step)."""
    if peaks_gib is not None:
        mine, theirs = peaks_gib
        more = 100.0 * (theirs / mine - 1.0)
        return (
            f"needs {theirs:.2f} GiB at its peak stage vs {mine:.2f} GiB (+{more:.1f}%); "
            f"its step takes {other.step_time_s:.3f} s vs {best.step_time_s:.3f} s"
        )
    if gpus is not None:
        mine, theirs = gpus[0] * best.step_time_s, gpus[1] * other.step_time_s
        more = 100.0 * (theirs / mine - 1.0)
        step = 100.0 * (other.step_time_s / best.step_time_s - 1.0)
        pace = (  # a halved step time is twice as fast, not "50% faster"
            f"{step:.1f}% slower" if step >= 0 else f"{best.step_time_s / other.step_time_s:.2f}x as fast"
        )
        costs = (
            f"{gpus[1]} GPUs × {other.step_time_s:.3f} s = {theirs:.3f} GPU-s per step vs "
            f"{gpus[0]} × {best.step_time_s:.3f} s = {mine:.3f}"
        )
        if more < 0.01:
            return f"ties with the chosen plan ({costs}, within the solver's µs rounding); its step is {pace}"
        return f"{more:.1f}% more GPU time ({costs}); its step is {pace}"
    pct = 100.0 * (other.step_time_s / best.step_time_s - 1.0)
    if pct < 0.01:
        return (
            f"ties with the chosen plan ({other.step_time_s:.3f} s vs {best.step_time_s:.3f} s per step, "
            "within the solver's µs rounding)"
        )
    parts = (
        "compute_s",
        "tp_comm_s",
        "cp_comm_s",
        "ep_comm_s",
        "pp_bubble_s",
        "dp_comm_exposed_s",
        "optimizer_s",
    )
    deltas = {name: getattr(other, name, 0.0) - getattr(best, name, 0.0) for name in parts}
    worst = max(deltas, key=lambda name: deltas[name])
    return (
        f"{pct:.1f}% slower ({other.step_time_s:.3f} s vs {best.step_time_s:.3f} s per step); "
        f"its largest excess is {worst.removesuffix('_s').replace('_', ' ')} "
        f"(+{deltas[worst]:.3f} s over the step)"
    )


def evaluate(
    t: TrainingTables, p: Point
) -> tuple[TrainingConfig, TrainingMemoryReport, TrainingPerf, StageValues]:
    """Config and float evaluation of a point, checked against the solver's integers."""
    sp = t.space
    config = to_config(sp, p)
    memory = training_memory(sp.model, sp.cluster.gpu, config, margins=sp.options.margins)
    perf = training_perf(sp.model, sp.cluster, config)
    values = evaluate_point(t, p)
    check_against_float(t, p, values, memory, perf)
    return config, memory, perf, values
