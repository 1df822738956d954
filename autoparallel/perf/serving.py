"""Serving cost model: latency and throughput of ONE vLLM deployment, in floats.

Everything a user sees about speed comes from here; `solvers/` turns it into integer tables.

The model (per replica of tp × pp GPUs, continuous batching with chunked prefill, steady state):

- A replica keeps `b` sequences running. vLLM V1 with pipeline parallelism keeps `pp` scheduler
  batches in flight, so each stage processes micro-batches of m = b / pp sequences.
- Every decode token of a sequence is one step; every `osl` steps a sequence finishes and a new
  one is prefilled. In steady state each micro-batch step therefore carries m decode tokens and
  m · isl / osl prefill tokens (the prefill work interleaved by chunked prefill). When those exceed
  the step token budget (`max_num_batched_tokens`), the work spreads over several steps.
- One stage step is a roofline over the mixed batch, plus exposed communication:

      t_stage = max(bytes / (HBM · η_hbm), flops / (peak · η_flops)) + t_allreduce(TP) + t_all2all(EP)

  bytes = the stage's non-expert weights / tp + the routed experts the step actually touches
  (expected unique experts per layer E·(1 − (1 − k/E)^tokens), Fedus et al. 2021 routing with
  uniform load) + the KV cache the decode tokens read; flops = 2 · active parameters per token +
  attention over the context (`ModelSpec.forward_flops_per_token`), split over tp.
- The replica step (one token for every running sequence) is

      T(b) = pp · t_stage(b / pp) + (pp − 1) · t_hop + t_host (+ eager launch cost per layer)

  TPOT = T(b). This "mixed-step roofline" replaces the additive T = decode(b) + b · prefill / osl:
  a mixed batch reads the weights once for its decode and prefill tokens, so compute and memory
  overlap instead of adding (the two agree when one term dominates).
- TTFT = prefill(isl) + (n_chunks + ½) · decode(b) + the server's per-request overhead: half a step
  of waiting, then the prompt's n_chunks = ceil(isl / max_num_batched_tokens) chunks ride along
  decode steps. Queueing beyond the running batch is not modelled.
- Each running slot serves one request per t_first + (osl − 1) · T(b) (t_first: the GPU part of
  TTFT), so output tokens/s per replica = b · osl / (t_first + (osl − 1) · T(b)) ≈ b / T(b).
- The running batch is min(max_num_seqs, KV capacity in sequences of isl + osl/2 tokens counted in
  vLLM's own blocks (memory/vllm_kv.py), the workload's concurrency / replicas).

Efficiency factors per GPU (`VLLM_EFFICIENCY`) are calibrated on the vLLM rows of
reference/inference_benchmarks_dev.csv; `benchmarks/serving_accuracy.py` reports the error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from autoparallel.models.quant import QuantMethod, QuantSpec
from autoparallel.models.spec import AttentionKind, MlpKind, ModelSpec, ParamGroups
from autoparallel.perf import comm

if TYPE_CHECKING:
    from autoparallel.configs import ServingConfig
    from autoparallel.hardware import GPU, Cluster
    from autoparallel.memory.serving import VllmMemoryReport
    from autoparallel.workload import Serving


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class ServingEfficiency(_Frozen):
    """Achievable fractions of a GPU's peaks under vLLM, and fixed costs per engine step."""

    flops_fraction: float
    """Fraction of the dense tensor-core peak reached by GEMMs of a mixed prefill/decode step."""
    hbm_fraction: float
    """Fraction of peak HBM bandwidth reached streaming dense weights and the KV cache."""
    moe_hbm_fraction: float
    """Fraction of peak HBM bandwidth reached by fused-MoE kernels streaming routed experts."""
    moe_expert_overhead_s: float
    """Fixed cost per (layer, local expert a step touches) of the fused-MoE kernels, s: many small
    experts (DeepSeek: 256 per layer, TP-sliced to 256 columns) stay far below the HBM roofline."""
    step_overhead_s: float
    """Host time per engine step not hidden by the GPU (scheduler, sampler, output processing), s."""
    eager_layer_overhead_s: float
    """Extra host time per decoder layer and step without CUDA graphs (`--enforce-eager`), s."""
    request_overhead_s: float
    """Per-request time outside the GPU steps (HTTP, tokenization, scheduling, detokenization), s."""
    source: str
    """Where the numbers come from."""


_HOPPER = ServingEfficiency(
    flops_fraction=0.45,
    hbm_fraction=0.75,
    moe_hbm_fraction=0.75,
    moe_expert_overhead_s=5e-6,
    step_overhead_s=1.0e-3,
    eager_layer_overhead_s=80e-6,
    request_overhead_s=0.045,
    source="vLLM rows of reference/inference_benchmarks_dev.csv (benchmarks/serving_accuracy.py): "
    "hbm_fraction + step overhead from I301 (Qwen3-8B, H100, 4 concurrent: TPOT 7.38 ms, predicted "
    "7.5); request overhead from its TTFT (64 ms for a 233-token prompt); the MoE expert cost from "
    "the DeepSeek-V3.2 TP8 rows' ITL at their Little's-law batch (I201, I206-I208; V3.2's indexer "
    "is inside it). flops_fraction 0.45 of the dense peak: TensorRT-LLM's compute-bound rows (isl "
    "2048 / osl 128) reach ~0.5, vLLM is taken slightly lower (engines differ).",
)
_DEFAULT = ServingEfficiency(
    flops_fraction=0.40,
    hbm_fraction=0.70,
    moe_hbm_fraction=0.70,
    moe_expert_overhead_s=6e-6,
    step_overhead_s=1.2e-3,
    eager_layer_overhead_s=100e-6,
    request_overhead_s=0.050,
    source="not calibrated (no reference rows): the Hopper factors lowered ~10 % for older kernels",
)
VLLM_EFFICIENCY: dict[str, ServingEfficiency] = {"hopper": _HOPPER, "blackwell": _HOPPER}
"""vLLM efficiency by GPU architecture (`GPU.arch`); other architectures use `DEFAULT_EFFICIENCY`."""
DEFAULT_EFFICIENCY = _DEFAULT

ACTIVATION_BYTES = 2.0
"""bf16 activations cross the links (all-reduce, all-to-all, pipeline hops)."""


def efficiency_for(gpu: GPU) -> ServingEfficiency:
    """The vLLM efficiency factors of `gpu`."""
    return VLLM_EFFICIENCY.get(gpu.arch, DEFAULT_EFFICIENCY)


def kv_dtype_bytes(model: ModelSpec, kv_cache_dtype: str) -> float:
    """Bytes per cached element: the model dtype for `auto`, 1 for the fp8 variants."""
    return model.kv_dtype_default_bytes if kv_cache_dtype == "auto" else 1.0


def effective_model(model: ModelSpec, quantization: str | None) -> ModelSpec:
    """The model as vLLM holds it: the checkpoint, or online-quantized by `--quantization`.

    Only online FP8 applies to an unquantized checkpoint (per-tensor scales, vLLM `Fp8Config`);
    naming the checkpoint's own method changes nothing.
    """
    if quantization is None or (model.quantization and model.quantization.method.value == quantization):
        return model
    if quantization != "fp8" or model.quantization is not None:
        from autoparallel.errors import InputError

        raise InputError(
            f"quantization={quantization!r} cannot be applied to {model.name}: only online "
            "'fp8' on an unquantized checkpoint is supported"
        )
    return model.model_copy(update={"quantization": QuantSpec(method=QuantMethod.FP8, bits=8)})


# ----- per-model facts, memoized ---------------------------------------------------------------------
@dataclass(frozen=True)
class _ModelFacts:
    """Whole-model sums the step formula needs (bytes, counts), for one weight quantization.

    Memoized per model object (`id`, with the object kept to rule out reuse of the id)."""

    layers: int
    hidden: int
    dense_bytes: float  # all non-routed decoder weights (attention, dense MLP, shared experts, router, norms)
    head_bytes: float  # LM head (the embedding when tied), read every step
    expert_groups: tuple[tuple[int, int, int, float], ...]  # (layers, experts, top_k, bytes per expert)
    moe_layers: int
    fp8_compute: bool


_FACTS: dict[tuple[int, str | None], tuple[ModelSpec, _ModelFacts]] = {}
_KV_RANK: dict[tuple[int, str, int], tuple[ModelSpec, float, tuple[tuple[int, float], ...]]] = {}
_FLOPS: dict[tuple[int, int], tuple[ModelSpec, float]] = {}


def _facts(model: ModelSpec, quantization: str | None) -> _ModelFacts:
    key = (id(model), quantization)
    hit = _FACTS.get(key)
    if hit is not None and hit[0] is model:
        return hit[1]
    eff = effective_model(model, quantization)
    groups: dict[tuple[int, int, float], int] = {}
    dense = 0.0
    for layer in eff.layers:
        p = layer.params
        dense += eff.weight_bytes(p.model_copy(update={"routed_experts": 0}))
        if layer.mlp.kind is MlpKind.MOE and layer.mlp.num_experts:
            per = eff.weight_bytes(ParamGroups(routed_experts=p.routed_experts)) / layer.mlp.num_experts
            gkey = (layer.mlp.num_experts, layer.mlp.experts_per_token, per)
            groups[gkey] = groups.get(gkey, 0) + 1
    head = eff.weight_bytes(ParamGroups(lm_head=eff.lm_head_params or eff.embedding_params))
    q = eff.quantization
    facts = _ModelFacts(
        layers=eff.num_layers,
        hidden=eff.hidden_size,
        dense_bytes=dense,
        head_bytes=head,
        expert_groups=tuple((n, e, k, per) for (e, k, per), n in sorted(groups.items())),
        moe_layers=sum(groups.values()),
        fp8_compute=q is not None and q.method is QuantMethod.FP8,
    )
    _FACTS[key] = (model, facts)
    return facts


def _kv_rank(model: ModelSpec, kv_cache_dtype: str, tp: int) -> tuple[float, tuple[tuple[int, float], ...]]:
    """KV bytes per context token on one TP rank (all layers): full layers, and (window, bytes) pairs.

    Softmax layers hold ceil(kv_heads / tp) heads per rank; MLA holds the whole latent on every rank.
    """
    key = (id(model), kv_cache_dtype, tp)
    hit = _KV_RANK.get(key)
    if hit is not None and hit[0] is model:
        return hit[1], hit[2]
    kvb = kv_dtype_bytes(model, kv_cache_dtype)
    full = 0.0
    windows: dict[int, float] = {}
    for layer in model.layers:
        att = layer.attention
        per = att.kv_elements_per_token_per_rank(tp) * kvb
        if att.kind in (AttentionKind.SLIDING, AttentionKind.CHUNKED) and att.window_tokens:
            windows[att.window_tokens] = windows.get(att.window_tokens, 0.0) + per
        else:
            full += per
    out = tuple(sorted(windows.items()))
    _KV_RANK[key] = (model, full, out)
    return full, out


def _flops_per_token(model: ModelSpec, context_tokens: float) -> float:
    """`ModelSpec.forward_flops_per_token`, memoized on the integer context."""
    ctx = round(context_tokens)
    key = (id(model), ctx)
    hit = _FLOPS.get(key)
    if hit is not None and hit[0] is model:
        return hit[1]
    value = model.forward_flops_per_token(ctx)
    _FLOPS[key] = (model, value)
    return value


def kv_bytes_per_sequence_per_gpu(
    model: ModelSpec, kv_cache_dtype: str, tp: int, pp: int, context_tokens: float
) -> float:
    """KV bytes one sequence of `context_tokens` reads on one GPU of the fullest pipeline stage."""
    full, windows = _kv_rank(model, kv_cache_dtype, tp)
    per_rank = full * context_tokens + sum(b * min(context_tokens, w) for w, b in windows)
    return per_rank * _stage_fraction(model.num_layers, pp)


def _stage_fraction(layers: int, pp: int) -> float:
    """Share of the decoder layers on the fullest pipeline stage: ceil(L / pp) / L."""
    return math.ceil(layers / pp) / layers


def _unique_experts(experts: int, top_k: int, tokens: float) -> float:
    """Expected distinct experts `tokens` routed tokens touch: E·(1 − (1 − k/E)^tokens)."""
    if tokens <= 0:
        return 0.0
    return experts * (1.0 - (1.0 - top_k / experts) ** tokens)


# ----- the step model --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReplicaShape:
    """What the step time depends on: degrees and precisions (not the batch, not the workload)."""

    tp: int
    pp: int
    ep_ranks: int  # 1: experts TP-sliced; else experts sharded whole over tp × replicas ranks
    quantization: str | None
    kv_cache_dtype: str
    enforce_eager: bool

    @classmethod
    def of(cls, config: ServingConfig) -> ReplicaShape:
        ep = config.tp * config.replicas if config.enable_expert_parallel else 1
        return cls(config.tp, config.pp, ep, config.quantization, config.kv_cache_dtype, config.enforce_eager)


def stage_step_s(
    model: ModelSpec,
    cluster: Cluster,
    shape: ReplicaShape,
    *,
    decode_seqs: float,
    context_tokens: float,
    prefill_tokens: float,
    prefill_context: float,
    steps: float = 1.0,
) -> tuple[float, bool]:
    """One pipeline stage processing `decode_seqs` decode tokens (each reading `context_tokens` of
    KV) and `prefill_tokens` prompt tokens (attending on average to `prefill_context` tokens), spread
    over `steps` engine steps (weights are re-read each step).

    Returns (seconds, memory_bound): the roofline plus exposed communication, and whether HBM
    traffic rather than FLOPs set the roofline.
    """
    gpu = cluster.gpu
    eff = efficiency_for(gpu)
    f = _facts(model, shape.quantization)
    tp, pp = shape.tp, shape.pp
    frac = _stage_fraction(f.layers, pp)
    tokens_per_step = (decode_seqs + prefill_tokens) / steps
    # Bytes streamed from HBM per GPU: weights once per step, experts only where routed, KV per decode.
    dense_bytes = (f.dense_bytes * frac + f.head_bytes) / tp * steps
    expert_bytes = expert_calls = 0.0
    for n_layers, experts, top_k, per_expert in f.expert_groups:
        if shape.ep_ranks > 1:
            routed = tokens_per_step * (shape.ep_ranks // tp)  # every DP rank's tokens reach the experts
            touched = _unique_experts(experts, top_k, routed) / shape.ep_ranks
            expert_bytes += n_layers * frac * touched * per_expert * steps
        else:
            touched = _unique_experts(experts, top_k, tokens_per_step)
            expert_bytes += n_layers * frac * touched * per_expert / tp * steps
        expert_calls += n_layers * frac * touched * steps
    kv_bytes = decode_seqs * kv_bytes_per_sequence_per_gpu(
        model, shape.kv_cache_dtype, tp, pp, context_tokens
    )
    hbm = gpu.hbm_tbps * 1e12
    t_mem = ((dense_bytes + kv_bytes) / (hbm * eff.hbm_fraction) + expert_bytes / (hbm * eff.moe_hbm_fraction)
             + expert_calls * eff.moe_expert_overhead_s)
    # FLOPs per GPU: 2 per active weight and token plus attention over the context, split over tp.
    flops = (
        (
            decode_seqs * _flops_per_token(model, context_tokens)
            + prefill_tokens * _flops_per_token(model, prefill_context)
        )
        * frac
        / tp
    )
    peak = (gpu.fp8_tflops if f.fp8_compute and gpu.fp8_tflops else gpu.bf16_tflops) * 1e12
    t_compute = flops / (peak * eff.flops_fraction)
    comm = steps * _comm_per_step_s(cluster, shape, f, frac, tokens_per_step)
    return max(t_mem, t_compute) + comm, t_mem >= t_compute


_LINKS: dict[tuple[int, int, int], tuple[Cluster, comm.Link]] = {}


def _link(cluster: Cluster, size: int, stride: int) -> comm.Link:
    """`comm.group_link`, memoized."""
    key = (id(cluster), size, stride)
    hit = _LINKS.get(key)
    if hit is None or hit[0] is not cluster:
        hit = (cluster, comm.group_link(cluster, size, stride))
        _LINKS[key] = hit
    return hit[1]


def _comm_per_step_s(
    cluster: Cluster, shape: ReplicaShape, f: _ModelFacts, frac: float, tokens: float
) -> float:
    """Exposed TP all-reduces and EP all-to-alls of one stage step carrying `tokens` tokens."""
    layers = math.ceil(f.layers * frac - 1e-9)
    moe_layers = f.moe_layers * frac
    msg = tokens * f.hidden * ACTIVATION_BYTES
    t = 0.0
    if shape.tp > 1:
        # Two all-reduces per layer (attention output, MLP output); with EP the MoE output is
        # combined by the all-to-all instead.
        calls = 2 * layers - (moe_layers if shape.ep_ranks > 1 else 0)
        t += calls * comm.all_reduce_s(msg, shape.tp, _link(cluster, shape.tp, 1))
    if shape.ep_ranks > 1:
        # Dispatch + combine: each rank sends its share of tokens' hidden states to top-k experts.
        top_k = max((k for _, _, k, _ in f.expert_groups), default=1)
        link = _link(cluster, shape.ep_ranks, shape.pp)
        t += 2 * moe_layers * comm.all_to_all_s(msg / shape.tp * top_k, shape.ep_ranks, link)
    return t


def _hop_s(cluster: Cluster, shape: ReplicaShape, f: _ModelFacts, tokens: float) -> float:
    """Average time of one pipeline hop carrying `tokens` hidden states (network when crossing nodes)."""
    pp = shape.pp
    if pp <= 1:
        return 0.0
    stages_per_node = max(1, cluster.gpus_per_node // shape.tp)
    cross = math.ceil(pp / stages_per_node) - 1
    nbytes = tokens * f.hidden * ACTIVATION_BYTES / shape.tp
    intra = comm.p2p_s(nbytes, _link(cluster, 1, 1))
    inter = comm.p2p_s(nbytes, _link(cluster, 2, cluster.gpus_per_node))
    return ((pp - 1 - cross) * intra + cross * inter) / (pp - 1)


@dataclass(frozen=True)
class StepTimes:
    """One replica step at a given running batch, seconds."""

    step_s: float
    """T(b): one token for every running sequence, interleaved prefill work included (= TPOT)."""
    decode_s: float
    """The same step without prefill work (pure decode)."""
    prefill_s: float
    """One prompt of `isl` tokens alone through the whole pipeline."""
    ttft_s: float
    """prefill + (chunks + ½) pure decode steps of the running batch."""
    memory_bound: bool
    """The step's stage time is set by HBM traffic rather than FLOPs."""


_PREFILL: dict[tuple[object, ...], tuple[ModelSpec, Cluster, float]] = {}


def replica_step_times(
    model: ModelSpec,
    cluster: Cluster,
    shape: ReplicaShape,
    *,
    batch: float,
    isl: int,
    osl: int,
    batched_tokens: int,
) -> StepTimes:
    """Step, decode, prefill and TTFT times of one replica running `batch` sequences (see module doc)."""
    eff = efficiency_for(cluster.gpu)
    f = _facts(model, shape.quantization)
    pp = shape.pp
    stage_layers = math.ceil(f.layers / pp)
    eager_s = eff.eager_layer_overhead_s * stage_layers if shape.enforce_eager else 0.0
    m = batch / pp
    context = isl + osl / 2.0
    prefill_tokens = m * isl / osl
    steps = max(1.0, (m + prefill_tokens) / batched_tokens)

    def rotation(decode: float, prefill: float, n_steps: float) -> tuple[float, bool]:
        stage, mem_bound = stage_step_s(
            model,
            cluster,
            shape,
            decode_seqs=decode,
            context_tokens=context,
            prefill_tokens=prefill,
            prefill_context=isl / 2.0,
            steps=n_steps,
        )
        hop = _hop_s(cluster, shape, f, (decode + prefill) / n_steps)
        total = pp * (stage + n_steps * eager_s) + (pp - 1) * hop * n_steps + n_steps * eff.step_overhead_s
        return total, mem_bound

    step_s, memory_bound = rotation(m, prefill_tokens, steps)
    decode_s, _ = rotation(m, 0.0, 1.0)
    chunks = math.ceil(isl / batched_tokens)
    key = (id(model), id(cluster), shape, isl, osl, chunks)
    hit = _PREFILL.get(key)
    if hit is None or hit[0] is not model or hit[1] is not cluster:
        hit = (model, cluster, rotation(0.0, float(isl), float(chunks))[0])
        _PREFILL[key] = hit
    prefill_s = hit[2]
    ttft_s = prefill_s + (chunks + 0.5) * decode_s
    return StepTimes(
        step_s=step_s, decode_s=decode_s, prefill_s=prefill_s, ttft_s=ttft_s, memory_bound=memory_bound
    )


# ----- one deployment --------------------------------------------------------------------------------
class ServingPerf(_Frozen):
    """Predicted speed and cost of one deployment under one workload (steady state)."""

    ttft_ms: float
    """Time to first token: the prompt's prefill plus (chunks + ½) decode steps plus the server's
    per-request overhead, ms (no queueing)."""
    tpot_ms: float
    """Time per output token: one replica step T(b) with interleaved prefill work, ms."""
    decode_step_ms: float
    """A pure decode step at the running batch (no prefill work), ms."""
    prefill_ms: float
    """One prompt of `isl` tokens alone through the pipeline, ms."""
    batch_size: float
    """Running sequences per replica in steady state."""
    batch_limit: str
    """What sets the batch: `max_num_seqs`, `kv_cache` or `concurrency`."""
    kv_capacity_seqs: int
    """Sequences of isl + osl/2 tokens the KV cache of one replica holds (vLLM's block accounting)."""
    kv_headroom_gib: float
    """KV-cache memory the running batch leaves unused on the tightest GPU, GiB."""
    memory_bound: bool
    """The step is limited by HBM traffic (True) or by FLOPs (False)."""
    output_tokens_per_s: float
    """Output tokens per second of the whole deployment (all replicas)."""
    output_tokens_per_s_per_replica: float
    """Output tokens per second of one replica: batch / T(b)."""
    output_tokens_per_s_per_gpu: float
    """Output tokens per second per GPU."""
    requests_per_s: float
    """Completed requests per second of the whole deployment."""
    usd_per_million_tokens: float
    """US$ per million output tokens at the GPU's default hourly price."""
    sustains_request_rate: bool
    """The deployment's throughput covers the workload's arrival rate (True when none is given)."""
    efficiency: ServingEfficiency
    """The efficiency factors used."""


@dataclass(frozen=True)
class KvLayout:
    """How vLLM's KV pool is spent on one sequence of the workload (memory/vllm_kv.py layout)."""

    block_size: int
    """Tokens per block (smallest over the KV cache groups)."""
    bytes_per_block: tuple[int, ...]
    """Per pipeline stage: bytes of one pool block on one GPU."""
    blocks_per_seq: int
    """Pool blocks one average sequence (isl + osl/2 tokens) occupies over all groups."""
    batched_tokens: int
    """The step token budget (`max_num_batched_tokens`, resolved default)."""
    null_blocks: int
    """Blocks the pool holds back (vLLM's null block, from 0.25)."""


_LAYOUTS: dict[tuple[object, ...], tuple[ModelSpec, KvLayout]] = {}


def kv_layout(
    model: ModelSpec, gpu: GPU, config: ServingConfig, workload: Serving, *, vllm_version: str = "0.32"
) -> KvLayout:
    """The KV layout of `config` (memoized): blocks per average sequence and bytes per block per stage.

    A sequence of c tokens takes the blocks vLLM would give a request of max_model_len = c
    (`vllm_kv.bytes_for_request`): ceil(c / block) for full attention, window-capped for sliding
    layers, one state page for linear attention.
    """
    from autoparallel.memory import vllm_kv, vllm_profile
    from autoparallel.memory.serving import kv_block_size, layer_kv_specs, resolve_batch_defaults
    from autoparallel.memory.vllm_versions import parse_vllm_version, rules_for

    key = (
        id(model),
        gpu.name,
        config.tp,
        config.pp,
        config.kv_cache_dtype,
        config.quantization,
        config.max_model_len,
        config.max_num_seqs,
        config.max_num_batched_tokens,
        workload.isl,
        workload.osl,
        vllm_version,
    )
    hit = _LAYOUTS.get(key)
    if hit is not None and hit[0] is model:
        return hit[1]
    rules = rules_for(parse_vllm_version(vllm_version))
    _, tokens = resolve_batch_defaults(
        rules, gpu, config.max_model_len, config.max_num_seqs, config.max_num_batched_tokens
    )
    stages = vllm_profile.pp_partition(model.num_layers, config.pp)
    layers = layer_kv_specs(model, stages, config.tp, kv_dtype_bytes(model, config.kv_cache_dtype))
    plan = vllm_kv.plan_kv(
        layers,
        [0.0] * config.pp,
        block_size=kv_block_size(model, gpu, rules),
        rules=rules,
        max_model_len=config.max_model_len,
        max_num_batched_tokens=tokens,
    )
    context = math.ceil(workload.isl + workload.osl / 2.0)
    need = vllm_kv.bytes_for_request(plan, 0, context, rules, tokens, config.pp)
    blocks = need // plan.bytes_per_block[0] if plan.bytes_per_block[0] else 0
    layout = KvLayout(
        block_size=plan.block_size,
        bytes_per_block=plan.bytes_per_block,
        blocks_per_seq=max(int(blocks), 1),
        batched_tokens=tokens,
        null_blocks=1 if rules.reserves_null_block else 0,
    )
    _LAYOUTS[key] = (model, layout)
    return layout


def running_batch(config: ServingConfig, workload: Serving, kv_capacity_seqs: float) -> tuple[float, str]:
    """Steady-state running sequences per replica and what limits them (first listed wins ties)."""
    options = [(float(config.max_num_seqs), "max_num_seqs"), (max(kv_capacity_seqs, 0.0), "kv_cache")]
    if workload.concurrency is not None:
        options.append((workload.concurrency / config.replicas, "concurrency"))
    return min(options, key=lambda item: item[0])


def serving_perf(
    model: ModelSpec,
    cluster: Cluster,
    config: ServingConfig,
    workload: Serving,
    *,
    memory: VllmMemoryReport,
    vllm_version: str = "0.32",
) -> ServingPerf:
    """Latency, throughput and cost of `config` serving `workload`, given vLLM's memory report."""
    layout = kv_layout(model, cluster.gpu, config, workload, vllm_version=vllm_version)
    capacity = max(memory.num_gpu_blocks - layout.null_blocks, 0) // layout.blocks_per_seq
    batch, limit = running_batch(config, workload, capacity)
    available = [stage.kv_cache_gib * 2**30 for stage in memory.stages]
    per_seq = [(batch * layout.blocks_per_seq + layout.null_blocks) * b for b in layout.bytes_per_block]
    headroom = min(a - need for a, need in zip(available, per_seq, strict=True))
    return perf_at_batch(
        model,
        cluster,
        config,
        workload,
        batch=batch,
        batch_limit=limit,
        batched_tokens=layout.batched_tokens,
        kv_capacity_seqs=capacity,
        kv_headroom_bytes=headroom,
    )


def replica_rates(times: StepTimes, *, batch: float, osl: int, gpu: GPU) -> tuple[float, float]:
    """(TTFT seen by a client, s; output tokens/s of one replica) from its step times.

    Each running slot serves one request per t_first + (osl − 1) · T(b), where t_first is the GPU
    part of TTFT, so tokens/s = b · osl / (t_first + (osl − 1) · T(b)) (≈ b / T(b) for long
    outputs; closed-loop clients at fixed concurrency also wait for the first token).
    """
    cycle_s = times.ttft_s + (osl - 1) * times.step_s
    return times.ttft_s + efficiency_for(gpu).request_overhead_s, batch * osl / cycle_s


def perf_at_batch(
    model: ModelSpec,
    cluster: Cluster,
    config: ServingConfig,
    workload: Serving,
    *,
    batch: float,
    batch_limit: str,
    batched_tokens: int,
    kv_capacity_seqs: int,
    kv_headroom_bytes: float,
) -> ServingPerf:
    """`serving_perf` at a given running batch per replica."""
    gpu = cluster.gpu
    eff = efficiency_for(gpu)
    times = replica_step_times(
        model,
        cluster,
        ReplicaShape.of(config),
        batch=max(batch, 1e-9),
        isl=workload.isl,
        osl=workload.osl,
        batched_tokens=batched_tokens,
    )
    ttft_s, per_replica = replica_rates(times, batch=batch, osl=workload.osl, gpu=gpu)
    total = per_replica * config.replicas
    usd = gpu.usd_per_hour * config.gpus / (total * 3600.0) * 1e6 if total > 0 else math.inf
    rate_ok = workload.request_rate is None or total / workload.osl >= workload.request_rate
    return ServingPerf(
        ttft_ms=ttft_s * 1e3,
        tpot_ms=times.step_s * 1e3,
        decode_step_ms=times.decode_s * 1e3,
        prefill_ms=times.prefill_s * 1e3,
        batch_size=batch,
        batch_limit=batch_limit,
        kv_capacity_seqs=kv_capacity_seqs,
        kv_headroom_gib=kv_headroom_bytes / 2**30,
        memory_bound=times.memory_bound,
        output_tokens_per_s=total,
        output_tokens_per_s_per_replica=per_replica,
        output_tokens_per_s_per_gpu=total / config.gpus,
        requests_per_s=total / workload.osl,
        usd_per_million_tokens=usd,
        sustains_request_rate=rate_ok,
        efficiency=eff,
    )


class ServingEstimate(_Frozen):
    """Memory (vLLM's own accounting) and speed of one deployment, and whether it can run."""

    memory: VllmMemoryReport
    """Per-GPU memory as vLLM 0.32 accounts it."""
    perf: ServingPerf
    """Latency, throughput and cost."""
    fits: bool
    """vLLM starts: the weights fit, the KV cache holds max_model_len, the GPUs exist."""
    problems: tuple[str, ...] = ()
    """Why it does not fit / cannot run, one sentence each with numbers."""
    slo_violations: tuple[str, ...] = ()
    """Service-level limits of the workload the prediction misses."""


def deployment_problems(cluster: Cluster, config: ServingConfig, workload: Serving) -> list[str]:
    """Placement problems of `config` beyond vLLM's own start-up checks."""
    out: list[str] = []
    if config.gpus > cluster.world_size:
        out.append(
            f"needs {config.gpus} GPUs (tp={config.tp} x pp={config.pp} x "
            f"replicas={config.replicas}); the cluster has {cluster.world_size}"
        )
    if config.tp > cluster.gpus_per_node or cluster.gpus_per_node % config.tp:
        out.append(f"tp={config.tp} does not fit inside a node of {cluster.gpus_per_node} GPUs")
    if config.max_model_len < workload.context_len:
        out.append(
            f"max_model_len={config.max_model_len} is shorter than the workload's context "
            f"{workload.context_len}"
        )
    return out


def slo_violations(perf: ServingPerf, workload: Serving) -> list[str]:
    """The workload's service-level limits the prediction misses."""
    out: list[str] = []
    if workload.ttft_ms is not None and perf.ttft_ms > workload.ttft_ms:
        out.append(f"TTFT {perf.ttft_ms:.0f} ms > limit {workload.ttft_ms:.0f} ms")
    if workload.tpot_ms is not None and perf.tpot_ms > workload.tpot_ms:
        out.append(f"TPOT {perf.tpot_ms:.1f} ms > limit {workload.tpot_ms:.1f} ms")
    if not perf.sustains_request_rate:
        out.append(f"{perf.requests_per_s:.2f} requests/s < arrival rate {workload.request_rate} /s")
    return out


def evaluate_serving(
    model: ModelSpec,
    cluster: Cluster,
    config: ServingConfig,
    workload: Serving,
    *,
    vllm_version: str = "0.32",
    memory: VllmMemoryReport | None = None,
) -> ServingEstimate:
    """Memory (vLLM's accounting) and speed of `config` on `cluster` serving `workload`.

    `memory`: vLLM's report for this config when the caller already has it (else computed).

    Raises:
        InputError: a degree the model or vLLM rejects (see `memory.serving.vllm_memory`).
    """
    from autoparallel.memory.serving import VllmMemoryReport, serving_memory

    if not ServingEstimate.__pydantic_complete__:
        ServingEstimate.model_rebuild(_types_namespace={"VllmMemoryReport": VllmMemoryReport})
    if memory is None:
        memory = serving_memory(model, cluster.gpu, config, vllm_version=vllm_version)
    perf = serving_perf(model, cluster, config, workload, memory=memory, vllm_version=vllm_version)
    problems = list(memory.problems) + deployment_problems(cluster, config, workload)
    if memory.fits and perf.kv_capacity_seqs < 1:
        problems.append(
            f"the KV cache ({memory.kv_cache_gib:.2f} GiB per GPU) holds no whole sequence of "
            f"{workload.isl + workload.osl // 2} tokens"
        )
    return ServingEstimate(
        memory=memory,
        perf=perf,
        fits=not problems,
        problems=tuple(dict.fromkeys(problems)),
        slo_violations=tuple(slo_violations(perf, workload)),
    )
