"""Mixture-of-experts parts of a decoder layer's training time, in floats (s).

    tokens_per_expert        tokens one GPU's local expert receives per micro-batch
    routed_flops             forward FLOPs of the routed experts on one GPU (capacity padding included)
    grouped_gemm_fwd_s       forward time of the grouped expert GEMMs: a roofline over tokens per expert
    permute_router_s         forward + backward memory traffic of the router and token (un)permutation
    ep_all_to_all_s          dispatch + combine all-to-all, exposed part
    etp_gather_s             expert-tensor-parallel all-gather + reduce-scatter of the routed tokens

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
  backward, and the recomputed forward under full recompute), bytes = the routed token copies of the
  rank's own sequence shard (local tokens / tp × k) in bf16; the expert-TP gather comes after it
  (next item), so the all-to-all does not carry the etp copies. Exposed in full unless
  `cfg.ep_overlap`: Megatron-Core's `--overlap-moe-expert-parallel-comm` ("EP A2A overlap": the
  forward of one micro-batch and the backward of another run as one merged 1F1B step, so each
  all-to-all runs under the other's compute) and DeepSeek-V3's DualPipe (technical report §3.2.1:
  "achieves full overlap of forward and backward computation-communication phases") hide it behind
  the layer's compute; only the excess over that compute is exposed.
- Expert-tensor-parallel gather (Megatron-Core megatron/core/transformer/moe/token_dispatcher.py,
  `MoEAlltoAllTokenDispatcher.dispatch_postprocess` / `combine_preprocess`: "permute -> A2A(EP) ->
  AG(TP)" and "RS(TP) -> A2A(EP) -> unpermute", over the expert-TP group): after the all-to-all each
  rank all-gathers the token copies its etp peers received, so every rank of the group runs its 1/etp
  slice of the experts on all of them, and reduce-scatters the outputs on combine. The backward runs
  the mirror (the all-gather's gradient is a reduce-scatter and the reverse), and a recomputed forward
  runs both again. It applies with ep = 1 too (tp = etp > 1 without expert parallelism). Not
  overlapped: the dispatcher issues both on the compute stream between the expert GEMMs' producer and
  consumer, and `--overlap-moe-expert-parallel-comm` (`cfg.ep_overlap`) keeps them there too: its
  combined 1F1B puts "post dispatch -> experts -> combine preprocess" in the MLP compute node
  (megatron/core/models/gpt/fine_grained_callables.py `submodule_moe_forward`), only the EP
  all-to-alls on the communication stream.
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


def routed_copies(layer: LayerSpec, cfg: TrainingConfig) -> float:
    """Routed token copies one rank sends in the EP all-to-all per micro-batch: its sequence shard's
    tokens (local tokens / tp, sequence parallelism) × k, × capacity. The expert-TP all-gather then
    multiplies them by etp (`etp_gather_s`, `tokens_per_expert`)."""
    if not _is_moe(layer):
        return 0.0
    return local_tokens(cfg) / cfg.tp * layer.mlp.experts_per_token * capacity(cfg)


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
    `routed_copies`: local tokens·h·2/tp·k bytes, × capacity) over the EP group (peers etp apart in
    Megatron's expert mesh; cross-node all-to-all at each GPU's own NIC, `comm.all_to_all_link`). With
    `cfg.ep_overlap`, only what exceeds the layer's `compute_s` is exposed."""
    if not _is_moe(layer) or cfg.ep <= 1:
        return 0.0
    passes = 3 if recompute is Recompute.FULL else 2
    routed = routed_copies(layer, cfg) * model.hidden_size * 2.0
    link = comm.all_to_all_link(cluster, cfg.ep, stride=expert_tp(cfg))
    total = passes * 2 * comm.all_to_all_s(routed, cfg.ep, link)
    if cfg.ep_overlap:
        return max(0.0, total - compute_s)
    return total


def etp_gather_s(
    model: ModelSpec, layer: LayerSpec, cluster: Cluster, cfg: TrainingConfig, recompute: Recompute
) -> float:
    """Expert-tensor-parallel all-gather (dispatch) + reduce-scatter (combine) of one layer per
    micro-batch on one GPU, forward, backward and the recomputed forward under full recompute; none at
    etp = 1. Each collective's buffer is the token copies on the rank after the gather, bf16:
    `routed_copies` × etp × h × 2 bytes, over the etp ranks of the expert-TP group (adjacent in
    Megatron's expert mesh [etp, ep, edp, pp]: `comm.group_link(cluster, etp)`, the link the TP
    collectives use). Exposed in full, with or without `cfg.ep_overlap` (module docstring)."""
    etp = expert_tp(cfg)
    if not _is_moe(layer) or etp <= 1:
        return 0.0
    passes = 3 if recompute is Recompute.FULL else 2
    gathered = routed_copies(layer, cfg) * etp * model.hidden_size * 2.0
    link = comm.group_link(cluster, etp)
    return passes * (comm.all_gather_s(gathered, etp, link) + comm.reduce_scatter_s(gathered, etp, link))
