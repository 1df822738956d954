"""Per-GPU training memory for one concrete `TrainingConfig`, in floats (bytes; GiB in reports).

This module is the single source of truth that the CP-SAT training encoder turns into integer tables,
so it exposes its per-layer / per-stage building blocks under stable names:

    layer_state_breakdown / layer_state_bytes   weights + gradients + optimizer of one decoder layer
    embedding_state_bytes / lm_head_state_bytes the same for the embedding (first stage) and LM head
                                                (with the MTP modules Megatron puts on the last stage)
    layer_activation_bytes                       activations one micro-batch leaves on one GPU per layer
    logits_bytes                                 the fp32 logits / cross-entropy buffers on the last stage
                                                 (+ the MTP modules' activations and logits)
    inflight_microbatches                        (micro-batch, model-chunk) passes alive at a stage's peak
    stage_memory_bytes                           everything on one pipeline stage
    training_memory                              the whole report

Layout: memory/training_states.py (model states: ZeRO / distributed-optimizer sharding, Rajbhandari et
al. 2020), memory/training_activations.py (the activation inventory, Korthikanti et al. 2022),
memory/training_shapes.py (`gpt_like_spec`, a ModelSpec from a paper's table); this module adds them
up per pipeline stage and checks the total against the GPU. Their public names are re-exported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autoparallel.configs import Recompute, TrainingConfig
from autoparallel.errors import InputError
from autoparallel.memory.training_activations import (
    embedding_activation_bytes,
    inflight_microbatches,
    layer_activation_bytes,
    logits_bytes,
    mtp_activation_bytes,
)
from autoparallel.memory.training_shapes import gpt_like_spec
from autoparallel.memory.training_states import (
    GRAD_BYTES_PER_PARAM,
    MEGATRON_MAIN_GRAD_BYTES_PER_PARAM,
    OPTIMIZER_BYTES_PER_PARAM,
    WEIGHT_BYTES_PER_PARAM,
    ZERO_STATE,
    StateBytes,
    _Frozen,
    embedding_state_breakdown,
    embedding_state_bytes,
    expert_dp,
    expert_tp,
    layer_params_per_gpu,
    layer_state_breakdown,
    layer_state_bytes,
    lm_head_state_breakdown,
    lm_head_state_bytes,
    mtp_params_per_gpu,
    mtp_state_breakdown,
    zero3_working_bytes,
)
from autoparallel.models.spec import ModelSpec

if TYPE_CHECKING:
    from autoparallel.hardware import GPU
    from autoparallel.memory.margins import MemoryConfig

__all__ = [
    "DEFAULT_FRAGMENTATION",
    "GIB",
    "GRAD_BYTES_PER_PARAM",
    "MEGATRON_MAIN_GRAD_BYTES_PER_PARAM",
    "OPTIMIZER_BYTES_PER_PARAM",
    "WEIGHT_BYTES_PER_PARAM",
    "ZERO_STATE",
    "StageMemory",
    "StateBytes",
    "TrainingMemoryReport",
    "embedding_activation_bytes",
    "embedding_state_breakdown",
    "embedding_state_bytes",
    "expert_dp",
    "expert_tp",
    "gpt_like_spec",
    "inflight_microbatches",
    "layer_activation_bytes",
    "layer_params_per_gpu",
    "layer_state_breakdown",
    "layer_state_bytes",
    "lm_head_state_breakdown",
    "lm_head_state_bytes",
    "logits_bytes",
    "mtp_activation_bytes",
    "mtp_params_per_gpu",
    "mtp_state_breakdown",
    "stage_layer_indices",
    "stage_memory_bytes",
    "training_memory",
    "zero3_working_bytes",
]

GIB = float(2**30)
# Allocator fragmentation when a caller gives none (MemoryConfig's default, memory/margins.py).
DEFAULT_FRAGMENTATION = 0.10


class StageMemory(_Frozen):
    """Peak memory of one GPU of one pipeline stage, GiB."""

    stage: int
    """Pipeline stage index (0 = first)."""
    layers: int
    """Decoder layers on this stage (all virtual chunks together)."""
    weights_gib: float
    """bf16 weights (ZeRO-3: the rank's shard plus the gathered working layers)."""
    gradients_gib: float
    """Gradients."""
    optimizer_gib: float
    """fp32 master + Adam states."""
    activations_gib: float
    """Saved activations of all micro-batches in flight at the stage's peak."""
    logits_gib: float
    """Logits and cross-entropy buffers (last stage only; with MTP modules, their activations and
    logits too)."""
    fragmentation_gib: float
    """Allocator fragmentation allowance."""
    total_gib: float
    """Sum of the above."""


class TrainingMemoryReport(_Frozen):
    """Per-GPU training memory of one configuration."""

    stages: tuple[StageMemory, ...]
    """One entry per pipeline stage."""
    peak_gib: float
    """Largest stage total."""
    usable_gib: float
    """Memory the job may use per GPU after margins."""
    fits: bool
    """Every stage fits in `usable_gib`."""
    problems: tuple[str, ...]
    """Human sentences: what does not fit, and by how much."""


# ----- stages and report ---------------------------------------------------------------------------
def _margins(gpu: GPU, margins: MemoryConfig | None) -> tuple[float, float]:
    """(usable bytes per GPU, fragmentation fraction) from the shared MemoryConfig.

    Raises:
        InputError: `margins` neither a MemoryConfig nor None (a dict of its fields, say).
    """
    from autoparallel.memory.margins import MemoryConfig

    if margins is None:
        margins = MemoryConfig.for_training()
    elif not isinstance(margins, MemoryConfig):
        raise InputError(
            "margins must be a MemoryConfig (autoparallel.memory.margins) or None, got "
            f"{type(margins).__name__}"
        )
    return float(margins.usable_bytes(gpu)), float(margins.fragmentation)


def stage_memory_bytes(
    model: ModelSpec,
    gpu: GPU,
    cfg: TrainingConfig,
    stage: int,
    layer_indices: tuple[int, ...],
    recompute: Recompute,
    *,
    fragmentation: float = DEFAULT_FRAGMENTATION,
    flash_attention: bool | None = None,
) -> StageMemory:
    """Peak memory of one GPU of pipeline stage `stage` holding decoder layers `layer_indices`.

    states: Σ layer_state_breakdown (+ embedding on the first stage, + LM head on the last, + the
    ZeRO-3 gathered working layers); activations: inflight_microbatches(stage) × Σ layer activations
    / vp (+ embedding dropout mask on the first stage); logits: one micro-batch's logits on the last
    stage; fragmentation: `fragmentation` × the sum.
    """
    if flash_attention is None:
        flash_attention = gpu.fused_attention
    state = ZERO_STATE
    act = 0.0
    for i in layer_indices:
        layer = model.layers[i]
        state = state + layer_state_breakdown(model, layer, cfg)
        act += layer_activation_bytes(model, layer, cfg, recompute, flash_attention=flash_attention)
    inflight = inflight_microbatches(cfg, stage)
    act *= inflight / cfg.vp
    if stage == 0:
        state = state + embedding_state_breakdown(model, cfg)
        act += inflight * embedding_activation_bytes(model, cfg)
    logits = 0.0
    if stage == cfg.pp - 1:
        state = state + lm_head_state_breakdown(model, cfg)
        logits = logits_bytes(model, cfg)
    weights = state.weights_bytes + zero3_working_bytes(model, layer_indices, cfg)
    allocated = weights + state.gradients_bytes + state.optimizer_bytes + act + logits
    frag = fragmentation * allocated
    return StageMemory(
        stage=stage,
        layers=len(layer_indices),
        weights_gib=weights / GIB,
        gradients_gib=state.gradients_bytes / GIB,
        optimizer_gib=state.optimizer_bytes / GIB,
        activations_gib=act / GIB,
        logits_gib=logits / GIB,
        fragmentation_gib=frag / GIB,
        total_gib=(allocated + frag) / GIB,
    )


def stage_layer_indices(model: ModelSpec, cfg: TrainingConfig) -> tuple[tuple[int, ...], ...]:
    """Decoder-layer indices of each pipeline stage (`cfg.stage_layers`; with vp > 1 the layers of a
    stage are its vp chunks, which hold the same count in total)."""
    counts = cfg.stage_layers(model.num_layers)
    out: list[tuple[int, ...]] = []
    start = 0
    for n in counts:
        out.append(tuple(range(start, start + n)))
        start += n
    return tuple(out)


def training_memory(
    model: ModelSpec, gpu: GPU, cfg: TrainingConfig, *, margins: MemoryConfig | None = None
) -> TrainingMemoryReport:
    """Per-GPU memory of every pipeline stage of `cfg`, and whether it fits `gpu` after margins."""
    usable_bytes, frag = _margins(gpu, margins)
    stages = tuple(
        stage_memory_bytes(model, gpu, cfg, s, idx, cfg.recompute_of(s), fragmentation=frag)
        for s, idx in enumerate(stage_layer_indices(model, cfg))
    )
    usable = usable_bytes / GIB
    peak = max(st.total_gib for st in stages)
    problems = tuple(
        f"stage {st.stage} needs {st.total_gib:.2f} GiB per GPU ({st.layers} layers: weights "
        f"{st.weights_gib:.2f}, gradients {st.gradients_gib:.2f}, optimizer {st.optimizer_gib:.2f}, "
        f"activations {st.activations_gib:.2f}, logits {st.logits_gib:.2f} GiB) but {gpu.name} offers "
        f"{usable:.2f} GiB usable: over by {st.total_gib - usable:.2f} GiB"
        for st in stages
        if st.total_gib > usable
    )
    return TrainingMemoryReport(
        stages=stages, peak_gib=peak, usable_gib=usable, fits=not problems, problems=problems
    )
