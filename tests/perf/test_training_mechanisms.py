"""Training-time mechanisms pinned to their sources: MoE grouped GEMMs and all-to-all, flash-attention
shape and kernel factors, causal load balancing under context parallelism, and the step's components."""

from __future__ import annotations

import pytest

from autoparallel.configs import Recompute, TrainingConfig
from autoparallel.hardware import Cluster, get_gpu
from autoparallel.memory.training import gpt_like_spec
from autoparallel.models.spec import (
    AttentionKind,
    AttentionSpec,
    LayerSpec,
    MlpKind,
    MlpSpec,
    ModelSpec,
    ParamGroups,
)
from autoparallel.perf import comm
from autoparallel.perf import training_moe as moe
from autoparallel.perf.efficiency import EFFICIENCY, attention_shape_factor, kernel_speedup
from autoparallel.perf.training import (
    cost_to_tokens,
    dp_overlap_window_s,
    layer_time_breakdown,
    layer_time_s,
    stage_time_s,
    training_perf,
    training_perf_dict,
)
from autoparallel.perf.training_layer import cp_causal_imbalance

H100 = get_gpu("H100")
HOPPER = EFFICIENCY["hopper"]


def _moe_model(experts: int, top_k: int, ffn: int, hidden: int = 2048) -> ModelSpec:
    layer = LayerSpec(
        attention=AttentionSpec(
            kind=AttentionKind.FULL, num_heads=16, num_kv_heads=4, head_dim=128, v_head_dim=128
        ),
        mlp=MlpSpec(
            kind=MlpKind.MOE, intermediate_size=ffn, num_experts=experts, experts_per_token=top_k, gated=True
        ),
        params=ParamGroups(
            attention=hidden * 128 * 24, routed_experts=experts * 3 * hidden * ffn, router=experts * hidden
        ),
    )
    return gpt_like_spec(1, hidden, 16, 32000, 4096, gated=True, bias=False).model_copy(
        update={"layers": (layer,)}
    )


# ----- MoE --------------------------------------------------------------------------------------------
def test_tokens_per_expert_balanced_routing() -> None:
    """GShard balanced routing: each rank's b·s/cp tokens make k copies spread evenly over the E
    experts; an expert on one GPU of an ep-way group receives the copies of all ep ranks' tokens:
    4096·8·ep/128."""
    model = _moe_model(128, 8, 768)
    for ep in (1, 8, 32):
        cfg = TrainingConfig(ep=ep, dp=32, seq_len=4096, global_batch=32)
        assert moe.tokens_per_expert(model.layers[0], cfg) == pytest.approx(4096 * 8 * ep / 128)


def test_grouped_gemm_roofline_fine_grained_is_memory_bound() -> None:
    """Few tokens per expert (fine-grained experts, short micro-batch): the grouped GEMM's time is the
    expert weights' read over HBM bandwidth (roofline), far above FLOPs / dense rate."""
    model = _moe_model(128, 8, 768)
    layer = model.layers[0]
    cfg = TrainingConfig(ep=1, dp=8, seq_len=128, global_batch=8)
    rate = H100.bf16_tflops * 1e12 * HOPPER.gemm
    t = moe.grouped_gemm_fwd_s(model, layer, H100, cfg, rate)
    flops_time = moe.routed_flops(layer, cfg) / rate
    weights_time = layer.params.routed_experts * 2.0 / (H100.hbm_tbps * 1e12)
    assert t > 3 * flops_time
    assert t == pytest.approx(weights_time, rel=0.05)


def test_grouped_gemm_many_tokens_is_compute_bound() -> None:
    model = _moe_model(8, 2, 14336, hidden=4096)  # Mixtral-like: 8 experts, top-2
    layer = model.layers[0]
    cfg = TrainingConfig(ep=8, dp=8, seq_len=4096, micro_batch=2, global_batch=16)
    rate = H100.bf16_tflops * 1e12 * HOPPER.gemm
    assert moe.grouped_gemm_fwd_s(model, layer, H100, cfg, rate) == pytest.approx(
        moe.routed_flops(layer, cfg) / rate
    )


def test_capacity_factor_pads_compute_and_all_to_all() -> None:
    """Switch Transformer §2.2: capacity = tokens/experts × c; padded experts compute and send c×."""
    model = _moe_model(64, 4, 1024)
    layer = model.layers[0]
    cluster = Cluster.parse("8x8xH100")
    dropless = TrainingConfig(ep=16, dp=64, seq_len=4096, global_batch=64)
    padded = dropless.model_copy(update={"moe_capacity_factor": 1.5})
    assert moe.routed_flops(layer, padded) == pytest.approx(1.5 * moe.routed_flops(layer, dropless))
    a2a = [moe.ep_all_to_all_s(model, layer, cluster, c, Recompute.NONE, 0.0) for c in (dropless, padded)]
    assert a2a[1] > 1.45 * a2a[0]


def test_ep_overlap_hides_all_to_all_behind_compute() -> None:
    """DualPipe / Megatron EP A2A overlap: only the all-to-all time beyond the layer's compute shows."""
    model = _moe_model(256, 8, 2048, hidden=7168)
    layer = model.layers[0]
    cluster = Cluster.parse("8x8xH100")
    cfg = TrainingConfig(ep=64, dp=64, seq_len=4096, global_batch=64)
    total = moe.ep_all_to_all_s(model, layer, cluster, cfg, Recompute.NONE, 0.0)
    hidden = cfg.model_copy(update={"ep_overlap": True})
    assert moe.ep_all_to_all_s(model, layer, cluster, hidden, Recompute.NONE, 0.3 * total) == pytest.approx(
        0.7 * total
    )
    assert moe.ep_all_to_all_s(model, layer, cluster, hidden, Recompute.NONE, 2 * total) == 0.0
    parts = layer_time_breakdown(model, layer, cluster, hidden, Recompute.NONE)
    assert parts.ep_comm_s == pytest.approx(max(0.0, total - parts.compute_s))


def test_router_and_permutation_traffic() -> None:
    """2 × (4h(1 + k) + 16E) bytes per routed token over HBM (permute / unpermute gathers, fp32 router)."""
    model = _moe_model(64, 4, 1024)
    cfg = TrainingConfig(ep=8, dp=8, seq_len=4096, global_batch=8)
    want = 2 * (4 * 2048 * 5 + 16 * 64) * 4096 / (H100.hbm_tbps * 1e12)
    assert moe.permute_router_s(model, model.layers[0], H100, cfg, 1) == pytest.approx(want)


# ----- flash attention: shape and kernel -----------------------------------------------------------------
def test_attention_reference_shape_is_one() -> None:
    assert attention_shape_factor(HOPPER, 128, 2048) == pytest.approx(1.0)


def test_attention_sequence_length_matches_flashattention3_figures() -> None:
    """Shah et al. 2024 Fig. 5-6 (H100, head dim 128): 2k → 16k tokens gains 12 % (FA2 causal forward
    298 → 335) and 11 % (cuDNN 484 → 539; backward 465 → 516)."""
    gain = attention_shape_factor(HOPPER, 128, 16384) / attention_shape_factor(HOPPER, 128, 2048)
    assert gain == pytest.approx(335 / 298, rel=0.02)
    assert gain == pytest.approx(539 / 484, rel=0.02)


def test_attention_head_dim_is_softmax_bound() -> None:
    """Exp on the special-function units at 1/256 of the tensor rate (H100: 989 vs 3.9 TFLOP/s) makes
    d = 64 heads slower per FLOP: FlashAttention-3 causal 16k runs 473 TFLOP/s at d = 64 vs 616 at 128."""
    ratio = attention_shape_factor(HOPPER, 64, 16384) / attention_shape_factor(HOPPER, 128, 16384)
    assert ratio == pytest.approx(473 / 616, rel=0.05)
    assert HOPPER.tensor_flops_per_exp == pytest.approx(989 / 3.9, rel=0.02)


def test_hopper_native_attention_kernel() -> None:
    """cuDNN (Transformer Engine) over FlashAttention-2 on H100, head dim 128: 1.61 forward at 16k
    (539 / 335), 1.60 backward (516 / 322); A100 gains nothing."""
    assert kernel_speedup(HOPPER, "te") == pytest.approx(539 / 335, rel=0.01)
    assert kernel_speedup(HOPPER, "te") == pytest.approx(516 / 322, rel=0.01)
    assert kernel_speedup(EFFICIENCY["ampere"], "te") == 1.0
    assert kernel_speedup(HOPPER, "flash2") == 1.0
    with pytest.raises(ValueError, match="attention kernel"):
        kernel_speedup(HOPPER, "xformers")


@pytest.mark.parametrize("cp", [2, 4, 8, 16])
def test_causal_load_balancing_equalises_ranks(cp: int) -> None:
    """Megatron / TE give CP rank r sequence chunks r and 2cp − 1 − r of 2cp: count the causal
    (query, key) chunk pairs per rank directly."""

    def work(chunks: list[int]) -> float:  # a chunk i attends to chunks 0..i-1 fully, itself half
        return sum(i + 0.5 for i in chunks)

    balanced = [work([r, 2 * cp - 1 - r]) for r in range(cp)]
    assert max(balanced) / (sum(balanced) / cp) == pytest.approx(cp_causal_imbalance(cp))
    contiguous = [work([2 * r, 2 * r + 1]) for r in range(cp)]
    assert max(contiguous) / (sum(contiguous) / cp) == pytest.approx(cp_causal_imbalance(cp, balanced=False))


def test_context_parallel_chunks_run_shorter_kernels() -> None:
    """Each ring step runs the kernel over s/cp tokens: at 128k and cp 16 (8k chunks) attention runs
    at the 8k rate, not the 128k one."""
    llama = gpt_like_spec(1, 4096, 32, 32000, 131072, gated=True, bias=False, learned_positions=False)
    cluster = Cluster.parse("2x8xH100")
    cfg = TrainingConfig(cp=16, seq_len=131072, global_batch=1)
    parts = layer_time_breakdown(llama, llama.layers[0], cluster, cfg, Recompute.NONE)
    assert parts.compute_s > 0
    assert attention_shape_factor(HOPPER, 128, 8192) < attention_shape_factor(HOPPER, 128, 131072)


def test_all_to_all_context_parallelism_is_on_the_critical_path() -> None:
    """cp_comm a2a (DeepSpeed-Ulysses, TE's A2A): Q, K, V and the output cross the cp group once
    per forward pass and their gradients once backward, each rank sending its sequence shard of
    every head but its own share, with nothing to hide behind; ring attention (p2p) at the same
    layout hides its K/V passes behind the attention core on NVLink."""
    llama = gpt_like_spec(1, 4096, 32, 32000, 32768, gated=True, bias=False, learned_positions=False)
    cluster = Cluster.parse("1x8xH100")
    ring = TrainingConfig(cp=8, seq_len=32768, global_batch=1)
    a2a = ring.model_copy(update={"cp_comm": "a2a"})
    layer = llama.layers[0]
    assert layer_time_breakdown(llama, layer, cluster, ring, Recompute.NONE).cp_comm_s == 0.0
    link = comm.all_to_all_link(cluster, 8)
    shard = 32768 / 8 * 4096 * 2  # bf16 Q (or K, V, output) of the rank's tokens, all 32 heads
    one_pass = 4 * comm.all_to_all_s(shard, 8, link)
    for recompute, passes in ((Recompute.NONE, 2), (Recompute.FULL, 3)):
        got = layer_time_breakdown(llama, layer, cluster, a2a, recompute).cp_comm_s
        assert got == pytest.approx(passes * one_pass)


# ----- the step's components and the cost to train ----------------------------------------------------------
def test_components_add_up_to_the_step() -> None:
    model = gpt_like_spec(32, 4096, 32, 32000, 4096, gated=True, bias=False, learned_positions=False)
    cluster = Cluster.parse("4x8xH100")
    cfg = TrainingConfig(
        tp=2,
        pp=4,
        cp=2,
        dp=2,
        seq_len=4096,
        global_batch=64,
        layers_per_stage=(7, 9, 8, 8),
        offload_optimizer=True,
    )
    perf = training_perf(model, cluster, cfg)
    parts = perf.components()
    assert set(parts) == {
        "compute",
        "tp_comm",
        "cp_comm",
        "ep_comm",
        "pp_bubble",
        "dp_comm_exposed",
        "optimizer",
        "offload",
    }
    assert sum(parts.values()) == pytest.approx(perf.step_time_s)
    assert parts["offload"] > 0
    assert [s.layers for s in perf.stages] == [7, 9, 8, 8]
    slow = max(perf.stages, key=lambda s: s.microbatch_s)
    assert slow.layers == 9 and slow.idle_s == pytest.approx(perf.pp_bubble_s)


def test_perf_dict_time_and_cost_to_train() -> None:
    model = gpt_like_spec(24, 2048, 16, 50368, 2048, bias=False, learned_positions=False)
    cluster = Cluster.parse("1x8xH100")
    cfg = TrainingConfig(dp=8, seq_len=2048, global_batch=64)
    perf = training_perf(model, cluster, cfg)
    cost = cost_to_tokens(model, cluster, cfg, 1e11, perf=perf)
    out = training_perf_dict(perf, cost)
    assert out["step_time_s"] == perf.step_time_s  # existing keys unchanged
    assert out["time_to_train_s"] == pytest.approx(1e11 / perf.tokens_per_s)
    assert out["usd_to_train"] == pytest.approx(out["gpu_hours"] * cluster.gpu.usd_per_hour)  # type: ignore[operator]
    assert "time_to_train_s" not in training_perf_dict(perf)


# ----- data-parallel sync at scale -----------------------------------------------------------------------
def test_dp_overlap_window_1f1b_is_one_microbatch() -> None:
    cfg = TrainingConfig(pp=8, dp=128, global_batch=1024)
    assert dp_overlap_window_s(cfg, 0, 2.0) == 2.0
    assert dp_overlap_window_s(cfg, 7, 2.0) == 2.0


def test_dp_overlap_window_interleaved_spans_the_chunks_in_flight() -> None:
    """Per-chunk buckets: chunk c's reduce-scatter runs under the other chunks' cool-down backward passes
    (and its all-gather under the warm-up forwards): Megatron-Core's in-flight chunk passes × 1/vp."""
    cfg = TrainingConfig(pp=16, vp=4, dp=128, global_batch=4096)
    first = dp_overlap_window_s(cfg, 0, 1.0)
    assert first == pytest.approx((2 * 15 + 3 * 16 + 1) / 4)
    last = dp_overlap_window_s(cfg, 15, 1.0)
    assert last == pytest.approx((3 * 16 + 1) / 4)


def test_expert_tensor_parallelism_gathers_tokens_and_splits_experts() -> None:
    """Megatron-Core's expert mesh: with etp = tp each expert is split tp ways and sees the tokens of the
    whole TP group (tokens per expert × etp/tp); with etp = 1 whole experts see the rank's own share.
    The routed FLOPs per GPU are the same; the per-expert GEMM shape is what changes."""
    model = _moe_model(64, 4, 1024)
    layer = model.layers[0]
    split = TrainingConfig(tp=4, ep=8, dp=8, seq_len=4096, global_batch=8)
    whole = split.model_copy(update={"etp": 1})
    assert moe.tokens_per_expert(layer, split) == pytest.approx(4 * moe.tokens_per_expert(layer, whole))
    assert moe.routed_flops(layer, split) == pytest.approx(moe.routed_flops(layer, whole))


def test_interleaved_p2p_overlaps_the_chunks() -> None:
    """Megatron-Core `overlap_p2p_comm`: with interleaving only each hop's latency shows when the chunks'
    compute is longer than the transfer; 1F1B pays the whole transfer."""
    model = gpt_like_spec(32, 4096, 32, 32000, 4096, gated=True, bias=False, learned_positions=False)
    cluster = Cluster.parse("4x8xH100")
    flat = TrainingConfig(tp=8, pp=4, seq_len=4096, global_batch=64)
    inter = flat.model_copy(update={"vp": 2})
    idx = tuple(range(8, 16))
    no_hops = sum(layer_time_s(model, model.layers[i], cluster, flat, Recompute.NONE) for i in idx)
    link = comm.group_link(cluster, 4, stride=8)
    assert stage_time_s(model, cluster, inter, 1, idx, Recompute.NONE) == pytest.approx(
        no_hops + 2 * 2 * link.latency_s
    )
    assert stage_time_s(model, cluster, flat, 1, idx, Recompute.NONE) > no_hops + 2 * 2 * link.latency_s
