"""Mixture-of-experts parts of a decoder layer's training time, in floats (s).

    tokens_per_expert        tokens one GPU's local expert receives per micro-batch
    routed_flops             forward FLOPs of the routed experts on one GPU (capacity padding included)
    grouped_gemm_fwd_s       forward time of the grouped expert GEMMs: a roofline over tokens per expert
    permute_router_s         forward + backward memory traffic of the router and token (un)permutation
    ep_all_to_all_s          dispatch + combine all-to-all, exposed part

Sources:
- Balanced top-k routing over ep ranks (Lepikhin et al. 2020, GShard §2.2; Megatron-Core `MoELayer`
  with `--moe-router-force-load-balancing`, as NVIDIA's MoE benchmarks run): each GPU of the
  etp × ep expert mesh receives local tokens·k·etp/tp token copies, spread evenly over its E/ep
  experts. A capacity factor c (`--moe-expert-capacity-factor`, `--moe-pad-expert-input-to-capacity`)
  pads every expert to c × that load: compute and all-to-all grow by c (Fedus et al. 2021, Switch
  Transformer §2.2: "expert capacity = tokens per batch / experts × capacity factor").
- Grouped GEMM (Megatron-Core `TEGroupedMLP` / `GroupedMLP`): one kernel over the local experts, each
  a [tokens per expert × h] × [h × f] product. With few tokens per expert (fine-grained experts,
  small micro-batches, many experts per GPU) it is bound by reading the expert weights and writing its
  outputs, not by the tensor cores: the roofline (Williams et al. 2009) time max(FLOPs / rate, bytes /
  HBM bandwidth) with bytes = weights (1 byte per FP8 weight, 2 bf16) + inputs + outputs. This is the
  mechanism behind "fine-grained experts run far below dense GEMM peak"; it needs no fitted number.
- Router and permutation (Megatron-Core `moe_utils.permute` / `unpermute`, `TopKRouter`): memory-bound.
  Per token, forward: the permutation reads its h-vector and writes k copies, the un-permutation reads
  k copies and writes one (2 bytes each): 4h(1 + k) bytes; the router writes fp32 logits and reads
  them back for the softmax / top-k: 16E bytes. Backward moves the same again (the transposed
  gathers / scatters): ×2.
- Dispatch / combine all-to-all (Megatron-Core `MoEAlltoAllTokenDispatcher`): two per pass (forward,
  backward, and the recomputed forward under full recompute), bytes = the routed token copies in
  bf16. Exposed in full unless `cfg.ep_overlap`: Megatron-Core's `--overlap-moe-expert-parallel-comm`
  ("EP A2A overlap": the forward of one micro-batch and the backward of another run as one merged
  1F1B step, so each all-to-all runs under the other's compute) and DeepSeek-V3's DualPipe (technical
  report §3.2.1: "achieves full overlap of forward and backward computation-communication phases")
  hide it behind the layer's compute; only the excess over that compute is exposed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autoparallel.configs import Recompute, TrainingConfig
from autoparallel.memory.training_activations import local_tokens
from autoparallel.memory.training_states import expert_tp
from autoparallel.models.spec import LayerSpec, MlpKind, ModelSpec
from autoparallel.perf import comm

if TYPE_CHECKING:
    from autoparallel.hardware import GPU, Cluster


def _is_moe(layer: LayerSpec) -> bool:
    return layer.mlp.kind is MlpKind.MOE and layer.mlp.num_experts > 0


def capacity(cfg: TrainingConfig) -> float:
    """Tokens each expert processes relative to the balanced load: the capacity factor, 1 dropless."""
    return 1.0 if cfg.moe_capacity_factor is None else cfg.moe_capacity_factor


def tokens_per_expert(layer: LayerSpec, cfg: TrainingConfig) -> float:
    """Tokens one local expert receives per micro-batch: local tokens·k·etp·ep / (tp·E) × capacity."""
    if not _is_moe(layer):
        return 0.0
    mlp = layer.mlp
    etp = expert_tp(cfg)
    return (
        local_tokens(cfg) * mlp.experts_per_token * etp * cfg.ep / (cfg.tp * mlp.num_experts) * capacity(cfg)
    )


def routed_active_params(layer: LayerSpec) -> float:
    """Parameters of the k experts one token visits (the routed part of `active_params`)."""
    if not _is_moe(layer):
        return 0.0
    return layer.params.routed_experts * layer.mlp.experts_per_token / layer.mlp.num_experts


def routed_flops(layer: LayerSpec, cfg: TrainingConfig) -> float:
    """Forward FLOPs of the routed experts on one GPU per micro-batch, padding included:
    2·local tokens·active routed params/tp × capacity."""
    return 2.0 * local_tokens(cfg) * routed_active_params(layer) / cfg.tp * capacity(cfg)


def grouped_gemm_fwd_s(
    model: ModelSpec, layer: LayerSpec, gpu: GPU, cfg: TrainingConfig, rate: float
) -> float:
    """Forward time of the routed experts' grouped GEMMs on one GPU at compute rate `rate` (FLOP/s):
    max(FLOPs / rate, bytes / HBM) with bytes = local expert weights + every token copy's input (h),
    intermediate (written and read: 2 × (gated ? 2f : f) / etp + f / etp) and output (h)."""
    if not _is_moe(layer):
        return 0.0
    mlp = layer.mlp
    etp = expert_tp(cfg)
    local_experts = mlp.num_experts / cfg.ep
    weight_bytes = 1.0 if cfg.precision == "fp8" else 2.0
    weights = layer.params.routed_experts / (cfg.ep * etp) * weight_bytes
    f = mlp.intermediate_size / etp
    up = (2.0 if mlp.gated else 1.0) * f
    copies = tokens_per_expert(layer, cfg) * local_experts
    act_bytes = copies * 2.0 * (model.hidden_size + 2.0 * up + f + model.hidden_size)
    flops = routed_flops(layer, cfg)
    return max(flops / rate, (weights + act_bytes) / (gpu.hbm_tbps * 1e12))


def permute_router_s(model: ModelSpec, layer: LayerSpec, gpu: GPU, cfg: TrainingConfig, sp_div: int) -> float:
    """Forward + backward memory traffic of the router and the token permutation on one GPU:
    2 × (4h(1 + k) + 16E) bytes per token the rank routes (its SP shard), over HBM bandwidth."""
    if not _is_moe(layer):
        return 0.0
    mlp = layer.mlp
    per_token = (
        4.0 * model.hidden_size * (1.0 + mlp.experts_per_token * capacity(cfg)) + 16.0 * mlp.num_experts
    )
    return 2.0 * per_token * local_tokens(cfg) / sp_div / (gpu.hbm_tbps * 1e12)


def ep_all_to_all_s(
    model: ModelSpec,
    layer: LayerSpec,
    cluster: Cluster,
    cfg: TrainingConfig,
    recompute: Recompute,
    compute_s: float,
) -> float:
    """Exposed dispatch + combine all-to-all of one layer per micro-batch (forward, backward and the
    recomputed forward under full recompute). Each rank sends its routed token copies (bf16 h-vectors,
    × capacity): local tokens·h·2/tp·k·etp bytes, over the EP group (peers etp apart in Megatron's
    expert mesh; cross-node all-to-all at each GPU's own NIC, `comm.all_to_all_link`). With
    `cfg.ep_overlap`, only what exceeds the layer's `compute_s` is exposed."""
    if not _is_moe(layer) or cfg.ep <= 1:
        return 0.0
    passes = 3 if recompute is Recompute.FULL else 2
    routed = (
        local_tokens(cfg) * model.hidden_size * 2.0 / cfg.tp * layer.mlp.experts_per_token * expert_tp(cfg)
    )
    routed *= capacity(cfg)
    link = comm.all_to_all_link(cluster, cfg.ep, stride=expert_tp(cfg))
    total = passes * 2 * comm.all_to_all_s(routed, cfg.ep, link)
    if cfg.ep_overlap:
        return max(0.0, total - compute_s)
    return total
