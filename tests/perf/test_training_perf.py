"""Training step-time model: FLOP counts, schedule, building blocks."""

from __future__ import annotations

import pytest

from autoparallel.configs import Recompute, TrainingConfig, ZeroStage
from autoparallel.errors import InputError
from autoparallel.hardware import Cluster
from autoparallel.memory.training import gpt_like_spec
from autoparallel.models.spec import AttentionKind, AttentionSpec, LayerSpec, MlpKind, MlpSpec, ParamGroups
from autoparallel.perf.efficiency import EFFICIENCY, efficiency_for
from autoparallel.perf.training import (
    cost_to_tokens,
    dp_sync_time_s,
    embedding_time_s,
    layer_time_breakdown,
    layer_time_s,
    lm_head_time_s,
    model_flops_per_step,
    pipeline_step_time_s,
    recompute_flops_per_step,
    stage_time_s,
    training_perf,
)

GPT3 = gpt_like_spec(96, 12288, 96, 51200, 2048, name="GPT-3 175B")
SMALL = gpt_like_spec(24, 2048, 16, 50368, 2048, bias=False, learned_positions=False, name="small")
H100 = Cluster.parse("2x8xH100")
A100_64 = Cluster.parse("8x8xA100")


def test_model_flops_match_narayanan_eq3() -> None:
    """72·B·s·l·h²·(1 + s/6h + V/12lh) without recompute; 96·… with full recompute (their count)."""
    b, s, n, h, v = 1536, 2048, 96, 12288, 51200
    cfg = TrainingConfig(tp=8, pp=8, dp=24, seq_len=s, global_batch=b, recompute=Recompute.FULL)
    narayanan = 72 * b * s * n * h**2 * (1 + s / (6 * h) + v / (12 * n * h))
    # Our count adds the biases and layer norms (≈ 13·l·h per token): within 0.01 %.
    assert model_flops_per_step(GPT3, cfg) == pytest.approx(narayanan, rel=1e-4)
    hw = model_flops_per_step(GPT3, cfg) + recompute_flops_per_step(GPT3, cfg)
    assert hw == pytest.approx(96 * b * s * n * h**2 * (1 + s / (6 * h) + v / (16 * n * h)), rel=1e-4)


def test_selective_recompute_counts_attention_core_only() -> None:
    cfg = TrainingConfig(tp=8, pp=8, dp=1, seq_len=2048, global_batch=8, recompute=Recompute.SELECTIVE)
    # Forward QKᵀ + PV: 4·s·h per token per layer (non-causal count).
    assert recompute_flops_per_step(GPT3, cfg) == pytest.approx(8 * 2048 * 96 * 4 * 2048 * 12288)
    none = cfg.model_copy(update={"recompute": Recompute.NONE})
    assert recompute_flops_per_step(GPT3, none) == 0.0


def test_recompute_costs_time() -> None:
    cfg = TrainingConfig(tp=8, seq_len=2048, global_batch=1)
    layer = GPT3.layers[0]
    t = {r: layer_time_s(GPT3, layer, H100, cfg, r) for r in Recompute}
    assert t[Recompute.NONE] < t[Recompute.SELECTIVE] < t[Recompute.FULL]
    assert t[Recompute.FULL] / t[Recompute.NONE] == pytest.approx(4 / 3, rel=0.1)


def test_layer_breakdown_parts() -> None:
    layer = GPT3.layers[0]
    solo = layer_time_breakdown(
        GPT3, layer, H100, TrainingConfig(seq_len=2048, global_batch=1), Recompute.NONE
    )
    assert solo.tp_comm_s == solo.cp_comm_s == solo.ep_comm_s == solo.zero3_comm_s == 0.0
    tp = layer_time_breakdown(
        GPT3, layer, H100, TrainingConfig(tp=8, seq_len=2048, global_batch=1), Recompute.NONE
    )
    assert tp.tp_comm_s > 0
    assert tp.compute_s == pytest.approx(solo.compute_s / 8, rel=0.05)
    assert tp.total_s == pytest.approx(tp.compute_s + tp.tp_comm_s)


def test_context_parallel_ring_is_hidden_by_long_attention() -> None:
    layer = GPT3.layers[0]
    cfg = TrainingConfig(tp=8, cp=2, seq_len=131072, global_batch=1)
    parts = layer_time_breakdown(GPT3, layer, H100, cfg, Recompute.NONE)
    assert parts.cp_comm_s == 0.0  # K/V exchange is far shorter than the attention it overlaps


def test_expert_parallel_all_to_all() -> None:
    moe = LayerSpec(
        attention=AttentionSpec(
            kind=AttentionKind.FULL, num_heads=32, num_kv_heads=8, head_dim=128, v_head_dim=128
        ),
        mlp=MlpSpec(kind=MlpKind.MOE, intermediate_size=2048, num_experts=64, experts_per_token=8),
        params=ParamGroups(attention=4096 * 6144, routed_experts=64 * 3 * 4096 * 2048, router=64 * 4096),
    )
    model = gpt_like_spec(1, 4096, 32, 32000, 4096, kv_heads=8, gated=True).model_copy(
        update={"layers": (moe,)}
    )
    cfg = TrainingConfig(tp=1, dp=16, ep=8, seq_len=4096, global_batch=16)
    parts = layer_time_breakdown(model, moe, H100, cfg, Recompute.NONE)
    assert parts.ep_comm_s > 0
    no_ep = layer_time_breakdown(model, moe, H100, cfg.model_copy(update={"ep": 1}), Recompute.NONE)
    assert no_ep.ep_comm_s == 0.0
    # Balanced routing: every GPU does the same expert FLOPs whatever ep is.
    assert parts.compute_s == pytest.approx(no_ep.compute_s)


def test_zero3_exposes_gathers_when_compute_is_short() -> None:
    cfg = TrainingConfig(dp=64, seq_len=512, micro_batch=1, global_batch=64, zero=ZeroStage.PARAMETERS)
    parts = layer_time_breakdown(GPT3, GPT3.layers[0], A100_64, cfg, Recompute.FULL)
    assert parts.zero3_comm_s > 0
    long = cfg.model_copy(update={"micro_batch": 16, "global_batch": 1024})
    assert layer_time_breakdown(GPT3, GPT3.layers[0], A100_64, long, Recompute.FULL).zero3_comm_s == 0.0


def test_pipeline_schedule() -> None:
    cfg = TrainingConfig(pp=4, global_batch=8)
    assert pipeline_step_time_s([1.0] * 4, cfg) == pytest.approx((8 + 4 - 1) * 1.0)
    inter = cfg.model_copy(update={"vp": 3})
    assert pipeline_step_time_s([1.0] * 4, inter) == pytest.approx(8 + 3 / 3)
    # Unequal stages: the slowest sets the steady state.
    assert pipeline_step_time_s([1.0, 2.0, 1.0, 1.0], cfg) == pytest.approx(8 * 2.0 + 3.0)


def test_stage_time_adds_embedding_head_and_hops() -> None:
    cfg = TrainingConfig(tp=8, pp=2, dp=1, seq_len=2048, global_batch=8)
    layers = tuple(range(48))
    mid = sum(layer_time_s(GPT3, GPT3.layers[i], H100, cfg, Recompute.SELECTIVE) for i in layers)
    first = stage_time_s(GPT3, H100, cfg, 0, layers, Recompute.SELECTIVE)
    last = stage_time_s(GPT3, H100, cfg, 1, layers, Recompute.SELECTIVE)
    assert first > mid + embedding_time_s(GPT3, H100, cfg)
    assert last > mid + lm_head_time_s(GPT3, H100, cfg)


def test_dp_sync_overlap_and_zero3() -> None:
    cfg = TrainingConfig(tp=8, dp=2, seq_len=2048, global_batch=64)
    layers = tuple(range(96))
    exposed = dp_sync_time_s(GPT3, H100, cfg, 0, layers, overlap_window_s=0.0)
    hidden = dp_sync_time_s(GPT3, H100, cfg, 0, layers, overlap_window_s=100.0)
    assert exposed > hidden > 0
    assert hidden == pytest.approx(exposed / 96)  # one layer's bucket is always exposed
    z3 = cfg.model_copy(update={"zero": ZeroStage.PARAMETERS})
    assert dp_sync_time_s(GPT3, H100, z3, 0, layers, overlap_window_s=0.0) == 0.0


def test_training_perf_consistency() -> None:
    cfg = TrainingConfig(tp=8, pp=2, dp=1, seq_len=2048, micro_batch=1, global_batch=64)
    perf = training_perf(GPT3, H100, cfg)
    tokens = 64 * 2048
    assert perf.tokens_per_s == pytest.approx(tokens / perf.step_time_s)
    assert perf.tokens_per_s_per_gpu == pytest.approx(perf.tokens_per_s / 16)
    assert perf.mfu == pytest.approx(perf.tflops_per_gpu / 989.0)
    assert perf.hfu > perf.mfu  # selective recompute adds the attention core
    assert 0.2 < perf.mfu < 0.7
    assert len(perf.stage_times_s) == 2
    # 1F1B with two stages: the bubble is the faster stage's time once (fill + drain).
    assert perf.pp_bubble_s == pytest.approx(min(perf.stage_times_s))
    assert perf.step_time_s >= perf.compute_s + perf.pp_bubble_s


def test_fp8_is_faster_but_lower_mfu() -> None:
    bf16 = TrainingConfig(tp=4, pp=1, dp=4, seq_len=4096, global_batch=64)
    fp8 = bf16.model_copy(update={"precision": "fp8"})
    p16, p8 = training_perf(SMALL, H100, bf16), training_perf(SMALL, H100, fp8)
    assert p8.step_time_s < p16.step_time_s
    assert p8.mfu < p16.mfu  # against the FP8 peak, twice the bf16 one


def test_bad_batch_is_an_input_error() -> None:
    with pytest.raises(InputError, match="global_batch"):
        training_perf(SMALL, H100, TrainingConfig(dp=16, micro_batch=2, global_batch=16))


def test_cost_to_tokens() -> None:
    cfg = TrainingConfig(tp=1, dp=16, seq_len=2048, micro_batch=4, global_batch=256)
    perf = training_perf(SMALL, H100, cfg)
    cost = cost_to_tokens(SMALL, H100, cfg, 1e12, perf=perf)
    assert cost.time_s == pytest.approx(1e12 / perf.tokens_per_s)
    assert cost.gpu_hours == pytest.approx(cost.time_s / 3600 * 16)
    assert cost.usd == pytest.approx(cost.gpu_hours * H100.gpu.usd_per_hour)


def test_efficiency_table() -> None:
    for eff in EFFICIENCY.values():
        assert 0 < eff.attention < eff.gemm < 1 and eff.source
    assert efficiency_for("blackwell") == EFFICIENCY["hopper"]
    assert efficiency_for("volta") == EFFICIENCY["ampere"]


def test_mtp_costs_time_and_counts_in_model_flops() -> None:
    """The MTP module adds one last-layer fwd+bwd, the eh_proj GEMM and a second LM head to the last
    stage, and Megatron's `num_floating_point_operations` counts its FLOPs."""
    from autoparallel.models import load_model

    v3 = load_model("deepseek-ai/DeepSeek-V3")
    plain = v3.model_copy(update={"mtp_layers": 0, "mtp_params": 0})
    cl = Cluster.parse("16x8xH100")
    cfg = TrainingConfig(pp=8, dp=16, ep=16, seq_len=4096, global_batch=1024, zero=ZeroStage.OPTIMIZER)
    head = lm_head_time_s(plain, cl, cfg)
    layer = layer_time_s(v3, v3.layers[-1], cl, cfg, Recompute.NONE)
    extra = lm_head_time_s(v3, cl, cfg) - head
    assert layer + head < extra < 1.1 * (layer + head)
    assert embedding_time_s(v3, cl, cfg) == embedding_time_s(plain, cl, cfg)
    h, tokens = v3.hidden_size, 1024 * 4096
    flops = model_flops_per_step(v3, cfg) - model_flops_per_step(plain, cfg)
    gemms = 6 * tokens * (v3.layers[-1].active_params + 2 * h * h + h * v3.vocab_size)
    assert gemms < flops < 1.15 * gemms  # + the MTP block's non-causal MLA attention core (~10 %)


def test_cpu_offload_costs_the_cpu_adam_step_and_pcie_copies() -> None:
    """Optimizer offload: 28 B/param of CPU Adam at the host bandwidth + grads down (half hidden) +
    params up over PCIe, instead of the GPU Adam; it must cost more than the GPU step."""
    from autoparallel.perf.training import optimizer_step_s
    from autoparallel.perf.training_schedule import CPU_ADAM_BYTES_PER_PARAM, HOST_ADAM_GBPS_PER_GPU

    cfg = TrainingConfig(dp=16, seq_len=2048, global_batch=256, zero=ZeroStage.OPTIMIZER)
    off = cfg.model_copy(update={"offload_optimizer": True})
    idx = tuple(range(SMALL.num_layers))
    gpu = H100.gpu
    on_gpu = optimizer_step_s(SMALL, gpu, cfg, 0, idx)
    on_cpu = optimizer_step_s(SMALL, gpu, off, 0, idx)
    shard = on_gpu * gpu.hbm_tbps * 1e12 / 36.0
    want = CPU_ADAM_BYTES_PER_PARAM * shard / (HOST_ADAM_GBPS_PER_GPU * 1e9) + 3.0 * shard / (
        gpu.pcie_gbps * 1e9
    )
    assert on_cpu == pytest.approx(want)
    assert on_cpu > 10 * on_gpu
    z3 = cfg.model_copy(update={"zero": ZeroStage.PARAMETERS})
    z3_off = z3.model_copy(update={"offload_params": True})
    assert optimizer_step_s(SMALL, gpu, z3_off, 0, idx) > optimizer_step_s(SMALL, gpu, z3, 0, idx)
    assert training_perf(SMALL, H100, off).step_time_s > training_perf(SMALL, H100, cfg).step_time_s
