"""Concrete configurations: the points the cost model evaluates and the solver decides.

`ServingConfig` is one vLLM deployment (per replica shape plus replica count); `TrainingConfig` is one
Megatron/DeepSpeed training layout. Both are frozen; the solver's decoder builds them and
`memory/` and `perf/` evaluate them.
"""

from __future__ import annotations

import numbers
from enum import Enum
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, ModelWrapValidatorHandler, field_validator, model_validator

from autoparallel.bounds import BOUNDS, UserInput, clean_text

TrainingPrecision = Literal["bf16", "fp8", "fp16"]
"""The precisions a training job runs in, each priced by the memory and step-time model and emitted by
both frameworks: `bf16` (bf16 weights and GEMMs, an fp32 main_grad under Megatron), `fp8` (FP8 GEMMs on
FP8 tensor cores, bf16 master weights: `perf.training_layer.peak_flops`, `memory.training_states`) and
`fp16` (fp16 with dynamic loss scaling and fp16 gradients, Megatron's `--fp16`, DeepSpeed's `fp16`
section; what bf16 runs as on GPUs without BF16 tensor cores, `validation.job_precision`)."""
TRAINING_PRECISIONS: tuple[str, ...] = ("bf16", "fp8", "fp16")
"""The values of `TrainingPrecision`, in the order messages list them."""
PRECISION_RULE = "use bf16, fp8 or fp16"
"""What a precision outside `TRAINING_PRECISIONS` is told: the one text of the rule, which
`precision_problem` words for `validation.training_problems` and `frameworks._common.effective_precision`."""


def precision_problem(precision: object) -> str | None:
    """Why `precision` is no training precision (`TRAINING_PRECISIONS`, compared exactly: "FP8" and
    "bf16 " are not read as fp8 and bf16), or None."""
    if isinstance(precision, str) and precision in TRAINING_PRECISIONS:
        return None
    return f"precision={clean_text(repr(precision), 40)}: {PRECISION_RULE}"


KvCacheDtype = Literal["auto", "bfloat16", "float16", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_inc"]
"""vLLM 0.32's `--kv-cache-dtype` values (config/cache.py `CacheDType`); bytes per element in
`memory/vllm_config.py`."""


VLLM_GPU_MEMORY_UTILIZATION = 0.92
"""vLLM 0.32's `--gpu-memory-utilization` default (config/cache.py `CacheConfig.gpu_memory_utilization`;
0.90 before 0.21, `memory.vllm_versions.rules_for`): the value a `ServingConfig` and the planner start
from, and the one the vLLM emitter leaves unwritten."""


BASE_PORT = 8000
"""`--port` of the first engine on a node (`vllm serve`'s and `trtllm-serve`'s default; SGLang's lines
name theirs); engines sharing a node take BASE_PORT + 1, + 2, ... The deployment decoder assigns them,
the emitters write them."""


VLLM_QUANTIZATION_METHODS: tuple[str, ...] = (
    "auto_awq",
    "auto_gptq",
    "awq",
    "awq_marlin",
    "compressed-tensors",
    "deepseek_v4_fp8",
    "experts_int8",
    "fbgemm_fp8",
    "fp8",
    "fp8_per_block",
    "fp8_per_channel",
    "fp8_per_tensor",
    "fp_quant",
    "gpt_oss_mxfp4",
    "gptq",
    "gptq_marlin",
    "humming",
    "inc",
    "int8_per_channel_weight_only",
    "modelopt",
    "modelopt_fp4",
    "modelopt_mixed",
    "modelopt_mxfp8",
    "moe_wna16",
    "mxfp4",
    "mxfp8",
    "nvfp4_per_token",
    "online",
    "quark",
    "torchao",
)
"""`--quantization` values vLLM 0.32 accepts (`QUANTIZATION_METHODS` in
vllm/model_executor/layers/quantization/__init__.py)."""

QUANTIZATION_ALIASES = {"fp8_per_tensor": "fp8"}
"""`--quantization` names read as another: vLLM 0.32 resolves online `fp8` to its `fp8_per_tensor`
shorthand (`config/quantization.py` `_ONLINE_SHORTHANDS`), the name the vLLM emitter writes."""


def canonical_quantization(value: Any) -> Any:
    """A `--quantization` value with its alias resolved (`QUANTIZATION_ALIASES`) and a method of
    `VLLM_QUANTIZATION_METHODS` in its own lower case (`FP8` is `fp8`: vLLM's argument parser takes the
    lower case only, and `memory` read `FP8` as fp8 where `plan` refused it), any case; other values as
    given."""
    if isinstance(value, str):
        key = value.strip().lower()
        return QUANTIZATION_ALIASES.get(key, key if key in VLLM_QUANTIZATION_METHODS else value)
    return value


def given_quantization(value: Any) -> Any:
    """A configuration's or option's quantization as the commands read it: `none` (any case, as
    `--quantization none` and the front and sweep tables write it) is None, no weight quantization;
    other values `canonical_quantization`."""
    if isinstance(value, str) and value.strip().lower() == "none":
        return None
    return canonical_quantization(value)


class _Frozen(UserInput):
    model_config = ConfigDict(frozen=True, extra="forbid")

    DERIVED: ClassVar[tuple[str, ...]] = ()
    """Properties a plan's JSON writes beside the fields (`plan --json`'s config): read back, each is
    checked against the fields rather than refused, so that JSON round-trips into the config."""

    @model_validator(mode="wrap")
    @classmethod
    def _derived_agree(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        if not isinstance(data, dict) or not any(k in data for k in cls.DERIVED):
            return handler(data)
        given = {k: data[k] for k in cls.DERIVED if k in data}
        made = handler({k: v for k, v in data.items() if k not in given})
        wrong = [
            f"{k}={v!r} (the fields give {getattr(made, k)!r})"
            for k, v in given.items()
            if getattr(made, k) != v
        ]
        if wrong:
            raise ValueError("derived values disagree with the fields: " + "; ".join(wrong))
        return made


class ServingConfig(_Frozen):
    """One vLLM deployment: `replicas` identical engines of tp × pp GPUs each."""

    DERIVED: ClassVar[tuple[str, ...]] = ("gpus",)

    tp: int = Field(default=1, ge=1, le=BOUNDS["tp"].hi)
    """Tensor-parallel degree (`--tensor-parallel-size`). 1 means disabled."""
    pp: int = Field(default=1, ge=1, le=BOUNDS["pp"].hi)
    """Pipeline-parallel degree (`--pipeline-parallel-size`). 1 means disabled."""
    replicas: int = Field(default=1, ge=1, le=BOUNDS["dp"].hi)
    """Independent data-parallel engine replicas (`--data-parallel-size` or separate servers)."""
    enable_expert_parallel: bool = False
    """MoE experts sharded over tp × replicas (vLLM `--enable-expert-parallel`) instead of TP-sliced."""
    max_num_seqs: int = Field(default=256, ge=1, le=BOUNDS["max_num_seqs"].hi)
    """Most sequences in one running batch (`--max-num-seqs`)."""
    max_model_len: int = Field(default=8192, ge=1, le=BOUNDS["max_model_len"].hi)
    """Longest prompt + output per request (`--max-model-len`)."""
    max_num_batched_tokens: int | None = Field(default=None, ge=1, le=BOUNDS["max_num_batched_tokens"].hi)
    """Token budget per scheduler step (`--max-num-batched-tokens`); None: vLLM's default."""
    gpu_memory_utilization: float = Field(VLLM_GPU_MEMORY_UTILIZATION, gt=0, le=1, allow_inf_nan=False)
    """Fraction of GPU memory vLLM may use (`--gpu-memory-utilization`)."""
    mem_fraction_static: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)
    """SGLang's `--mem-fraction-static`: (weights + KV pool) / GPU memory (memory/sglang.py); None:
    SGLang's own default, which `ServerArgs._handle_gpu_memory_settings` computes only when the flag is
    unset (`memory.sglang.default_mem_fraction_static`). Another engine refuses it
    (`perf.serving_engines.memory_knob_problem`)."""
    free_gpu_memory_fraction: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)
    """TensorRT-LLM's `kv_cache_config.free_gpu_memory_fraction`: the share of the memory free after
    loading that `KvCacheCreator._cal_max_memory` gives the KV pool (memory/trtllm.py); None: its
    default, `memory.trtllm.DEFAULT_FREE_GPU_MEMORY_FRACTION`. Another engine refuses it
    (`perf.serving_engines.memory_knob_problem`)."""
    kv_cache_dtype: KvCacheDtype = "auto"
    """`--kv-cache-dtype`: `auto` (the model dtype), `bfloat16`, `float16` or an fp8 variant."""
    quantization: str | None = None
    """Weight quantization vLLM applies (`--quantization`); None: as the checkpoint is. vLLM 0.32's name
    for the online fp8 it plans, `fp8_per_tensor` (what the vLLM emitter writes), is read as `fp8`
    (`canonical_quantization`), so a plan's printed line evaluates as planned."""
    enforce_eager: bool = False
    """No CUDA graphs (`--enforce-eager`): frees their memory, costs decode latency."""

    @field_validator("quantization", mode="before")
    @classmethod
    def _canonical_quantization(cls, value: Any) -> Any:
        return given_quantization(value)

    @property
    def gpus_per_replica(self) -> int:
        """GPUs one engine uses."""
        return self.tp * self.pp

    @property
    def gpus(self) -> int:
        """GPUs all replicas use."""
        return self.tp * self.pp * self.replicas

    @property
    def shares_experts(self) -> bool:
        """The replicas are the data-parallel ranks of one engine that shard the experts over all of
        them (vLLM DP + EP; SGLang and TensorRT-LLM attention DP), not separate engines."""
        return self.enable_expert_parallel and self.replicas > 1

    @property
    def engine_gpus(self) -> int:
        """GPUs one engine process group spans: all replicas when they share the experts, else one
        replica's."""
        return self.gpus if self.shares_experts else self.gpus_per_replica


class ZeroStage(str, Enum):
    """How model states are sharded over data-parallel ranks."""

    NONE = "0"
    """Replicated weights, gradients and optimizer states (plain DDP)."""
    OPTIMIZER = "1"
    """ZeRO-1: optimizer states sharded."""
    GRADIENTS = "2"
    """ZeRO-2: optimizer states and gradients sharded."""
    PARAMETERS = "3"
    """ZeRO-3 / FSDP: everything sharded; parameters gathered per layer."""
    DISTRIBUTED_OPTIMIZER = "dist"
    """Megatron distributed optimizer: fp32 master + Adam states sharded (like ZeRO-1)."""

    @classmethod
    def _missing_(cls, value: object) -> ZeroStage | None:
        """The stage as DeepSpeed writes it, an integer 0-3 (`zero_optimization.stage`); a boolean is
        not a stage."""
        if isinstance(value, numbers.Integral) and not isinstance(value, bool) and 0 <= int(value) <= 3:
            return cls(str(int(value)))
        return None


class Recompute(str, Enum):
    """Activation recomputation."""

    NONE = "none"
    """Keep every activation."""
    SELECTIVE = "selective"
    """Recompute attention internals only (Korthikanti et al. 2022, §4.2)."""
    FULL = "full"
    """Keep only each layer's input; recompute the layer in backward."""


def even_split(num_layers: int, pp: int) -> tuple[int, ...]:
    """Layers per stage as Megatron splits them by default and DeepSpeed's `partition_uniform`
    (deepspeed/runtime/utils.py) does: as even as possible, the remainder on the first stages."""
    base, extra = divmod(num_layers, pp)
    return tuple(base + (1 if s < extra else 0) for s in range(pp))


class TrainingConfig(_Frozen):
    """One training layout (Megatron-Core / DeepSpeed vocabulary)."""

    DERIVED: ClassVar[tuple[str, ...]] = ("grad_accum", "world_size")

    tp: int = Field(default=1, ge=1, le=BOUNDS["tp"].hi)
    """Tensor-parallel degree."""
    pp: int = Field(default=1, ge=1, le=BOUNDS["pp"].hi)
    """Pipeline-parallel degree."""
    dp: int = Field(default=1, ge=1, le=BOUNDS["dp"].hi)
    """Data-parallel degree (replicas of the model, sharded by ZeRO)."""
    cp: int = Field(default=1, ge=1, le=BOUNDS["cp"].hi)
    """Context-parallel degree (sequence split over ranks; how they exchange: `cp_comm`)."""
    cp_comm: Literal["p2p", "a2a"] = "p2p"
    """How context-parallel ranks exchange attention inputs, named as Megatron-Core's `--cp-comm-type`:
    `p2p`, ring attention (K/V chunks passed round the ring, overlapped with the attention core);
    `a2a`, all-to-all over attention heads (DeepSpeed-Ulysses; Transformer Engine's
    `AttnFuncWithCPAndQKVOA2A`): each rank gets the whole sequence for heads/cp heads, on the
    critical path. DeepSpeed runs only `a2a` (`validation.cp_comm_problem` has both kinds' head rules)."""
    ep: int = Field(default=1, ge=1, le=BOUNDS["ep"].hi)
    """Expert-parallel degree (MoE experts split over ranks, carved out of dp × cp)."""
    etp: int | None = Field(default=None, ge=1, le=BOUNDS["tp"].hi)
    """Expert tensor-parallel degree (None: same as tp), in the bound of a tensor-parallel degree as
    `autoparallel evaluate --etp` takes it."""
    vp: int = Field(default=1, ge=1, le=BOUNDS["vp"].hi)
    """Virtual pipeline stages per rank (interleaved 1F1B). 1 means not interleaved."""
    micro_batch: int = Field(default=1, ge=1, le=BOUNDS["micro_batch"].hi)
    """Sequences per micro-batch per data-parallel rank."""
    global_batch: int = Field(default=1, ge=1, le=BOUNDS["global_batch"].hi)
    """Sequences per optimizer step over all data-parallel ranks."""
    seq_len: int = Field(default=4096, ge=1, le=BOUNDS["seq_len"].hi)
    """Tokens per sequence."""
    zero: ZeroStage = ZeroStage.DISTRIBUTED_OPTIMIZER
    """Model-state sharding."""
    recompute: Recompute = Recompute.SELECTIVE
    """Activation recomputation (all stages, unless `stage_recompute` is set)."""
    stage_recompute: tuple[Recompute, ...] | None = None
    """Recomputation per pipeline stage (overrides `recompute`), length pp."""
    sequence_parallel: bool = True
    """Megatron sequence parallelism (norm/dropout activations split over tp). False at tp=1 whatever
    is given, as Megatron's `validate_args` turns it off there (megatron/training/arguments.py:
    "Disabling sequence parallelism because tensor model parallelism is disabled")."""
    offload_optimizer: bool = False
    """Optimizer states in CPU memory (ZeRO-Offload)."""
    offload_params: bool = False
    """Parameters in CPU memory (ZeRO-3 only)."""
    layers_per_stage: tuple[int, ...] | None = None
    """Decoder layers per pipeline stage (None: as even as possible, remainder on the first stages)."""
    precision: str = "bf16"
    """One of `TRAINING_PRECISIONS` (`TrainingPrecision`: bf16, fp8, fp16). The API refuses another
    (`precision_problem`, as `api.evaluate` and `api.training_memory` take a config); a config built
    directly keeps its text for the validation rules and the emitters, which name it the same way."""
    moe_capacity_factor: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    """MoE token capacity per expert as a multiple of the balanced load (Megatron-Core
    `--moe-expert-capacity-factor` with padding); None: dropless, balanced routing."""
    ep_overlap: bool = False
    """Expert all-to-all hidden behind another micro-batch's compute (Megatron-Core
    `--overlap-moe-expert-parallel-comm`, DeepSeek-V3's DualPipe)."""

    @model_validator(mode="before")
    @classmethod
    def _no_sequence_parallel_at_tp1(cls, data: Any) -> Any:
        """Sequence parallelism off at tp 1 (the field's doc): a plan's JSON says what Megatron runs."""
        if isinstance(data, dict) and data.get("tp", 1) == 1 and data.get("sequence_parallel", True):
            return {**data, "sequence_parallel": False}
        return data

    @property
    def world_size(self) -> int:
        """GPUs used: tp × pp × dp × cp."""
        return self.tp * self.pp * self.dp * self.cp

    @property
    def grad_accum(self) -> int:
        """Micro-batches per optimizer step per data-parallel rank."""
        return self.global_batch // (self.micro_batch * self.dp)

    def stage_layers(self, num_layers: int) -> tuple[int, ...]:
        """Layers on each pipeline stage."""
        if self.layers_per_stage is not None:
            return self.layers_per_stage
        return even_split(num_layers, self.pp)

    def recompute_of(self, stage: int) -> Recompute:
        """Recomputation mode of pipeline stage `stage`."""
        if self.stage_recompute is not None:
            return self.stage_recompute[stage]
        return self.recompute


def config_dict(config: ServingConfig | TrainingConfig, engine: str | None = None) -> dict[str, Any]:
    """A configuration's JSON (`model_dump(mode="json")`) without the other engines' KV-pool knobs
    when it runs on `engine` (`ENGINE_POOL_FIELDS`: vLLM's `gpu_memory_utilization` on SGLang and
    TensorRT-LLM, SGLang's `mem_fraction_static` and TensorRT-LLM's `free_gpu_memory_fraction`
    elsewhere; `perf.serving_engines.ENGINE_MEMORY_KNOBS`): the one rule of `ServingPlan.to_dict`,
    `RunnerUp.to_dict`, `api._optimum` and `engine_compare._row` (docs/sweeps.md: empty for those
    engines, "as in plan --json")."""
    out = config.model_dump(mode="json")
    for owner, field in ENGINE_POOL_FIELDS.items():
        if engine is not None and owner != engine:
            out.pop(field, None)
    return out


ENGINE_POOL_FIELDS = {
    "vllm": "gpu_memory_utilization",
    "sglang": "mem_fraction_static",
    "trtllm": "free_gpu_memory_fraction",
}
"""The `ServingConfig` field of each engine's own KV-pool knob (`config_dict` leaves the others out of
a plan's JSON: they mean nothing on that engine)."""
