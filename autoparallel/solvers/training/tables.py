"""Integer tables of the training space: the float cost model per knob value, in MiB and µs.

`build_tables` turns the float cost model (memory/training.py, perf/training.py: the source of truth)
into integer tables per (layer kind, shape, micro-batch, state mode, recompute mode) that the CP-SAT
encoder indexes and training_points.py evaluates. Usage is rounded up, capacity down (STYLE.md §4).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property, partial
from typing import TYPE_CHECKING

from autoparallel.configs import Recompute, TrainingConfig, ZeroStage
from autoparallel.errors import InternalError
from autoparallel.memory.margins import MemoryConfig
from autoparallel.solvers.settings import check_deadline
from autoparallel.solvers.units import us_up

if TYPE_CHECKING:
    from autoparallel.models.spec import LayerSpec
    from autoparallel.solvers.training.space import TrainingSpace

# ----- units ----------------------------------------------------------------------------------------
# Time uses solvers/units.py (µs, `us_up`). Training memory is coarser than serving's KiB: stages hold
# tens of GiB, so the training model counts whole MiB (an 80 GB GPU is ~76k units), which keeps the
# products of layer counts and per-layer costs small (the CP-SAT primer: runtime grows with the scale).
MIB_BYTES = 2**20
"""Training memory unit: 1 MiB."""


def mib_up(num_bytes: float) -> int:
    """Bytes used → MiB, rounded up."""
    return math.ceil(num_bytes / MIB_BYTES - 1e-9)


def mib_down(num_bytes: float) -> int:
    """Bytes available → MiB, rounded down."""
    return math.floor(num_bytes / MIB_BYTES + 1e-9)


# ----- integer tables -------------------------------------------------------------------------------
Table2 = tuple[tuple[int, ...], ...]
"""[row][col] of ints: [i][m] (shape × micro-batch) or [i][z] (shape × state mode)."""
PerKind = tuple[Table2, ...]
"""[k][i][·]: one Table2 per layer kind."""
PerKindMode = tuple[tuple[Table2, ...], ...]
"""[k][c][i][m]: one Table2 per layer kind and recompute mode."""


@dataclass(frozen=True)
class TrainingTables:
    """Integer tables of a space. i shape, m micro-batch, z state mode, c recompute mode, k layer kind.

    A stage holding cnt_k layers of each kind k, with recompute c and f micro-batches in flight, costs
        memory  Σ cnt_k·state[k][i][z] + f·Σ cnt_k·act[k][c][i][m] (+ first / last stage extras)
        time    Σ cnt_k·layer[k][c][i][m] + hop[i][m] (+ first / last stage extras, + ZeRO-2/3's
                per-micro-batch traffic: zero2_us / zero3_us, pp = 1)               per micro-batch
        sync    total = Σ cnt_k·sync_bw[k][i][z] + max over present kinds of sync_lat[k][i][z] (+ extras),
                exposed = max(total − overlap·time, total / layers)                   per step
        optim   Σ cnt_k·optim[k][i][z] (+ extras)                                      per step
    as memory/training.py and perf/training.py compute them (usage rounded up to MiB / µs).
    """

    space: TrainingSpace
    capacity_mib: int
    """Usable memory per GPU / (1 + fragmentation), MiB, rounded down: the bound on allocated memory."""
    usable_bytes: float
    """Usable memory per GPU after margins (MemoryConfig.usable_bytes)."""
    fragmentation: float
    """Allocator fragmentation, a fraction added to allocated bytes."""
    overlap: tuple[int, int]
    """perf/training_schedule.py DP_OVERLAP_FRACTION as numerator, denominator."""
    grad_accum: Table2
    """[i][m] micro-batches per step; 0 where micro × dp does not divide the global batch."""
    state_mib: PerKind
    """[k][i][z] weights + gradients + optimizer states of one layer."""
    act_mib: PerKindMode
    """[k][c][i][m] activations one micro-batch leaves on one layer."""
    first_state_mib: Table2
    """[i][z] embedding states, + ZeRO-3's gathered working layers (all layers are on stage 0 then)."""
    first_act_mib: Table2
    """[i][m] embedding activations of the micro-batches in flight on stage 0."""
    last_state_mib: Table2
    """[i][z] final norm + LM head states (on the last stage, which is stage 0 when pp = 1)."""
    last_act_mib: Table2
    """[i][m] logits and loss buffers of one micro-batch."""
    layer_us: PerKindMode
    """[k][c][i][m] forward + backward (+ recompute) of one micro-batch through one layer."""
    first_us: Table2
    """[i][m] embedding forward + backward of one micro-batch."""
    last_us: Table2
    """[i][m] LM head + cross entropy forward + backward of one micro-batch."""
    hop_us: Table2
    """[i][m] p2p sends of one micro-batch in and out of a stage (0 when pp = 1)."""
    zero3_us: tuple[Table2, ...]
    """[c][i][m] exposed ZeRO-3 gathers of all layers (pp = 1), added on stage 0 under ZeRO-3."""
    zero2_us: tuple[Table2, ...]
    """[c][i][m] exposed ZeRO-2 gradient reduce-scatter of all layers (pp = 1), added on stage 0
    under ZeRO-2 (`layer_time_breakdown`: every micro-batch, not only the last)."""
    sync_bw_us: PerKind
    """[k][i][z] bandwidth part of one layer's data-parallel gradient sync."""
    sync_lat_us: PerKind
    """[k][i][z] latency of the sync collectives a stage holding this kind pays (max over kinds)."""
    sync_first_us: Table2
    """[i][z] sync of the embedding (pp = 1: embedding + LM head)."""
    sync_last_us: Table2
    """[i][z] sync of the LM head (pp = 1: 0)."""
    optim_us: PerKind
    """[k][i][z] optimizer step of one layer's shard."""
    optim_first_us: Table2
    """[i][z] optimizer step of the embedding (pp = 1: embedding + LM head)."""
    optim_last_us: Table2
    """[i][z] optimizer step of the LM head (pp = 1: 0)."""

    @property
    def num_kinds(self) -> int:
        """Distinct layer kinds."""
        return len(self.state_mib)

    @cached_property
    def kind_prefix(self) -> tuple[tuple[int, ...], ...]:
        """[k][n]: decoder layers of kind k among the first n (stage counts by difference)."""
        out = []
        for k in range(self.num_kinds):
            row = [0]
            for kind in self.space.kind_of_layer:
                row.append(row[-1] + (kind == k))
            out.append(tuple(row))
        return tuple(out)

    def inflight(self, i: int, m: int, stage: int) -> int:
        """1F1B micro-batches in flight on `stage`: min(pp − stage, grad_accum); 1 when pp = 1."""
        pp = self.space.shapes[i].pp
        if stage >= pp:
            return 0
        return 1 if pp == 1 else min(pp - stage, self.grad_accum[i][m])


def _frac(x: float) -> tuple[int, int]:
    f = Fraction(x).limit_denominator(1000)
    return f.numerator, f.denominator


def build_tables(space: TrainingSpace, deadline: float | None = None) -> TrainingTables:
    """Integer tables from the float cost model: one float call per (layer kind, knob values).

    Per-stage extras of the data-parallel sync and optimizer step are isolated by differencing the
    float functions between stage positions (first / last vs a middle stage), so that the tables follow
    perf/training.py without restating its formulas. A "middle stage" is asked for as stage -1, which
    is neither 0 nor pp − 1 for any pp.

    MTP modules (on the last stage in Megatron) are folded into `lm_head_state_bytes`, `logits_bytes`
    and `lm_head_time_s` (and the last stage's sync / optimizer parameters), so the last-stage tables
    carry them. CPU offload's CPU Adam step and PCIe copies are in `optimizer_step_s` (linear in the
    shard, so per layer); ZeRO-3 parameter offload's per-micro-batch fetch is not charged, as
    `zero3_us` has no state-mode index.

    TODO(float model): public per-stage building blocks for the sync total before overlap and the p2p
    hop time would replace the stage -1 probes.

    `deadline`: the `time.perf_counter()` by which the planning call must end (checked once a shape
    per table; None: no limit).

    Raises:
        InternalError: the float model's in-flight count is not min(pp − stage, grad_accum).
        SolverTimeoutError: the deadline passed while the tables were computed.
    """
    from autoparallel.memory import training as mem
    from autoparallel.perf import training as perf
    from autoparallel.solvers.training.space import StateMode

    model, cluster, gpu = space.model, space.cluster, space.cluster.gpu
    shapes, micros, modes = space.shapes, space.micro_batches, space.state_modes
    margins = space.options.margins or MemoryConfig.for_training()
    # Layer times without ZeRO-2/3's per-micro-batch traffic (zero2_us / zero3_us add it), whatever
    # modes the options allow.
    per_micro = (ZeroStage.GRADIENTS, ZeroStage.PARAMETERS)
    base = next((z for z in modes if z.zero not in per_micro), StateMode(zero=ZeroStage.NONE))
    ga = tuple(tuple(space.grad_accum(s, mb) for mb in micros) for s in shapes)
    cfg_im = [
        [space.config(s, mb, base) if ga[i][m] else None for m, mb in enumerate(micros)]
        for i, s in enumerate(shapes)
    ]
    cfg_iz = [[space.config(s, micros[0], z) for z in modes] for s in shapes]
    _check_inflight(cfg_im, mem.inflight_microbatches)
    reps = space.kind_layer
    kinds = [model.layers[k] for k in reps]
    counts = [space.kind_of_layer.count(k) for k in range(len(reps))]
    everything = tuple(range(model.num_layers))
    mid = -1  # a stage index that is neither first nor last: the float functions add no extras there

    def im(fn: Callable[[TrainingConfig], float], conv: Callable[[float], int] = us_up) -> Table2:
        return tuple(_timed(tuple(0 if c is None else conv(fn(c)) for c in row), deadline) for row in cfg_im)

    def iz(fn: Callable[[TrainingConfig], float], conv: Callable[[float], int] = us_up) -> Table2:
        return tuple(_timed(tuple(conv(fn(c)) for c in row), deadline) for row in cfg_iz)

    memo: dict[tuple[str, int, int, tuple[int, ...]], float] = {}  # each probe is asked for 2-3 times

    def sync(c: TrainingConfig, stage: int, idx: tuple[int, ...]) -> float:
        key = ("sync", id(c), stage, idx)
        if key not in memo:
            memo[key] = perf.dp_sync_time_s(model, cluster, c, stage, idx, 0.0)  # no overlap: the total
        return memo[key]

    def optim(c: TrainingConfig, stage: int, idx: tuple[int, ...]) -> float:
        key = ("optim", id(c), stage, idx)
        if key not in memo:
            memo[key] = perf.optimizer_step_s(model, gpu, c, stage, idx)
        return memo[key]

    def extra(fn: Callable[[TrainingConfig, int, tuple[int, ...]], float], last: bool) -> Table2:
        def one(c: TrainingConfig) -> float:
            stage = c.pp - 1 if last else 0
            if last and c.pp == 1:
                return 0.0
            return fn(c, stage, reps[:1]) - fn(c, mid, reps[:1])

        return iz(one)

    def hop(c: TrainingConfig) -> float:
        return perf.stage_time_s(model, cluster, c, mid, (), Recompute.NONE)

    def zero_traffic(zero: ZeroStage, r: Recompute, c: TrainingConfig) -> float:
        """All layers' exposed per-micro-batch ZeRO-2/3 traffic (`zero` runs only with pp = 1)."""
        if c.pp > 1 or not any(z.zero is zero for z in modes):
            return 0.0
        cz = c.model_copy(update={"zero": zero})
        return sum(
            n * perf.layer_time_breakdown(model, ly, cluster, cz, r).zero3_comm_s
            for n, ly in zip(counts, kinds, strict=True)
        )

    def state(ly: LayerSpec, c: TrainingConfig) -> float:
        return mem.layer_state_bytes(model, ly, c)

    fused = gpu.fused_attention  # unfused attention below sm80

    def act(ly: LayerSpec, r: Recompute, c: TrainingConfig) -> float:
        return mem.layer_activation_bytes(model, ly, c, r, flash_attention=fused)

    def layer(ly: LayerSpec, r: Recompute, c: TrainingConfig) -> float:
        return perf.layer_time_s(model, ly, cluster, c, r)

    def sync_bw(k: int, c: TrainingConfig) -> float:
        return sync(c, mid, (k, k)) - sync(c, mid, (k,))

    def sync_lat(k: int, c: TrainingConfig) -> float:
        return 2 * sync(c, mid, (k,)) - sync(c, mid, (k, k))

    def optim_layer(k: int, c: TrainingConfig) -> float:
        return optim(c, mid, (k,))

    modes_c = space.recompute_modes
    return TrainingTables(
        space=space,
        capacity_mib=mib_down(margins.usable_bytes(gpu) / (1.0 + margins.fragmentation)),
        usable_bytes=float(margins.usable_bytes(gpu)),
        fragmentation=margins.fragmentation,
        overlap=_frac(perf.DP_OVERLAP_FRACTION),
        grad_accum=ga,
        state_mib=tuple(iz(partial(state, ly), mib_up) for ly in kinds),
        act_mib=tuple(tuple(im(partial(act, ly, r), mib_up) for r in modes_c) for ly in kinds),
        first_state_mib=iz(
            lambda c: (
                mem.embedding_state_bytes(model, c)
                + (mem.zero3_working_bytes(model, everything, c) if c.pp == 1 else 0.0)
            ),
            mib_up,
        ),
        first_act_mib=im(
            lambda c: mem.inflight_microbatches(c, 0) * mem.embedding_activation_bytes(model, c), mib_up
        ),
        last_state_mib=iz(lambda c: mem.lm_head_state_bytes(model, c), mib_up),
        last_act_mib=im(lambda c: mem.logits_bytes(model, c), mib_up),
        layer_us=tuple(tuple(im(partial(layer, ly, r)) for r in modes_c) for ly in kinds),
        first_us=im(lambda c: perf.embedding_time_s(model, cluster, c)),
        last_us=im(lambda c: perf.lm_head_time_s(model, cluster, c)),
        hop_us=im(hop),
        zero3_us=tuple(im(partial(zero_traffic, ZeroStage.PARAMETERS, r)) for r in modes_c),
        zero2_us=tuple(im(partial(zero_traffic, ZeroStage.GRADIENTS, r)) for r in modes_c),
        sync_bw_us=tuple(iz(partial(sync_bw, k)) for k in reps),
        sync_lat_us=tuple(iz(partial(sync_lat, k)) for k in reps),
        sync_first_us=extra(sync, last=False),
        sync_last_us=extra(sync, last=True),
        optim_us=tuple(iz(partial(optim_layer, k)) for k in reps),
        optim_first_us=extra(optim, last=False),
        optim_last_us=extra(optim, last=True),
    )


def _timed(row: tuple[int, ...], deadline: float | None) -> tuple[int, ...]:
    """`row`, once the deadline is checked after computing it."""
    check_deadline(deadline)
    return row


def _check_inflight(
    cfg_im: list[list[TrainingConfig | None]], inflight: Callable[[TrainingConfig, int], int]
) -> None:
    """The encoder linearizes 1F1B as min(pp − stage, grad_accum) micro-batches in flight."""
    for row in cfg_im:
        for cfg in row:
            for s in range(cfg.pp if cfg is not None else 0):
                assert cfg is not None
                want = 1 if cfg.pp == 1 else min(cfg.pp - s, cfg.grad_accum)
                if inflight(cfg, s) != want:
                    raise InternalError(
                        f"memory/training.py inflight_microbatches(pp={cfg.pp}, grad_accum={cfg.grad_accum}, "
                        f"stage={s}) = {inflight(cfg, s)}; the CP-SAT encoder assumes {want}"
                    )
