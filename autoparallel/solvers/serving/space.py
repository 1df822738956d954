"""The serving search space: each knob's domain, and integer tables from the float cost model.

No ortools here: the encoder (CP-SAT) and the enumeration oracle both read this module.

Knobs and domains (each one variable in the CP-SAT model, never a list of whole configurations):
- shape: (tp, pp, expert parallelism). tp divides the GPUs of a node (a TP group stays inside a
  node), pp is a power of two with tp · pp dividing a node or a multiple of it (replicas do not
  straddle nodes); a dense replica narrower than the node may also be any power of two
  (`sub_domain_size`): anywhere in a node that is one host (tp 4 on a 6-GPU H100 node), of whole
  hosts or inside one on a node of several hosts (a GB200 NVL36 NVLink domain, 9 hosts of 4: tp 8
  on 36 GPUs). Without EP, `replicas` is free in 1 .. the replicas the
  nodes hold, ⌊node / (tp · pp)⌋ each for narrower ones (`replicas_on`); with EP the experts
  are sharded over tp × replicas ranks (vLLM `--data-parallel-size R --enable-expert-parallel`),
  so R is part of the shape. Shapes that break an architecture rule stay in the space with the
  rule's name, so that an infeasible request can say which rule blocked it.
- runtime: (serving engine, weight quantization, KV-cache dtype, enforce_eager), from `ServingOptions`.
  The engine (vLLM, SGLang, TensorRT-LLM) is one more categorical value of it: an entry of another
  engine is that engine's float model (`perf.serving_engines.evaluate_engine`): its KV pool rule
  (`--mem-fraction-static`, `free_gpu_memory_fraction`), its running-request cap and step token
  budget, its efficiency factors. SGLang and TensorRT-LLM have no `gpu_memory_utilization`: their
  entries are evaluated at the largest allowed value (`engine_util`), and the encoder pins that knob
  there when they are chosen. Their memory is written in vLLM's currency (usage against the budget
  of that utilization): usage = budget − the engine's KV pool + the KV the entry needs, so the memory
  family, the headroom objective and the explanations read every engine alike.
- max_num_seqs on a grid of 2^k and 3 · 2^k shared by every shape (`batch_domain`), plus one more
  index, "kv", whose value is per (shape, runtime, max_model_len) entry: the largest max_num_seqs its
  KV cache holds at the running context under the tables' own no-preemption rule (`_holds`), when
  that is no grid value and at most the engine's cap (`kv_bound_cap`; on TensorRT-LLM a multiple of
  pp). Where the cache holds 126 sequences the grid alone stopped at 96. Every reader takes a batch
  value through `ServingSpace.batch_value` / `max_num_seqs_of`; an entry without a KV-bound value is
  never offered (`ServingSpace.offered`). max_model_len and gpu_memory_utilization from lists.

A configuration is admissible when vLLM starts (memory), its replicas are all the GPUs allow and at
most the ⌈C / max_num_seqs⌉ a workload's concurrency C fills (`Shape.replicas_at`), each running
min(max_num_seqs, C / replicas) requests (`Shape.running_at`; the rest of the client's requests
wait in the server's queue: TTFT counts the wait, `perf.client_queue_s`), the KV cache holds the
larger share's ⌈running⌉ sequences of `Serving.running_context` tokens (the running batch never
preempts), and the SLOs and arrival rate are met. The running batch is then a function of the
tuple, so one table entry per (shape, runtime, max_num_seqs, max_model_len) describes it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from autoparallel.bounds import UserInput, check_choices
from autoparallel.configs import ServingConfig, given_quantization
from autoparallel.errors import InfeasibleError, InputError, InternalError
from autoparallel.hardware.gpu import host_size
from autoparallel.memo import Memo, memoized
from autoparallel.memory.sglang import MAX_REQUEST_SLOTS
from autoparallel.memory.trtllm import trtllm_default_max_num_seqs
from autoparallel.memory.vllm_config import checkpoint_quantization
from autoparallel.memory.vllm_versions import DEFAULT_VLLM_VERSION, VllmRules, parse_vllm_version, rules_for
from autoparallel.perf import serving as perf
from autoparallel.perf.engine_support import (
    ENGINE_NAMES,
    engine_runtime_problem,
    node_span_problem,
    sglang_layout_problem,
    sglang_pipeline_problem,
    trtllm_layout_problem,
)
from autoparallel.perf.serving import replicas_on, sub_domain_size
from autoparallel.perf.serving_efficiency import ENGINES
from autoparallel.perf.serving_engines import evaluate_engine, held_tokens
from autoparallel.solvers import units
from autoparallel.solvers.problem import Problem
from autoparallel.solvers.serving.memory_terms import MemoryTerms
from autoparallel.solvers.settings import check_deadline

if TYPE_CHECKING:
    from autoparallel.hardware import GPU, Cluster
    from autoparallel.models.spec import ModelSpec
    from autoparallel.workload import Serving

LAYOUT_FAMILIES: dict[str, tuple[str, ...]] = {
    "vllm": (),
    "sglang": ("sglang_attention_dp", "sglang_pipeline"),
    "trtllm": ("trtllm_attention_dp",),
}
"""Each engine's layout constraint families (`ServingSpace.layout_problem`; encoder
`add_engine_layouts`)."""
RUNNING_CAP_FAMILY = "engine_running_cap"
"""The constraint family of SGLang / TensorRT-LLM entries whose engine runs fewer requests at once than
the entry's running share (`ServingTables.capped`; encoder `add_engine_running_caps`)."""
UNPRICED_US = 10**12
"""The TTFT and TPOT (µs, 11.6 days: above any limit, `bounds.BOUNDS`) of an entry the float model
cannot price (`_unpriced_times`)."""
DEFAULT_MAX_NUM_SEQS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
"""max_num_seqs grid: 2^k and 3·2^k up to vLLM 0.32's default of 1024 on H100-class GPUs."""
KV_INDEX_LABEL = "kv"
"""The name of the batch knob's per-entry value (the KV-bound batch) in CP-SAT labels."""


def kv_bound_offered(options: ServingOptions) -> bool:
    """Whether the space offers each entry's KV-bound batch: with the default max_num_seqs grid only, as
    for the concurrency shares (`batch_domain`); a grid the caller gives is the set of allowed values."""
    return options.max_num_seqs == DEFAULT_MAX_NUM_SEQS


def kv_bound_cap(engine: str, pp: int) -> int:
    """The largest KV-bound max_num_seqs offered on `engine` (one over `pp` stages): vLLM the grid's top
    (its 0.32 default on H100-class GPUs, `DEFAULT_MAX_NUM_SEQS`); SGLang the most request slots its
    default `max_running_requests` gives a rank (`memory.sglang.MAX_REQUEST_SLOTS`); TensorRT-LLM what a
    bare `trtllm-serve` runs, `max_batch_size` 2048 × pp (`memory.trtllm.trtllm_default_max_num_seqs`)."""
    if engine == "sglang":
        return MAX_REQUEST_SLOTS
    if engine == "trtllm":
        return trtllm_default_max_num_seqs(pp)
    return DEFAULT_MAX_NUM_SEQS[-1]


class ServingOptions(UserInput):
    """What the serving planner may choose. Tuples are the allowed values of each knob."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    max_num_seqs: tuple[int, ...] = DEFAULT_MAX_NUM_SEQS
    """Allowed `--max-num-seqs` values."""
    max_model_lens: tuple[int, ...] | None = None
    """Allowed `--max-model-len` values (None: the workload's context length)."""
    gpu_memory_utilizations: tuple[float, ...] = (0.92,)
    """Allowed `--gpu-memory-utilization` values (vLLM 0.32's default 0.92; add more to choose)."""
    kv_cache_dtypes: tuple[str, ...] = ("auto",)
    """Allowed `--kv-cache-dtype` values; add "fp8" to let the planner halve the KV cache."""
    quantizations: tuple[str | None, ...] = (None,)
    """Allowed `--quantization` values (None: as the checkpoint is; "fp8": online FP8)."""
    enforce_eager: tuple[bool, ...] = (False, True)
    """Allowed `--enforce-eager` values (True frees CUDA-graph memory, costs decode latency)."""
    expert_parallel: bool = True
    """MoE models may use `--enable-expert-parallel` (experts over tp × replicas ranks)."""
    expert_parallel_with_pp: bool = False
    """Also try expert parallelism together with pipeline stages (pp > 1); vLLM's wide-EP recipes
    use pp = 1 (data-parallel attention + EP), so the default keeps the space small."""
    tp_values: tuple[int, ...] | None = None
    """Allowed tensor-parallel degrees (None: divisors of the GPUs per node)."""
    pp_values: tuple[int, ...] | None = None
    """Allowed pipeline degrees (None: powers of two up to the layers and the GPUs)."""
    max_gpus: int | None = Field(default=None, ge=1)
    """Use at most this many GPUs (None: the whole cluster)."""
    vllm_version: str = DEFAULT_VLLM_VERSION
    """vLLM release whose memory accounting applies (0.21 or later)."""
    engines: tuple[str, ...] = ("vllm",)
    """Serving engines the planner may choose: vllm, sglang, trtllm (`perf.serving_efficiency.ENGINES`)."""

    @field_validator("engines")
    @classmethod
    def _known_engines(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [e for e in value if e not in ENGINES]
        if bad or not value:
            raise ValueError(f"engines must be among {', '.join(ENGINES)}; got {', '.join(value) or 'none'}")
        return tuple(dict.fromkeys(value))

    @field_validator("quantizations", mode="before")
    @classmethod
    def _quantizations_as_read(cls, value: object) -> object:
        """`none` is no weight quantization (None), as in a configuration (`configs.given_quantization`)."""
        return tuple(given_quantization(v) for v in value) if isinstance(value, (list, tuple)) else value

    @field_validator(
        "max_num_seqs",
        "max_model_lens",
        "gpu_memory_utilizations",
        "kv_cache_dtypes",
        "quantizations",
        "enforce_eager",
        "tp_values",
        "pp_values",
    )
    @classmethod
    def _allowed_values(
        cls, value: tuple[object, ...] | None, info: ValidationInfo
    ) -> tuple[object, ...] | None:
        """Every knob allows at least one value, and numbers lie in their `BOUNDS` (a max_num_seqs of
        0 or a tp of 0 divided by zero deep in the tables; an empty tuple was `min()` of nothing)."""
        name = info.field_name or ""
        return check_choices(name, value, _OPTION_BOUNDS.get(name))


_OPTION_BOUNDS = {
    "max_num_seqs": "max_num_seqs",
    "max_model_lens": "max_model_len",
    "gpu_memory_utilizations": "gpu_memory_utilization",
    "tp_values": "tp",
    "pp_values": "pp",
}
"""The `BOUNDS` entry each numeric `ServingOptions` knob is checked against."""


def foreign_memory_knob(engines: tuple[str, ...], name: str) -> str | None:
    """Why vLLM's `--gpu-memory-utilization` (here called `name`) cannot be given for `engines`, or None:
    none of them is vLLM, and SGLang and TensorRT-LLM size their pools by their own knobs
    (`perf.serving_engines.ENGINE_MEMORY_KNOBS`), which the planner keeps at their defaults, so the
    value would be silently ignored. The CLI (`cli.fleet_cmd.vllm_memory_knob`) and the API
    (`api.solve`, `solve_fleet`) refuse it; `evaluate` takes the engine's own knob
    (`perf.serving_engines.memory_knob_problem`)."""
    if "vllm" in engines:
        return None
    names = " and ".join(ENGINE_NAMES[e] for e in engines)
    return (
        f"{name} is vLLM's knob; {names} sizes its pool by its own rule ({own_memory_knobs(engines)}), "
        f"which the planner keeps at its default: drop {name}"
    )


def own_memory_knobs(engines: Iterable[str]) -> str:
    """The engines' own KV-pool flags (`perf.serving_engines.ENGINE_MEMORY_KNOBS`), comma-separated."""
    from autoparallel.perf.serving_engines import ENGINE_MEMORY_KNOBS

    return ", ".join(ENGINE_MEMORY_KNOBS[e][1] for e in engines)


def given_memory_knob(options: ServingOptions) -> None:
    """InputError when `options` sets `gpu_memory_utilizations` explicitly, to values other than the
    default, but plans no vLLM engine (`foreign_memory_knob`)."""
    default = ServingOptions.model_fields["gpu_memory_utilizations"].default
    if (
        "gpu_memory_utilizations" not in options.model_fields_set
        or options.gpu_memory_utilizations == default
    ):
        return
    problem = foreign_memory_knob(options.engines, "gpu_memory_utilizations")
    if problem is not None:
        raise InputError(problem)


@dataclass(frozen=True)
class Shape:
    """One value of the degree knob: a replica's tp × pp, and expert parallelism."""

    tp: int
    pp: int
    ep: bool
    ep_replicas: int
    """With EP: the data-parallel ranks of the one EP engine (replicas are fixed to it); else 0."""
    max_replicas: int
    """Largest replica count that fits the GPUs, none straddling a node (`replicas_on`: ⌊node / (tp · pp)⌋
    per node for replicas narrower than one)."""
    violations: tuple[str, ...]
    """Architecture rules this shape breaks ("rule: sentence"); empty when vLLM accepts it."""

    @property
    def gpus_per_replica(self) -> int:
        return self.tp * self.pp

    def replicas_at(self, max_num_seqs: int, concurrency: int | None) -> int:
        """Replicas at this max_num_seqs (0: none allowed): all the GPUs allow, and at most the
        ⌈concurrency / max_num_seqs⌉ the clients fill (no replica waits for requests that never
        come: 15 clients fill two replicas of max_num_seqs 8, running 8 and 7, not three). An EP
        engine's data ranks are fixed: vLLM's data-parallel load balancer deals requests to the least
        loaded rank (`DPLBAsyncMPClient.get_core_engine_for_request`), so all of them run as soon as
        the clients are at least as many (12 clients on 8 ranks run 1.5 each at any max_num_seqs ≥ 2).
        The largest count dominates every smaller one (the encoder's `replica_cap`)."""
        cap = self.ep_replicas if self.ep else self.max_replicas
        if concurrency is None:
            return cap
        if self.ep:
            return cap if concurrency >= cap else 0
        return min(cap, -(-concurrency // max_num_seqs))

    def running_at(self, max_num_seqs: int, concurrency: int | None) -> float:
        """Requests each replica runs at this max_num_seqs (`perf.serving.running_batch`): max_num_seqs,
        or the clients' share concurrency / replicas when that is less (15 clients over two replicas
        of max_num_seqs 8 run 7.5 each on average)."""
        replicas = self.replicas_at(max_num_seqs, concurrency)
        if concurrency is None or replicas == 0:
            return float(max_num_seqs)
        return min(float(max_num_seqs), concurrency / replicas)

    @property
    def ep_ranks(self) -> int:
        """Ranks the experts are sharded over (memory/serving.py's `ep`): tp × replicas with EP, else 1."""
        return self.tp * self.ep_replicas if self.ep else 1

    @property
    def engine_width(self) -> int:
        """GPUs one engine process group spans: tp × pp, or tp × data ranks with EP."""
        return self.tp * self.ep_replicas if self.ep else self.gpus_per_replica

    def span_width(self, engine: str) -> int:
        """GPUs that must sit on whole nodes when they span several (`node_span_problem`): the engine
        for SGLang and TensorRT-LLM, one data-parallel rank or replica (tp × pp) for vLLM."""
        return self.gpus_per_replica if engine == "vllm" else self.engine_width

    @property
    def trtllm_problem(self) -> str | None:
        """Why TensorRT-LLM has no such layout (`engine_support.trtllm_layout_problem`: EP data-parallel
        ranks that are themselves tensor-parallel), None when it has."""
        return trtllm_layout_problem(self.tp, self.ep_replicas if self.ep else 1, self.ep)

    @property
    def label(self) -> str:
        text = f"tp={self.tp} pp={self.pp}"
        return text + (f" ep={self.tp * self.ep_replicas}" if self.ep else "")


@dataclass(frozen=True)
class Runtime:
    """One value of the runtime knob: the serving engine, precisions and CUDA graphs."""

    quantization: str | None
    kv_cache_dtype: str
    enforce_eager: bool
    engine: str = "vllm"


@dataclass
class ServingTables:
    """Integer tables over the flat index ((shape · R + runtime) · B + batch) · M + max_model_len."""

    evaluated: list[bool]
    """The entry holds real numbers (False: hopeless or invalid; optimistic placeholders)."""
    mem_used_kib: list[int]
    """max over stages of weights + activations + non-torch + graphs + KV of the running batch."""
    mml_used_kib: list[int]
    """max over stages of the same fixed memory + KV for one max_model_len request."""
    step_us: list[int]
    """TPOT = T(b)."""
    ttft_us: list[int]
    """TTFT."""
    tps_milli: list[int]
    """Output tokens/s of one replica."""
    cost_micro_usd: list[int]
    """US$ per million output tokens."""
    weights_kib: list[int]
    """Weights on the fullest GPU, per (shape, runtime)."""
    fixed_kib: list[int]
    """Everything but the KV cache on the tightest stage."""
    prompt_us: list[int] = dataclasses.field(default_factory=list)
    """The time one more prompt adds to a prefill: one prompt alone / pipeline stages (µs, rounded
    up), what a burst's first wave queues on (`perf.client_queue_s`, the deployment's burst rule)."""
    capped: list[bool] = dataclasses.field(default_factory=list)
    """The SGLang / TensorRT-LLM engine runs fewer requests at once than the entry's running share
    (`Shape.running_at`): it never runs as tabled (placeholder times, `evaluated` False), ruled out
    by the family `RUNNING_CAP_FAMILY`, which an explanation holds (its memory is pushed over the
    budget too, for the readers that take such an entry as one that does not start: `_engine_entry`)."""


@dataclass
class ServingSpace(Problem["Serving", ServingOptions]):
    """Domains and tables of one serving planning problem."""

    rules: VllmRules
    """The vLLM release's accounting rules."""
    gpus: int
    """GPUs the plan may use."""
    shapes: tuple[Shape, ...]
    """The (tp, pp, EP) knob's values, valid or not (violations named)."""
    runtimes: tuple[Runtime, ...]
    """The (quantization, KV dtype, eager) knob's values."""
    batches: tuple[int, ...]
    """The `max_num_seqs` grid every entry shares (indices 0 .. len - 1 of the batch knob); read a batch
    value through `batch_value` / `max_num_seqs_of`, which also know the KV-bound index."""
    utilizations: tuple[float, ...]
    """`gpu_memory_utilization` values."""
    max_model_lens: tuple[int, ...]
    """`max_model_len` values."""
    budget_kib: tuple[int, ...]
    """Per-GPU budget of each utilization, KiB (rounded down)."""
    tables: ServingTables
    """The float model's numbers per (shape, runtime, batch, max_model_len), scaled to integers."""
    memo: MemoryTerms | None = dataclasses.field(default=None, repr=False, compare=False)
    """Memoized memory terms, reused when the tables are completed for an explanation."""
    lone_cycles: dict[tuple[int, ...], float] = dataclasses.field(
        default_factory=dict, repr=False, compare=False
    )
    """`entry_lone_cycle_s` by what it depends on (a vLLM entry's shape, runtime, max_model_len and
    step budget, whatever its max_num_seqs: a lone request runs in a captured graph at any of them)."""
    replica_perfs: dict[object, dict[tuple[int, int, int, int], tuple[float, float, float, float, float]]] = (
        dataclasses.field(default_factory=dict, repr=False, compare=False)
    )
    """`replica_perf` of the vLLM table entries by workload without its service limits (which the tables
    do not read), then (shape index, runtime index, max_num_seqs, step budget): the entries of each
    max_model_len with the same step budget, and `complete_tables` after the first tables, price each
    once."""
    refused: str | None = None
    """Why no allowed engine runs on these GPUs (`runtimes` then empty; `build_space(...,
    refusable=True)` only: a deployment pool the model cannot use)."""
    kv_index: bool = False
    """The batch knob has one more index after the grid, `len(batches)`: each entry's KV-bound batch
    (`kv_bound_offered`)."""
    kv_batches: tuple[int, ...] = ()
    """With `kv_index`: the KV-bound max_num_seqs of each (shape, runtime, max_model_len), at
    (s · R + r) · M + m (0: none, the entry is not offered); filled with the tables (`_kv_bound`)."""
    own_clients: bool = False
    """Each entry is priced under a closed loop of its own slots' clients: max_num_seqs per replica
    (`_loop_clients`), the engine of a deployment whose model has a closed-loop client's cap (the
    deployment planner's `build_deployment_space`; its per-engine workload carries no concurrency)."""

    @property
    def n_batches(self) -> int:
        """Indices of the batch knob: the grid's, and the KV-bound one with `kv_index`."""
        return len(self.batches) + (1 if self.kv_index else 0)

    def is_kv_index(self, b: int) -> bool:
        """Batch index `b` is the KV-bound one (its value is per entry)."""
        return b >= len(self.batches)

    def kv_batch(self, s: int, r: int, m: int) -> int:
        """The KV-bound max_num_seqs of (shape s, runtime r, max_model_len m); 0 when none is offered."""
        if not self.kv_index:
            return 0
        return self.kv_batches[(s * len(self.runtimes) + r) * len(self.max_model_lens) + m]

    def batch_value(self, s: int, r: int, b: int, m: int) -> int:
        """max_num_seqs of batch index `b` at (shape s, runtime r, max_model_len m): the grid's value, or
        the entry's KV-bound batch at the "kv" index (0: none)."""
        return self.batches[b] if b < len(self.batches) else self.kv_batch(s, r, m)

    def max_num_seqs_of(self, i: int) -> int:
        """max_num_seqs of flat table index `i` (0: a KV-bound index without a value)."""
        s, r, b, m = self.unflat(i)
        return self.batch_value(s, r, b, m)

    def offered(self, i: int) -> bool:
        """Entry `i` has a max_num_seqs (a KV-bound index without a value has none: never a plan)."""
        return self.max_num_seqs_of(i) > 0

    def batch_order(self, s: int, r: int, m: int) -> list[int]:
        """The batch indices offered at (s, r, m), by increasing max_num_seqs."""
        values = [(self.batch_value(s, r, b, m), b) for b in range(self.n_batches)]
        return [b for v, b in sorted(values) if v > 0]

    def batch_label(self, b: int) -> str:
        """A batch index's name in CP-SAT labels: its grid value, or "kv"."""
        return KV_INDEX_LABEL if self.is_kv_index(b) else str(self.batches[b])

    @property
    def engines(self) -> tuple[str, ...]:
        """The engines of the runtime knob's values, in the options' order."""
        return tuple(dict.fromkeys(r.engine for r in self.runtimes))

    @property
    def engine_util(self) -> int:
        """The utilization index SGLang and TensorRT-LLM entries are evaluated at (they have no such
        knob): the largest allowed value."""
        return len(self.utilizations) - 1

    def layout_problem(self, family: str, shape: Shape) -> str | None:
        """Why the engine of layout family `family` (`LAYOUT_FAMILIES`) has no such layout for this
        model, None when it has: TensorRT-LLM's tensor-parallel attention-DP ranks, SGLang's attention
        DP or pipeline stages on an architecture without them."""
        if family == "trtllm_attention_dp":
            return shape.trtllm_problem
        if family == "sglang_attention_dp":
            return sglang_layout_problem(self.model, shape.tp, shape.ep_replicas if shape.ep else 1, shape.ep)
        if family == "sglang_pipeline":
            return sglang_pipeline_problem(self.model, shape.pp)
        raise InternalError(f"unknown layout family {family!r}")

    def engine_layout_problem(self, engine: str, shape: Shape) -> str | None:
        """The first of `engine`'s layout families that rules `shape` out (None: none does)."""
        return next(
            (p for f in LAYOUT_FAMILIES[engine] if (p := self.layout_problem(f, shape)) is not None), None
        )

    def engine_of(self, i: int) -> str:
        """The engine of flat table index `i`."""
        return self.runtimes[self.unflat(i)[1]].engine

    def flat(self, s: int, r: int, b: int, m: int) -> int:
        """Flat table index of (shape, runtime, batch, max_model_len)."""
        return ((s * len(self.runtimes) + r) * self.n_batches + b) * len(self.max_model_lens) + m

    def unflat(self, i: int) -> tuple[int, int, int, int]:
        """(shape, runtime, batch, max_model_len) indices of a flat table index."""
        i, m = divmod(i, len(self.max_model_lens))
        i, b = divmod(i, self.n_batches)
        s, r = divmod(i, len(self.runtimes))
        return s, r, b, m

    def config(self, s: int, r: int, b: int, u: int, m: int, replicas: int) -> ServingConfig:
        """The configuration of one point of the space (batch index `b`, `batch_value`)."""
        return self.config_at(s, r, self.batch_value(s, r, b, m), u, m, replicas)

    def config_at(self, s: int, r: int, batch: int, u: int, m: int, replicas: int) -> ServingConfig:
        """The configuration of (shape s, runtime r) at max_num_seqs `batch`. SGLang and TensorRT-LLM
        size their pools by their own rules: their configurations carry the default
        `gpu_memory_utilization`, not the value the encoder pins for them (`engine_util`), which
        `api.evaluate` would refuse as a vLLM knob given to another engine."""
        shape, rt = self.shapes[s], self.runtimes[r]
        util = (
            self.utilizations[u]
            if rt.engine == "vllm"
            else ServingConfig.model_fields["gpu_memory_utilization"].default
        )
        return ServingConfig(
            tp=shape.tp,
            pp=shape.pp,
            replicas=replicas,
            enable_expert_parallel=shape.ep,
            max_num_seqs=batch,
            max_model_len=self.max_model_lens[m],
            gpu_memory_utilization=util,
            kv_cache_dtype=rt.kv_cache_dtype,
            quantization=rt.quantization,
            enforce_eager=rt.enforce_eager,
        )


@dataclass(frozen=True)
class Point:
    """Indices of one solution in the space's domains."""

    shape: int
    runtime: int
    batch: int
    util: int
    mml: int
    replicas: int

    def entry(self, space: ServingSpace) -> int:
        """Flat table index of the point's (shape, runtime, batch, max_model_len)."""
        return space.flat(self.shape, self.runtime, self.batch, self.mml)


# ----- domains -----------------------------------------------------------------------------------
def _powers_of_two(limit: int) -> list[int]:
    return [1 << k for k in range(limit.bit_length()) if (1 << k) <= limit]


def _shape_violations(model: ModelSpec, tp: int, pp: int, ep_ranks: int) -> tuple[str, ...]:
    out = list(model.tp_violations(tp, expert_parallel=ep_ranks > 0)) + list(model.pp_violations(pp))
    if ep_ranks:
        out += model.ep_violations(ep_ranks)
    return tuple(dict.fromkeys(out))


def _pp_domain(model: ModelSpec, tps: tuple[int, ...], gpus: int) -> tuple[int, ...]:
    """Pipeline degrees searched: powers of two, and the divisors of gpus / tp that fill a cluster of
    another size (3 nodes of 8: tp 8 x pp 3; 6 GPUs: tp 2 x pp 3); vLLM splits the layers of an
    uneven pipeline by `get_pp_indices`, the fullest stage first (`vllm_profile.pp_partition`)."""
    most = min(gpus, model.num_layers)
    fills = {d for tp in tps if gpus % tp == 0 for d in range(1, gpus // tp + 1) if (gpus // tp) % d == 0}
    return tuple(sorted({*_powers_of_two(most), *(d for d in fills if d <= most)}))


def shape_domain(model: ModelSpec, cluster: Cluster, options: ServingOptions, gpus: int) -> tuple[Shape, ...]:
    """Every (tp, pp, ep) the cluster can place, valid or not (violations recorded).

    A shape is tp dividing the node with tp · pp dividing it or a multiple of it, every process group
    on whole hosts or inside one; or, without expert parallelism, tp and tp · pp narrower than the node
    of the sizes `sub_domain_size` admits: powers of two, on a node of several hosts taking whole hosts
    or fitting inside one (a GB200 NVL36 domain of 9 hosts of 4 runs dense 8-, 16- and 32-GPU
    replicas), on a node that is one host any (tp 4 and tp 2 pp 2 on a 6-GPU H100 node: an engine
    inside a node uses any tp of its GPUs, 2 GPUs idle). Either holds ⌊node / size⌋ per node
    (`replicas_on`); wider engines keep their stages on whole nodes. `perf.serving.deployment_problems`
    admits every tp of an engine inside a one-host node; the space searches the divisors and powers
    of two, as the deployment planners pack (`deployment.space.granularity`), so a power-of-two node
    has the shapes it had. Expert-parallel engines keep tp dividing the node: their data ranks of tp
    GPUs fill whole nodes, and their sizes (tp × ranks) stay on whole hosts."""
    node = cluster.gpus_per_node
    host = host_size(cluster.gpu.name, node)  # a rack-scale node's hosts (GB200 NVL72: 4 GPUs)

    def whole_hosts(width: int) -> bool:
        """A process group launches on whole hosts, or within one (vLLM cannot run a data-parallel rank
        of 9 GPUs over hosts of 4; a 6-GPU engine would straddle two)."""
        return width % host == 0 or host % width == 0

    def sub_domain(tp: int, per: int) -> bool:
        """A dense replica narrower than the node of powers of two (`sub_domain_size`): on whole hosts
        or inside one of a node of several hosts, anywhere in a node that is one host (tp 4 on a 6-GPU
        H100 node, one per node)."""
        return sub_domain_size(tp, node, host) and sub_domain_size(per, node, host)

    divisors = tuple(d for d in range(1, node + 1) if node % d == 0)
    tps = options.tp_values or tuple(sorted({*divisors, *(t for t in range(1, node) if sub_domain(t, t))}))
    pps = options.pp_values or _pp_domain(model, tps, gpus)
    out: list[Shape] = []
    for tp in sorted(set(tps)):
        for pp in sorted(set(pps)):
            per = tp * pp
            if tp > node or per > gpus:
                continue
            divides = (
                not node % tp and not (node % per and per % node) and whole_hosts(tp) and whole_hosts(per)
            )
            if not (divides or sub_domain(tp, per)):
                continue
            violations = _shape_violations(model, tp, pp, 0)
            out.append(Shape(tp, pp, False, 0, replicas_on(per, gpus, node), violations))
            ep_allowed = model.is_moe and options.expert_parallel
            if not divides or not ep_allowed or (pp > 1 and not options.expert_parallel_with_pp):
                continue  # expert-parallel engines keep tp dividing the node (their ranks fill it)
            for reps in range(1, gpus // per + 1):
                ep = tp * reps
                if model.num_experts % ep and reps & (reps - 1):
                    continue  # keep invalid EP sizes only at powers of two, to name the rule
                if not whole_hosts(ep):
                    continue
                out.append(Shape(tp, pp, True, reps, reps, _shape_violations(model, tp, pp, ep)))
    return tuple(out)


def runtime_domain(
    model: ModelSpec, options: ServingOptions, gpu: GPU, *, refusable: bool = False
) -> tuple[Runtime, ...]:
    """Allowed (engine, quantization, KV dtype, eager) values; online quantization needs a plain
    checkpoint, and an engine keeps only the precisions it can run on `gpu`
    (`engine_runtime_problem`). A value naming a pre-quantized checkpoint as it is (its format or the
    engines' name for it, `vllm_config.checkpoint_quantization`) is the checkpoint as loaded, None:
    the launch line then carries no `--quantization` the engines would refuse for it. Empty when
    nothing runs on `gpu` and `refusable`, else an InputError naming each engine's refusal (or the
    contradiction, when every allowed value contradicts the checkpoint)."""
    quants, contradictions = _runtime_quantizations(model, options)
    if not quants:
        raise InputError("; ".join(contradictions))
    out = []
    for engine in options.engines:
        for quant in quants:
            for kv in dict.fromkeys(options.kv_cache_dtypes):
                if engine_runtime_problem(engine, quant, kv, model, gpu, options.vllm_version) is not None:
                    continue
                for eager in dict.fromkeys(options.enforce_eager):
                    out.append(Runtime(quant, kv, eager, engine))
    if not out and not refusable:
        why = runtime_refusal(model, options, gpu)
        raise InputError(f"nothing allowed runs on the chosen engine(s): {why}")
    return tuple(out)


def runtime_refusal(model: ModelSpec, options: ServingOptions, gpu: GPU) -> str:
    """Every allowed engine's refusals on `gpu`, joined."""
    return "; ".join(dict.fromkeys(engine_refusal(model, options, e, gpu) for e in options.engines))


def engine_refusal(model: ModelSpec, options: ServingOptions, engine: str, gpu: GPU) -> str:
    """Why `engine` has no runtime in the space: its refusals of the allowed precisions, joined."""
    quants, contradictions = _runtime_quantizations(model, options)
    reasons = [
        *contradictions,
        *(
            engine_runtime_problem(engine, q, kv, model, gpu, options.vllm_version)
            for q in quants
            for kv in dict.fromkeys(options.kv_cache_dtypes)
        ),
    ]
    return "; ".join(dict.fromkeys(r for r in reasons if r is not None)) or "no allowed precision"


def _runtime_quantizations(model: ModelSpec, options: ServingOptions) -> tuple[list[str | None], list[str]]:
    """(the allowed `--quantization` values as the engines run `model` with them, deduplicated; why the
    others contradict its checkpoint): `checkpoint_quantization` of each."""
    quants: list[str | None] = []
    contradictions: list[str] = []
    for q in dict.fromkeys(options.quantizations):
        try:
            quants.append(checkpoint_quantization(model, q))
        except InputError as exc:
            contradictions.append(str(exc))
    return list(dict.fromkeys(quants)), contradictions


def max_model_len_domain(model: ModelSpec, workload: Serving, options: ServingOptions) -> tuple[int, ...]:
    """Allowed max_model_len values: at least the workload's request length, at most the model's
    (vLLM refuses a max_model_len above the length it derives from the config, `max_position_embeddings`
    here: "User-specified
    max_model_len ... is greater than the derived max_model_len"). When none is left, the error names
    the values of `options.max_model_lens` each bound removed."""
    need, limit = workload.required_len, model.max_position_embeddings
    wanted = options.max_model_lens or (workload.deploy_len(limit),)
    out = tuple(sorted({m for m in wanted if need <= m <= limit}))
    if out:
        return out
    needs = (
        f"{need} tokens (its max_model_len; mean isl {workload.isl} + osl {workload.osl})"
        if workload.max_model_len is not None
        else f"{need} tokens (isl {workload.isl} + osl {workload.osl})"
    )
    if options.max_model_lens is None:
        raise InfeasibleError(
            f"{model.name} cannot serve a {need}-token context",
            (f"max_model_len: the workload needs {needs} but {model.name} allows {limit}",),
        )
    above = sorted({m for m in wanted if m > limit})
    below = sorted({m for m in wanted if m < need})
    reasons = []
    if above:
        reasons.append(
            f"max_model_len {_listed(above)}: above {model.name}'s limit of {limit} tokens "
            "(derived from its config), which vLLM refuses"
        )
    if below:
        reasons.append(f"max_model_len {_listed(below)}: below the {needs} the workload needs")
    raise InfeasibleError(
        f"{model.name} cannot serve with the allowed max_model_len {_listed(sorted(set(wanted)))}",
        tuple(reasons),
    )


def _listed(values: list[int]) -> str:
    """`65536` or `[1024, 65536]`: the values as one short text."""
    return str(values[0]) if len(values) == 1 else str(values)


# ----- building ----------------------------------------------------------------------------------
def batch_domain(options: ServingOptions, in_flight: int | None, shapes: Sequence[Shape]) -> tuple[int, ...]:
    """The max_num_seqs values: the options' grid and, under a client's concurrency C with the default
    grid, each shape's share of it over all its replicas, ⌊C / replicas⌋ and ⌈C / replicas⌉ (EP:
    the engine's data ranks). Off the grid 1,000 clients on 8 replicas ran 96 each with 232 queued
    (or 7 replicas of 128): a share of 125 runs them all; 15 clients on 2 replicas run 8 and 7
    (⌈15 / 2⌉, `Shape.running_at`), or 7 each with one queued."""
    grid = set(options.max_num_seqs)
    if in_flight is not None and options.max_num_seqs == DEFAULT_MAX_NUM_SEQS:
        for shape in shapes:
            replicas = shape.ep_replicas if shape.ep else shape.max_replicas
            for share in (in_flight // replicas, -(-in_flight // replicas)):
                if not shape.violations and 1 <= share <= max(grid):
                    grid.add(share)
    return tuple(sorted(grid))


def build_space(
    model: ModelSpec,
    cluster: Cluster,
    workload: Serving,
    options: ServingOptions,
    *,
    refusable: bool = False,
    deadline: float | None = None,
    in_flight: int | None = None,
    own_clients: bool = False,
) -> ServingSpace:
    """Domains and integer tables for one problem. `refusable`: GPUs no allowed engine runs the model
    on give a space without entries and the reason in `refused` (a deployment pool), not an error.
    `deadline`: the `time.perf_counter()` by which the planning call must end; the tables count in it.
    `in_flight`: the requests in flight whose shares join the max_num_seqs grid (`batch_domain`; the
    workload's own by default; a deployment pool passes its model's, having taken the cap out of the
    per-engine workload). `own_clients`: each entry under a closed loop of its own max_num_seqs
    clients per replica (`ServingSpace.own_clients`; a deployment pool of a closed-loop model).

    The tables do not read the service limits (`Serving.ttft_ms`, `tpot_ms`: the encoder's SLO
    families do), so a space built for the same request under other limits is reused with the new
    workload (`_SPACES`): a looser limit's remedy, or a sweep over the limits, computes them once.

    Raises:
        InputError: options the planner cannot honour (old vLLM release, no applicable quantization).
        InfeasibleError: the workload's context exceeds the model's.
        SolverTimeoutError: the deadline passed while the tables were computed.
    """
    limitless = without_limits(workload)
    key = (cluster, limitless, options, refusable, in_flight, own_clients)

    def build() -> ServingSpace:
        return _build_space(model, cluster, limitless, options, refusable, deadline, in_flight, own_clients)

    space = memoized(_SPACES, (model,), key, build, max_entries=SPACES_KEPT)
    return dataclasses.replace(space, workload=workload)


def without_limits(workload: Serving) -> Serving:
    """`workload` without its service limits (TTFT, TPOT), which the tables never read: the key of a
    reused space (`build_space`) and of its entries' replica figures (`ServingSpace.replica_perfs`);
    one copy per workload object."""
    if workload.ttft_ms is None and workload.tpot_ms is None:
        return workload
    return memoized(
        _LIMITLESS, (workload,), (), lambda: workload.model_copy(update={"ttft_ms": None, "tpot_ms": None})
    )


_LIMITLESS: Memo[Serving] = {}
_SPACES: Memo[ServingSpace] = {}
SPACES_KEPT = 16
"""Spaces kept for reuse under other service limits: their tables run to megabytes on large clusters."""


def _build_space(
    model: ModelSpec,
    cluster: Cluster,
    workload: Serving,
    options: ServingOptions,
    refusable: bool,
    deadline: float | None,
    in_flight: int | None,
    own_clients: bool,
) -> ServingSpace:
    """`build_space` of a workload without service limits, computed."""
    rules = rules_for(parse_vllm_version(options.vllm_version))
    if not rules.subtracts_cuda_graphs:
        raise InputError(f"the serving planner follows vLLM >= 0.21 accounting; got {options.vllm_version}")
    gpus = min(options.max_gpus or cluster.world_size, cluster.world_size)
    shapes = shape_domain(model, cluster, options, gpus)
    runtimes = runtime_domain(model, options, cluster.gpu, refusable=refusable)
    batches = batch_domain(options, in_flight if in_flight is not None else workload.in_flight, shapes)
    utils = tuple(sorted(set(options.gpu_memory_utilizations)))
    mmls = max_model_len_domain(model, workload, options)
    budget = tuple(units.kib_down(math.ceil(cluster.gpu.memory_bytes * u)) for u in utils)
    space = ServingSpace(
        model,
        cluster,
        workload,
        options,
        rules,
        gpus,
        shapes,
        runtimes,
        batches,
        utils,
        mmls,
        budget,
        _empty_tables(),
        refused=None if runtimes else runtime_refusal(model, options, cluster.gpu),
        kv_index=kv_bound_offered(options),
        own_clients=own_clients,
    )
    space.tables = _tables(space, deadline=deadline)
    return space


def complete_tables(space: ServingSpace) -> ServingSpace:
    """The space with real numbers for every entry of a valid shape (also those memory rules out), so
    that an infeasibility explanation never credits a plan with placeholder times."""
    return dataclasses.replace(space, tables=_tables(space, complete=True))


def _tables(space: ServingSpace, *, complete: bool = False, deadline: float | None = None) -> ServingTables:
    """Memory and time tables; without `complete`, entries that cannot fit in the largest budget
    skip the time model and hold optimistic placeholders (`evaluated` False). Past `deadline` (checked
    before each entry), a SolverTimeoutError. With `kv_index`, each (shape, runtime)'s grid entries are
    followed by its KV-bound ones, whose values (`_kv_bound`) the first call stores in
    `space.kv_batches` and a later one (`complete_tables`) reuses."""
    if space.memo is None:
        space.memo = MemoryTerms(space.model, space.cluster, space.rules, space.workload)
    mem = space.memo
    t = _empty_tables()
    top_budget = max(space.budget_kib)
    grid, n_m = space.batches, len(space.max_model_lens)
    known = list(space.kv_batches)
    found: list[int] = []
    for s, shape in enumerate(space.shapes):
        for r, rt in enumerate(space.runtimes):
            check_deadline(deadline)
            weights = mem.weights(shape.tp, shape.pp, shape.ep_ranks, rt.quantization, rt.engine)
            weights_kib = units.kib_up(max(weights))
            t.weights_kib.append(weights_kib)
            limit = top_budget if rt.engine == "vllm" else units.kib_down(space.cluster.gpu.memory_bytes)
            # Engines spanning nodes as their launch cannot, TensorRT-LLM's attention data
            # parallelism at tp > 1 and SGLang's on architectures without it are ruled out (encoder:
            # add_engine_node_spans, add_engine_layouts); the wide ones'
            # numbers matter to an explanation, the others have none (evaluate_engine refuses the
            # layout), even in complete tables.
            unpriced = space.engine_layout_problem(rt.engine, shape) is not None
            span = node_span_problem(rt.engine, shape.span_width(rt.engine), space.cluster.gpus_per_node)
            off = span is not None or unpriced
            skip = bool(shape.violations) or unpriced or ((weights_kib >= limit or off) and not complete)
            first = len(t.evaluated)
            for batch in grid:
                for m in range(n_m):
                    if skip:
                        _placeholder(t, weights_kib)
                    else:
                        check_deadline(deadline)  # an entry's replay can take 0.1 s on a busy machine
                        _entry(space, t, s, r, batch, m, complete=complete)
            if not space.kv_index:
                continue
            for m in range(n_m):
                check_deadline(deadline)  # the KV-bound bisection and its entry's replay
                if known:
                    kv = known[(s * len(space.runtimes) + r) * n_m + m]
                else:
                    kv = 0 if skip else _kv_bound(space, t, first, s, r, m)
                    found.append(kv)
                if skip or kv == 0:
                    _placeholder(t, weights_kib)
                else:
                    _entry(space, t, s, r, kv, m, complete=complete)
    if space.kv_index and not known:
        space.kv_batches = tuple(found)
    return t


def _entry(
    space: ServingSpace, t: ServingTables, s: int, r: int, batch: int, m: int, *, complete: bool
) -> None:
    """Append the entry of (shape s, runtime r, max_model_len m) at max_num_seqs `batch`: vLLM's
    memory terms (`MemoryTerms.terms`) of the ⌈running⌉ sequences the larger share holds, and its
    times unless it cannot fit the largest budget (without `complete`); SGLang / TensorRT-LLM by
    `_engine_entry`."""
    rt = space.runtimes[r]
    if rt.engine != "vllm":
        _engine_entry(space, t, s, r, batch, m, complete=complete)
        return
    used, need, fixed, tokens = _vllm_terms(space, s, r, batch, m)
    t.mem_used_kib.append(units.kib_up(used))
    t.mml_used_kib.append(units.kib_up(need))
    t.fixed_kib.append(units.kib_up(fixed))
    t.capped.append(False)
    if not complete and max(units.kib_up(used), units.kib_up(need)) > max(space.budget_kib):
        _optimistic_times(t)
        return
    t.evaluated.append(True)
    _times(space, t, s, r, batch, tokens)


def _vllm_terms(space: ServingSpace, s: int, r: int, batch: int, m: int) -> tuple[float, float, float, int]:
    """`MemoryTerms.terms` of a vLLM entry at max_num_seqs `batch`, the KV of the ⌈running⌉ sequences
    the larger share holds (`Shape.running_at`)."""
    assert space.memo is not None
    shape = space.shapes[s]
    held = math.ceil(shape.running_at(batch, space.workload.in_flight))
    return space.memo.terms(shape, space.runtimes[r], batch, space.max_model_lens[m], held)


def _holds(space: ServingSpace, s: int, r: int, batch: int, m: int) -> bool:
    """The tables' no-preemption rule at max_num_seqs `batch`: the entry's memory with the KV of the
    running batch (`mem_used_kib`, as `_entry` writes it for every table entry) is within the largest
    budget, the memory family's test (encoder `add_memory_capacity`); for vLLM from its memory terms
    alone (`_vllm_terms`: its times do not decide), else from `_engine_entry` itself."""
    if space.runtimes[r].engine == "vllm":
        return units.kib_up(_vllm_terms(space, s, r, batch, m)[0]) <= max(space.budget_kib)
    t = _empty_tables()
    _engine_entry(space, t, s, r, batch, m, complete=False)
    return t.mem_used_kib[0] <= max(space.budget_kib)


def _kv_bound(space: ServingSpace, t: ServingTables, first: int, s: int, r: int, m: int) -> int:
    """The KV-bound max_num_seqs of (shape s, runtime r, max_model_len m), 0 when none: the largest
    batch `_holds` admits, found by bisection between the largest grid value whose entry holds (its
    table row at `first` + b · M + m) and the next grid value, or `kv_bound_cap` above the grid's top
    (the cap itself when it holds: SGLang's and TensorRT-LLM's caps, 4,096 slots and 2,048 × pp, lie
    above the grid, and a cache that holds more than the grid's top runs them: Qwen3-0.6B on one
    H200 at 128 / 256 tokens, TensorRT-LLM, 1,024 -> 2,048 sequences); on TensorRT-LLM rounded down
    to a multiple of pp (`trtllm_batch_problem`); none when it is a grid value."""
    grid, n_m, top = space.batches, len(space.max_model_lens), max(space.budget_kib)
    holding = [k for k in range(len(grid)) if t.mem_used_kib[first + k * n_m + m] <= top]
    if not holding:
        return 0
    shape, engine = space.shapes[s], space.runtimes[r].engine
    k = holding[-1]
    lo = grid[k]
    if k + 1 < len(grid):
        hi = grid[k + 1]
    else:
        hi = kv_bound_cap(engine, shape.pp)
        if hi <= lo:
            return 0
        if _holds(space, s, r, hi, m):  # the KV cache does not bind below the engine's cap
            return hi if hi not in grid else 0
    while hi - lo > 1:  # lo holds, hi does not
        mid = (lo + hi) // 2
        if _holds(space, s, r, mid, m):
            lo = mid
        else:
            hi = mid
    if engine == "trtllm":
        lo -= lo % shape.pp
    return lo if lo > 0 and lo not in grid else 0


def _empty_tables() -> ServingTables:
    return ServingTables([], [], [], [], [], [], [], [], [], [])


def _placeholder(t: ServingTables, weights_kib: int) -> None:
    t.evaluated.append(False)
    t.mem_used_kib.append(max(weights_kib, 1))
    t.mml_used_kib.append(max(weights_kib, 1))
    t.fixed_kib.append(max(weights_kib, 1))
    t.capped.append(False)
    _optimistic_times(t, placeholder=False)


def _optimistic_times(t: ServingTables, placeholder: bool = True) -> None:
    """Times of an entry that is never chosen: a family an explanation holds rules it out (an
    architecture rule, an engine's layout rule, its running cap), or memory does in tables that are
    not complete (`complete_tables` prices it)."""
    if placeholder:
        t.evaluated.append(False)
    t.step_us.append(1)
    t.ttft_us.append(1)
    t.tps_milli.append(10**12)
    t.cost_micro_usd.append(0)
    t.prompt_us.append(0)


def _unpriced_times(t: ServingTables) -> None:
    """Times of an entry the float model cannot price (an engine whose KV pool holds no request, which
    memory rules out): they meet no limit and carry no rate, so that an explanation that drops the
    memory family never credits the entry with placeholder times (DeepSeek-V3 on 2x8xH200 under
    `--engine auto` at TTFT 20 ms named `memory` beside the TTFT limit, the fastest plan at 89 ms)."""
    t.evaluated.append(False)
    t.step_us.append(UNPRICED_US)
    t.ttft_us.append(UNPRICED_US)
    t.tps_milli.append(0)
    t.cost_micro_usd.append(UNPRICED_US)
    t.prompt_us.append(UNPRICED_US)


def replica_perf(
    space: ServingSpace, shape: Shape, rt: Runtime, batch: int, tokens: int
) -> tuple[float, float, float, float, float]:
    """(TPOT s, TTFT s, output tokens/s per replica, US$ per million tokens, s one more prompt adds to
    a prefill) of one entry: max_num_seqs `batch`, running `Shape.running_at` requests."""
    w = space.workload
    running = shape.running_at(batch, w.in_flight)
    times_at = _vllm_times_at(space, shape, rt, batch, tokens)
    clients = _loop_clients(space, shape, batch)
    if clients is not None:  # a closed loop: the one rule `perf_at_batch` prices it by
        loop = perf.closed_loop_rates(
            times_at,
            clients=clients,
            limit=min(running, clients),
            osl=w.osl,
            overhead_s=perf.efficiency_for(space.cluster.gpu, "vllm").request_overhead_s,
        )
        times, ttft_s, tps = loop.times, loop.ttft_s, loop.tokens_per_s
        prompt_s = times.prompt_s / shape.pp
    else:
        times = times_at(running)
        ttft_s, tps = perf.replica_rates(times, batch=running, osl=w.osl, gpu=space.cluster.gpu)
        prompt_s = times.prompt_s / shape.pp
        ttft_s += _queue_s(space, shape, batch, tps, prompt_s, lambda: perf.lone_cycle_s(times_at, w.osl))
    gpus = shape.gpus_per_replica
    usd = space.cluster.gpu.usd_per_hour * gpus / (tps * 3600.0) * 1e6
    return times.step_s, ttft_s, tps, usd, prompt_s


def vllm_replica(
    space: ServingSpace, shape: Shape, rt: Runtime, batch: int, tokens: int
) -> perf.ReplicaShape:
    """The replica a vLLM entry steps as (max_num_seqs `batch`, a step budget of `tokens`; its CUDA
    graphs as the options' vLLM release captures them): the tables' and the role spaces' one source."""
    return perf.ReplicaShape.vllm(
        shape.tp,
        shape.pp,
        shape.ep_ranks if shape.ep else 1,
        rt.quantization,
        rt.kv_cache_dtype,
        rt.enforce_eager,
        space.options.vllm_version,
        graph_max_batch=perf.vllm_graph_max_batch(
            batch, tokens, space.cluster.gpu, space.options.vllm_version
        ),
    )


def _vllm_times_at(
    space: ServingSpace, shape: Shape, rt: Runtime, batch: int, tokens: int
) -> Callable[[float], perf.StepTimes]:
    """Step times of a vLLM entry (max_num_seqs `batch`, a step budget of `tokens`) at any running batch."""
    replica = vllm_replica(space, shape, rt, batch, tokens)
    return perf.step_times_at(space.model, space.cluster, replica, space.workload, batched_tokens=tokens)


def entry_lone_cycle_s(space: ServingSpace, i: int) -> float:
    """Seconds a lone request holds its slot on table entry i's engine (`perf.lone_cycle_s`: a running
    batch of one on the entry's own configuration), what an arrival rate's wait for a free slot needs
    beside the full load's cycle (`perf.rate_slot_wait_s`, the deployment's `rated_milli_tps`)."""
    s, r, b, m = space.unflat(i)
    shape, rt = space.shapes[s], space.runtimes[r]
    batch = space.batch_value(s, r, b, m)
    if rt.engine != "vllm":
        alone = space.workload.model_copy(
            update={"concurrency": None, "request_rate": None, "num_prompts": None}
        )
        return _engine_lone_s(space, _engine_config(space, s, r, batch, m), alone, rt.engine)
    tokens = _vllm_terms(space, s, r, batch, m)[3]
    key = (s, r, m, tokens)
    if key not in space.lone_cycles:
        times_at = _vllm_times_at(space, shape, rt, batch, tokens)
        space.lone_cycles[key] = perf.lone_cycle_s(times_at, space.workload.osl)
    return space.lone_cycles[key]


def _loop_clients(space: ServingSpace, shape: Shape, batch: int) -> float | None:
    """A closed-loop client's requests per replica at the tuple's replica count (`replicas_at`), as
    `perf_at_batch` takes them (`Serving.closed_loop` / replicas); None without a closed loop. With
    `ServingSpace.own_clients`, the entry's own slots, max_num_seqs per replica (the clients a
    concurrency of max_num_seqs × replicas gives one engine, what the deployment decoder evaluates)."""
    w = space.workload
    if space.own_clients:
        return float(batch)
    if w.closed_loop is None:
        return None
    return w.closed_loop / max(shape.replicas_at(batch, w.in_flight), 1)


def _queue_s(
    space: ServingSpace,
    shape: Shape,
    batch: int,
    tokens_per_s: float,
    prompt_s: float,
    lone_cycle: Callable[[], float] | None = None,
) -> float:
    """The client's wait (`perf.client_queue_s`) at the replica count and running batch the tuple has
    (`replicas_at`, `running_at`); `prompt_s` the time one more prompt adds to a prefill;
    `lone_cycle` a lone request's slot time, asked for an arrival rate's wait for a free slot where
    it can matter (`perf.rate_slot_wait_s`)."""
    w = space.workload
    replicas = max(shape.replicas_at(batch, w.in_flight), 1)
    running = shape.running_at(batch, w.in_flight)
    return perf.client_queue_s(w, replicas, running, tokens_per_s, prompt_s, lone_cycle=lone_cycle)


def _times(space: ServingSpace, t: ServingTables, s: int, r: int, batch: int, tokens: int) -> None:
    """Times round up (they meet limits), throughput down (it meets a rate): never optimistic. The
    entry's `replica_perf` is computed once per space (`ServingSpace.replica_perfs`)."""
    known = space.replica_perfs.setdefault(without_limits(space.workload), {})
    key = (s, r, batch, tokens)
    found = known.get(key)
    if found is None:
        found = known[key] = replica_perf(space, space.shapes[s], space.runtimes[r], batch, tokens)
    step_s, ttft_s, tps, usd, prompt_s = found
    t.step_us.append(units.us_up(step_s))
    t.ttft_us.append(units.us_up(ttft_s))
    t.tps_milli.append(units.milli_tokens_down(tps))
    t.cost_micro_usd.append(units.micro_usd(usd))
    t.prompt_us.append(units.us_up(prompt_s))


def engine_entry_config(space: ServingSpace, s: int, r: int, b: int, m: int) -> ServingConfig:
    """The configuration an SGLang / TensorRT-LLM entry (batch index `b`) is evaluated with: one
    replica (the EP engine's data ranks with EP: they size its pool), at `engine_util`."""
    return _engine_config(space, s, r, space.batch_value(s, r, b, m), m)


def _engine_config(space: ServingSpace, s: int, r: int, batch: int, m: int) -> ServingConfig:
    """`engine_entry_config` at max_num_seqs `batch`."""
    shape = space.shapes[s]
    return space.config_at(s, r, batch, space.engine_util, m, shape.ep_replicas if shape.ep else 1)


def _engine_lone_s(space: ServingSpace, config: ServingConfig, alone: Serving, engine: str) -> float:
    """A lone request's slot time on an SGLang / TensorRT-LLM entry (`perf.lone_cycle_s`, from its own
    float model at a running batch of one), for an arrival rate's wait for a free slot."""
    one = evaluate_engine(space.model, space.cluster, config, alone, engine, space.model.name, running=1.0)
    return perf.slot_cycle_s(one.perf, alone.osl)


def _engine_entry(
    space: ServingSpace, t: ServingTables, s: int, r: int, batch: int, m: int, *, complete: bool
) -> None:
    """One SGLang / TensorRT-LLM entry from `evaluate_engine` (the float model the decoder re-checks):
    memory shifted into vLLM's currency (module docstring), times and throughput as for vLLM.

    The KV comparisons are decided in exact integers (tokens) and the KiB figures nudged by at most
    the rounding, so that the tables admit exactly what the float model admits."""
    engine = space.runtimes[r].engine
    config = _engine_config(space, s, r, batch, m)
    alone = space.workload.model_copy(update={"concurrency": None, "request_rate": None, "num_prompts": None})
    shape = space.shapes[s]
    running = shape.running_at(batch, space.workload.in_flight)
    clients = _loop_clients(space, shape, batch)  # a closed loop's share: `closed_loop_rates` prices it
    ev = evaluate_engine(
        space.model, space.cluster, config, alone, engine, space.model.name, running=running, clients=clients
    )
    kv = ev.memory
    budget = space.budget_kib[space.engine_util]
    per_token = kv.kv_bytes_per_token_per_gpu
    per_seq = held_tokens(space.workload, engine, kv.block_size)
    pool = units.kib_down(kv.kv_cache_tokens * per_token) if kv.kv_cache_gib > 0 else 0
    tokens = kv.kv_cache_tokens if kv.kv_cache_gib > 0 else 0
    starts = ev.fits  # a pool shorter than max_model_len caps requests (`pool_problems`)

    def need(n_tokens: int, admitted: bool) -> int:
        kib = units.kib_up(n_tokens * per_token)
        return min(kib, pool) if admitted else max(kib, pool + 1)

    fixed = budget - pool
    held = math.ceil(running)  # the replica with the larger share holds this many
    t.mem_used_kib.append(fixed + need(held * per_seq, tokens >= held * per_seq))
    t.mml_used_kib.append(fixed + need(space.max_model_lens[m], starts))
    t.fixed_kib.append(fixed)
    capped = ev.perf.batch_size < running and ev.perf.batch_limit != "kv_cache"
    t.capped.append(capped)
    if capped:  # the engine caps running requests below the tuple's: never admissible
        _optimistic_times(t)  # ruled out by `RUNNING_CAP_FAMILY`, which an explanation holds
        # The memory figure is pushed over the budget too: the decoder's binding-constraint line on
        # the next max_num_seqs (`decoder.binding_constraints`) and `_holds` (the KV-bound batch stops
        # at the engine's cap) read an entry over the budget as one the engine does not run.
        t.mem_used_kib[-1] = max(t.mem_used_kib[-1], budget + 1)
        return
    if not complete and max(t.mem_used_kib[-1], t.mml_used_kib[-1]) > budget:
        _optimistic_times(t)
        return
    p = ev.perf
    if not (0 < p.output_tokens_per_s_per_replica < math.inf):  # no sequence fits: nothing runs
        _unpriced_times(t)
        # memory's own verdict (the pool holds fewer tokens than one request: already over the
        # budget by `need`), kept as a guard
        t.mem_used_kib[-1] = max(t.mem_used_kib[-1], budget + 1)
        return
    t.evaluated.append(True)
    t.step_us.append(units.us_up(p.tpot_ms / 1e3))
    prompt_s = p.prompt_ms / 1e3 / shape.pp
    queue_s = 0.0
    if clients is None:
        tps = p.output_tokens_per_s_per_replica
        queue_s = _queue_s(
            space, shape, batch, tps, prompt_s, lambda: _engine_lone_s(space, config, alone, engine)
        )
    t.ttft_us.append(units.us_up(p.ttft_ms / 1e3 + queue_s))
    t.tps_milli.append(units.milli_tokens_down(p.output_tokens_per_s_per_replica))
    t.cost_micro_usd.append(units.micro_usd(p.usd_per_million_tokens))
    t.prompt_us.append(units.us_up(prompt_s))
