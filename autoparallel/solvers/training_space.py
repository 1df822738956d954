"""The training search space: each knob's domain, precomputed in Python (STYLE.md §4).

    shape      (tp, pp, cp, ep) with dp = world / (tp·pp·cp): tp inside one node and valid for the
               model (`model.tp_violations`), pp ≤ decoder layers, cp splitting the sequence into
               2·cp equal chunks, ep dividing the routed experts and dp·cp
    micro      sequences per micro-batch; grad-accumulation follows from micro × dp × ga == global batch
    state      ZeRO stage / distributed optimizer × optimizer offload × parameter offload
    recompute  none / selective / full, chosen per pipeline stage

Values a rule removes are kept in `TrainingSpace.excluded` with the rule's sentence, so that an
empty domain can be explained.

`build_tables` then turns the float cost model (memory/training.py, perf/training.py: the source of
truth) into integer tables per knob value, in MiB and µs, that the CP-SAT encoder indexes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from functools import partial
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from autoparallel.configs import Recompute, TrainingConfig, ZeroStage
from autoparallel.errors import InfeasibleError, InputError, InternalError
from autoparallel.memory.margins import MemoryConfig
from autoparallel.solvers.units import us_up

if TYPE_CHECKING:
    from autoparallel.hardware import Cluster
    from autoparallel.models.spec import LayerSpec, ModelSpec
    from autoparallel.workload import Training

# ----- training_units ------------------------------------------------------------------------------
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


# ----- settings and options -------------------------------------------------------------------------
class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class TrainingOptions(_Frozen):
    """What the training planner may choose (None: the default domain of that knob)."""

    tp_values: tuple[int, ...] | None = None
    """Allowed tensor-parallel degrees (default: divisors of the GPUs per node)."""
    pp_values: tuple[int, ...] | None = None
    """Allowed pipeline degrees (default: divisors of the world size up to min(layers, max_pp))."""
    max_pp: int = Field(default=16, ge=1)
    """Largest default pipeline degree."""
    cp_values: tuple[int, ...] | None = None
    """Allowed context-parallel degrees (default: powers of two keeping ≥ min_tokens_per_cp_rank)."""
    min_tokens_per_cp_rank: int = Field(default=2048, ge=1)
    """Default cp domain: each rank keeps at least this many tokens of a sequence."""
    ep_values: tuple[int, ...] | None = None
    """Allowed expert-parallel degrees (default: divisors of the routed experts; 1 for dense models)."""
    micro_batch_values: tuple[int, ...] = (1, 2, 4, 8)
    """Allowed micro-batch sizes (sequences)."""
    zero_stages: tuple[ZeroStage, ...] = tuple(ZeroStage)
    """Allowed model-state sharding modes."""
    recompute_modes: tuple[Recompute, ...] = tuple(Recompute)
    """Allowed activation-recomputation modes."""
    offload: bool = False
    """May offload optimizer states (ZeRO 1-3) and parameters (ZeRO-3) to CPU memory. Off by default:
    perf/training.py does not yet charge the PCIe traffic or the CPU Adam step, so offload looks free."""
    world_sizes: tuple[int, ...] | None = None
    """GPU counts the job may use (default: the whole cluster)."""
    non_uniform_stages: bool = True
    """Layers per stage chosen freely; False: Megatron's even split (remainder on the first stages)."""
    per_stage_recompute: bool = True
    """Recomputation chosen per stage; False: one mode for all stages."""
    sequence_parallel: bool = True
    """Megatron sequence parallelism with tp > 1."""
    margins: MemoryConfig | None = None
    """Memory margins (None: `MemoryConfig()` defaults)."""
    runner_up: bool = True
    """Solve again without the chosen shape, to report the runner-up and why it lost."""
    hints: bool = True
    """Seed CP-SAT with the best uniform-stage plan computed from the tables."""


# ----- domains --------------------------------------------------------------------------------------
class Shape(_Frozen):
    """One point of the degree one-hot."""

    tp: int
    """Tensor-parallel degree."""
    pp: int
    """Pipeline-parallel degree."""
    cp: int
    """Context-parallel degree."""
    ep: int
    """Expert-parallel degree."""
    dp: int
    """Data-parallel degree: world / (tp·pp·cp)."""

    @property
    def world(self) -> int:
        """GPUs used."""
        return self.tp * self.pp * self.cp * self.dp

    def label(self) -> str:
        """`tp=8,pp=2,cp=1,ep=1,dp=4`."""
        return f"tp={self.tp},pp={self.pp},cp={self.cp},ep={self.ep},dp={self.dp}"


class StateMode(_Frozen):
    """Model-state sharding and offload."""

    zero: ZeroStage
    """ZeRO stage or Megatron distributed optimizer."""
    offload_optimizer: bool = False
    """Optimizer states in CPU memory."""
    offload_params: bool = False
    """Parameters in CPU memory (ZeRO-3)."""

    def label(self) -> str:
        """`zero=dist`, `zero=3+offload(opt,params)`."""
        off = [n for n, on in (("opt", self.offload_optimizer), ("params", self.offload_params)) if on]
        return f"zero={self.zero.value}" + (f"+offload({','.join(off)})" if off else "")


@dataclass(frozen=True)
class TrainingSpace:
    """Every knob's domain, plus what the rules removed and why."""

    model: ModelSpec
    cluster: Cluster
    workload: Training
    options: TrainingOptions
    shapes: tuple[Shape, ...]
    micro_batches: tuple[int, ...]
    state_modes: tuple[StateMode, ...]
    recompute_modes: tuple[Recompute, ...]
    kind_of_layer: tuple[int, ...]
    """Index of each decoder layer's kind (layers of one kind have identical specs and costs)."""
    kind_layer: tuple[int, ...]
    """A representative layer index of each kind."""
    excluded: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Rule name → sentences about the degrees it removed."""

    @property
    def num_layers(self) -> int:
        """Decoder layers."""
        return self.model.num_layers

    @property
    def max_pp(self) -> int:
        """Stage slots the encoder allocates."""
        return max(s.pp for s in self.shapes)

    def grad_accum(self, shape: Shape, micro: int) -> int:
        """Micro-batches per step per data-parallel rank, or 0 when micro × dp does not divide the batch."""
        q, r = divmod(self.workload.global_batch, micro * shape.dp)
        return q if r == 0 else 0

    def config(
        self,
        shape: Shape,
        micro: int,
        state: StateMode,
        recompute: Recompute = Recompute.SELECTIVE,
        *,
        layers_per_stage: tuple[int, ...] | None = None,
        stage_recompute: tuple[Recompute, ...] | None = None,
    ) -> TrainingConfig:
        """The TrainingConfig of one point (grad-accum from the global batch)."""
        return TrainingConfig(
            tp=shape.tp,
            pp=shape.pp,
            dp=shape.dp,
            cp=shape.cp,
            ep=shape.ep,
            micro_batch=micro,
            global_batch=self.workload.global_batch,
            seq_len=self.workload.seq_len,
            zero=state.zero,
            recompute=recompute,
            stage_recompute=stage_recompute,
            sequence_parallel=self.options.sequence_parallel,
            offload_optimizer=state.offload_optimizer,
            offload_params=state.offload_params,
            layers_per_stage=layers_per_stage,
            precision=self.workload.precision,
        )


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _tp_domain(
    model: ModelSpec, cluster: Cluster, opts: TrainingOptions, out: dict[str, list[str]]
) -> list[int]:
    cand = opts.tp_values or tuple(_divisors(cluster.gpus_per_node))
    keep = []
    for tp in sorted(set(cand)):
        if tp > cluster.gpus_per_node or cluster.gpus_per_node % tp:
            out.setdefault("tp_within_node", []).append(
                f"tp={tp} does not fit inside one node of {cluster.gpus_per_node} GPUs "
                "(TP all-reduces every layer; it must stay on NVLink)"
            )
            continue
        bad = model.tp_violations(tp)
        if bad:
            out.setdefault("tp_model_rules", []).extend(bad)
            continue
        keep.append(tp)
    return keep


def _pp_domain(
    model: ModelSpec, worlds: list[int], opts: TrainingOptions, out: dict[str, list[str]]
) -> list[int]:
    cand = opts.pp_values or tuple(d for w in worlds for d in _divisors(w) if d <= opts.max_pp)
    keep = []
    for pp in sorted(set(cand)):
        bad = model.pp_violations(pp)
        if bad:
            out.setdefault("pp_le_layers", []).extend(bad)
            continue
        keep.append(pp)
    return keep


def _cp_domain(seq_len: int, opts: TrainingOptions, out: dict[str, list[str]]) -> list[int]:
    if opts.cp_values is not None:
        cand = opts.cp_values
    else:
        cand = tuple(1 << k for k in range(8) if seq_len >> k >= opts.min_tokens_per_cp_rank or k == 0)
    keep = []
    for cp in sorted(set(cand)):
        # Megatron's load-balanced ring attention cuts each sequence into 2·cp chunks
        # (megatron/core/utils.py get_batch_on_this_cp_rank).
        if cp > 1 and seq_len % (2 * cp):
            out.setdefault("cp_divides_sequence", []).append(
                f"cp={cp}: sequence length {seq_len} is not divisible by 2·cp={2 * cp}"
            )
            continue
        keep.append(cp)
    return keep


def _ep_domain(model: ModelSpec, opts: TrainingOptions, out: dict[str, list[str]]) -> list[int]:
    cand = opts.ep_values or (tuple(_divisors(model.num_experts)) if model.is_moe else (1,))
    keep = []
    for ep in sorted(set(cand)):
        bad = model.ep_violations(ep)
        if bad:
            out.setdefault("ep_model_rules", []).extend(bad)
            continue
        keep.append(ep)
    return keep


def _state_modes(opts: TrainingOptions) -> list[StateMode]:
    modes = []
    for zero in opts.zero_stages:
        modes.append(StateMode(zero=zero))
        if not opts.offload or zero in (ZeroStage.NONE, ZeroStage.DISTRIBUTED_OPTIMIZER):
            continue
        # ZeRO-Offload: optimizer offload with ZeRO 1-3; parameter offload with ZeRO-3 only
        # (DeepSpeed docs, "offload_optimizer" / "offload_param").
        modes.append(StateMode(zero=zero, offload_optimizer=True))
        if zero is ZeroStage.PARAMETERS:
            modes.append(StateMode(zero=zero, offload_params=True))
            modes.append(StateMode(zero=zero, offload_optimizer=True, offload_params=True))
    return modes


def _layer_kinds(model: ModelSpec) -> tuple[tuple[int, ...], tuple[int, ...]]:
    index: dict[LayerSpec, int] = {}
    kind_of = []
    for layer in model.layers:
        kind_of.append(index.setdefault(layer, len(index)))
    reps = [kind_of.index(k) for k in range(len(index))]
    return tuple(kind_of), tuple(reps)


def build_space(
    model: ModelSpec, cluster: Cluster, workload: Training, options: TrainingOptions
) -> TrainingSpace:
    """Domains of every knob for `model` on `cluster`.

    Raises:
        InputError: an option outside what the job allows (e.g. a world size above the cluster).
        InfeasibleError: the rules leave no shape at all; the reasons name each rule with what it removed.
    """
    world = cluster.world_size
    worlds = sorted(set(options.world_sizes or (world,)))
    if worlds[0] < 1 or worlds[-1] > world:
        raise InputError(f"world_sizes {worlds} must lie in 1..{world} (the cluster's GPUs)")
    out: dict[str, list[str]] = {}
    tps = _tp_domain(model, cluster, options, out)
    pps = _pp_domain(model, worlds, options, out)
    cps = _cp_domain(workload.seq_len, options, out)
    eps = _ep_domain(model, options, out)
    shapes = []
    for w in worlds:
        for tp in tps:
            for pp in pps:
                for cp in cps:
                    if w % (tp * pp * cp):
                        continue
                    dp = w // (tp * pp * cp)
                    for ep in eps:
                        if (dp * cp) % ep:
                            # Megatron-Core carves the expert-parallel group out of dp × cp.
                            out.setdefault("ep_divides_dp_cp", []).append(
                                f"ep={ep} does not divide dp·cp={dp * cp} (tp={tp}, pp={pp}, cp={cp})"
                            )
                            continue
                        shapes.append(Shape(tp=tp, pp=pp, cp=cp, ep=ep, dp=dp))
    excluded = {k: tuple(dict.fromkeys(v)) for k, v in out.items()}
    if not shapes:
        reasons = tuple(f"{rule}: {'; '.join(msgs[:4])}" for rule, msgs in excluded.items())
        raise InfeasibleError(
            f"no (tp, pp, cp, ep) degrees fit {model.name} on {world} GPUs "
            f"({cluster.gpus_per_node} per node)",
            reasons or ("no degree values were allowed",),
        )
    micro = tuple(sorted(set(options.micro_batch_values)))
    if not micro or micro[0] < 1:
        raise InputError(f"micro_batch_values must be positive integers, got {options.micro_batch_values}")
    if not options.zero_stages or not options.recompute_modes:
        raise InputError("zero_stages and recompute_modes must each allow at least one value")
    kind_of, reps = _layer_kinds(model)
    return TrainingSpace(
        model=model,
        cluster=cluster,
        workload=workload,
        options=options,
        shapes=tuple(shapes),
        micro_batches=micro,
        state_modes=tuple(_state_modes(options)),
        recompute_modes=tuple(dict.fromkeys(options.recompute_modes)),
        kind_of_layer=kind_of,
        kind_layer=reps,
        excluded=excluded,
    )


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
        time    Σ cnt_k·layer[k][c][i][m] + hop[i][m] (+ first / last stage extras)   per micro-batch
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
    """perf/training.py DP_OVERLAP_FRACTION as numerator, denominator."""
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

    def inflight(self, i: int, m: int, stage: int) -> int:
        """1F1B micro-batches in flight on `stage`: min(pp − stage, grad_accum); 1 when pp = 1."""
        pp = self.space.shapes[i].pp
        if stage >= pp:
            return 0
        return 1 if pp == 1 else min(pp - stage, self.grad_accum[i][m])


def _frac(x: float) -> tuple[int, int]:
    f = Fraction(x).limit_denominator(1000)
    return f.numerator, f.denominator


def build_tables(space: TrainingSpace) -> TrainingTables:
    """Integer tables from the float cost model: one float call per (layer kind, knob values).

    Per-stage extras of the data-parallel sync and optimizer step are isolated by differencing the
    float functions between stage positions (first / last vs a middle stage), so that the tables follow
    perf/training.py without restating its formulas. A "middle stage" is asked for as stage -1, which
    is neither 0 nor pp − 1 for any pp.

    TODO(float model, memory/training.py + perf/training.py): (1) DeepSeek-V3's MTP modules
    (`model.mtp_params`, on the last stage in Megatron) are neither in `lm_head_state_bytes` nor in
    `lm_head_time_s`; fold them in there and these tables follow (the decoder's float check would
    catch a separate term). (2) Public per-stage building blocks for the sync total before overlap and
    the p2p hop time would replace the stage -1 probes. (3) CPU offload costs no time yet (no PCIe
    traffic, no CPU Adam step), so `TrainingOptions.offload` defaults to False.

    Raises:
        InternalError: the float model's in-flight count is not min(pp − stage, grad_accum).
    """
    from autoparallel.memory import training as mem
    from autoparallel.perf import training as perf

    model, cluster, gpu = space.model, space.cluster, space.cluster.gpu
    shapes, micros, modes = space.shapes, space.micro_batches, space.state_modes
    margins = space.options.margins or MemoryConfig()
    # Layer times without ZeRO-3's gathers (zero3_us adds them), whatever modes the options allow.
    base = next((z for z in modes if z.zero is not ZeroStage.PARAMETERS), StateMode(zero=ZeroStage.NONE))
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
        return tuple(tuple(0 if c is None else conv(fn(c)) for c in row) for row in cfg_im)

    def iz(fn: Callable[[TrainingConfig], float], conv: Callable[[float], int] = us_up) -> Table2:
        return tuple(tuple(conv(fn(c)) for c in row) for row in cfg_iz)

    def sync(c: TrainingConfig, stage: int, idx: tuple[int, ...]) -> float:
        return perf.dp_sync_time_s(model, cluster, c, stage, idx, 0.0)  # no overlap: the total

    def optim(c: TrainingConfig, stage: int, idx: tuple[int, ...]) -> float:
        return perf.optimizer_step_s(model, gpu, c, stage, idx)

    def extra(fn: Callable[[TrainingConfig, int, tuple[int, ...]], float], last: bool) -> Table2:
        def one(c: TrainingConfig) -> float:
            stage = c.pp - 1 if last else 0
            if last and c.pp == 1:
                return 0.0
            return fn(c, stage, reps[:1]) - fn(c, mid, reps[:1])

        return iz(one)

    def hop(c: TrainingConfig) -> float:
        return perf.stage_time_s(model, cluster, c, mid, (), Recompute.NONE)

    def zero3(c: TrainingConfig, r: Recompute) -> float:
        if c.pp > 1 or not any(z.zero is ZeroStage.PARAMETERS for z in modes):
            return 0.0
        c3 = c.model_copy(update={"zero": ZeroStage.PARAMETERS})
        return sum(
            n * perf.layer_time_breakdown(model, ly, cluster, c3, r).zero3_comm_s
            for n, ly in zip(counts, kinds, strict=True)
        )

    def state(ly: LayerSpec, c: TrainingConfig) -> float:
        return mem.layer_state_bytes(model, ly, c)

    def act(ly: LayerSpec, r: Recompute, c: TrainingConfig) -> float:
        return mem.layer_activation_bytes(model, ly, c, r)

    def layer(ly: LayerSpec, r: Recompute, c: TrainingConfig) -> float:
        return perf.layer_time_s(model, ly, cluster, c, r)

    def sync_bw(k: int, c: TrainingConfig) -> float:
        return sync(c, mid, (k, k)) - sync(c, mid, (k,))

    def sync_lat(k: int, c: TrainingConfig) -> float:
        return 2 * sync(c, mid, (k,)) - sync(c, mid, (k, k))

    def optim_layer(k: int, c: TrainingConfig) -> float:
        return optim(c, mid, (k,))

    def zero3_mode(r: Recompute, c: TrainingConfig) -> float:
        return zero3(c, r)

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
        zero3_us=tuple(im(partial(zero3_mode, r)) for r in modes_c),
        sync_bw_us=tuple(iz(partial(sync_bw, k)) for k in reps),
        sync_lat_us=tuple(iz(partial(sync_lat, k)) for k in reps),
        sync_first_us=extra(sync, last=False),
        sync_last_us=extra(sync, last=True),
        optim_us=tuple(iz(partial(optim_layer, k)) for k in reps),
        optim_first_us=extra(optim, last=False),
        optim_last_us=extra(optim, last=True),
    )


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
