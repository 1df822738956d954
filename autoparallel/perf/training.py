"""Training step time, throughput and MFU of one concrete `TrainingConfig`, in floats (seconds).

The CP-SAT training encoder turns these building blocks into integer tables (µs), so their names
are stable:

    layer_time_breakdown / layer_time_s   fwd+bwd of one decoder layer, one micro-batch, one GPU
    embedding_time_s / lm_head_time_s     the same for the embedding (first stage) and LM head (last,
                                          with the MTP modules: mtp_time_s)
    stage_time_s                          one micro-batch through one pipeline stage (+ p2p hops)
    pipeline_step_time_s                  1F1B / interleaved schedule over the stage times
    dp_sync_time_s                        exposed gradient / parameter synchronisation per step
    training_perf                         the whole TrainingPerf
    model_flops_per_step / cost_to_tokens
    megatron_log_flops_per_step           the causal count Megatron-LM core_v0.12.0+ logs

Sources: model FLOPs as Narayanan et al. 2021 ("Efficient Large-Scale Language Model Training on GPU
Clusters Using Megatron-LM", §5.1 eq. 3: 72·B·s·l·h²(1 + s/6h + V/12lh) without recompute, i.e.
3 × forward with non-causal attention FLOPs; the count NVIDIA's (NeMo 24.07, Megatron-LM up to
core_v0.11) and MosaicML's MFU tables use; Megatron-LM core_v0.12.0+ halves attention for the
causal mask, `megatron_log_flops_per_step`);
hardware FLOPs add the recomputed forward (their 96·B·s·l·h² count under full recompute).

Layout: perf/training_layer.py (one decoder layer, the embedding and the LM head per micro-batch:
FLOPs, compute, TP / CP / EP / ZeRO-3 communication), perf/training_schedule.py (stages, the pipeline
schedule, data-parallel sync and the optimizer step); this module turns them into the step's results
(`TrainingPerf`, `TrainingCost`). Their public names are re-exported here.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from autoparallel.configs import Recompute, TrainingConfig
from autoparallel.errors import InputError
from autoparallel.memory.training import stage_layer_indices
from autoparallel.models.spec import AttentionKind, AttentionSpec, ModelSpec
from autoparallel.perf.training_layer import (
    RECOMPUTE_TIME_FRACTION,
    TP_COMM_EXPOSED,
    ZERO3_OVERLAP_FRACTION,
    LayerTime,
    _Frozen,
    attention_core_flops,
    embedding_time_s,
    gemm_flops,
    layer_time_breakdown,
    layer_time_s,
    lm_head_time_s,
    mtp_time_s,
    peak_flops,
)
from autoparallel.perf.training_schedule import (
    DP_OVERLAP_FRACTION,
    _optimizer_shard,
    dp_overlap_window_s,
    dp_sync_time_s,
    offload_step_s,
    optimizer_step_s,
    pipeline_step_time_s,
    stage_time_s,
)

if TYPE_CHECKING:
    from autoparallel.hardware import Cluster

__all__ = [
    "DP_OVERLAP_FRACTION",
    "RECOMPUTE_TIME_FRACTION",
    "TP_COMM_EXPOSED",
    "ZERO3_OVERLAP_FRACTION",
    "LayerTime",
    "StageTime",
    "TrainingCost",
    "TrainingPerf",
    "cost_to_tokens",
    "dp_overlap_window_s",
    "dp_sync_time_s",
    "embedding_time_s",
    "layer_time_breakdown",
    "layer_time_s",
    "lm_head_time_s",
    "megatron_log_flops_per_step",
    "model_flops_per_step",
    "mtp_time_s",
    "offload_step_s",
    "optimizer_step_s",
    "pipeline_step_time_s",
    "recompute_flops_per_step",
    "stage_time_s",
    "training_perf",
    "training_perf_dict",
]


class StageTime(_Frozen):
    """Where one pipeline stage's step goes (one GPU of the stage), s."""

    stage: int
    """Pipeline stage index (0 = first)."""
    layers: int
    """Decoder layers on the stage (all virtual chunks)."""
    microbatch_s: float
    """One micro-batch forward + backward through the stage (p2p hops included)."""
    busy_s: float
    """All grad_accum micro-batches: grad_accum × microbatch_s."""
    idle_s: float
    """Pipeline time the stage waits: fill / drain bubble and waiting for slower stages."""
    dp_comm_exposed_s: float
    """Its exposed data-parallel sync."""
    optimizer_s: float
    """Its optimizer update (with CPU offload: the CPU step and PCIe copies)."""


class TrainingPerf(_Frozen):
    """Predicted step time and throughput of one training configuration."""

    step_time_s: float
    """One optimizer step (global batch)."""
    compute_s: float
    """Compute time of the slowest stage over the step (all its micro-batches)."""
    tp_comm_s: float
    """Exposed TP communication of the slowest stage over the step."""
    cp_comm_s: float
    """Exposed CP communication of the slowest stage over the step."""
    ep_comm_s: float
    """MoE token communication of the slowest stage over the step: EP all-to-all and expert-TP
    all-gather / reduce-scatter (`LayerTime.ep_comm_s`)."""
    pp_bubble_s: float
    """Pipeline fill/drain idle time (+ p2p hops)."""
    dp_comm_exposed_s: float
    """Exposed data-parallel sync (gradient reduce, parameter gather, ZeRO-3 traffic)."""
    optimizer_s: float
    """Optimizer update of the rank's shard."""
    tokens_per_s: float
    """Training tokens per second, whole job."""
    tokens_per_s_per_gpu: float
    """Training tokens per second per GPU."""
    tflops_per_gpu: float
    """Model TFLOP/s per GPU, `model_flops_per_step` (Narayanan et al. 2021 count: non-causal
    attention over each layer's own context, no recomputation; on full-attention models what
    Megatron-LM up to core_v0.11 logs)."""
    hfu: float
    """Hardware FLOPs utilisation (recomputation counted) against the precision's dense peak."""
    mfu: float
    """Model FLOPs utilisation against the precision's dense peak: `tflops_per_gpu` / peak."""
    stage_times_s: tuple[float, ...]
    """Per pipeline stage: one micro-batch forward + backward, s."""
    offload_s: float = 0.0
    """CPU offload part of `optimizer_s` (CPU Adam step and PCIe copies), slowest stage."""
    zero3_comm_s: float = 0.0
    """ZeRO-3 / FSDP parameter traffic exposed per step (part of `dp_comm_exposed_s`)."""
    pipeline_s: float = 0.0
    """The pipeline schedule: grad_accum micro-batches through all stages (compute + comm + bubble)."""
    stages: tuple[StageTime, ...] = ()
    """Per pipeline stage: its time split (non-uniform stages differ)."""
    megatron_log_tflops_per_gpu: float = 0.0
    """The TFLOP/s per GPU Megatron-LM core_v0.12.0 and later logs for this step
    (`megatron_log_flops_per_step`: full-sequence attention halved for the causal mask)."""

    def components(self) -> dict[str, float]:
        """The step's time by component, s: compute, TP, CP, EP (slowest stage over the step), pipeline
        bubble, exposed DP sync (ZeRO-3 included), optimizer (less offload) and offload. They add up
        to `step_time_s` up to the p2p hops and embedding / head, which `compute` carries."""
        other = self.pipeline_s - self.pp_bubble_s - self.tp_comm_s - self.cp_comm_s - self.ep_comm_s
        return {
            "compute": other - self.zero3_comm_s,
            "tp_comm": self.tp_comm_s,
            "cp_comm": self.cp_comm_s,
            "ep_comm": self.ep_comm_s,
            "pp_bubble": self.pp_bubble_s,
            "dp_comm_exposed": self.dp_comm_exposed_s,
            "optimizer": self.optimizer_s - self.offload_s,
            "offload": self.offload_s,
        }


# ----- FLOPs per step ------------------------------------------------------------------------------
def model_flops_per_step(model: ModelSpec, cfg: TrainingConfig) -> float:
    """Model FLOPs of one optimizer step: 3 × forward (Narayanan et al. 2021 eq. 3 without the
    recompute term; attention NON-causal, every token's score and value products over its layer's
    context, 2·heads·(qk + v)·s per full-attention layer (a sliding or chunked layer's window, a
    sparse layer's top-k and indexer: `AttentionSpec.context_flops_per_token`); LM head included
    even when tied to the embedding, as their 6·B·s·h·V term and llm-foundry's 6·N count it;
    embedding lookup excluded).

    On full-attention models this is the count of Megatron-LM's `num_floating_point_operations` up
    to core_v0.11 (which has no windows: its `seq_length / hidden_size` attention term, since
    2748e7c, 2023-11), of NeMo 24.07's published
    model TFLOP/s, of llm-foundry's MFU, and so of the published rows the efficiency constants are
    fitted on. Megatron-LM halves the core-attention term for the causal mask since 8873b55
    (2025-03-06, first released in core_v0.12.0) and still does at d98e8a6 (2026-08); its log's
    TFLOP/s/GPU is `megatron_log_flops_per_step`, ~45% below this at 262k tokens on Llama-3.1-8B.

    MTP modules are counted, as Megatron-LM's `num_floating_point_operations` does (its MTP decoder
    block among the layers, `mtp_num_layers·(3h + 2h²)` for the norms and eh_proj, and the logits
    term × (mtp_num_layers + 1)): the block as the last layer, 2·2h² for eh_proj, 2·h·V for the head.
    """
    per_token = model.forward_flops_per_token(cfg.seq_len)
    if model.mtp_layers > 0 and model.mtp_params:
        block = model.layers[-1]
        att = block.attention
        core = 0.0
        if att.kind is not AttentionKind.LINEAR:
            core = 2.0 * att.num_heads * (att.head_dim + att.v_head_dim) * cfg.seq_len
        h = model.hidden_size
        per_token += model.mtp_layers * (
            2.0 * block.active_params + core + 4.0 * h * h + 2.0 * h * model.vocab_size
        )
    return 3.0 * cfg.global_batch * cfg.seq_len * per_token


def _megatron_core_delta_per_token(model: ModelSpec, seq_len: int) -> float:
    """Forward FLOPs per token by which Megatron-LM's log count differs from `model_flops_per_step` in
    the core attention: Megatron counts every softmax / MLA layer, and the MTP block, as causal
    attention over the whole sequence, 2·heads·(qk + v)·seq_len / 2, with no window, top-k or indexer
    term (`num_floating_point_operations` has none); `model_flops_per_step` counts each layer's own
    context (`AttentionSpec.context_flops_per_token`: windows capped, a sparse layer's top-k and
    indexer) and the MTP block's attention whole. Linear-attention layers are counted alike."""

    def whole(att: AttentionSpec) -> float:
        return 2.0 * att.num_heads * (att.head_dim + att.v_head_dim) * seq_len

    delta = 0.0
    for layer in model.layers:
        att = layer.attention
        if att.kind is not AttentionKind.LINEAR:
            delta += whole(att) / 2.0 - sum(att.context_flops_per_token(seq_len))
    last = model.layers[-1].attention
    if model.mtp_layers > 0 and model.mtp_params and last.kind is not AttentionKind.LINEAR:
        delta -= model.mtp_layers * whole(last) / 2.0
    return delta


def megatron_log_flops_per_step(model: ModelSpec, cfg: TrainingConfig) -> float:
    """The model FLOPs of one step as Megatron-LM core_v0.12.0 and later count them for its log's
    "throughput per GPU (TFLOP/s/GPU)" (`num_floating_point_operations`, "/ 2  # causal mask":
    commit 8873b55, 2025-03-06; still so at d98e8a6): `model_flops_per_step` with every softmax /
    MLA layer's core attention, and the MTP block's, taken as causal over the whole sequence
    (`_megatron_core_delta_per_token`). Megatron's formula has no window or top-k: on gemma-3 or
    gpt-oss at 32k its count is 22-38% above what those layers compute, and so is this figure, which
    is what the log prints."""
    delta = _megatron_core_delta_per_token(model, cfg.seq_len)
    return model_flops_per_step(model, cfg) + 3.0 * cfg.global_batch * cfg.seq_len * delta


def recompute_flops_per_step(model: ModelSpec, cfg: TrainingConfig) -> float:
    """Extra forward FLOPs of recomputation per step (full: every layer again; selective: attention
    core), counted like the model FLOPs."""
    per_seq = 0.0
    for stage, idx in enumerate(stage_layer_indices(model, cfg)):
        mode = cfg.recompute_of(stage)
        for i in idx:
            layer = model.layers[i]
            core = attention_core_flops(layer, cfg, causal=False) * cfg.tp / cfg.micro_batch * cfg.cp
            if mode is Recompute.FULL:
                per_seq += gemm_flops(layer, cfg) * cfg.tp / cfg.micro_batch * cfg.cp + core
            elif mode is Recompute.SELECTIVE:
                per_seq += core
    return per_seq * cfg.global_batch


# ----- the step ------------------------------------------------------------------------------------
def training_perf(
    model: ModelSpec,
    cluster: Cluster,
    cfg: TrainingConfig,
    *,
    flash_attention: bool | None = None,
    attention_kernel: str = "te",
) -> TrainingPerf:
    """Step time, throughput and utilisation of `cfg` on `cluster` (`flash_attention=False`: the
    unfused softmax attention of Megatron-LM before 2022; `attention_kernel`: the fused kernel's
    family, perf/efficiency.py ATTENTION_KERNELS)."""
    if cfg.global_batch < cfg.micro_batch * cfg.dp:
        raise InputError(
            f"global_batch ({cfg.global_batch}) is smaller than micro_batch × dp "
            f"({cfg.micro_batch} × {cfg.dp}); raise global_batch or lower micro_batch / dp"
        )
    m = max(cfg.grad_accum, 1)
    stages = stage_layer_indices(model, cfg)
    stage_times = tuple(
        stage_time_s(
            model,
            cluster,
            cfg,
            s,
            idx,
            cfg.recompute_of(s),
            flash_attention=flash_attention,
            attention_kernel=attention_kernel,
        )
        for s, idx in enumerate(stages)
    )
    pipe = pipeline_step_time_s(stage_times, cfg)
    slow = max(range(cfg.pp), key=lambda s: stage_times[s])
    dps = [
        dp_sync_time_s(model, cluster, cfg, s, idx, dp_overlap_window_s(cfg, s, stage_times[s]))
        for s, idx in enumerate(stages)
    ]
    opts = [optimizer_step_s(model, cluster.gpu, cfg, s, idx) for s, idx in enumerate(stages)]
    dp, opt = max(dps), max(opts)
    step = pipe + dp + opt
    parts = [
        layer_time_breakdown(
            model,
            model.layers[i],
            cluster,
            cfg,
            cfg.recompute_of(slow),
            flash_attention=flash_attention,
            attention_kernel=attention_kernel,
        )
        for i in stages[slow]
    ]
    zero3 = m * sum(p.zero3_comm_s for p in parts)
    world = cfg.world_size
    tokens = float(cfg.global_batch * cfg.seq_len)
    model_flops = model_flops_per_step(model, cfg)
    hw_flops = model_flops + recompute_flops_per_step(model, cfg)
    peak = peak_flops(cluster.gpu, cfg)
    offload = max(
        offload_step_s(cluster.gpu, cfg, _optimizer_shard(model, cfg, s, idx)) for s, idx in enumerate(stages)
    )
    stage_parts = tuple(
        StageTime(
            stage=s,
            layers=len(idx),
            microbatch_s=stage_times[s],
            busy_s=m * stage_times[s],
            idle_s=pipe - m * stage_times[s],
            dp_comm_exposed_s=dps[s],
            optimizer_s=opts[s],
        )
        for s, idx in enumerate(stages)
    )
    return TrainingPerf(
        step_time_s=step,
        compute_s=m * sum(p.compute_s for p in parts),
        tp_comm_s=m * sum(p.tp_comm_s for p in parts),
        cp_comm_s=m * sum(p.cp_comm_s for p in parts),
        ep_comm_s=m * sum(p.ep_comm_s for p in parts),
        pp_bubble_s=pipe - m * stage_times[slow],
        dp_comm_exposed_s=dp + zero3,
        optimizer_s=opt,
        tokens_per_s=tokens / step,
        tokens_per_s_per_gpu=tokens / step / world,
        tflops_per_gpu=model_flops / step / world / 1e12,
        hfu=hw_flops / step / world / peak,
        mfu=model_flops / step / world / peak,
        stage_times_s=stage_times,
        offload_s=min(offload, opt),
        zero3_comm_s=zero3,
        pipeline_s=pipe,
        stages=stage_parts,
        megatron_log_tflops_per_gpu=megatron_log_flops_per_step(model, cfg) / step / world / 1e12,
    )


class TrainingCost(_Frozen):
    """Time and money to train on a token budget, in whole optimizer steps (`cost_to_tokens`)."""

    tokens: float
    """The token budget."""
    steps: int
    """Optimizer steps that train it, rounded up to whole ones: ⌈tokens / (global batch × seq_len)⌉."""
    time_s: float
    """Wall-clock time of those steps, s."""
    gpu_hours: float
    """GPU-hours (time × GPUs)."""
    usd: float
    """Cost at the GPU's `usd_per_hour`."""


def cost_to_tokens(
    model: ModelSpec,
    cluster: Cluster,
    cfg: TrainingConfig,
    tokens: float,
    *,
    perf: TrainingPerf | None = None,
) -> TrainingCost:
    """Time, GPU-hours and US$ to train `tokens` tokens with `cfg` on `cluster`, the tokens rounded up
    to whole optimizer steps: a step trains global batch × seq_len tokens and takes the step time, so
    a budget of 1,000 tokens at global batch 128 × seq_len 8192 takes one step of 1,048,576 tokens
    (charged as a fraction of a step, it took 0.014 s of a 15 s step). `TrainingCost.steps` counts
    them."""
    p = training_perf(model, cluster, cfg) if perf is None else perf
    per_step = cfg.global_batch * cfg.seq_len
    steps = math.ceil(tokens / per_step)
    time_s = steps * p.step_time_s
    gpu_hours = time_s / 3600.0 * cfg.world_size
    return TrainingCost(
        tokens=tokens,
        steps=steps,
        time_s=time_s,
        gpu_hours=gpu_hours,
        usd=gpu_hours * cluster.gpu.usd_per_hour,
    )


def training_perf_dict(perf: TrainingPerf, cost: TrainingCost | None = None) -> dict[str, object]:
    """The JSON form of `perf` (every TrainingPerf field, the existing keys unchanged) plus
    `components_s` (`TrainingPerf.components`) and, with a token budget, `tokens_to_train` (the
    budget), `steps_to_train` (the whole steps that train it, `cost_to_tokens`: the time and cost
    are theirs), `time_to_train_s`, `time_to_train_days`, `gpu_hours` and `usd_to_train`."""
    out: dict[str, object] = perf.model_dump(mode="json")
    out["components_s"] = perf.components()
    if cost is not None:
        out["tokens_to_train"] = cost.tokens
        out["steps_to_train"] = cost.steps
        out["time_to_train_s"] = cost.time_s
        out["time_to_train_days"] = cost.time_s / 86400.0
        out["gpu_hours"] = cost.gpu_hours
        out["usd_to_train"] = cost.usd
    return out
