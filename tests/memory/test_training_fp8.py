"""FP8 training memory (Transformer Engine) and Megatron-Core's interleaved in-flight micro-batches."""

from __future__ import annotations

import pytest

from autoparallel.configs import Recompute, TrainingConfig, ZeroStage
from autoparallel.memory.training import (
    gpt_like_spec,
    inflight_microbatches,
    layer_activation_bytes,
    layer_state_breakdown,
)
from autoparallel.memory.training_states import FP8_WEIGHT_CACHE_BYTES_PER_PARAM, fp8_weight_cache_bytes

# Korthikanti et al.'s GPT shape without dropout (a Megatron-Core / NeMo GPT run with dropout 0).
H, A, S, B = 12288, 96, 2048, 1
GPT = gpt_like_spec(96, H, A, 51200, S, dropout=False, name="GPT-3 175B, no dropout")


def _cfg(precision: str, **kw: object) -> TrainingConfig:
    base: dict[str, object] = {"tp": 8, "seq_len": S, "micro_batch": B, "global_batch": 1}
    return TrainingConfig(**(base | kw), precision=precision)


# ----- Transformer Engine: FP8 inputs saved for backward ------------------------------------------------
def test_fp8_saves_linear_inputs_in_one_byte() -> None:
    """Korthikanti's flash-attention inventory without dropout is 32·sbh/t (+ the fp32 log-sum-exp,
    4·sb·a/t). TE's `_Linear.forward` saves the FP8 cast of each linear's input (or its FP8 transpose)
    instead of the bf16 input: QKV input 2h → h, MLP input 2h → h, projection input 2h → h, FC2
    input (the 4h GeLU output) 8h → 4h: 32 → 25."""
    layer = GPT.layers[0]
    bf16 = layer_activation_bytes(GPT, layer, _cfg("bf16"), Recompute.NONE)
    fp8 = layer_activation_bytes(GPT, layer, _cfg("fp8"), Recompute.NONE)
    lse = S * B * 4 * A / 8
    assert bf16 == pytest.approx(S * B * H * 32 / 8 + lse)
    assert fp8 == pytest.approx(S * B * H * 25 / 8 + lse)


def test_fp8_full_recompute_keeps_the_bf16_layer_input() -> None:
    """Full recompute stores only the layer input, which is not a linear's input: unchanged."""
    layer = GPT.layers[0]
    full = Recompute.FULL
    assert layer_activation_bytes(GPT, layer, _cfg("fp8"), full) == layer_activation_bytes(
        GPT, layer, _cfg("bf16"), full
    )


# ----- Transformer Engine: FP8 weight and transpose copies ----------------------------------------------
def test_fp8_weight_and_transpose_copies() -> None:
    """TE keeps `weight_fp8` and `weight_t_fp8` (1 + 1 byte) per linear weight across micro-batches:
    +2 bytes per GEMM parameter on the GPU, none for norms; not sharded by the distributed optimizer."""
    layer = GPT.layers[0]
    gemm = (layer.params.attention + layer.params.dense_mlp) / 8
    cfg = _cfg("fp8", dp=64, zero=ZeroStage.DISTRIBUTED_OPTIMIZER)
    assert FP8_WEIGHT_CACHE_BYTES_PER_PARAM == 2.0
    assert fp8_weight_cache_bytes(layer, cfg) == pytest.approx(2.0 * gemm)
    fp8 = layer_state_breakdown(GPT, layer, cfg)
    bf16 = layer_state_breakdown(GPT, layer, cfg.model_copy(update={"precision": "bf16"}))
    assert fp8.weights_bytes - bf16.weights_bytes == pytest.approx(2.0 * gemm)
    assert fp8.gradients_bytes == bf16.gradients_bytes and fp8.optimizer_bytes == bf16.optimizer_bytes


def test_distributed_optimizer_buffers_with_fp8() -> None:
    """Megatron's distributed optimizer: bf16 params (2) + fp32 main_grad (4) + 12/d of fp32 master, m, v
    (dist_optimizer.md, "6 + 12/d"), plus TE's FP8 copies (2): 8 + 12/d bytes per GEMM parameter."""
    layer = GPT.layers[0]
    d = 16
    cfg = _cfg("fp8", dp=d, zero=ZeroStage.DISTRIBUTED_OPTIMIZER)
    psi = (layer.params.attention + layer.params.dense_mlp) / 8
    norms = layer.params.norms
    state = layer_state_breakdown(GPT, layer, cfg)
    assert state.total_bytes == pytest.approx(psi * (8 + 12 / d) + norms * (6 + 12 / d))


# ----- Megatron-Core interleaved 1F1B: in-flight micro-batches ------------------------------------------
@pytest.mark.parametrize(
    ("pp", "vp", "m", "want"),
    [
        # get_pp_rank_microbatches: warm-up = 2(p − r − 1) + (v − 1)·group (group = p by default),
        # the steady state adds one; all micro-batches are warm-up once that reaches m·v.
        (4, 2, 8, [11, 9, 7, 5]),
        (4, 2, 4, [8, 8, 7, 5]),
        (8, 3, 64, [31, 29, 27, 25, 23, 21, 19, 17]),
        (2, 2, 2, [4, 3]),
    ],
)
def test_interleaved_inflight_as_megatron_core_schedules(pp: int, vp: int, m: int, want: list[int]) -> None:
    cfg = TrainingConfig(pp=pp, vp=vp, micro_batch=1, global_batch=m)
    assert [inflight_microbatches(cfg, s) for s in range(pp)] == want


def test_ep_overlap_adds_one_warmup_forward() -> None:
    """`overlap_moe_expert_parallel_comm` schedules one extra forward before the merged 1F1B steps."""
    cfg = TrainingConfig(pp=4, vp=2, micro_batch=1, global_batch=16)
    plain = [inflight_microbatches(cfg, s) for s in range(4)]
    overlap = [inflight_microbatches(cfg.model_copy(update={"ep_overlap": True}), s) for s in range(4)]
    assert overlap == [n + 1 for n in plain]
