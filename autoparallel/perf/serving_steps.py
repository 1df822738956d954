"""Serving step physics: how long one engine step of one vLLM replica takes, in floats.

The model (per replica of tp × pp GPUs, continuous batching with chunked prefill, steady state):

- A replica keeps `b` sequences running. vLLM V1 with pipeline parallelism keeps up to `pp`
  scheduler batches in flight, but a batch needs at least one sequence: k = clamp(b, 1, pp)
  micro-batches of m = b / k sequences. One sequence alone is one micro-batch that walks through
  every stage in turn, so pipeline stages never shorten a single sequence's step (with fewer
  sequences than stages, stages sit idle rather than splitting a sequence).
- Every decode token of a sequence is one step; a sequence finishes on a given token with
  probability 1 / osl and a new one is prefilled (a closed loop), or new ones arrive at a rate (an
  open loop). The engine takes each waiting prompt whole into its next step, so a rotation carries
  m decode tokens and n whole prompts, n a Poisson count of mean (b − 1) / osl (the OTHER requests'
  replacements: a request's own comes after its last token) or λ · T, and the step time is the
  mean over n (`replica_step_times`): convex in its prompt tokens, it is longer than the step at
  the mean count. Prompt tokens past the step token budget (`max_num_batched_tokens`) spread over
  several steps.
- The data-parallel ranks of one engine that share the experts (vLLM DP + EP, SGLang and
  TensorRT-LLM attention DP) step in lock-step: a step lasts as long as the slowest rank's, so a
  prompt on any rank stretches every rank's step; the step is priced at the most prompts any rank
  carries (`lockstep_counts`), as the replay's `serving_replay.lockstep` does step by step.
- One stage step is a sum of per-operator rooflines over the mixed batch, plus exposed
  communication:

      t_stage = Σ_op max(bytes_op / (HBM · η_op), flops_op / (peak · η_op)) + t_allreduce(TP) + t_all2all(EP)

  over three operators that run one after another inside every layer: the dense GEMMs (the
  stage's non-expert weights / tp; 2 FLOPs per weight and token), the routed-expert GEMMs (the
  experts the step actually touches, expected unique experts per layer E·(1 − (1 − k/E)^tokens),
  Fedus et al. 2021 routing with uniform load; their own grouped-GEMM efficiency) and attention
  (the KV cache the decode tokens read; the score and value products over the context). One
  roofline per operator (LLM-Viewer, Yuan et al. 2024; AIConfigurator sums per-operation
  latencies): a large decode batch is compute-bound in its GEMMs and memory-bound in attention at
  the same time, and the two add rather than hide under each other.
- The replica step (one token for every running sequence) is

      T(b) = pp · t_stage(m) + (pp − 1) · t_hop + t_sample + t_host (+ eager launch cost per layer)

  where t_sample moves each decode sequence's logits from the LM head to its sampled token
  (`sampler_s`) and t_host is the engine's host time, hidden where it schedules ahead.

  TPOT = E[T(b, n)] over the steps a rotation takes. A mixed batch reads the weights once for its
  decode and prefill tokens, so a prompt's GEMM work rides under the decode GEMMs' weight reads
  until the GEMMs turn compute-bound; its attention adds.
- The GPU part of TTFT: the rest of the rotation in progress (none beside a lone request, or where
  the others ended on the same rotation), then
  the rotation that carries the prompt with the others that came meanwhile, to its first token (a
  lone request's: its own prompt, in chunks of the budget).
"""

from __future__ import annotations

import bisect
import functools
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from autoparallel.memo import Memo, memoized
from autoparallel.memory.vllm_config import load_dtype, loaded_on
from autoparallel.memory.vllm_versions import DEFAULT_VLLM_VERSION
from autoparallel.perf import comm
from autoparallel.perf.serving_efficiency import efficiency_for
from autoparallel.perf.serving_facts import (
    KvLayout,
    ModelFacts,
    flops_per_token,
    kv_layout,
    linear_state_bytes_per_sequence_per_gpu,
    model_facts,
    stage_fraction,
    unique_experts,
)
from autoparallel.perf.sparse_attention import is_sparse, sparse_attention_cost, sparse_kernels

if TYPE_CHECKING:
    from autoparallel.configs import ServingConfig
    from autoparallel.hardware import GPU, Cluster
    from autoparallel.models.spec import ModelSpec
    from autoparallel.perf.serving_efficiency import ServingEfficiency
    from autoparallel.perf.sparse_attention import SparseKernels

ACTIVATION_BYTES = 2.0
"""bf16 activations cross the links (all-reduce, all-to-all, pipeline hops)."""


@dataclass(frozen=True)
class ReplicaShape:
    """What the step time depends on: degrees and precisions (not the batch, not the workload)."""

    tp: int
    pp: int
    ep_ranks: int  # 1: experts TP-sliced; else experts sharded whole over tp × replicas ranks
    quantization: str | None
    kv_cache_dtype: str
    enforce_eager: bool
    engine: str = "vllm"  # whose kernels and scheduler: vllm, sglang, trtllm (serving_efficiency.ENGINES)
    ep_overlap: bool = False  # EP dispatch/combine overlapped with compute (two micro-batches in flight)
    fp8_dispatch: bool = False  # EP dispatch sends FP8 hidden states (combine stays bf16)
    nsa_backends: tuple[str | None, str | None] = (None, None)  # SGLang --nsa-prefill/decode-backend
    kv_pool_tokens: int = 0  # tokens the KV pool holds per GPU (read where a kernel touches all of it)
    async_scheduling: bool = True  # the host schedules step n + 1 while the GPU runs step n
    dense_short_prefill: bool = True  # vLLM runs a sparse-MLA prompt step within top-k as dense MHA
    graph_max_batch: int | None = None  # the largest captured decode batch: above it, no CUDA graph
    graph_sizes: tuple[int, ...] = ()  # the captured batches a decode batch is padded up to (TRT-LLM)

    @classmethod
    def of(cls, config: ServingConfig, vllm_version: str = DEFAULT_VLLM_VERSION) -> ReplicaShape:
        """The step shape of `config` as `vllm_version` runs it (SGLang and TensorRT-LLM: `replace`
        the engine; whether they schedule ahead is their own rule, `schedules_ahead`)."""
        ep = config.tp * config.replicas if config.enable_expert_parallel else 1
        return cls.vllm(
            config.tp,
            config.pp,
            ep,
            config.quantization,
            config.kv_cache_dtype,
            config.enforce_eager,
            vllm_version,
        )

    @classmethod
    def vllm(
        cls,
        tp: int,
        pp: int,
        ep_ranks: int,
        quantization: str | None,
        kv_cache_dtype: str,
        enforce_eager: bool,
        vllm_version: str = DEFAULT_VLLM_VERSION,
        graph_max_batch: int | None = None,
    ) -> ReplicaShape:
        """A vLLM replica's step shape with `vllm_version`'s release rules (its scheduling and its
        sparse-MLA prompt kernels); `graph_max_batch`: its largest captured decode batch
        (`vllm_graph_max_batch`)."""
        return cls(
            tp,
            pp,
            ep_ranks,
            quantization,
            kv_cache_dtype,
            enforce_eager,
            async_scheduling=vllm_async_scheduling(vllm_version, pp),
            dense_short_prefill=vllm_dense_short_prefill(vllm_version),
            graph_max_batch=graph_max_batch,
        )


def vllm_graph_max_batch(
    max_num_seqs: int, batched_tokens: int, gpu: GPU, vllm_version: str = DEFAULT_VLLM_VERSION
) -> int:
    """vLLM V1's largest captured decode batch (larger ones run without CUDA graphs): the memory
    model's capture sizes (`vllm_profile.capture_sizes`) under the memory model's release rule
    (`vllm_profile.cuda_graph_count`: 1,024 on Blackwell only where `vllm_version`'s
    `VllmRules.blackwell_capture_1024` says so, 512 before), so one rule prices the graphs' memory
    and their reach, in the steady state and the replay alike."""
    from autoparallel.memory.vllm_profile import capture_sizes
    from autoparallel.memory.vllm_versions import parse_vllm_version, rules_for

    rules = rules_for(parse_vllm_version(vllm_version))
    blackwell = gpu.arch == "blackwell" and rules.blackwell_capture_1024
    return capture_sizes(max_num_seqs, batched_tokens, blackwell=blackwell)[-1]


VLLM_ASYNC_SCHEDULING_SINCE = 14
"""vLLM minor release from which async scheduling is on by default (v0.14.0 release notes, PR #27614:
"Async scheduling is now enabled by default", excluding pipeline parallelism); before it the engine
core schedules, runs the step, then updates from its output, one after another."""
VLLM_ASYNC_PIPELINE_SINCE = 15
"""vLLM minor release from which async scheduling runs with pipeline stages too: PR #32359 landed
after 0.14.0 was cut (a maintainer on PR #32775, 2026-01-21: "PP has already been supported with
#32359"); in 0.32 the V2 model runner, the default, keeps it on with pipeline stages
(`VllmConfig`: only the V1 runner turns it off there)."""


VLLM_DENSE_SHORT_PREFILL_SINCE = 26
"""vLLM minor release from which a sparse-MLA (DeepSeek-V3.2) prompt step whose longest sequence fits
`index_topk` runs as dense MHA instead of the top-k kernels: PR #47327, merged 2026-07-01
(`sparse_mla_attention._use_dense_mha_prefill` and `DeepseekV32Attention._use_sparse_mha` in 0.32's
source). 0.25.0 was published about two weeks after the merge, and whether its branch holds it is not
established, so the rule starts at 0.26, the first release certain to; 0.25 is priced as before."""


@functools.cache
def vllm_dense_short_prefill(vllm_version: str) -> bool:
    """Whether `vllm_version` runs a DeepSeek Sparse Attention prompt step whose longest sequence fits
    `index_topk` as dense MHA (`VLLM_DENSE_SHORT_PREFILL_SINCE`)."""
    from autoparallel.memory.vllm_versions import parse_vllm_version

    return parse_vllm_version(vllm_version).at_least(VLLM_DENSE_SHORT_PREFILL_SINCE)


@functools.cache
def vllm_async_scheduling(vllm_version: str, pp: int = 1) -> bool:
    """Whether vLLM `vllm_version` overlaps its scheduler with the GPU step by default, with `pp`
    pipeline stages: from 0.14 on, and with pipeline stages from 0.15 on."""
    from autoparallel.memory.vllm_versions import parse_vllm_version

    version = parse_vllm_version(vllm_version)
    since = VLLM_ASYNC_SCHEDULING_SINCE if pp == 1 else VLLM_ASYNC_PIPELINE_SINCE
    return version.at_least(since)


@dataclass(frozen=True)
class StepConstants:
    """What a step of one replica shape reads of its model and cluster, the same at every batch and
    workload (`step_constants`): the engine's factors on the GPU, the fullest stage's share of the
    weights, the KV cache and the FLOPs, and the rates each operator's roofline divides by."""

    model: ModelSpec
    cluster: Cluster
    shape: ReplicaShape
    gpu: GPU
    eff: ServingEfficiency
    f: ModelFacts
    frac: float  # share of the decoder layers on the fullest pipeline stage
    weight_bytes: float  # non-routed weight bytes one GPU streams from HBM per engine step
    # (the stage's share of the group's layers, experts, top_k, bytes per expert), `ModelFacts.expert_groups`
    expert_groups: tuple[tuple[float, int, int, float], ...]
    kv: KvLayout  # the KV cache a decode sequence reads, in the dtype the engine loads the model in
    state_bytes: float  # one decode sequence's linear-attention state on one GPU (0: none)
    param_flops: float  # FLOPs per token of the weights alone: `flops_per_token(model, 0)`
    dense_flops: float  # of those, the dense GEMMs' (without the routed experts and the LM head)
    head_flops: float  # the LM head's, per sampled token
    expert_flops: float  # the routed experts' (top-k per MoE layer)
    weight_hbm_bps: float  # HBM bytes/s the dense GEMMs stream their weights at
    expert_hbm_bps: float  # HBM bytes/s the routed experts stream theirs at
    attention_hbm_bps: float  # HBM bytes/s attention reads the KV cache at
    gemm_peak: float  # FLOP/s of the dense GEMMs
    moe_peak: float  # FLOP/s of the routed-expert GEMMs
    attention_peak: float  # FLOP/s of attention
    sparse_kernels: SparseKernels | None  # DeepSeek Sparse Attention's kernels (None: no sparse layers)
    eager_s: float  # launch cost of one stage step without CUDA graphs (0 with them)
    logits_bytes: float  # `LOGITS_BYTES_PER_ENTRY` of the engine
    logits_hbm_bps: float  # HBM bytes/s the sampler passes over the logits at
    tp_link: comm.Link  # the link of the tensor-parallel group
    schedules_ahead: bool  # `schedules_ahead`


_CONSTANTS: Memo[StepConstants] = {}


def step_constants(model: ModelSpec, cluster: Cluster, shape: ReplicaShape) -> StepConstants:
    """The `StepConstants` of `shape` for `model` on `cluster`, memoized per model and cluster object
    and the engine's factors and the model's facts they are built from (a refit of the factors,
    `benchmarks/serving_fit.py`, swaps those objects)."""
    gpu = cluster.gpu
    eff = efficiency_for(gpu, shape.engine)
    f = model_facts(model, shape.quantization, load_dtype(model, gpu, shape.engine))

    def build() -> StepConstants:
        return _step_constants(model, cluster, shape, gpu, eff, f)

    return memoized(_CONSTANTS, (model, cluster, eff, f), (shape,), build)


def _step_constants(
    model: ModelSpec, cluster: Cluster, shape: ReplicaShape, gpu: GPU, eff: ServingEfficiency, f: ModelFacts
) -> StepConstants:
    """`step_constants`, computed."""
    tp, pp = shape.tp, shape.pp
    frac = stage_fraction(f.layers, pp)
    # Bytes streamed from HBM per GPU and step: the weights once per step (the routed experts only
    # where routed, `stage_step_s`).
    weight_bytes = (f.dense_bytes * frac + f.head_bytes) / tp
    if shape.engine == "sglang" and shape.ep_ranks > tp and pp == 1:
        # SGLang's attention DP runs the dense MLPs, shared experts and LM head over the server's whole
        # tp x dp group (`DeepseekV2MLP` at the full TP, `ParallelLMHead`; as `memory/sglang.py`
        # `dp_attention_sharded_gib` holds them): each GPU reads its 1 / ep_ranks of those.
        wide = f.mlp_bytes * frac + f.head_bytes
        weight_bytes = (f.dense_bytes - f.mlp_bytes) * frac / tp + wide / shape.ep_ranks
    # KV and recurrent state in the dtype the engine loads the model in (`load_dtype`).
    loaded = loaded_on(model, gpu, shape.quantization, shape.engine)
    hbm = gpu.hbm_tbps * 1e12
    param_flops = flops_per_token(model, 0.0)
    expert_flops = 2.0 * f.expert_params_per_token
    tflops, fp4_cores = _tensor_tflops(gpu, f)
    tensor_peak = tflops * 1e12
    fp4 = eff.fp4_gemm_scale if fp4_cores else 1.0
    weight_hbm = eff.block_fp8_hbm_fraction if f.block_fp8 else eff.hbm_fraction
    expert_hbm = (
        min(eff.moe_hbm_fraction, eff.block_fp8_hbm_fraction) if f.block_fp8 else eff.moe_hbm_fraction
    )
    moe_fraction = eff.block_fp8_moe_fraction if f.block_fp8 else eff.moe_flops_fraction
    # The LM head runs only on the tokens that are sampled (vLLM `compute_logits` on
    # `hidden_states[logits_indices]`: each decode sequence, a prompt's last token), on the last stage.
    head_flops = model.lm_head_flops
    # DeepSeek Sparse Attention runs as its kernels run it (perf/sparse_attention.py), not as the
    # model's FLOPs over the kept tokens.
    kernels = (
        sparse_kernels(
            model,
            shape.engine,
            tp,
            gpu,
            shape.kv_cache_dtype,
            shape.nsa_backends,
            vllm_dense_short_prefill=shape.dense_short_prefill,
        )
        if is_sparse(model)
        else None
    )
    return StepConstants(
        model=model,
        cluster=cluster,
        shape=shape,
        gpu=gpu,
        eff=eff,
        f=f,
        frac=frac,
        weight_bytes=weight_bytes,
        expert_groups=tuple((n * frac, e, k, per) for n, e, k, per in f.expert_groups),
        kv=kv_layout(loaded, shape.kv_cache_dtype, tp, pp, engine=shape.engine),
        state_bytes=linear_state_bytes_per_sequence_per_gpu(loaded, tp, pp, engine=shape.engine),
        param_flops=param_flops,
        dense_flops=param_flops - expert_flops - head_flops,
        head_flops=head_flops,
        expert_flops=expert_flops,
        weight_hbm_bps=hbm * weight_hbm,
        expert_hbm_bps=hbm * expert_hbm,
        attention_hbm_bps=hbm * eff.attention_hbm_fraction,
        gemm_peak=tensor_peak * eff.flops_fraction * fp4,
        moe_peak=tensor_peak * moe_fraction * fp4,
        attention_peak=gpu.bf16_tflops * 1e12 * eff.flops_fraction,
        sparse_kernels=kernels,
        eager_s=eff.eager_layer_overhead_s * math.ceil(f.layers / pp) if shape.enforce_eager else 0.0,
        logits_bytes=LOGITS_BYTES_PER_ENTRY[shape.engine],
        logits_hbm_bps=gpu.hbm_tbps * 1e12 * eff.hbm_fraction,
        tp_link=_link(cluster, tp, 1),
        schedules_ahead=schedules_ahead(model, shape),
    )


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
    padded_seqs: float | None = None,
    prefill_longest: float | None = None,
) -> tuple[float, bool]:
    """One pipeline stage processing `decode_seqs` decode tokens (each reading `context_tokens` of
    KV) and `prefill_tokens` prompt tokens (attending on average to `prefill_context` tokens), spread
    over `steps` engine steps (weights are re-read each step). `padded_seqs`: the CUDA graph's batch
    when the engine pads a decode batch up to a captured size; the GEMMs, the experts and the
    collectives run at it, attention reads only the real sequences' KV. `prefill_longest`: the
    longest prompt sequence (context and chunk) among the step's prompts, which decides the kernel of
    a sparse-attention prompt step (`sparse_attention_cost`; None: not known, the top-k kernels).

    Returns (seconds, memory_bound): the roofline plus exposed communication, and whether HBM
    traffic rather than FLOPs set the roofline.
    """
    return _stage_step_s(
        step_constants(model, cluster, shape),
        decode_seqs,
        context_tokens,
        prefill_tokens,
        prefill_context,
        steps,
        padded_seqs,
        prefill_longest,
    )


def _stage_step_s(
    c: StepConstants,
    decode_seqs: float,
    context_tokens: float,
    prefill_tokens: float,
    prefill_context: float,
    steps: float,
    padded_seqs: float | None,
    prefill_longest: float | None,
) -> tuple[float, bool]:
    """`stage_step_s` with `c`'s constants."""
    shape, eff, frac = c.shape, c.eff, c.frac
    tp = shape.tp
    gemm_seqs = decode_seqs if padded_seqs is None else max(padded_seqs, decode_seqs)
    tokens_per_step = (gemm_seqs + prefill_tokens) / steps
    # Bytes streamed from HBM per GPU: weights once per step, experts only where routed, KV per decode.
    dense_bytes = c.weight_bytes * steps
    expert_bytes = expert_calls = 0.0
    for layers, experts, top_k, per_expert in c.expert_groups:
        if shape.ep_ranks > 1:
            routed = tokens_per_step * (shape.ep_ranks // tp)  # every DP rank's tokens reach the experts
            touched = unique_experts(experts, top_k, routed) / shape.ep_ranks
            expert_bytes += layers * touched * per_expert * steps
        else:
            touched = unique_experts(experts, top_k, tokens_per_step)
            expert_bytes += layers * touched * per_expert / tp * steps
        expert_calls += layers * touched * steps
    kv_bytes = decode_seqs * c.kv.bytes_per_sequence(context_tokens)
    # Linear-attention layers (Gated DeltaNet, Mamba) read each decode sequence's recurrent state and
    # write it back every step; a prompt chunk touches it once per chunk, which is left out.
    kv_bytes += 2.0 * decode_seqs * c.state_bytes
    # FLOPs per GPU, by operator: 2 per weight and token for the dense and the routed-expert GEMMs,
    # the score and value products over the context for attention, split over tp.
    tokens = gemm_seqs + prefill_tokens
    param_flops = c.param_flops
    attention_flops = decode_seqs * (
        flops_per_token(c.model, context_tokens) - param_flops
    ) + prefill_tokens * (flops_per_token(c.model, prefill_context) - param_flops)
    # One roofline per operator, summed: within a layer the GEMMs, the MoE kernels and attention run
    # one after another, so one's compute does not hide under another's memory traffic (the
    # per-operator roofline of LLM-Viewer, Yuan et al. 2024, and of NVIDIA AIConfigurator's sum of
    # per-operation latencies). Decode attention streams the KV cache; GEMMs at a large batch are
    # compute-bound.
    dense_mem = dense_bytes / c.weight_hbm_bps
    dense_cmp = (tokens * c.dense_flops * frac + decode_seqs * c.head_flops) / tp / c.gemm_peak
    moe_mem = expert_bytes / c.expert_hbm_bps + expert_calls * eff.moe_expert_overhead_s
    moe_cmp = tokens * c.expert_flops * frac / tp / c.moe_peak
    attn_mem = kv_bytes / c.attention_hbm_bps
    attn_cmp = attention_flops * frac / tp / c.attention_peak
    if c.sparse_kernels is not None:  # DeepSeek Sparse Attention, as its kernels run it
        sparse = sparse_attention_cost(
            c.model,
            c.gpu,
            c.sparse_kernels,
            tp,
            decode_seqs=decode_seqs,
            context_tokens=context_tokens,
            prefill_tokens=prefill_tokens,
            prefill_context=prefill_context,
            prefill_longest=prefill_longest,
            attention_fraction=eff.flops_fraction,
            hbm_bytes_per_s=c.attention_hbm_bps,
            kv_pool_tokens=shape.kv_pool_tokens,
        )
        others_s = (attention_flops - sparse.model_flops) * frac / tp / c.attention_peak  # the other layers'
        attn_cmp = others_s + sparse.seconds * frac
    t_mem = dense_mem + moe_mem + attn_mem
    t_compute = dense_cmp + moe_cmp + attn_cmp
    gpu_s = max(dense_mem, dense_cmp) + max(moe_mem, moe_cmp) + max(attn_mem, attn_cmp)
    tp_s, ep_s = _comm_parts_s(c.cluster, shape, c.f, frac, tokens_per_step, prefill_tokens / steps)
    if shape.ep_overlap:
        # Two-batch overlap (SGLang --enable-two-batch-overlap, vLLM dual-batch overlap, DeepEP's
        # hook-based overlap): one half-batch's all-to-all runs under the other's compute, so only
        # the part of the all-to-all longer than the compute stays exposed.
        return gpu_s + steps * tp_s + max(0.0, steps * ep_s - gpu_s), t_mem >= t_compute
    return gpu_s + steps * (tp_s + ep_s), t_mem >= t_compute


def _tensor_tflops(gpu: GPU, f: ModelFacts) -> tuple[float, bool]:
    """(the dense tensor-core peak the weights' GEMMs run at, whether they run on FP4 tensor cores):
    FP8 weights on FP8 tensor cores; NVFP4 on FP4 tensor cores (W4A4: the engines quantize activations
    to NVFP4 on Blackwell), and as BF16 GEMMs where the GPU has none (vLLM's FP4 Marlin kernels, W4A16,
    SM75 on: `is_fp4_marlin_supported`); INT8 W8A8 weights on INT8 tensor cores (vLLM 0.32
    `CompressedTensorsW8A8Int8.apply_weights` -> `apply_int8_linear`, CUTLASS `cutlass_scaled_mm` over
    int8 activations quantized per token; SGLang's scheme the same through `sgl_kernel.int8_scaled_mm`);
    everything else at the BF16 peak."""
    if f.fp4_compute and gpu.fp4_tflops:
        return gpu.fp4_tflops, True
    if f.fp8_compute and gpu.fp8_tflops:
        return gpu.fp8_tflops, False
    if f.int8_compute and gpu.int8_tops:
        return gpu.int8_tops, False
    return gpu.bf16_tflops, False


_LINKS: Memo[comm.Link] = {}


def _link(cluster: Cluster, size: int, stride: int) -> comm.Link:
    """`comm.group_link`, memoized."""
    hit = _LINKS.get((id(cluster), size, stride))  # `memoized`'s own look-up, inlined on this hot path
    if hit is not None and hit[0][0] is cluster:
        return hit[1]
    return memoized(_LINKS, (cluster,), (size, stride), lambda: comm.group_link(cluster, size, stride))


def _comm_parts_s(
    cluster: Cluster, shape: ReplicaShape, f: ModelFacts, frac: float, tokens: float, prompt_tokens: float
) -> tuple[float, float]:
    """(TP all-reduces, EP dispatch + combine) of one stage step carrying `tokens` tokens, of which
    `prompt_tokens` are prompt tokens, s."""
    layers = math.ceil(f.layers * frac - 1e-9)
    moe_layers = f.moe_layers * frac
    msg = tokens * f.hidden * ACTIVATION_BYTES
    if shape.engine == "sglang" and shape.ep_ranks > 1:
        prompt_msg = min(prompt_tokens, tokens) * f.hidden * ACTIVATION_BYTES
        return _sglang_moe_comm_s(cluster, shape, layers, msg, prompt_msg)
    if shape.engine == "vllm" and shape.ep_ranks > 1 and not (shape.fp8_dispatch or shape.ep_overlap):
        return _vllm_moe_comm_s(cluster, shape, layers, moe_layers, msg)
    tp_s = ep_s = 0.0
    if shape.tp > 1:
        # Two all-reduces per layer (attention output, MLP output); with EP the MoE output is
        # combined by the all-to-all instead.
        calls = 2 * layers - (moe_layers if shape.ep_ranks > 1 else 0)
        tp_s = calls * comm.all_reduce_s(msg, shape.tp, _link(cluster, shape.tp, 1))
    if shape.ep_ranks > 1:
        # Dispatch + combine: each rank sends its share of tokens' hidden states to top-k experts.
        top_k = max((k for _, _, k, _ in f.expert_groups), default=1)
        link = comm.all_to_all_link(cluster, shape.ep_ranks, shape.pp)
        send = msg / shape.tp * top_k
        # FP8 dispatch (DeepEP low-latency / normal kernels' FP8 mode, per-128-element scales):
        # 1 byte per element plus a 4-byte scale per 128 elements; the combine stays bf16.
        dispatch = send / ACTIVATION_BYTES * (1.0 + 4.0 / 128.0) if shape.fp8_dispatch else send
        ep_s = moe_layers * (
            comm.all_to_all_s(dispatch, shape.ep_ranks, link) + comm.all_to_all_s(send, shape.ep_ranks, link)
        )
    return tp_s, ep_s


def _vllm_moe_comm_s(
    cluster: Cluster, shape: ReplicaShape, layers: int, moe_layers: float, msg: float
) -> tuple[float, float]:
    """(TP collectives, EP all-gather + reduce-scatter) of one vLLM stage step with experts sharded
    over `shape.ep_ranks` GPUs by its default exchange, `msg` bytes of this rank's hidden states.

    vLLM's default `--all2all-backend` is `allgather_reducescatter` (already the default when vLLM
    PR #33728 removed the naive backend, February 2026; `AgRsAll2AllManager` in
    `distributed/device_communicators/all2all.py`): the dispatch all-gathers every token of the EP
    group onto every rank (`all_gatherv`), each rank runs its own experts on them, and the combine
    reduce-scatters the partial outputs back (`reduce_scatterv`); the bytes grow with the DP ranks,
    not with top-k. Without DP (`ep_ranks == tp`) vLLM uses no exchange at all
    (`ParallelConfig.use_all2all` needs DP > 1): every TP rank holds all the tokens, runs its experts
    on them, and the MoE output is all-reduced over TP like a dense MLP's. With DP and TP both above
    1 the MoE runs sequence-parallel (`use_sequence_parallel_moe`): each TP rank dispatches 1/tp of
    its replica's tokens over the whole EP group, and the MoE output is all-gathered back over TP.
    `shape.fp8_dispatch` / `ep_overlap` select the DeepEP kernels instead (`_comm_parts_s`)."""
    tp, ranks = shape.tp, shape.ep_ranks
    if ranks <= tp:
        return 2 * layers * comm.all_reduce_s(msg, tp, _link(cluster, tp, 1)), 0.0
    tp_link = _link(cluster, tp, 1)
    tp_s = (2 * layers - moe_layers) * comm.all_reduce_s(msg, tp, tp_link) if tp > 1 else 0.0
    tp_s += moe_layers * comm.all_gather_s(msg, tp, tp_link) if tp > 1 else 0.0
    gathered = msg * (ranks // tp)  # every token of the EP group, on every rank
    link = _link(cluster, ranks, shape.pp)
    ep_s = moe_layers * (
        comm.all_gather_s(gathered, ranks, link) + comm.reduce_scatter_s(gathered, ranks, link)
    )
    return tp_s, ep_s


def _sglang_moe_comm_s(
    cluster: Cluster, shape: ReplicaShape, layers: int, msg: float, prompt_msg: float
) -> tuple[float, float]:
    """(attention all-reduces, MLP gather + scatter) of one SGLang stage step with experts sharded
    over `shape.ep_ranks` GPUs, `msg` bytes of this rank's hidden states (`prompt_msg` of them of
    prompt tokens), s.

    SGLang 0.5.6 shards experts without an all-to-all unless DeepEP is its `--moe-a2a-backend`
    (never emitted here). Without attention DP (`ep_ranks == tp`) the MoE output is all-reduced over
    the TP group like a dense MLP's: two all-reduces a layer. With attention DP
    (`layers/dp_attention.py`, `communicator.py`) every layer's MLP, dense or MoE, runs on the
    hidden states of all the DP ranks: a step carrying prompt tokens gathers them by an all-reduce
    of the summed buffer (`DpPaddingMode.SUM_LEN`, `_dp_gather_via_all_reduce`) and all-reduces the
    MLP output before each rank copies its rows back; a decode step (CUDA graphs,
    `DpPaddingMode.MAX_LEN`) all-gathers the buffer padded to the busiest rank and reduce-scatters
    the output, the traffic of one all-reduce. SGLang runs prompt and decode tokens in separate
    steps; a step the model mixes pays each part its own way. The gathered buffer is this rank's
    tokens times the DP ranks: the padded buffer itself when this rank is the busiest (the
    lock-step replay takes the slowest rank's step), the summed one when the ranks are balanced."""
    tp, ranks = shape.tp, shape.ep_ranks
    if ranks <= tp:
        return 2 * layers * comm.all_reduce_s(msg, tp, _link(cluster, tp, 1)), 0.0
    attention_s = layers * comm.all_reduce_s(msg, tp, _link(cluster, tp, 1)) if tp > 1 else 0.0
    dp, link = ranks // tp, _link(cluster, ranks, 1)
    mlp_s = layers * (
        comm.all_reduce_s((msg - prompt_msg) * dp, ranks, link)
        + 2 * comm.all_reduce_s(prompt_msg * dp, ranks, link)
    )
    return attention_s, mlp_s


def _hop_s(cluster: Cluster, shape: ReplicaShape, f: ModelFacts, tokens: float) -> float:
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


def micro_batches(batch: float, pp: int) -> float:
    """Scheduler batches in flight through `pp` stages for `batch` running sequences: clamp(b, 1, pp).

    vLLM V1 schedules a new batch while up to pp − 1 others are still inside the pipeline
    (`max_concurrent_batches = pp`), but every batch holds at least one sequence.
    """
    return min(float(pp), max(batch, 1.0))


@dataclass(frozen=True)
class StepTimes:
    """One replica step at a given running batch, seconds."""

    step_s: float
    """T(b): one token for every running sequence, the mean over the prompts a step carries (= TPOT)."""
    decode_s: float
    """The same step without prefill work (pure decode)."""
    prefill_s: float
    """One prompt of `isl` tokens alone through the whole pipeline."""
    prompt_s: float
    """The time one more prompt adds to a full prefill step: vLLM's scheduler packs waiting prompts
    into a step up to the token budget (`Scheduler.schedule`), so min(⌊budget / isl⌋, running batch)
    of them share one step and its weight read; a prompt longer than the budget runs alone
    (`prefill_s`)."""
    ttft_s: float
    """The GPU part of TTFT: the rest of the rotation in progress and the one carrying the prompt."""
    memory_bound: bool
    """The step's stage time is set by HBM traffic rather than FLOPs."""
    together: float = 0.0
    """A closed loop: the chance that another request ends on the same rotation as this one, so that
    its replacement arrives with this one's (every one at osl 1 with prompts within the budget)."""


_PREFILL: Memo[float] = {}
_PROMPT: Memo[float] = {}
"""A prompt's share of a full prefill step (`StepTimes.prompt_s`), per shape, prompt and step."""


def rotation_s(
    model: ModelSpec,
    cluster: Cluster,
    shape: ReplicaShape,
    *,
    decode_seqs: float,
    context_tokens: float,
    prefill_tokens: float,
    prefill_context: float,
    steps: float = 1.0,
    padded_seqs: float | None = None,
    prefill_longest: float | None = None,
) -> tuple[float, bool]:
    """One micro-batch through every stage: pp · (stage step + eager launches) + hops + the sampler's
    pass over the logits (`sampler_s`) + host time.

    Host time is a fixed part per step (`step_overhead_s`) and the scheduler's pass over the running
    requests (`request_step_overhead_s` per decode sequence and step), which adds to the GPU time
    where the engine schedules synchronously and hides under it where it schedules one step ahead
    (the step lasts the longer of the two; `schedules_ahead` says which, by engine, release, layout
    and architecture).

    `decode_seqs` and `prefill_tokens` are one micro-batch's work (see `micro_batches`); returns
    (seconds, memory_bound) as `stage_step_s` does (`prefill_longest` as it takes it).
    """
    return _rotation_s(
        step_constants(model, cluster, shape),
        decode_seqs,
        context_tokens,
        prefill_tokens,
        prefill_context,
        steps,
        padded_seqs,
        prefill_longest,
    )


def _rotation_s(
    c: StepConstants,
    decode_seqs: float,
    context_tokens: float,
    prefill_tokens: float,
    prefill_context: float,
    steps: float,
    padded_seqs: float | None,
    prefill_longest: float | None,
) -> tuple[float, bool]:
    """`rotation_s` with `c`'s constants."""
    eff, pp = c.eff, c.shape.pp
    stage, mem_bound = _stage_step_s(
        c, decode_seqs, context_tokens, prefill_tokens, prefill_context, steps, padded_seqs, prefill_longest
    )
    gemm_seqs = decode_seqs if padded_seqs is None else max(padded_seqs, decode_seqs)
    hop = _hop_s(c.cluster, c.shape, c.f, (gemm_seqs + prefill_tokens) / steps)
    gpu_s = pp * (stage + steps * c.eager_s) + (pp - 1) * hop * steps + _sampler_s(c, decode_seqs)
    scheduler_s = steps * eff.request_step_overhead_s * decode_seqs
    busy_s = max(gpu_s, scheduler_s) if c.schedules_ahead else gpu_s + scheduler_s
    return busy_s + steps * eff.step_overhead_s, mem_bound


LOGITS_BYTES_PER_ENTRY = {"vllm": 12.0, "sglang": 12.0, "trtllm": 4.0}
"""HBM bytes per (decode sequence, vocabulary entry) of a greedy decode step after the LM head, by
engine: vLLM 0.32 (`Sampler.forward`, `logits.to(torch.float32)`, then the greedy `argmax`) and SGLang
0.5.6 (`LogitsProcessor._get_logits`, `logits[:, :vocab_size].float()`, then `torch.argmax`) write the
logits in bf16 (2), read them (2), write them again in float32 (4) and read those (4); TensorRT-LLM is
charged the floor every engine pays, bf16 logits written and read by `argmax` (4): its PyTorch
sampler's greedy path differs by release (some also take a softmax), and the rows name none.
Temperature, top-k and top-p sampling pass over the logits more often, by kernel and release; that
is not modelled."""


def sampler_s(model: ModelSpec, cluster: Cluster, shape: ReplicaShape, decode_seqs: float) -> float:
    """The logits of one step's `decode_seqs` sequences from the LM head to the sampled tokens, s: the
    vocabulary-parallel LM head's slices all-gathered over the tensor-parallel group in bf16 (vLLM's
    `LogitsProcessor._gather_logits`, SGLang's `tensor_model_parallel_all_gather`), then the engine's
    `LOGITS_BYTES_PER_ENTRY` through HBM on each GPU at its streaming fraction, once per step (the
    last pipeline stage's)."""
    return _sampler_s(step_constants(model, cluster, shape), decode_seqs)


def _sampler_s(c: StepConstants, decode_seqs: float) -> float:
    """`sampler_s` with `c`'s constants."""
    entries = decode_seqs * c.model.vocab_size
    hbm_s = entries * c.logits_bytes / c.logits_hbm_bps
    if c.shape.tp == 1:
        return hbm_s
    return hbm_s + comm.all_gather_s(entries * ACTIVATION_BYTES, c.shape.tp, c.tp_link)


SGLANG_NO_OVERLAP_ARCHITECTURES = frozenset({"Qwen3NextForCausalLM"})
"""Architectures SGLang 0.5.6 serves without its overlap scheduler unless `--disable-radix-cache` is
passed (never emitted here): `ServerArgs` turns it off for them ("MambaRadixCache is not compatible
with overlap schedule")."""


def schedules_ahead(model: ModelSpec, shape: ReplicaShape) -> bool:
    """Whether the engine's host schedules step n + 1 while the GPU runs step n: vLLM by its release
    (`shape.async_scheduling`, `vllm_async_scheduling`); SGLang 0.5.6's overlap scheduler, except with
    pipeline stages ("Pipeline parallelism is incompatible with overlap schedule",
    `_handle_pipeline_parallelism`) and for `SGLANG_NO_OVERLAP_ARCHITECTURES`; TensorRT-LLM's host
    cost is not charged, so its answer is moot."""
    if shape.engine == "sglang":
        return shape.pp == 1 and model.architecture not in SGLANG_NO_OVERLAP_ARCHITECTURES
    return shape.async_scheduling


SCHEDULING = {"vllm": "mixed", "sglang": "prefill_first", "trtllm": "no_evict"}
"""How each engine's scheduler fills a step (its default policy):

- `mixed` (vLLM V1): decodes first, prompt chunks fill the rest of the token budget in the same step;
  KV blocks are taken as tokens are written; a full cache preempts the latest request (recompute).
- `prefill_first` (SGLang `Scheduler.get_next_batch_to_run`, `--enable-mixed-chunk` off by
  default): whenever a prefill batch can be formed it runs alone, up to `chunked_prefill_size`
  tokens, and the running decodes wait for it. A request is admitted only when its whole prompt and
  its output (clipped at 4,096) fit the free pool less what the running requests may still write,
  their remaining output times `new_token_ratio` (`PrefillAdder.add_one_req`); the ratio starts at
  0.7 (0.21 with attention DP) and decays to 0.14 of that over 600 decode steps
  (`serving_replay.SGLANG_INIT_NEW_TOKEN_RATIO`, `..._MIN_NEW_TOKEN_RATIO_FACTOR`,
  `..._NEW_TOKEN_RATIO_DECAY_STEPS`, `SGLANG_DP_ATTENTION_CONSERVATIVENESS`), back to its start
  after a preemption (SGLang recomputes it there; taken as the initial value).
- `no_evict` (TensorRT-LLM `CapacitySchedulerPolicy.GUARANTEED_NO_EVICT`, the default): a request is
  admitted only when blocks for its whole prompt and output can be reserved, so nothing is ever
  preempted; context and generation requests share a step up to `max_num_tokens`."""

PROMPT_STEP_GRAPHS = {"vllm": "piecewise", "sglang": "eager", "trtllm": "eager"}
"""How each engine runs a step that carries a prompt chunk, and so (the data-parallel ranks of one
engine agree on one graph mode every step) how a decode-only rank runs beside another rank's prompt:

- `piecewise` (vLLM V1: a mixed batch runs the PIECEWISE CUDA graphs, which cover everything but
  attention, so no eager launch cost is charged; `dp_utils._synchronize_dp_ranks` takes the minimum
  mode over the DP ranks): no full decode graph, so no padding to a captured size;
- `eager` (SGLang: only decode or idle batches replay CUDA graphs, and with attention DP
  `prepare_mlp_sync_batch_raw` all-gathers `can_cuda_graph` and takes the minimum; TensorRT-LLM:
  CUDA graphs run generation-only batches, with attention DP only when every rank's is,
  `maybe_get_cuda_graph`): the whole step runs without CUDA graphs, eager launch cost per layer."""


POISSON_POINTS = 16
"""Points a Poisson count is summarized by when its support (eight standard deviations each side)
holds more than three times as many: equal-probability strata, each at its conditional mean, so a
step time linear in the count comes out exact and a convex one within the chords' error."""


POISSON_TAIL = 1e-6
"""Counts less likely than this are dropped (and the rest renormalized): each costs a computed
rotation, and together they move a mean step by far less than the model's own error."""


def poisson_weights(mean: float) -> tuple[np.ndarray, np.ndarray]:
    """(counts, probabilities) of a Poisson count of `mean`: every count within eight standard
    deviations and above `POISSON_TAIL` (log-space: no underflow at large means), normalized to sum
    to 1; `POISSON_POINTS` strata of equal probability, each at its mean count, where that support
    is wider than three times as many points. They keep the count's mean and (exactly, below that
    width) its spread."""
    return _poisson_weights(float(mean))


@functools.lru_cache(maxsize=65536)
def _poisson_weights(mean: float) -> tuple[np.ndarray, np.ndarray]:
    if mean <= 0:
        return np.zeros(1), np.ones(1)
    spread = 8.0 * math.sqrt(mean) + 8.0
    lo, hi = max(0, math.floor(mean - spread)), math.ceil(mean + spread)
    counts = np.arange(lo, hi + 1, dtype=float)
    # log n! from lgamma at the low end, then running sums of log n.
    log_factorial = math.lgamma(lo + 1.0) + np.concatenate(([0.0], np.cumsum(np.log(counts[1:]))))
    log_p = counts * math.log(mean) - mean - log_factorial
    p = np.exp(log_p - log_p.max())
    p /= p.sum()
    keep = p > POISSON_TAIL
    counts, p = counts[keep], p[keep] / p[keep].sum()
    if len(counts) <= 3 * POISSON_POINTS:
        return counts, p
    # A count's stratum: where the probability before it falls among POISSON_POINTS equal parts.
    before = np.cumsum(p) - p
    stratum = np.minimum((before * POISSON_POINTS + 1e-12).astype(np.int64), POISSON_POINTS - 1)
    mass = np.bincount(stratum, weights=p, minlength=POISSON_POINTS)
    weighted = np.bincount(stratum, weights=p * counts, minlength=POISSON_POINTS)
    used = mass > 0
    return weighted[used] / mass[used], mass[used]


PROMPT_GRID: tuple[float, ...] = (0.0, 1.0, 2.0, *sorted({float(round(2 * 1.5**i)) for i in range(1, 40)}))
"""Prompt counts a rotation is computed at (every count to 3, then about 50 % apart to ~10^7);
counts between are linear between neighbours. A rotation's time is piecewise linear and convex in
its prompt tokens (a sum of per-operator rooflines), so a chord is above it by little; a Poisson
count of mean 5 is summed over 8 computed rotations instead of 17."""
PLACE_POINTS = 4
"""Gauss-Legendre points on [0, 1] the tagged prompt's place in its carrying rotation is averaged over
(u: the share of that rotation's other prompts that go before it)."""
_LEGENDRE_NODES, _LEGENDRE_WEIGHTS = np.polynomial.legendre.leggauss(PLACE_POINTS)
PLACES, PLACE_WEIGHTS = (_LEGENDRE_NODES + 1.0) / 2.0, _LEGENDRE_WEIGHTS / 2.0
"""The `PLACE_POINTS` places u on [0, 1] and their weights (Gauss-Legendre's on [-1, 1], mapped)."""
MAX_PROMPTS_PER_STEP = 4096.0
"""Most whole prompts one rotation may carry in expectation while an arrival rate's step time is
sought: past it the arrivals outrun the replica's prompt work (no steady state), and the last
estimate stands."""


@dataclass(frozen=True)
class _Rotation:
    """One rotation of the running decodes with some whole prompts: its seconds, the engine steps
    that give each decode a token, when its prompts sample their first token (from its start), and
    whether HBM bounds it."""

    seconds: float
    decode_steps: float
    first_token_s: float
    memory_bound: bool


def replica_step_times(
    model: ModelSpec,
    cluster: Cluster,
    shape: ReplicaShape,
    *,
    batch: float,
    isl: int,
    osl: int,
    batched_tokens: int,
    arrivals_per_s: float | None = None,
    prompt_spread: float = 0.0,
    context: float | None = None,
    others_batch: float | None = None,
) -> StepTimes:
    """Step, decode, prefill and TTFT times of one replica running `batch` sequences, with new
    prompts coming one for each request that finishes (None: a closed loop, full load or a client's
    concurrency cap) or arriving as a Poisson process of `arrivals_per_s` per replica (an open loop,
    `vllm bench serve --request-rate`); memoized per model and cluster object (the solvers' tables,
    the oracles and sweeps ask for the same replica at the same batch many times).

    The engine schedules every prompt that is waiting whole into its next step (vLLM V1 takes
    waiting requests into the step's token budget; TensorRT-LLM alike; SGLang into a prompt step of
    its own), so a rotation carries n whole prompts, not an even share b · isl / osl of prompt tokens:

    - closed loop: n ~ Poisson((b − 1) / osl · steps), the OTHER requests that finished in the
      last rotation (b running, each ending on a given token with probability 1 / osl, at most once
      a rotation; outputs of spread lengths): the times are those one request sees, and its own
      replacement comes after its last token, so a lone request's TPOT is a pure decode step;
    - open loop: n ~ Poisson(λ · T̄), the arrivals during the last rotation.

    Aligned data-parallel ranks (`aligned_ranks`: vLLM DP + EP, SGLang and TensorRT-LLM attention DP)
    step in lock-step, each step as long as the slowest rank's: the step is priced at the most
    prompts any rank carries, the request's own rank's count and each other rank's independent
    (`lockstep_counts`: P(max ≤ j) = F(j)^(ranks − 1)), as `serving_replay.lockstep` replays them. On
    Qwen3-30B-A3B over 4 H100s (DP 4 + EP, 1,024 / 256 tokens of spread 0.8, 64 in flight) TPOT
    12.0 / 13.5 / 13.0 ms on vLLM / SGLang / TensorRT-LLM where each rank alone gave 9.9 / 10.4 /
    10.1; the replay measures 11.6 / 13.8 / 13.0.

    A rotation's time is convex in its prompt tokens (its GEMMs turn compute-bound past the
    roofline's ridge), so the mean over n is longer than the rotation at the mean n: at 45
    requests/s of 238 / 202 tokens on Qwen3-8B / H100, 13.9 ms where the even share gave 8.7 (the
    step-by-step replay of the same arrivals, `perf/serving_load.py`, measures 14.0); at a
    concurrency of 64 ShareGPT requests 11.0 ms (replay 10.9). T̄ = Σₙ P(n) · T(n)
    is found by iteration (the open loop rises to its least fixed point); TPOT is T̄ over the engine steps a
    rotation takes on average (one past the token budget runs as several). TTFT's GPU part: the rest of the
    rotation in progress when the prompt reaches the engine (its length-biased mean, E[T²] / (2 · E[T]); a
    closed loop's client sends on the last token, but the HTTP round and the server's own time put the prompt
    mid-rotation; an engine with no other request has none in progress, nor one whose other requests ended on
    the same rotation, as at osl 1), then the rotation that carries it with the others that came meanwhile (a
    size-biased draw: one more than a Poisson count) beside the other requests' decodes, to its first token; a
    prompt longer than the budget runs in chunks of it. Qwen3-8B / H100, one request at a time: 1,024 / 16
    tokens TPOT 7.09 ms and TTFT 82 ms (a prompt-carrying share of its own replacement gave 8.76 and 91),
    40,959 / 1 tokens TTFT 2.44 s (it was queued behind its own chunks: 18.9 s); the replay measures 7.09, 82
    and 2.44. Each engine's policy, as the replay runs it: a rotation with prompts runs without CUDA graphs on
    SGLang and TensorRT-LLM (`PROMPT_STEP_GRAPHS`), and SGLang runs the prompts in a step of their own while
    the decodes wait (`SCHEDULING`), their first tokens at that step's end.

    Prompts of spread lengths (`prompt_spread` = E[isl²] / isl² − 1, `Serving.prompt_spread`) make
    a step's prompt tokens a compound Poisson sum; it is taken as a Poisson count of units of
    isl · (1 + spread) tokens at 1 / (1 + spread) of the prompts' rate, which keeps the sum's mean
    and variance. A prompt's own first token comes with its own (mean) length beside such units.
    ShareGPT's spread is 1.37. `context` is the running set's mean context
    (`Serving.running_context`; None: isl + osl/2, lengths that do not spread), which outputs of
    spread lengths raise: under a cap of 64 on Qwen3-8B / H100, TPOT 11.0 ms where isl + osl/2
    gave 10.4 (the replay: 10.9); at 45 requests/s 18.9 ms where it gave 15.0 (the replay of 20,000
    such arrivals: 19.8).

    `decode_s` is the rotation without prompts; `prefill_s` one prompt alone through the pipeline.
    """
    key = (shape, batch, isl, osl, batched_tokens, arrivals_per_s, prompt_spread, context, others_batch)
    return memoized(
        _STEP_TIMES,
        (model, cluster),
        key,
        lambda: _step_times(
            model,
            cluster,
            shape,
            batch=batch,
            isl=isl,
            osl=osl,
            batched_tokens=batched_tokens,
            arrivals_per_s=arrivals_per_s,
            prompt_spread=prompt_spread,
            context=isl + osl / 2.0 if context is None else context,
            others_batch=batch if others_batch is None else others_batch,
        ),
    )


_STEP_TIMES: Memo[StepTimes] = {}


def _step_times(
    model: ModelSpec,
    cluster: Cluster,
    shape: ReplicaShape,
    *,
    batch: float,
    isl: int,
    osl: int,
    batched_tokens: int,
    arrivals_per_s: float | None,
    prompt_spread: float,
    context: float,
    others_batch: float,
) -> StepTimes:
    k = micro_batches(batch, shape.pp)
    m = batch / k
    unit = 1.0 + max(prompt_spread, 0.0)  # prompts per counted unit of isl · unit tokens: 1 / unit
    # A rotation with prompt tokens runs without CUDA graphs where the engine does so.
    eager = PROMPT_STEP_GRAPHS[shape.engine] == "eager"
    constants = step_constants(model, cluster, shape)
    prompt_constants = (
        step_constants(model, cluster, replace(shape, enforce_eager=True)) if eager else constants
    )
    alone = SCHEDULING[shape.engine] == "prefill_first"
    closed = arrivals_per_s is None
    ranks = aligned_ranks(shape)
    # The times are those one request sees (the tagged request): its TPOT counts the prompts of the
    # OTHER requests only (its own replacement comes after its last token), and its TTFT is its own
    # prompt with the others' work beside it.
    # Decode-first steps (vLLM, TensorRT-LLM): each running sequence decodes a token every step and the
    # prompts take the rest of the budget. A closed loop replaces every finished request with a prompt,
    # isl prompt tokens per osl decode tokens, so while the tagged request decodes (one token of the
    # budget) at most (k · budget − 1) · osl / (isl + osl) others decode beside it in the long run;
    # the rest of the running batch waits for its prompt's turn (in TTFT below). A lone request never
    # waits: its own prompt runs in chunks of the budget, in TTFT. Without this bound a rotation past
    # the budget ran several steps, each credited a token per decode while its work counted the
    # decodes once: more steps finished more requests, which sent more prompts, and at
    # isl · b > osl · budget the loop ran away (62 tokens/s at osl 40 against the replay's 1,031,
    # Qwen3-8B on one H100).
    running = m
    full_m = (1.0 + (k * batched_tokens - 1.0) * osl / (isl + osl)) / k
    full_others = full_m * k - 1.0
    if closed and not alone:
        m = min(m, full_m)
    # Others decoding beside the tagged request (the whole replica), whose finishes send the prompts
    # its decode steps carry; in its own prompt's rotation its micro-batch decodes the others only.
    others = max(m * k - 1.0, 0.0)
    carry_decodes = max(m - 1.0, 0.0) if closed else m
    rotations: dict[tuple[float, float], _Rotation] = {}
    prefill_context, longest = isl / 2.0, float(isl)

    def run(
        decode: float, prefill: float, step: StepConstants, steps: float | None = None
    ) -> tuple[float, float, bool]:
        """(seconds, engine steps, memory-bound) of `decode` sequences and `prefill` prompt tokens in
        `step`'s shape, over as many steps as the token budget takes (or `steps`)."""
        steps = max(1.0, (decode + prefill) / batched_tokens) if steps is None else steps
        seconds, bound = _rotation_s(step, decode, context, prefill, prefill_context, steps, None, longest)
        return seconds, steps, bound

    def decode_only(decode: float) -> tuple[float, float, bool]:
        """A step of `decode` sequences alone, as the replay runs it: without CUDA graphs above the
        largest captured batch (`graph_max_batch`), its GEMMs at the captured batch it is padded to
        where the engine pads (`graph_sizes`)."""
        if shape.graph_max_batch is not None and decode > shape.graph_max_batch and not shape.enforce_eager:
            return run(decode, 0.0, step_constants(model, cluster, replace(shape, enforce_eager=True)))
        i = bisect.bisect_left(shape.graph_sizes, math.ceil(decode - 1e-9))
        if shape.enforce_eager or i >= len(shape.graph_sizes):
            return run(decode, 0.0, constants)
        padded = float(shape.graph_sizes[i])
        seconds, bound = _rotation_s(constants, decode, context, 0.0, prefill_context, 1.0, padded, longest)
        return seconds, 1.0, bound

    def exact(n: float, decode: float) -> _Rotation:
        """The rotation of `decode` decodes with `n` whole prompts, computed."""
        if (n, decode) not in rotations:
            if n <= 0:
                seconds, steps, bound = decode_only(decode)
                rotations[n, decode] = _Rotation(seconds, steps, seconds, bound)
            elif alone:  # the prompts' own step first, the decodes waiting, then the decode step
                prompt_s, _, _ = run(0.0, n * isl * unit / k, prompt_constants)
                after = exact(0.0, decode)
                rotations[n, decode] = _Rotation(prompt_s + after.seconds, 1.0, prompt_s, after.memory_bound)
            else:
                seconds, steps, bound = run(decode, n * isl * unit / k, prompt_constants)
                rotations[n, decode] = _Rotation(seconds, steps, seconds, bound)
        return rotations[n, decode]

    # The grid points and their fields' values `table` interpolates between, per (decode, first and
    # last grid index) and field: the fixed-point passes below ask for the same ones again and again.
    grids: dict[tuple[float, int, int], tuple[list[_Rotation], np.ndarray, dict[str, np.ndarray]]] = {}

    def table(
        counts: np.ndarray, decode: float, fields: tuple[str, ...], ascending: bool = False
    ) -> tuple[np.ndarray, ...]:
        """The `fields` of `_Rotation` (seconds, decode steps, first-token time) of rotations with
        `counts` prompts (`ascending`: known to be in ascending order): computed at the
        `PROMPT_GRID` counts around them, linear between (past the grid's end, computed)."""
        if ascending:
            low, top = float(counts[0]), float(counts[-1])
        else:
            low, top = float(counts.min()), float(counts.max())
        lo = bisect.bisect_right(PROMPT_GRID, low) - 1
        hi = bisect.bisect_left(PROMPT_GRID, top)
        if top > PROMPT_GRID[-1]:
            points = list(PROMPT_GRID[lo : hi + 1])
            points += [float(n) for n in np.unique(counts) if n > PROMPT_GRID[-1]]
            at = [exact(n, decode) for n in points]
            return tuple(np.interp(counts, points, [getattr(r, field) for r in at]) for field in fields)
        grid = grids.get((decode, lo, hi))
        if grid is None:
            span = PROMPT_GRID[lo : hi + 1]
            grid = grids[decode, lo, hi] = ([exact(n, decode) for n in span], np.asarray(span), {})
        at, xp, values = grid
        out = []
        for field in fields:
            fp = values.get(field)
            if fp is None:
                fp = values[field] = np.asarray([getattr(r, field) for r in at])
            out.append(np.interp(counts, xp, fp))
        return tuple(out)

    def lockstep(
        own: np.ndarray, most: np.ndarray, decode: float, mine: float = 0.0, *, first_token: bool = False
    ) -> tuple[np.ndarray, ...]:
        """(seconds, decode steps) of the aligned rotations in which the tagged request's rank carries
        `own` prompts (and `mine` more: its own, in its TTFT) and the busiest other rank `most`
        (`lockstep_counts`; 0 for a replica that steps alone); with `first_token`, (first-token
        time,) of them instead: every rank's step lasts as long as the slowest rank's. A decode-first
        rank's rotation is the mixed step of the most prompts; SGLang's prompts run in a prompt-only
        step, beside which the other ranks decode (eagerly: `PROMPT_STEP_GRAPHS`), and the rank's own
        decodes follow in a step of their own (`serving_replay.lockstep` steps the ranks alike)."""
        if not alone:
            fields = ("first_token_s",) if first_token else ("seconds", "decode_steps")
            if ranks == 1:  # `most` is 0 and the counts are not negative: the own counts, ascending
                return table(own + mine if mine else own, decode, fields, ascending=True)
            return table(np.maximum(own + mine, most), decode, fields)
        seconds, prompt_s = table(own + mine, decode, ("seconds", "first_token_s"), ascending=True)
        decode_s = exact(0.0, decode).seconds
        if ranks == 1:
            return (prompt_s,) if first_token else (seconds, np.ones_like(seconds))
        (other_s,) = table(most, decode, ("first_token_s",))
        other_s = np.where(most > 0, other_s, 0.0)
        mine_s = np.where(own + mine > 0, prompt_s, 0.0)
        if first_token:
            return (np.maximum(mine_s, other_s),)
        beside = run(decode, 0.0, prompt_constants)[0] if eager else decode_s
        seconds = np.where(
            own + mine > 0,
            np.maximum(mine_s, other_s) + decode_s,
            np.where(most > 0, np.maximum(other_s, beside), decode_s),
        )
        return seconds, np.ones_like(seconds)

    def counts_at(mu_own: float, mu_rank: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`lockstep_counts(mu_own, mu_rank, ranks)`; one rank's `most` (its 0s) is never read, and
        stands as the own counts, which are not below it."""
        if ranks <= 1:
            own, p_own = poisson_weights(mu_own)
            return own, own, p_own
        return lockstep_counts(mu_own, mu_rank, ranks)

    mean_s, mean_steps, mus = exact(0.0, m).seconds, 1.0, (-1.0, -1.0)
    own, most, weights = counts_at(0.0, 0.0)
    seconds = np.asarray([mean_s])
    for _ in range(200):
        if arrivals_per_s is None:
            # The tagged request's rank: the others' prompts; another rank's: all of its requests'.
            # A request sends at most one prompt per rotation (the ones that come during a rotation
            # wait for the next), which binds where a rotation outlasts an output: prompts longer
            # than the budget, short outputs.
            finished = min(mean_steps / osl, 1.0) / unit
            new = (others * finished, others_batch * finished)
        else:
            rate = min(arrivals_per_s * mean_s / unit, MAX_PROMPTS_PER_STEP)
            new = (rate, rate)
        if abs(new[0] - mus[0]) <= 1e-9 * new[0] and abs(new[1] - mus[1]) <= 1e-9 * new[1]:
            break  # the same counts as the last pass: nothing moves
        mus = new
        own, most, weights = counts_at(*mus)
        seconds, steps = lockstep(own, most, m)
        mean_s, mean_steps = float(weights @ seconds), float(weights @ steps)
        if max(mus) >= MAX_PROMPTS_PER_STEP:
            break
    # A prompt reaches the engine mid-rotation (after the client's and the server's own time), and
    # waits out the rest of it: a length-biased mean. A closed loop's engine is busy then only with
    # the other requests that did not end on the same rotation as this one: a request lives its
    # prompt's chunks and then (osl - 1) / steps rotations, so it ends on a given one with probability
    # steps / (chunks * steps + osl - 1). None is busy beside a lone request, nor at osl 1 with
    # prompts within the budget, where every request ends on the rotation that prefills it and the
    # replacements arrive together (Mixtral-8x7B on one H200, 4,000 / 1 tokens: 4.22 requests/s at
    # max_num_seqs 1 and 2.83 at 2, where both prompts share a step; now 4.22 at both).
    chunks = math.ceil(isl / batched_tokens)
    life = chunks * mean_steps + osl - 1.0
    ended = min(mean_steps / life, 1.0)
    busy = 1.0 if not closed else min(max(batch - 1.0, 0.0), 1.0) * (1.0 - ended ** max(batch - 1.0, 1.0))
    waiting_s = busy * float(weights @ seconds**2) / (2.0 * mean_s)
    # Then the next rotation carries it with the others that came meanwhile, first come first served
    # (vLLM's `Scheduler.schedule` takes the waiting queue in order into the step's token budget):
    # the prompts that came before it in the rotation in progress go first, a fraction u of that
    # rotation's count where it came at a fraction u of it (u uniform; `PLACE_POINTS`), and its first
    # token is sampled when its own prompt is through, not at the end of the rotation. Its own prompt,
    # of the mean length, is whole in its micro-batch (a rotation spreads n prompts over the k
    # micro-batches in flight, n · isl / k tokens each: k / unit more prompts is its isl more),
    # chunked at the budget where it is longer, beside the others' decodes and prompts.
    carrying_s = 0.0
    for u, w in zip(PLACES, PLACE_WEIGHTS, strict=True):
        ahead_own, ahead_most, p = counts_at(u * mus[0], u * mus[1])
        (first_s,) = lockstep(ahead_own, ahead_most, carry_decodes, k / unit, first_token=True)
        carrying_s += w * float(p @ first_s)
    # A decode-first engine whose running requests need more prompt tokens than the budget holds
    # is saturated: a step of the most decodes beside prompts (`full_m` a micro-batch, the rest of
    # the budget prompt tokens) takes (full_m · k − 1) / osl prompts, so the replica completes at
    # most X = that over the step's time, and by Little's law its running · k requests spend at
    # least running · k / X in it each, (osl − 1) steps of that decoding: the TTFT is at least the
    # rest (a closed system's asymptotic bound, response ≥ N / X_max − Z, Denning and Buzen 1978).
    # That wait holds the queue past the budget and the prompts of the carrying rotation, the same
    # requests, once; adding the queue (Little's law) to the rotations counted them twice: Qwen3-8B
    # on one H100, 4,096 / 4 tokens, 16 clients, TTFT 2,676 ms and 18.2 tokens/s, where 64 clients
    # gave 25.1; now 1,425 ms and 28.3, 28.6 at 64 (the replay: 1,348 ms, 28.6 at both). Past the
    # budget's decode bound the engine is saturated, X = X_max, and the bound is Little's law itself:
    # the TTFT, not a floor under the rotations' wait, which just past the bound still counted the
    # queue's prompts (10 and 12 clients: 19.4 and 23.3 tokens/s against 24.6 at 8 and 28.3 at 16,
    # TTFT 1,225 ms where the replay waits 642; now 28.1 and 28.2, TTFT 587 and 866, the replay's
    # 28.6 at both and 846 ms at 12).
    saturated_s, saturated = 0.0, False
    if closed and not alone and full_others > 0:
        decode = min(full_m, float(batched_tokens))
        full_s = run(decode, batched_tokens - decode, prompt_constants, 1.0)[0]
        saturated_s = running * k * full_s * osl / full_others - (osl - 1.0) * mean_s / mean_steps
        saturated = running > full_m
    ttft_s = saturated_s if saturated else max(waiting_s + carrying_s, saturated_s)
    prefill_s = memoized(
        _PREFILL,
        (model, cluster),
        (shape, isl, osl, chunks),
        lambda: run(0.0, float(isl), constants, float(chunks))[0],
    )
    mode = float(np.maximum(own, most)[int(np.argmax(weights))])
    nearest = min((n for n, d in rotations if d == m), key=lambda n: abs(n - mode))
    # A step holds the prompts the budget takes, and no more than are there: a burst's first wave is
    # the replica's running batch (`client_queue_s`), so 8 prompts never share a step of 64.
    per_step = min(batched_tokens // max(isl, 1), max(math.ceil(batch), 1))
    prompt_s = (
        memoized(
            _PROMPT,
            (model, cluster),
            (shape, isl, osl, per_step),
            lambda: run(0.0, float(per_step * isl), constants, 1.0)[0] / per_step,
        )
        if per_step >= 2
        else prefill_s
    )
    return StepTimes(
        step_s=mean_s / mean_steps,
        decode_s=exact(0.0, m).seconds,
        prefill_s=prefill_s,
        prompt_s=prompt_s,
        ttft_s=ttft_s,
        memory_bound=rotations[nearest, m].memory_bound,
        together=ended if closed else 0.0,
    )


def aligned_ranks(shape: ReplicaShape) -> int:
    """The data-parallel ranks of one engine that step in lock-step (vLLM DP + EP, SGLang and
    TensorRT-LLM attention DP: the experts are sharded over tp × ranks GPUs, and every forward pass
    is aligned across the ranks, as `serving_load.simulate_benchmark` replays them); 1 for a replica
    that steps alone."""
    return shape.ep_ranks // shape.tp if shape.ep_ranks > shape.tp else 1


def lockstep_counts(mu_own: float, mu_rank: float, ranks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prompts on the tagged request's rank, the most prompts on any of the other `ranks` − 1 ranks,
    probability) of one aligned step: the own rank's a Poisson count of mean `mu_own`, each other
    rank's an independent one of `mu_rank`, whose maximum has P(max ≤ j) = F(j)^(ranks − 1). One
    rank alone: the own count, and 0."""
    own, p_own = poisson_weights(mu_own)
    if ranks <= 1:
        return own, np.zeros_like(own), p_own
    other, p_other = poisson_weights(mu_rank)
    below = np.cumsum(p_other)
    p_most = below ** (ranks - 1) - np.maximum(below - p_other, 0.0) ** (ranks - 1)
    return np.repeat(own, len(other)), np.tile(other, len(own)), np.outer(p_own, p_most).ravel()
