"""Objectives of the CP-SAT training model: the integer expression each objective name minimizes."""

from __future__ import annotations

from autoparallel.solvers.cpsat import cp_model
from autoparallel.solvers.training.points import Point, evaluate_point
from autoparallel.solvers.training.tables import TrainingTables
from autoparallel.solvers.training.vars import Expr, TrainingVars, equal_var, product_var, upper_bound

# Names and senses: `objectives.TRAINING`. throughput: tokens/s = global batch · seq / step, so minimize
# the step time; mfu and cost: the model FLOPs per step and the token budget are fixed, so
# MFU ∝ 1 / (GPUs · step) and cost ∝ GPUs · step (both equal throughput when every shape uses the whole
# cluster); memory: the most headroom, i.e. the least MiB on the fullest stage.


def objective_expr(model: cp_model.CpModel, t: TrainingTables, v: TrainingVars, name: str) -> Expr:
    """The integer expression to minimize for objective `name`."""
    assert v.step_us is not None and v.peak_mib is not None
    if name == "throughput":
        return v.step_us
    if name in ("mfu", "cost"):
        worlds = {s.world for s in t.space.shapes}
        if len(worlds) == 1:
            return v.step_us
        gpus = equal_var(
            model, sum(s.world * x for s, x in zip(t.space.shapes, v.shape, strict=True)), max(worlds), "gpus"
        )
        return product_var(
            model, gpus, v.step_us, max(worlds) * upper_bound(model, v.step_us), f"{name}_gpu_us"
        )
    if name == "memory":
        return v.peak_mib
    raise ValueError(f"no CP-SAT expression for training objective {name!r}")


def point_value(t: TrainingTables, p: Point, name: str) -> int:
    """The value `objective_expr(name)` takes at `p`, from the same integer tables (`evaluate_point`)."""
    values = evaluate_point(t, p)
    if name == "throughput":
        return values.step_us
    if name in ("mfu", "cost"):
        return values.step_us * gpu_weight(t, p.shape, name)
    if name == "memory":
        return max(values.memory_mib)
    raise ValueError(f"no value for training objective {name!r}")


GPU_WEIGHED = ("mfu", "cost")
"""Objectives that weigh a plan's GPUs (GPUs × step time) where the space holds several GPU counts
(`TrainingOptions.world_sizes`, `--world-sizes`); on one count they rank the step time alone."""


def gpu_weight(t: TrainingTables, shape: int, name: str) -> int:
    """The factor of the step time in objective `name` at shape index `shape`: its GPUs for mfu and
    cost where the space's shapes use different GPU counts, else 1 (the step time itself)."""
    if name not in GPU_WEIGHED or len({s.world for s in t.space.shapes}) == 1:
        return 1
    return t.space.shapes[shape].world


def step_rounding_us(t: TrainingTables, shape: int, micro: int) -> int:
    """How far the solver's integer step time of any point of (shape, micro-batch) may lie from the float
    model's, µs: the tolerance `decoder.check_against_float` allows, (grad-accum + pp) × the most rounded
    entries of a stage's time (≤ layers + 5, each < 1 µs high) + 4 × (layers + 8) for the sync and the
    optimizer step. Only a plan within its GPUs × this of the least GPU-time may tie with it in the
    float model (mfu / cost break such ties by the shorter step, `decompose.solve_by_triples`)."""
    layers = t.space.num_layers
    return (t.grad_accum[shape][micro] + t.space.shapes[shape].pp) * (layers + 5) + 4 * (layers + 8)
