"""Per-GPU serving memory exactly as vLLM accounts for it at start-up, version-aware.

vLLM (`v1/worker/gpu_worker.py determine_available_memory`, 0.32) profiles one dummy forward and
one sampler pass, then gives the KV cache what is left of the budget:

    budget   = ceil(total × gpu_memory_utilization)                    (v1/worker/utils.request_memory)
    KV cache = budget − weights − activation peak − non-torch memory [− CUDA graphs, from 0.21]
    blocks   = KV cache // bytes per block; every pipeline stage keeps the smallest count

`vllm_memory` evaluates that for one deployment and reports it with the numbers vLLM would log,
per stage, and whether the engine can start (with vLLM-like messages and the fix when it cannot).
Components live in `vllm_profile.py`, the KV layout in `vllm_kv.py`, release differences in
`vllm_versions.py`. All figures are per GPU.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from autoparallel.bounds import check_number, clean_text, revalidated
from autoparallel.errors import InputError
from autoparallel.memory import vllm_profile as prof
from autoparallel.memory.sglang import sglang_loaded_spec, sglang_mxfp4_alignment
from autoparallel.memory.trtllm import DEFAULT_MAX_NUM_TOKENS as TRTLLM_DEFAULT_MAX_NUM_TOKENS
from autoparallel.memory.vllm_config import (
    Usage,
    apply_dtype_and_quant,
    dtype_problem,
    kv_block_size,
    kv_dtype_bytes,
    layer_kv_specs,
    load_dtype,
    resolve_batch_defaults,
    validate,
    vllm_stored_kv_dtype,
)
from autoparallel.memory.vllm_kv import plan_kv
from autoparallel.memory.vllm_problems import start_problems, with_fixes
from autoparallel.memory.vllm_versions import DEFAULT_VLLM_VERSION, VllmRules, parse_vllm_version, rules_for
from autoparallel.models.spec import ModelSpec

if TYPE_CHECKING:
    from autoparallel.configs import ServingConfig
    from autoparallel.hardware import GPU

__all__ = [
    "DEFAULT_VLLM_VERSION",
    "StageMemory",
    "Usage",
    "VllmMemoryReport",
    "kv_block_size",
    "layer_kv_specs",
    "resolve_batch_defaults",
    "serving_memory",
    "vllm_memory",
]


GIB = float(2**30)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class StageMemory(_Frozen):
    """One pipeline stage's rank, as its own start-up log would show it."""

    stage: int
    """Pipeline stage index (0 = first)."""
    num_layers: int
    """Decoder layers on the stage."""
    weights_gib: float
    """'Model loading took': parameters of this rank + RoPE cache, GiB."""
    activation_peak_gib: float
    """Torch peak increase of the profile run, GiB."""
    non_torch_gib: float
    """Non-torch memory counted by the profile (cuBLAS, NCCL / custom all-reduce buffers), GiB."""
    cuda_graph_gib: float
    """Estimated CUDA-graph memory, GiB (subtracted from the KV budget only where the release does)."""
    kv_cache_gib: float
    """'Available KV cache memory' on this rank, GiB (negative: cannot start)."""
    num_blocks: int
    """KV blocks this rank's memory holds before all stages take the minimum."""
    kv_bytes_per_token_all_layers_per_gpu: float
    """Bytes one cached token costs on this rank when every attention layer of the stage keeps it, at
    the KV dtype as named (the report's field of that name, for this stage): what SGLang's and
    TensorRT-LLM's pool rules divide this rank's memory by."""


class VllmMemoryReport(_Frozen):
    """Per-GPU memory of one vLLM deployment, as vLLM's start-up accounts for it."""

    vllm_version: str
    """Release the accounting follows, e.g. '0.32.0 (V1)'."""
    gpu: str
    """GPU catalog name."""
    tp: int
    """Tensor-parallel degree."""
    pp: int
    """Pipeline-parallel degree."""
    ep: int
    """Expert-parallel ranks (tp × dp with --enable-expert-parallel, else 1)."""
    total_gib: float
    """Driver-reported device memory, GiB."""
    gpu_memory_utilization: float
    """Fraction of device memory given to vLLM."""
    budget_gib: float
    """total × gpu_memory_utilization, GiB."""
    weights_gib: float
    """Weights on the limiting stage's rank (quantization-aware, TP/PP/EP-sharded), GiB."""
    activation_peak_gib: float
    """Activation peak of the profile run (dummy forward + sampler) on that rank, GiB."""
    non_torch_gib: float
    """Non-torch memory on that rank, GiB."""
    cuda_graph_gib: float
    """Estimated CUDA-graph memory on that rank, GiB (0 with enforce_eager)."""
    cuda_graph_in_budget: bool
    """The release subtracts `cuda_graph_gib` from the KV budget (from 0.21); before, graphs take
    the headroom that gpu_memory_utilization leaves."""
    kv_cache_gib: float
    """Available KV cache memory on the limiting stage's rank, GiB."""
    kv_cache_tokens: int
    """'GPU KV cache size: N tokens' (minimum over stages; hybrid-aware as the release computes it)."""
    block_size: int
    """Tokens per KV block (smallest over KV cache groups)."""
    num_gpu_blocks: int
    """KV blocks allocated on every rank (minimum over stages)."""
    kv_cache_groups: int
    """KV cache groups (1 for uniform models; more under the hybrid allocator)."""
    max_model_len: int
    """Longest request, tokens."""
    max_num_seqs: int
    """Sequences per batch (resolved default where not given)."""
    max_num_batched_tokens: int
    """Tokens of the profile batch / per scheduler step (resolved default where not given)."""
    kv_cache_dtype: str
    """--kv-cache-dtype."""
    kv_cache_dtype_stored: str
    """The cache vLLM keeps: `kv_cache_dtype`, except under `auto` the checkpoint's declared KV dtype
    (ModelOpt FP8 KV: `fp8_e4m3`) and `fp8_ds_mla` for DeepSeek-V3.2."""
    max_concurrency: float
    """Requests of max_model_len the KV cache holds at once, as vLLM logs it."""
    kv_bytes_per_token_per_gpu: float
    """Bytes one more cached (full-attention) token costs on the limiting stage's GPU."""
    kv_bytes_per_token_all_layers_per_gpu: float
    """Bytes one cached token costs on that GPU when every attention layer keeps it, sliding-window
    and chunked layers included, at the KV dtype as named (`auto`: the model's dtype): SGLang's
    profile (`get_cell_size_per_token` over all layers) and TensorRT-LLM's default pool (one
    attention window for all layers). Equal to the above for models without such layers, except
    DeepSeek-V3.2 under `auto`, which vLLM alone stores in FP8 (`kv_dtype_bytes`)."""
    stage: int
    """The pipeline stage that limits the KV cache (fewest blocks)."""
    stages: tuple[StageMemory, ...]
    """Every stage's breakdown."""
    fits: bool
    """vLLM can start: weights fit, KV memory is positive and holds one max_model_len request."""
    problems: tuple[str, ...]
    """Why it cannot start (or will fail capturing graphs), with the numbers and the fix."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field (stages as a list of dicts)."""
        return self.model_dump(mode="json")

    def at_stage(self, stage: int) -> VllmMemoryReport:
        """This report with `stage`'s rank as the one read: its weights, activation peak, non-torch
        memory, CUDA graphs, KV memory and per-token bytes (the deployment-wide fields, vLLM's block
        count and token capacity among them, unchanged). Itself for the limiting stage."""
        if stage == self.stage:
            return self
        st = self.stages[stage]
        return self.model_copy(
            update={
                "stage": stage,
                "weights_gib": st.weights_gib,
                "activation_peak_gib": st.activation_peak_gib,
                "non_torch_gib": st.non_torch_gib,
                "cuda_graph_gib": st.cuda_graph_gib,
                "kv_cache_gib": st.kv_cache_gib,
                "kv_bytes_per_token_all_layers_per_gpu": st.kv_bytes_per_token_all_layers_per_gpu,
            }
        )

    def stage_views(self) -> tuple[VllmMemoryReport, ...]:
        """`at_stage` of every stage, the limiting one first: what an engine that sizes each rank's KV
        pool by its own rule (SGLang, TensorRT-LLM) reads, keeping the smallest."""
        order = (self.stage, *(s for s in range(len(self.stages)) if s != self.stage))
        return tuple(self.at_stage(s) for s in order)


def _resolve_model(model: ModelSpec | str) -> ModelSpec:
    if isinstance(model, ModelSpec):
        return model
    from autoparallel.models import load_model

    return load_model(model)


def _resolve_gpu(gpu: GPU | str) -> GPU:
    from autoparallel.hardware import GPU, get_gpu

    if isinstance(gpu, str):
        return get_gpu(gpu)
    if not isinstance(gpu, GPU):
        raise InputError(f"gpu must be a GPU or its name, got {type(gpu).__name__}")
    # A GPU copied to NaN GiB or 0 TFLOP/s skips pydantic's checks, so it is validated again; a GPU is
    # frozen with plain immutable fields and its validators are pure, so one that came back as itself
    # does so again (remembered by identity: the tables ask at every point).
    hit = _VALID_GPUS.get(id(gpu))
    if hit is not None and hit is gpu:
        return gpu
    checked = revalidated(gpu, "gpu")
    if checked is gpu:
        while len(_VALID_GPUS) >= 1024:
            del _VALID_GPUS[next(iter(_VALID_GPUS))]
        _VALID_GPUS[id(gpu)] = gpu
    return checked


_VALID_GPUS: dict[int, GPU] = {}
"""GPUs `_resolve_gpu` found valid as they are, by id (each entry keeps its GPU, so an id is not reused)."""


def _require_kinds(flags: dict[str, Any]) -> None:
    """`vllm_memory`'s switches are booleans and its names strings (or None).

    Raises:
        InputError: the first that is not, named.
    """
    for name, value in flags.items():
        if name in ("enable_expert_parallel", "enforce_eager") and not isinstance(value, bool):
            raise InputError(f"{name} must be True or False, got {clean_text(repr(value), 40)}")
        if name not in ("enable_expert_parallel", "enforce_eager") and not isinstance(value, str | None):
            raise InputError(f"{name} must be a name, got {type(value).__name__}")


def vllm_memory(
    model: ModelSpec | str,
    gpu: GPU | str,
    *,
    tp: int = 1,
    pp: int = 1,
    enable_expert_parallel: bool = False,
    dp: int = 1,
    gpu_memory_utilization: float | None = None,
    max_model_len: int | None = None,
    max_num_seqs: int | None = None,
    max_num_batched_tokens: int | None = None,
    quantization: str | None = None,
    kv_cache_dtype: str = "auto",
    enforce_eager: bool = False,
    vllm_version: str = DEFAULT_VLLM_VERSION,
    dtype: str = "auto",
    usage: Usage = "serve",
    pp_layer_partition: tuple[int, ...] | None = None,
    engine: str = "vllm",
) -> VllmMemoryReport:
    """Per-GPU memory of `vllm serve MODEL` with these flags, on `gpu`, as `vllm_version` accounts it,
    and whether vLLM starts at all: a model or weight format the release does not run on the GPU
    (`engine_support.engine_runtime_problem`: an architecture it dropped, GPTQ with desc_act, MXFP4
    below compute capability 8.0, ...) does not fit, whatever the memory, its reason first among the
    problems (`autoparallel memory` and `analyze` report it; the planners refuse such engines first).

    `max_num_seqs` / `max_num_batched_tokens` None: the release's defaults for the GPU, except that
    TensorRT-LLM (`engine` "trtllm") profiles its warm-up forward at its own `max_num_tokens` default
    (`memory.trtllm.DEFAULT_MAX_NUM_TOKENS`, what frameworks/trtllm.py writes; `_torch/pyexecutor/
    _util.py` `KvCacheCreator`), not vLLM's GPU-dependent step budget; SGLang's pool reads no
    activation peak, its own `--chunked-prefill-size` default sizes its reservation; `dtype` is
    vLLM's --dtype; `usage` "offline" uses the `LLM` class defaults; `pp_layer_partition` mirrors
    VLLM_PP_LAYER_PARTITION; `engine`: whose loader resolves `--dtype auto` (`load_dtype`: SGLang and
    TensorRT-LLM keep 16-bit weights where vLLM runs float32), for the reports the other engines'
    pool rules read; vLLM's `--dtype` refusals apply to vLLM only.

    Raises:
        InputError: a degree the model or vLLM rejects, an unknown dtype / quantization / KV dtype /
            engine / usage, a max_model_len beyond the model's, a utilization outside (0, 1].
    """
    from autoparallel.perf.serving_efficiency import ENGINES

    if engine not in ENGINES:
        raise InputError(f"engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if usage not in ("serve", "offline"):
        raise InputError(f"usage {usage!r}: expected serve (`vllm serve`) or offline (the `LLM` class)")
    tp, pp, dp = (check_number(n, v) for n, v in (("tp", tp), ("pp", pp), ("dp", dp)))
    max_model_len, max_num_seqs, max_num_batched_tokens = (
        None if v is None else check_number(n, v)
        for n, v in (
            ("max_model_len", max_model_len),
            ("max_num_seqs", max_num_seqs),
            ("max_num_batched_tokens", max_num_batched_tokens),
        )
    )
    if gpu_memory_utilization is not None:
        gpu_memory_utilization = check_number("gpu_memory_utilization", gpu_memory_utilization, integer=False)
    if engine == "trtllm" and max_num_batched_tokens is None:
        max_num_batched_tokens = TRTLLM_DEFAULT_MAX_NUM_TOKENS
    _require_kinds(
        dict(
            enable_expert_parallel=enable_expert_parallel,
            enforce_eager=enforce_eager,
            quantization=quantization,
            kv_cache_dtype=kv_cache_dtype,
            vllm_version=vllm_version,
            dtype=dtype,
        )
    )
    spec = _resolve_model(model)
    g = _resolve_gpu(gpu)
    # The engine generation depends on the GPU where the release still had V0 (0.8-0.10 fall back
    # to V0 below compute capability 8.0: `vllm_versions.V0_FALLBACK_RELEASES`).
    rules = rules_for(parse_vllm_version(vllm_version, g.compute_capability))
    validate(
        spec,
        tp=tp,
        pp=pp,
        dp=dp,
        ep_on=enable_expert_parallel,
        util=gpu_memory_utilization,
        max_model_len=max_model_len,
        partition=pp_layer_partition,
    )
    if pp_layer_partition is not None:  # validated: whole numbers, as vLLM's int() reads them
        pp_layer_partition = tuple(int(v) for v in pp_layer_partition)
    settings: dict[str, Any] = dict(
        tp=tp,
        pp=pp,
        enable_expert_parallel=enable_expert_parallel,
        dp=dp,
        gpu_memory_utilization=gpu_memory_utilization,
        max_model_len=max_model_len,
        max_num_seqs=max_num_seqs,
        max_num_batched_tokens=max_num_batched_tokens,
        quantization=quantization,
        kv_cache_dtype=kv_cache_dtype,
        enforce_eager=enforce_eager,
        dtype=dtype,
        usage=usage,
        pp_layer_partition=pp_layer_partition,
        engine=engine,
    )

    def evaluate(**overrides: Any) -> VllmMemoryReport | None:
        changed = {**settings, **overrides}
        if "tp" in overrides:
            changed["pp_layer_partition"] = pp_layer_partition
        try:
            validate(
                spec,
                tp=changed["tp"],
                pp=pp,
                dp=dp,
                ep_on=enable_expert_parallel,
                util=changed["gpu_memory_utilization"],
                max_model_len=changed["max_model_len"],
                partition=pp_layer_partition,
            )
            return _evaluate(spec, g, rules, **changed)
        except InputError:
            return None

    report = _evaluate(spec, g, rules, **settings)
    if not report.fits:
        quantized = spec.quantization is not None or quantization is not None
        report = with_fixes(report, quantized=quantized, evaluate=evaluate)
    if engine != "vllm":
        return report
    from autoparallel.perf.engine_support import engine_runtime_problem  # memory and perf: one layer

    problem = engine_runtime_problem("vllm", quantization, kv_cache_dtype, spec, g, vllm_version=vllm_version)
    if problem is None:
        return report
    return report.model_copy(update={"fits": False, "problems": (problem, *report.problems)})


def _evaluate(
    spec: ModelSpec,
    g: GPU,
    rules: VllmRules,
    *,
    tp: int,
    pp: int,
    enable_expert_parallel: bool,
    dp: int,
    gpu_memory_utilization: float | None,
    max_model_len: int | None,
    max_num_seqs: int | None,
    max_num_batched_tokens: int | None,
    quantization: str | None,
    kv_cache_dtype: str,
    enforce_eager: bool,
    dtype: str,
    usage: Usage,
    pp_layer_partition: tuple[int, ...] | None,
    engine: str,
) -> VllmMemoryReport:
    """The report for validated inputs, problems without the fix sentence."""
    if engine == "vllm" and (problem := dtype_problem(spec, g, dtype, quantization)) is not None:
        raise InputError(problem)
    spec = apply_dtype_and_quant(
        spec, load_dtype(spec, g, engine) if dtype == "auto" else dtype, quantization
    )
    kv_bytes = kv_dtype_bytes(
        spec, kv_cache_dtype, engine="vllm", from_checkpoint=rules.kv_dtype_from_checkpoint
    )
    mml = max_model_len or spec.vllm_default_max_model_len
    seqs, tokens = resolve_batch_defaults(rules, g, mml, max_num_seqs, max_num_batched_tokens, usage)
    ep = tp * dp if enable_expert_parallel else 1
    util = (
        gpu_memory_utilization if gpu_memory_utilization is not None else rules.default_gpu_memory_utilization
    )
    total = g.memory_bytes
    budget = float(math.ceil(total * util))
    # Each engine splits an uneven pipeline its own way (`vllm_profile.pp_partition`).
    stage_ranges = prof.pp_partition(spec.num_layers, pp, pp_layer_partition, engine=engine)
    blackwell = g.arch == "blackwell"
    parts: list[tuple[float, float, float, float, float]] = []
    held, align = engine_weight_layout(spec, engine, g, ep)
    for s, layers in enumerate(stage_ranges):
        groups = prof.stage_params_per_rank(held, layers, s, pp, tp, ep, mxfp4_align=align)
        weights = held.weight_bytes(groups, layers) + prof.rope_cache_bytes(spec, layers, spec.dtype_bytes)
        act = prof.activation_peak_bytes(
            spec,
            layers,
            stage=s,
            pp=pp,
            tp=tp,
            ep=ep,
            act_bytes=spec.dtype_bytes,
            num_tokens=tokens,
            num_reqs=min(seqs, tokens),
            rules=rules,
        )
        non_torch = prof.non_torch_bytes(rules, tp, pp, g.has_nvlink)
        graphs = prof.cuda_graph_bytes(
            rules, len(layers), seqs, tokens, enforce_eager=enforce_eager, blackwell=blackwell
        )
        avail = budget - weights - act - non_torch - (graphs if rules.subtracts_cuda_graphs else 0.0)
        parts.append((weights, act, non_torch, graphs, avail))
    kv_layers = layer_kv_specs(spec, stage_ranges, tp, kv_bytes)
    # SGLang's and TensorRT-LLM's price reads the dtype as named; it differs only where vLLM
    # stores the cache in another dtype (DeepSeek-V3.2 under auto).
    neutral_bytes = kv_dtype_bytes(spec, kv_cache_dtype, engine="any")
    neutral_layers = (
        kv_layers if neutral_bytes == kv_bytes else layer_kv_specs(spec, stage_ranges, tp, neutral_bytes)
    )
    plan = plan_kv(
        kv_layers,
        [max(p[4], 0.0) for p in parts],
        block_size=kv_block_size(spec, g, rules, kv_cache_dtype),
        rules=rules,
        max_model_len=mml,
        max_num_batched_tokens=tokens,
        moe=spec.is_moe,
    )
    all_layers = [0.0] * pp
    for layer in neutral_layers:
        all_layers[layer.stage] += layer.bytes_per_token
    stages = tuple(
        StageMemory(
            stage=s,
            num_layers=len(stage_ranges[s]),
            weights_gib=w / GIB,
            activation_peak_gib=a / GIB,
            non_torch_gib=n / GIB,
            cuda_graph_gib=c / GIB,
            kv_cache_gib=k / GIB,
            num_blocks=plan.stage_blocks[s],
            kv_bytes_per_token_all_layers_per_gpu=all_layers[s],
        )
        for s, (w, a, n, c, k) in enumerate(parts)
    )
    # The limiting stage: the most negative KV memory if any stage has none, else the fewest blocks.
    short = [s for s in range(pp) if parts[s][4] <= 0]
    worst = min(short, key=lambda s: parts[s][4]) if short else plan.limiting_stage
    problems = start_problems(
        rules=rules,
        plan=plan,
        stages=stages,
        stage=worst,
        util=util,
        budget_gib=budget / GIB,
        total_gib=total / GIB,
        max_model_len=mml,
        tokens=tokens,
        seqs=seqs,
        pp=pp,
        enforce_eager=enforce_eager,
    )
    top = stages[worst]
    return VllmMemoryReport(
        vllm_version=str(rules.version),
        gpu=g.name,
        tp=tp,
        pp=pp,
        ep=ep,
        total_gib=total / GIB,
        gpu_memory_utilization=util,
        budget_gib=budget / GIB,
        weights_gib=top.weights_gib,
        activation_peak_gib=top.activation_peak_gib,
        non_torch_gib=top.non_torch_gib,
        cuda_graph_gib=top.cuda_graph_gib,
        cuda_graph_in_budget=rules.subtracts_cuda_graphs,
        kv_cache_gib=top.kv_cache_gib,
        kv_cache_tokens=plan.tokens,
        block_size=plan.block_size,
        num_gpu_blocks=plan.num_blocks,
        kv_cache_groups=len(plan.groups),
        max_model_len=mml,
        max_num_seqs=seqs,
        max_num_batched_tokens=tokens,
        kv_cache_dtype=kv_cache_dtype,
        kv_cache_dtype_stored=vllm_stored_kv_dtype(
            spec, kv_cache_dtype, from_checkpoint=rules.kv_dtype_from_checkpoint
        ),
        max_concurrency=plan.max_concurrency,
        kv_bytes_per_token_per_gpu=plan.bytes_per_token,
        kv_bytes_per_token_all_layers_per_gpu=float(all_layers[worst]),
        stage=worst,
        stages=stages,
        fits=not problems,
        problems=tuple(problems),
    )


def engine_mxfp4_alignment(engine: str, gpu: GPU) -> tuple[int, int]:
    """(per-rank expert intermediate, hidden) sizes `engine` pads MXFP4 experts to on `gpu`: SGLang's
    `Mxfp4MoEMethod.create_weights` (`memory.sglang.sglang_mxfp4_alignment`), else vLLM's MoE backend
    tile (`vllm_profile.vllm_mxfp4_alignment`; TensorRT-LLM is priced alike, no rule of its own)."""
    if engine == "sglang":
        return sglang_mxfp4_alignment(gpu)
    return prof.vllm_mxfp4_alignment(gpu)


def engine_weight_layout(
    spec: ModelSpec, engine: str, gpu: GPU, ep: int
) -> tuple[ModelSpec, tuple[int, int]]:
    """The model `engine` holds in memory (`spec` as loaded, with the MXFP4 experts SGLang upcasts to
    BF16 under expert parallelism below Blackwell: `memory.sglang.sglang_loaded_spec`) and its MXFP4
    expert padding (`engine_mxfp4_alignment`): the one rule the float model (`_evaluate`) and the
    solver tables (`solvers/serving/memory_terms.MemoryTerms.weights`) both price weights by."""
    held = sglang_loaded_spec(spec, gpu, ep) if engine == "sglang" else spec
    return held, engine_mxfp4_alignment(engine, gpu)


def serving_memory(
    model: ModelSpec,
    gpu: GPU,
    config: ServingConfig,
    *,
    vllm_version: str = DEFAULT_VLLM_VERSION,
    engine: str = "vllm",
) -> VllmMemoryReport:
    """`vllm_memory` for a `ServingConfig` (one replica; replicas are data-parallel engines; `engine`:
    whose loader resolves the dtype, see `vllm_memory`)."""
    return vllm_memory(
        model,
        gpu,
        tp=config.tp,
        pp=config.pp,
        enable_expert_parallel=config.enable_expert_parallel,
        dp=config.replicas,
        gpu_memory_utilization=config.gpu_memory_utilization,
        max_model_len=config.max_model_len,
        max_num_seqs=config.max_num_seqs,
        max_num_batched_tokens=config.max_num_batched_tokens,
        quantization=config.quantization,
        kv_cache_dtype=config.kv_cache_dtype,
        enforce_eager=config.enforce_eager,
        vllm_version=vllm_version,
        engine=engine,
    )
