"""Pipeline and data-parallel schedule of one training step, in floats (s).

    stage_time_s            one micro-batch through one pipeline stage (+ p2p hops)
    pipeline_step_time_s    1F1B / interleaved schedule over the stage times
    dp_sync_time_s          exposed gradient / parameter synchronisation per step
    dp_overlap_window_s     the compute that synchronisation hides behind (1F1B / interleaved)
    optimizer_step_s        the Adam update of a rank's shard (CPU offload: `offload_step_s`)

Sources: pipeline schedule and bubble (p − 1)/(m·v) from Narayanan et al. 2021 ("Efficient Large-Scale
Language Model Training on GPU Clusters Using Megatron-LM") §2.2; data-parallel volumes from
Rajbhandari et al. 2020 (ZeRO) §5 and Megatron-LM's distributed optimizer (dist_optimizer.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from autoparallel.configs import Recompute, TrainingConfig, ZeroStage
from autoparallel.memory.training_activations import inflight_microbatches, sequence_parallel_divisor
from autoparallel.memory.training_states import (
    embedding_params_per_gpu,
    expert_dp,
    gradient_bytes_per_param,
    layer_params_per_gpu,
    lm_head_params_per_gpu,
    mtp_params_per_gpu,
)
from autoparallel.models.spec import ModelSpec
from autoparallel.perf import comm
from autoparallel.perf.training_layer import (
    activation_message_bytes,
    dp_groups,
    embedding_time_s,
    layer_time_s,
    lm_head_time_s,
)

if TYPE_CHECKING:
    from autoparallel.hardware import GPU, Cluster

DP_OVERLAP_FRACTION = 0.8
"""Fraction of the last micro-batch's backward that gradient reduce-scatter can hide behind
(`--overlap-grad-reduce`; the last bucket is always exposed)."""
HOST_ADAM_GBPS_PER_GPU = 40.0
"""Host-memory bandwidth one GPU's share of a CPU Adam step achieves, GB/s. Adam is memory-bound on
the CPU as on the GPU; an 8-GPU H100 host (DGX H100: 2 × Xeon 8480C, 8 DDR5-4800 channels each,
~614 GB/s peak) gives ~77 GB/s per GPU, of which DeepSpeed's vectorised CPU-Adam (Ren et al. 2021,
"ZeRO-Offload", §5.1: AVX SIMD, loop unrolling, OpenMP; its Table 2 reports 5-7× PyTorch's CPU Adam)
reaches about half. Older hosts (DGX A100: 2 × EPYC 7742, ~410 GB/s) give less; one value is kept."""
CPU_ADAM_BYTES_PER_PARAM = 28.0
"""Host bytes per parameter of a CPU Adam step: fp32 master, momentum, variance and gradient read
(16) and master, momentum, variance written back (12); the bf16 copy for the GPU is cast on upload."""
OFFLOAD_GRAD_OVERLAP_FRACTION = 0.5
"""Fraction of the gradients' device-to-host copy hidden behind the last micro-batch's backward
(ZeRO-Offload §4.1 copies each gradient bucket as soon as it is reduced; Megatron's
`--overlap-cpu-optimizer-d2h-h2d` likewise). The parameters' host-to-device copy after the CPU step
is exposed: the next forward needs them (DeepSpeed's one-step delayed update is not modelled)."""


# ----- pipeline ------------------------------------------------------------------------------------
def stage_time_s(
    model: ModelSpec,
    cluster: Cluster,
    cfg: TrainingConfig,
    stage: int,
    layer_indices: Sequence[int],
    recompute: Recompute,
    *,
    flash_attention: bool | None = None,
    attention_kernel: str = "te",
) -> float:
    """One micro-batch forward + backward through pipeline stage `stage` (all its vp chunks), with
    the p2p sends of activations forward and gradients backward at each chunk boundary (interleaved:
    overlapped with the chunks' compute, Megatron-Core `overlap_p2p_comm`)."""
    total = sum(
        layer_time_s(
            model,
            model.layers[i],
            cluster,
            cfg,
            recompute,
            flash_attention=flash_attention,
            attention_kernel=attention_kernel,
        )
        for i in layer_indices
    )
    if stage == 0:
        total += embedding_time_s(model, cluster, cfg)
    if stage == cfg.pp - 1:
        total += lm_head_time_s(model, cluster, cfg)
    if cfg.pp > 1:
        sp_div = sequence_parallel_divisor(cfg)
        # A send between neighbouring stages: one NIC when the pipeline crosses nodes (`p2p_link`).
        link = comm.p2p_link(cluster, cfg.pp, stride=cfg.tp * cfg.cp * cfg.dp)
        hop = comm.p2p_s(activation_message_bytes(model, cfg) / sp_div, link)
        if cfg.vp > 1:
            # Megatron-Core's interleaved schedule posts each chunk's sends and receives asynchronously
            # and runs the next chunk meanwhile (`overlap_p2p_comm`, on by default with interleaving):
            # a forward hop hides under the next chunk's forward (a third of its time), a backward hop
            # under a backward (two thirds): half a chunk on average; the latency stays exposed.
            chunk = total / cfg.vp
            hop = link.latency_s + max(0.0, hop - link.latency_s - chunk / 2.0)
        total += 2 * cfg.vp * hop
    return total


def pipeline_step_time_s(stage_times_s: Sequence[float], cfg: TrainingConfig) -> float:
    """Forward + backward of all grad_accum micro-batches through the pipeline.

    1F1B: (m − 1)·max + Σ stages (= (m + p − 1)·t for equal stages, Narayanan et al. 2021 §2.2.1);
    interleaved with vp chunks: the fill/drain part shrinks by vp (bubble (p − 1)/(m·vp), §2.2.2).
    """
    m = max(cfg.grad_accum, 1)
    slowest = max(stage_times_s)
    return m * slowest + (sum(stage_times_s) - slowest) / cfg.vp


# ----- data parallel -------------------------------------------------------------------------------
def _stage_params_per_gpu(
    model: ModelSpec, cfg: TrainingConfig, stage: int, layer_indices: Sequence[int]
) -> tuple[float, float]:
    """(dense, expert) parameters of a stage on one GPU before data-parallel sharding."""
    dense = expert = 0.0
    for i in layer_indices:
        d, e = layer_params_per_gpu(model.layers[i], cfg)
        dense, expert = dense + d, expert + e
    if stage == 0:
        dense += embedding_params_per_gpu(model, cfg)
    if stage == cfg.pp - 1:
        mtp_dense, mtp_expert = mtp_params_per_gpu(model, cfg)
        dense += lm_head_params_per_gpu(model, cfg) + mtp_dense
        expert += mtp_expert
    return dense, expert


def dp_sync_time_s(
    model: ModelSpec,
    cluster: Cluster,
    cfg: TrainingConfig,
    stage: int,
    layer_indices: Sequence[int],
    overlap_window_s: float,
) -> float:
    """Exposed data-parallel synchronisation of one stage per step.

    ZeRO-0: all-reduce of the gradients; ZeRO-1/2 and Megatron's distributed optimizer:
    reduce-scatter of the gradients + all-gather of the updated bf16 parameters (ZeRO §5: the same
    volume as one all-reduce); gradients in fp32 under Megatron (`main_grad`), bf16 under ZeRO. The
    dense group is dp × cp (stride tp), the expert group the expert-data-parallel ranks (`dp_groups`).
    Overlap (`--overlap-grad-reduce`, `--overlap-param-gather`) hides up to DP_OVERLAP_FRACTION of
    `overlap_window_s` (one micro-batch's forward + backward); one layer's share is always exposed.
    This is the step-end sync; ZeRO-2 also reduce-scatters the layers' gradients of every earlier
    micro-batch, and ZeRO-3 moves its parameters every micro-batch: both are counted per micro-batch
    in `layer_time_breakdown`.
    """
    if cfg.zero is ZeroStage.PARAMETERS:
        return 0.0
    grad_bytes = gradient_bytes_per_param(cfg)  # the gradients the memory model prices
    dense, expert = _stage_params_per_gpu(model, cfg, stage, layer_indices)
    total = 0.0
    for params, n, stride in dp_groups(cfg, dense, expert):
        if params <= 0 or n <= 1:
            continue
        link = comm.group_link(cluster, n, stride=stride)
        if cfg.zero is ZeroStage.NONE:
            total += comm.all_reduce_s(params * grad_bytes, n, link)
        else:
            total += comm.reduce_scatter_s(params * grad_bytes, n, link) + comm.all_gather_s(
                params * 2.0, n, link
            )
    floor = total / max(len(layer_indices), 1)
    return max(total - DP_OVERLAP_FRACTION * overlap_window_s, floor)


def dp_overlap_window_s(cfg: TrainingConfig, stage: int, microbatch_s: float) -> float:
    """Compute a stage's data-parallel sync can hide behind, s (`dp_sync_time_s`' `overlap_window_s`).

    1F1B (vp = 1): one micro-batch's forward + backward. The stage's gradients are complete only at
    its last backward, during which the bucketed reduce-scatter runs (Megatron `--overlap-grad-reduce`),
    and the next step's parameter all-gather runs under the first forward (`--overlap-param-gather`).
    Interleaved (vp > 1): Megatron-Core's DDP keeps one set of buckets per model chunk, and a chunk's
    reduce-scatter starts at its own last backward, while the cool-down still runs the other chunks'
    backward passes; its all-gather likewise hides under the warm-up forwards. The window is then every
    chunk pass in flight at the stage's peak (`inflight_microbatches`: warm-up + 1), each 1/vp of a
    micro-batch's stage time, and at least the 1F1B window.
    """
    if cfg.vp <= 1:
        return microbatch_s
    return max(1.0, inflight_microbatches(cfg, stage) / cfg.vp) * microbatch_s


def _optimizer_shard(
    model: ModelSpec, cfg: TrainingConfig, stage: int, layer_indices: Sequence[int]
) -> float:
    """Parameters of the rank's optimizer shard (all of the stage's with ZeRO-0)."""
    dense, expert = _stage_params_per_gpu(model, cfg, stage, layer_indices)
    if cfg.zero is ZeroStage.NONE:
        return dense + expert
    return dense / (cfg.dp * cfg.cp) + expert / expert_dp(cfg)


def offload_step_s(gpu: GPU, cfg: TrainingConfig, shard: float) -> float:
    """Per-step time of CPU offload for an optimizer shard of `shard` parameters.

    Optimizer offload (ZeRO-Offload, Ren et al. 2021 §4; Megatron `--optimizer-cpu-offload`): the
    CPU Adam step (CPU_ADAM_BYTES_PER_PARAM at HOST_ADAM_GBPS_PER_GPU), the bf16 gradients down over
    the GPU's host link (`gpu.pcie_gbps`), 1 − OFFLOAD_GRAD_OVERLAP_FRACTION of it exposed, and the
    updated bf16 parameters back up, exposed. Parameter offload alone (ZeRO-3, GPU Adam): the
    updated bf16 shard is written back to the host once per step. Linear in the shard, so the
    CP-SAT tables take it per layer. Not charged: ZeRO-3 parameter offload's per-micro-batch fetch
    of each layer's shard (the solver's ZeRO-3 table has no state-mode index for it).
    """
    link = gpu.pcie_gbps * 1e9
    total = 0.0
    if cfg.offload_optimizer:
        total += CPU_ADAM_BYTES_PER_PARAM * shard / (HOST_ADAM_GBPS_PER_GPU * 1e9)
        total += (1.0 - OFFLOAD_GRAD_OVERLAP_FRACTION) * 2.0 * shard / link + 2.0 * shard / link
    elif cfg.offload_params and cfg.zero is ZeroStage.PARAMETERS:
        total += 2.0 * shard / link
    return total


def optimizer_step_s(
    model: ModelSpec, gpu: GPU, cfg: TrainingConfig, stage: int, layer_indices: Sequence[int]
) -> float:
    """Adam update of the rank's optimizer shard: on the GPU memory-bound, ~36 bytes per parameter
    read and written (fp32 master, m, v, fp32 grad read + write back, bf16 weight write; Megatron's
    fused multi-tensor Adam); offloaded, on the CPU with the PCIe copies (`offload_step_s`)."""
    shard = _optimizer_shard(model, cfg, stage, layer_indices)
    if cfg.offload_optimizer:
        return offload_step_s(gpu, cfg, shard)
    return 36.0 * shard / (gpu.hbm_tbps * 1e12) + offload_step_s(gpu, cfg, shard)
