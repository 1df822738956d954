"""The training search space: each knob's domain, precomputed in Python (STYLE.md §4).

    shape      (tp, pp, cp, ep, etp) with dp = world / (tp·pp·cp): tp inside one node and valid for
               the model (`model.tp_violations`; under DeepSpeed also dividing the KV heads,
               `validation.kv_heads_split_problem`), pp ≤ decoder layers, cp splitting the sequence into
               2·cp equal chunks, ep dividing the routed experts; for MoE models every pair of ep and
               expert tensor-parallel degree etp ∈ {tp, 1} whose expert grid tiles the stage
               (`validation.expert_grid_problem`, the rule `evaluate` applies: etp·ep dividing tp·dp·cp,
               Megatron-Core's expert mesh etp × ep × edp × pp covering the world, so ep need not
               divide dp·cp when etp = 1); dense models keep
               etp = tp; sequence parallelism where seq_len / cp divides by tp, else none for a dense
               model and no such shape for an MoE one (`_sequence_parallel`); in FP8, only shapes
               whose GEMM dimensions Transformer Engine runs (`validation.fp8_gemm_problem`) and, per
               micro-batch size, token rows it runs (`validation.fp8_token_problem`: `grad_accum` is 0
               for the others); world sizes the launch lines start (`_launchable_worlds`)
    micro      sequences per micro-batch, 1-8; grad-accumulation follows from micro × dp × ga == global batch
    state      ZeRO stage / distributed optimizer × optimizer offload × parameter offload
    recompute  none / selective / full, chosen per pipeline stage

Values a rule removes are kept in `TrainingSpace.excluded` with the rule's sentence, so that an
empty domain can be explained.

solvers/training/tables.py then turns the float cost model (memory/training.py, perf/training.py: the
source of truth) into integer tables per knob value, in MiB and µs, that the CP-SAT encoder indexes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from autoparallel.bounds import UserInput, check_choices
from autoparallel.configs import Recompute, TrainingConfig, ZeroStage
from autoparallel.errors import InfeasibleError, InputError
from autoparallel.hardware.gpu import host_size, launchable_world
from autoparallel.memory.margins import MemoryConfig
from autoparallel.solvers.problem import Problem
from autoparallel.solvers.settings import check_deadline
from autoparallel.validation import (
    TrainingFramework,
    cp_attention_problem,
    cp_comm_problem,
    cp_sequence_problem,
    expert_grid_problem,
    fp8_gemm_problem,
    fp8_token_problem,
    framework_zero_stages,
    job_precision,
    kv_heads_split_problem,
    moe_sequence_parallel_problem,
    sp_sequence_problem,
    zero_stage_problem,
)

if TYPE_CHECKING:
    from autoparallel.hardware import GPU, Cluster
    from autoparallel.models.spec import LayerSpec, ModelSpec
    from autoparallel.workload import Training


# ----- settings and options -------------------------------------------------------------------------
class _Frozen(UserInput):
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
    micro_batch_values: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
    """Allowed micro-batch sizes (sequences): every size from 1 to 8. The powers of two alone missed
    Llama-3.1-70B's micro-batch 3 at global batch 24 on 8x8xH100 (planned 1.65 s a step, 1.32 s at
    micro-batch 3); the sizes the global batch does not split into are dropped per shape
    (`TrainingSpace.grad_accum`), and planning took as long (0.2-1.1 s in-process on Llama-3.1-8B /
    70B / 405B, Qwen3-30B-A3B and DeepSeek-V3 on 32x8xH100)."""
    zero_stages: tuple[ZeroStage, ...] = tuple(ZeroStage)
    """Allowed model-state sharding modes."""
    recompute_modes: tuple[Recompute, ...] = tuple(Recompute)
    """Allowed activation-recomputation modes."""
    offload: bool = False
    """May offload optimizer states (ZeRO 1-3) and, under DeepSpeed, parameters (ZeRO-3; Megatron-Core
    has no parameter offload) to CPU memory. Off by default (Megatron's usual runs keep states on the
    GPU); perf/training.py charges the CPU Adam step and the PCIe copies, but not ZeRO-3 parameter
    offload's per-micro-batch fetch."""
    world_sizes: tuple[int, ...] | None = None
    """GPU counts the job may use (default: the whole cluster). Only counts the launch lines start
    (`world_size_problem`: over several nodes, whole hosts) are planned; the others are dropped,
    and a list of such counts alone is an InputError (`build_space`)."""
    non_uniform_stages: bool = True
    """Layers per stage chosen freely; False: Megatron's even split (remainder on the first stages)."""
    per_stage_recompute: bool = False
    """Recomputation chosen per stage; False (the default): one mode for all stages. Neither
    Megatron-LM (`--recompute-num-layers` counts the same layers on every stage) nor DeepSpeed (one
    `activation_checkpoint_interval`) runs a mode per stage: the emitted arguments of such a plan
    recompute more than it prices (`megatron_notes`). True suits a script of one's own (or a fork
    with per-stage counts, such as MindSpeed's --enable-recompute-layers-per-pp-rank); on the cases
    checked it gained at most 0.3% of step time."""
    sequence_parallel: bool = True
    """Megatron sequence parallelism with tp > 1."""
    margins: MemoryConfig | None = None
    """Memory margins (None: `MemoryConfig.for_training()`, calibrated on published runs)."""
    runner_up: bool = True
    """Solve again without the chosen shape, to report the runner-up and why it lost."""
    hints: bool = True
    """Seed CP-SAT with the best uniform-stage plan computed from the tables."""
    grad_reduce_in_bf16: bool = False
    """Megatron only: also plan ZeRO 0 / 1 and Megatron-FSDP (ZeRO 2 / 3) with gradients accumulated
    and reduced in bf16 (`--grad-reduce-in-bf16`, which their artifacts carry), 2 bytes per parameter
    lighter than Megatron's default fp32 gradients, at the numerics that default guards
    (`validation.framework_zero_stages`); False: Megatron plans keep its distributed optimizer
    (zero=dist) under bf16 and fp8."""
    framework: TrainingFramework = "megatron"
    """The framework the plan is for, which narrows the space to what it runs: DeepSpeed, no ZeRO-3
    with MoE layers (`validation.framework_zero_stages`), no tp above the KV heads
    (`validation.kv_heads_split_problem`), even stages and one recompute mode (the
    validator below); Megatron, no parameter offload (`_state_modes`). Both frameworks' artifacts
    are emitted either way."""

    @property
    def cp_comms(self) -> tuple[Literal["p2p", "a2a"], ...]:
        """How the plans' context-parallel ranks may exchange (`TrainingConfig.cp_comm`), in order of
        preference: DeepSpeed's Ulysses all-to-all only; Megatron-Core's default ring (p2p), else its
        all-to-all where the ring does not run (sliding-window layers)."""
        return ("a2a",) if self.framework == "deepspeed" else ("p2p", "a2a")

    @model_validator(mode="before")
    @classmethod
    def _deepspeed_stages(cls, data: Any) -> Any:
        """DeepSpeed's PipelineModule splits the layers uniformly and its engine checkpoints every
        stage alike: a DeepSpeed plan keeps even stages and one recompute mode."""
        if not isinstance(data, Mapping) or data.get("framework") != "deepspeed":
            return data
        if data.get("grad_reduce_in_bf16"):
            raise ValueError(
                "grad_reduce_in_bf16=True is Megatron's flag; DeepSpeed reduces bf16 gradients already"
            )
        for key in ("non_uniform_stages", "per_stage_recompute"):
            if data.get(key):
                raise ValueError(f"{key}=True: DeepSpeed runs even stages with one recompute mode")
        return {**data, "non_uniform_stages": False, "per_stage_recompute": False}

    @field_validator("tp_values", "pp_values", "cp_values", "ep_values")
    @classmethod
    def _degrees(cls, value: tuple[int, ...] | None, info: ValidationInfo) -> tuple[int, ...] | None:
        """A degree list allows at least one degree, each in its `BOUNDS` (a tp or cp of 0 divided by
        zero in the degree domain)."""
        name = info.field_name or ""
        return check_choices(name, value, name.removesuffix("_values"), noun="degree")

    @field_validator("world_sizes", "micro_batch_values", "zero_stages", "recompute_modes")
    @classmethod
    def _some_value(cls, value: tuple[Any, ...] | None, info: ValidationInfo) -> tuple[Any, ...] | None:
        """A knob allows at least one value, as `ServingOptions` has it (`world_sizes=()` was read as
        no restriction; an empty micro-batch list was infeasible for no named reason)."""
        name = info.field_name or ""
        return check_choices(name, value, "micro_batch" if name == "micro_batch_values" else None)


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
    etp: int | None = None
    """Expert tensor-parallel degree of the MoE layers (Megatron's --expert-tensor-parallel-size);
    None: the same as tp."""
    cp_comm: Literal["p2p", "a2a"] = "p2p"
    """How its context-parallel ranks exchange (`TrainingConfig.cp_comm`; p2p when cp = 1)."""
    sequence_parallel: bool = True
    """Sequence parallelism where `TrainingOptions.sequence_parallel` asks for it; False where each
    context-parallel rank's seq_len / cp tokens do not divide by tp (`validation.sp_sequence_problem`),
    which a dense model then runs without it (`build_space`)."""

    @property
    def world(self) -> int:
        """GPUs used."""
        return self.tp * self.pp * self.cp * self.dp

    @property
    def expert_tp(self) -> int:
        """The expert tensor-parallel degree (tp when `etp` is None)."""
        return self.tp if self.etp is None else self.etp

    def label(self) -> str:
        """`tp=8,pp=2,cp=1,ep=1,dp=4`; `tp=8,pp=2,cp=1,ep=8,etp=1,dp=4` when etp differs from tp;
        `,nosp` ending a shape planned without sequence parallelism at tp > 1."""
        etp = f",etp={self.etp}" if self.etp is not None and self.etp != self.tp else ""
        nosp = ",nosp" if not self.sequence_parallel and self.tp > 1 else ""
        return f"tp={self.tp},pp={self.pp},cp={self.cp},ep={self.ep}{etp},dp={self.dp}{nosp}"


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


ZERO_WITHOUT_PIPELINE = (ZeroStage.GRADIENTS, ZeroStage.PARAMETERS)
"""ZeRO stages that rule out pipeline parallelism: DeepSpeed's PipelineEngine asserts zero stage < 2
("ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism", deepspeed/runtime/pipe/engine.py)."""


def speed_rank(mode: Recompute) -> int:
    """Recompute modes from fastest to leanest: none 0, selective 1, full 2."""
    return {Recompute.NONE: 0, Recompute.SELECTIVE: 1, Recompute.FULL: 2}[mode]


@dataclass
class TrainingSpace(Problem["Training", TrainingOptions]):
    """Every knob's domain, plus what the rules removed and why."""

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
        """Micro-batches per step per data-parallel rank, or 0 when micro × dp does not divide the batch
        or, in FP8, Transformer Engine refuses the micro-batch's token rows (`_fp8_rows_ok`)."""
        q, r = divmod(self.workload.global_batch, micro * shape.dp)
        precision = job_precision(self.workload.precision, self.cluster.gpu)
        if r or not _fp8_rows_ok(self.workload, shape, self.options, micro, precision):
            return 0
        return q

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
            cp_comm=shape.cp_comm,
            ep=shape.ep,
            etp=None if shape.etp == shape.tp else shape.etp,
            micro_batch=micro,
            global_batch=self.workload.global_batch,
            seq_len=self.workload.seq_len,
            zero=state.zero,
            recompute=recompute,
            stage_recompute=stage_recompute,
            sequence_parallel=self.options.sequence_parallel and shape.sequence_parallel,
            offload_optimizer=state.offload_optimizer,
            offload_params=state.offload_params,
            layers_per_stage=layers_per_stage,
            precision=job_precision(self.workload.precision, self.cluster.gpu),
        )


def _fp8_rows_ok(
    workload: Training, shape: Shape, options: TrainingOptions, micro: int, precision: str
) -> bool:
    """Whether Transformer Engine runs `micro` sequences per micro-batch of `shape` in `precision`
    (always but in FP8, where its GEMM inputs' token rows must divide by 8:
    `validation.fp8_token_problem`, the rule `training_problems` applies)."""
    if precision != "fp8":
        return True
    sp = options.sequence_parallel and shape.sequence_parallel
    return fp8_token_problem(workload.seq_len, micro, shape.tp, shape.cp, sp) is None


def world_size_problem(world: int, cluster: Cluster) -> str | None:
    """Why a training job of `world` GPUs cannot start on `cluster` (None: it can): ranks over several
    nodes must fill whole hosts (`hardware.gpu.host_size`: a node, or a GB200 rack's hosts of 4),
    since the launch lines start one process count on every host (torchrun's `--nproc-per-node`,
    DeepSpeed's hostfile `slots`) while the cost model places the ranks node-major, 8 + 1 on nodes of
    8 (`hardware.gpu.launchable_world`, the rule `frameworks._common.node_shape` applies to a plan's
    launch lines and `api.evaluate` to a configuration)."""
    node = cluster.gpus_per_node
    host = host_size(cluster.gpu.name, node)
    if world > cluster.world_size:
        return f"{world} GPUs: cluster {cluster.spec} has {cluster.world_size}"
    if launchable_world(world, cluster.gpu.name, node):
        return None
    where = "nodes" if host == node else f"hosts ({cluster.gpu.name}: {host} GPUs per host)"
    return (
        f"{world} GPUs over several nodes do not fill whole {where} of {host}: the cost model places the "
        "ranks node-major and the launch lines start one process count on every host; use a multiple "
        f"of {host} GPUs or at most {node}"
    )


def _launchable_worlds(
    worlds: list[int], cluster: Cluster, opts: TrainingOptions, out: dict[str, list[str]]
) -> list[int]:
    """The GPU counts of `worlds` that the launch lines start (`world_size_problem`: ranks over several
    nodes fill whole hosts, 8 + 1 GPUs on nodes of 8 do not), the rule `evaluate` applies to a
    configuration's world size. The others are dropped with the reason under
    `node_shape`, as the serving planner drops the values of its options it cannot place; when none
    is left, an InputError naming the rule and the counts.

    Raises:
        InputError: no count of `worlds` fills whole hosts (a `world_sizes` option of such counts alone).
    """
    bad = {w: problem for w in worlds if (problem := world_size_problem(w, cluster)) is not None}
    if not bad:
        return worlds
    keep = [w for w in worlds if w not in bad]
    if not keep:
        given = opts.world_sizes is not None
        named = f"world_sizes {sorted(bad)}" if given else f"the cluster's {worlds[0]} GPUs"
        problem = next(iter(bad.values()))
        if len(bad) == 1:
            raise InputError(f"{named}: node shape rule: {problem}")
        raise InputError(f"{named}: node shape rule, none is a GPU count the launch lines start ({problem})")
    out.setdefault("node_shape", []).extend(f"world size {w} dropped: {p}" for w, p in bad.items())
    return keep


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
        if (problem := kv_heads_split_problem(model, tp, opts.framework)) is not None:
            out.setdefault("ds_tp_divides_kv_heads", []).append(problem)
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


def _cp_candidates(seq_len: int, opts: TrainingOptions) -> tuple[int, ...]:
    """The context-parallel degrees the rules then filter: `opts.cp_values`, else the powers of two
    keeping at least `min_tokens_per_cp_rank` tokens of a sequence on each rank (and 1)."""
    if opts.cp_values is not None:
        return tuple(sorted(set(opts.cp_values)))
    return tuple(1 << k for k in range(8) if seq_len >> k >= opts.min_tokens_per_cp_rank or k == 0)


def cp_chunks(cp: int, framework: TrainingFramework) -> int:
    """The equal chunks a sequence is cut into at context-parallel degree `cp` (`validation.
    cp_sequence_problem`): 2·cp for Megatron's load balance, cp for DeepSpeed-Ulysses."""
    return 2 * cp if framework == "megatron" else cp


def cp_dropped_by_sequence(seq_len: int, gpu: GPU, opts: TrainingOptions) -> tuple[int, ...]:
    """The candidate cp degrees that the rule `cp_divides_sequence` alone removes for `seq_len` (the
    others of `_cp_domain`'s rules would keep them out at any length)."""
    return tuple(
        cp
        for cp in _cp_candidates(seq_len, opts)
        if cp_sequence_problem(seq_len, cp, opts.framework) is not None
        and cp_attention_problem(cp, gpu) is None
    )


def _cp_domain(seq_len: int, gpu: GPU, opts: TrainingOptions, out: dict[str, list[str]]) -> list[int]:
    keep = []
    for cp in _cp_candidates(seq_len, opts):
        if (problem := cp_sequence_problem(seq_len, cp, opts.framework)) is not None:
            out.setdefault("cp_divides_sequence", []).append(problem)
            continue
        if (problem := cp_attention_problem(cp, gpu)) is not None:
            out.setdefault("cp_needs_fused_attention", []).append(problem)
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


def _cp_comm(
    model: ModelSpec, tp: int, pp: int, cp: int, opts: TrainingOptions
) -> tuple[Literal["p2p", "a2a"], str | None]:
    """The first exchange of `opts.cp_comms` that runs (tp, pp, cp) for `model`, and None; or the
    first one with why it does not (`validation.cp_comm_problem`)."""
    problems = [(c, cp_comm_problem(model, tp, pp, cp, c, opts.framework)) for c in opts.cp_comms]
    return next(((c, None) for c, p in problems if p is None), problems[0])


def _sequence_parallel(
    model: ModelSpec, seq_len: int, tp: int, cp: int, opts: TrainingOptions
) -> tuple[bool, str | None]:
    """Whether (tp, cp) runs with sequence parallelism, and None; or why it cannot run at all. Where
    `opts.sequence_parallel` asks for it and seq_len / cp does not divide by tp
    (`validation.sp_sequence_problem`), a dense model runs without it (Megatron's default, priced with
    the unsplit norm and dropout activations); an MoE model cannot, as Megatron requires sequence
    parallelism with tensor parallelism there (`validation.moe_sequence_parallel_problem`)."""
    problem = sp_sequence_problem(seq_len, tp, cp, opts.sequence_parallel)
    if problem is None:
        return True, None
    if moe_sequence_parallel_problem(model, tp, sequence_parallel=False) is not None:
        return False, f"{problem}; an MoE model needs sequence parallelism at tp > 1"
    return False, None


def _etp_domain(model: ModelSpec, tp: int) -> list[int]:
    """Expert tensor-parallel degrees other than tp: 1 for MoE models with tp > 1 (Megatron-Core's
    --expert-tensor-parallel-size, commonly 1 with a large ep); none for dense models."""
    return [1] if model.is_moe and tp > 1 else []


def _state_modes(
    model: ModelSpec, opts: TrainingOptions, fp16: bool, out: dict[str, list[str]]
) -> list[StateMode]:
    """Sharding modes (with ZeRO-Offload's variants when `offload`) of the allowed ZeRO stages that the
    framework initializes for the model; the others are recorded under `framework_zero_stages`. Under
    fp16 (`job_precision`) gradients stay in the model's dtype in every framework."""
    bf16 = opts.grad_reduce_in_bf16 or fp16
    runs = framework_zero_stages(opts.framework, model, bf16_grads=bf16)
    for zero in dict.fromkeys(z for z in opts.zero_stages if z not in runs):
        out.setdefault("framework_zero_stages", []).append(
            zero_stage_problem(opts.framework, model, zero, bf16_grads=bf16) or f"zero={zero.value}"
        )
    modes = []
    for zero in dict.fromkeys(z for z in opts.zero_stages if z in runs):
        modes.append(StateMode(zero=zero))
        if not opts.offload or zero is ZeroStage.NONE:
            continue
        # ZeRO-Offload: optimizer offload with ZeRO 1-3 (DeepSpeed) or the distributed optimizer
        # (Megatron-Core's --optimizer-cpu-offload); parameter offload with ZeRO-3 only (DeepSpeed docs,
        # "offload_optimizer" / "offload_param"), and only under DeepSpeed: Megatron-Core offloads
        # optimizer states alone (megatron/core/optimizer/cpu_offloading).
        modes.append(StateMode(zero=zero, offload_optimizer=True))
        if zero is ZeroStage.PARAMETERS and opts.framework == "deepspeed":
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
    model: ModelSpec,
    cluster: Cluster,
    workload: Training,
    options: TrainingOptions,
    deadline: float | None = None,
) -> TrainingSpace:
    """Domains of every knob for `model` on `cluster`; `deadline` (a `time.perf_counter()`) is checked
    once a world size (thousands of `world_sizes` took 22 s past a 2 s limit here).

    Raises:
        InputError: an option outside what the job allows (e.g. a world size above the cluster).
        InfeasibleError: the rules leave no shape at all; the reasons name each rule with what it removed
            (led by `degrees_divide_world` where no tp·pp·cp divides the GPUs).
        SolverTimeoutError: `deadline` passed (`settings.check_deadline`).
    """
    world = cluster.world_size
    worlds = sorted(set(options.world_sizes or (world,)))
    if worlds[0] < 1 or worlds[-1] > world:
        # Only the counts out of range, a few then how many more (a million counts were a 7.9 MB line).
        bad = [w for w in worlds if not 1 <= w <= world]
        more = f", ... and {len(bad) - 5:,} more" if len(bad) > 5 else ""
        named = ", ".join(str(w) for w in bad[:5]) + more
        raise InputError(f"world_sizes [{named}] must lie in 1..{world} (the cluster's GPUs)")
    out: dict[str, list[str]] = {}
    worlds = _launchable_worlds(worlds, cluster, options, out)
    tps = _tp_domain(model, cluster, options, out)
    pps = _pp_domain(model, worlds, options, out)
    cps = _cp_domain(workload.seq_len, cluster.gpu, options, out)
    eps = _ep_domain(model, options, out)
    micros = tuple(sorted(set(options.micro_batch_values)))
    if not micros or micros[0] < 1:
        raise InputError(f"micro_batch_values must be positive integers, got {options.micro_batch_values}")
    precision = job_precision(workload.precision, cluster.gpu)
    fp8 = precision == "fp8"
    shapes = []
    undivided: dict[tuple[int, int], list[tuple[int, int]]] = {}  # (world, pp) -> its (tp, cp) left out
    # The rules of (tp, pp, cp) alone, asked once each whatever the world size (they walk the layers)
    comms: dict[tuple[int, int, int], tuple[Literal["p2p", "a2a"], str | None]] = {}
    sps: dict[tuple[int, int], tuple[bool, str | None]] = {}
    for w in worlds:
        check_deadline(deadline)
        for tp in tps:
            for pp in pps:
                for cp in cps:
                    if w % (tp * pp * cp):
                        undivided.setdefault((w, pp), []).append((tp, cp))
                        continue
                    dp = w // (tp * pp * cp)
                    if (tp, pp, cp) not in comms:
                        comms[tp, pp, cp] = _cp_comm(model, tp, pp, cp, options)
                    comm, problem = comms[tp, pp, cp]
                    if problem is not None:
                        out.setdefault("cp_comm_rule", []).append(problem)
                        continue
                    if (tp, cp) not in sps:
                        sps[tp, cp] = _sequence_parallel(model, workload.seq_len, tp, cp, options)
                    sp, problem = sps[tp, cp]
                    if problem is not None:
                        out.setdefault("seq_divides_sp", []).append(problem)
                        continue
                    where = f"tp={tp}, pp={pp}, cp={cp}, dp={dp}"
                    for ep in eps:
                        # Every (ep, etp) pair whose expert grid tiles the stage (one rule with
                        # `training_problems`: `validation.expert_grid_problem`); etp = tp first.
                        for etp in (tp, *_etp_domain(model, tp)):
                            grid = expert_grid_problem(model, tp, cp, dp, ep, etp)
                            if grid is not None:
                                out.setdefault("expert_grid", []).append(f"{grid} ({where})")
                                continue
                            if fp8 and (problem := fp8_gemm_problem(model, tp, etp)) is not None:
                                out.setdefault("fp8_gemm_dims", []).append(problem)
                                continue
                            shape = Shape(
                                tp=tp,
                                pp=pp,
                                cp=cp,
                                ep=ep,
                                dp=dp,
                                etp=None if etp == tp else etp,
                                cp_comm=comm,
                                sequence_parallel=sp,
                            )
                            if not any(_fp8_rows_ok(workload, shape, options, m, precision) for m in micros):
                                sp_on = options.sequence_parallel and sp
                                first = fp8_token_problem(workload.seq_len, micros[0], tp, cp, sp_on)
                                out.setdefault("fp8_gemm_dims", []).append(
                                    f"{shape.label()}: no allowed micro-batch size {list(micros)} gives "
                                    f"GEMM inputs of a multiple of 8 tokens ({first})"
                                )
                                continue
                            shapes.append(shape)
    if not options.zero_stages or not options.recompute_modes:
        raise InputError("zero_stages and recompute_modes must each allow at least one value")
    fp16 = job_precision(workload.precision, cluster.gpu) == "fp16"
    state_modes = _state_modes(model, options, fp16, out)
    if not state_modes:
        raise InputError(f"no allowed ZeRO stage runs: {'; '.join(out['framework_zero_stages'])}")
    divided = any(not w % (tp * pp * cp) for w in worlds for tp in tps for pp in pps for cp in cps)
    if undivided:
        out["degrees_divide_world"] = _undivided(undivided, tps, cps)
    excluded = {k: tuple(dict.fromkeys(v)) for k, v in out.items()}
    if not shapes:
        # The rule that left no (tp, pp, cp) at all leads; the ZeRO stages a framework refuses remove
        # no degree, so they are no reason here.
        rules = sorted(
            (r for r in excluded if r != "framework_zero_stages"),
            key=lambda r: divided or r != "degrees_divide_world",
        )
        reasons = tuple(f"{rule}: {'; '.join(excluded[rule][:4])}" for rule in rules)
        raise InfeasibleError(
            f"no (tp, pp, cp, ep, etp) degrees fit {model.name} on {world} GPUs "
            f"({cluster.gpus_per_node} per node)",
            reasons or ("no degree values were allowed",),
        )
    kind_of, reps = _layer_kinds(model)
    space = TrainingSpace(
        model=model,
        cluster=cluster,
        workload=workload,
        options=options,
        shapes=tuple(shapes),
        micro_batches=micros,
        state_modes=tuple(state_modes),
        recompute_modes=tuple(dict.fromkeys(options.recompute_modes)),
        kind_of_layer=kind_of,
        kind_layer=reps,
        excluded=excluded,
    )
    if fp8:
        _require_fp8_micro_batch(space)
    return space


def _undivided(
    undivided: Mapping[tuple[int, int], list[tuple[int, int]]], tps: list[int], cps: list[int]
) -> list[str]:
    """The sentences of the rule `degrees_divide_world` (dp = world / (tp·pp·cp) is a whole number), one
    per GPU count and pipeline degree: the least product left out, and whether every other allowed
    (tp, cp) is left out too (pp=5 on 32 GPUs) or which ones are."""
    out = []
    for (w, pp), left in undivided.items():
        tp, cp = min(left, key=lambda tc: (tc[0] * tc[1], tc))
        text = f"pp={pp}: tp·pp·cp = {tp}·{pp}·{cp} = {tp * pp * cp} does not divide the {w} GPUs"
        if len(left) == len(tps) * len(cps) > 1:
            text += f", nor at any other allowed tp {tuple(tps)} and cp {tuple(cps)}"
        elif len(left) > 1:
            more = ", ".join(f"{a}·{pp}·{c}" for a, c in left if (a, c) != (tp, cp))
            text += f", nor {more}"
        out.append(text)
    return out


def _require_fp8_micro_batch(space: TrainingSpace) -> None:
    """InfeasibleError naming Transformer Engine's FP8 token rule when every (shape, micro-batch) the
    global batch splits into has token rows it refuses (`validation.fp8_token_problem`), rather than
    leaving the solver to blame the global batch."""
    batch = space.workload.global_batch
    split = [(s, m) for s in space.shapes for m in space.micro_batches if batch % (m * s.dp) == 0]
    if not split or any(space.grad_accum(s, m) for s, m in split):
        return
    shape, micro = split[0]
    sp = space.options.sequence_parallel and shape.sequence_parallel
    first = fp8_token_problem(space.workload.seq_len, micro, shape.tp, shape.cp, sp)
    micros = sorted({m for _, m in split})
    raise InfeasibleError(
        f"no FP8 training layout of {space.model.name} runs on {space.cluster.world_size} GPUs for "
        f"sequence length {space.workload.seq_len} and global batch {batch}",
        (
            f"fp8_gemm_dims: the global batch splits only into micro-batches of {micros} sequences "
            f"(× dp), and Transformer Engine refuses each one's token rows, e.g. {shape.label()}: {first}",
        ),
    )
