"""Which FLOPs count `tflops_per_gpu` / `mfu` use (Narayanan et al. 2021, attention over the full
s×s, Megatron-LM up to core_v0.11) and the causal count Megatron-LM core_v0.12.0+ logs
(`num_floating_point_operations`, "/ 2  # causal mask", commit 8873b55)."""

from __future__ import annotations

import pytest

from autoparallel.cli import main
from autoparallel.configs import TrainingConfig
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.models.spec import AttentionKind
from autoparallel.perf.training import megatron_log_flops_per_step, model_flops_per_step, training_perf

SEQ = 262_144


def _megatron_per_token(seq: int, *, causal: bool) -> float:
    """Megatron-LM's count per token for Llama-3.1-8B (h 4096, 32 q / 8 kv heads of 128, ffn 14336
    SwiGLU, 32 layers, vocab 128256): 3 (fwd + 2 bwd) × 2 (FMA) × (QKV + out projections + SwiGLU
    MLP + core attention + logits); the core attention q·s per layer for QKᵀ and PV each, halved
    for the causal mask since core_v0.12.0."""
    h, q, kv, ffn, layers, vocab = 4096, 4096, 1024, 14336, 32, 128256
    core = 2 * q * seq * (0.5 if causal else 1.0)
    per_layer = h * (q + 2 * kv) + q * h + 3 * h * ffn + core
    return 6.0 * (layers * per_layer + h * vocab)


def test_counts_match_megatron_before_and_after_core_v0_12() -> None:
    model = load_model("meta-llama/Llama-3.1-8B")
    cfg = TrainingConfig(seq_len=SEQ, global_batch=2)
    tokens = 2 * SEQ
    # Ours adds the RMSNorms (2·h per layer per token): within 0.01 %.
    assert model_flops_per_step(model, cfg) / tokens == pytest.approx(
        _megatron_per_token(SEQ, causal=False), rel=1e-4
    )
    assert megatron_log_flops_per_step(model, cfg) / tokens == pytest.approx(
        _megatron_per_token(SEQ, causal=True), rel=1e-4
    )
    # At 262k tokens the causal count is 55 % of Narayanan's (4.57e11 vs 2.51e11 FLOPs a token).
    ratio = megatron_log_flops_per_step(model, cfg) / model_flops_per_step(model, cfg)
    assert ratio == pytest.approx(0.549, abs=1e-3)
    # At 4k the two differ by 6 %.
    short = TrainingConfig(seq_len=4096, global_batch=2)
    assert megatron_log_flops_per_step(model, short) / model_flops_per_step(model, short) == pytest.approx(
        0.94, abs=0.005
    )


def test_sliding_layers_keep_their_window_and_mtp_block_is_halved() -> None:
    oss = load_model("openai/gpt-oss-20b")
    cfg = TrainingConfig(seq_len=SEQ, global_batch=1)
    full = [layer.attention for layer in oss.layers if layer.attention.kind is AttentionKind.FULL]
    assert 0 < len(full) < len(oss.layers)
    halved = sum(2.0 * a.num_heads * (a.head_dim + a.v_head_dim) * SEQ for a in full) / 2.0
    drop = model_flops_per_step(oss, cfg) - megatron_log_flops_per_step(oss, cfg)
    assert drop == pytest.approx(3.0 * SEQ * halved, rel=1e-9)

    v3 = load_model("deepseek-ai/DeepSeek-V3")
    assert v3.mtp_layers == 1
    mla = v3.layers[-1].attention
    per_layer = 2.0 * mla.num_heads * (mla.head_dim + mla.v_head_dim) * SEQ / 2.0
    drop = model_flops_per_step(v3, cfg) - megatron_log_flops_per_step(v3, cfg)
    assert drop == pytest.approx(3.0 * SEQ * per_layer * (len(v3.layers) + 1), rel=1e-9)


def test_perf_reports_megatron_log_figure() -> None:
    model = load_model("meta-llama/Llama-3.1-8B")
    cfg = TrainingConfig(tp=8, dp=1, seq_len=32768, global_batch=8)
    perf = training_perf(model, Cluster.parse("1x8xH100"), cfg)
    ratio = megatron_log_flops_per_step(model, cfg) / model_flops_per_step(model, cfg)
    assert perf.megatron_log_tflops_per_gpu == pytest.approx(perf.tflops_per_gpu * ratio, rel=1e-9)
    assert perf.megatron_log_tflops_per_gpu < perf.tflops_per_gpu


def test_plan_text_labels_the_counts(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "evaluate",
        "meta-llama/Llama-3.2-1B",
        "--cluster",
        "1x8xH100",
        "--train",
        "--tp",
        "2",
        "--dp",
        "4",
        "--global-batch",
        "8",
        "--seq-len",
        "32768",
        "--recompute",
        "full",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.split()[:1]}
    assert "full s x s" in rows["tflops_per_gpu"] and "core_v0.11" in rows["tflops_per_gpu"]
    assert "Megatron-LM core_v0.12.0+ logs" in rows["megatron_log_tflops_per_gpu"]
    nar = float(rows["tflops_per_gpu"].split()[1])
    meg = float(rows["megatron_log_tflops_per_gpu"].split()[1])
    assert meg < 0.85 * nar


def test_a_sparse_models_mtp_attention_is_halved_as_it_is_counted() -> None:
    """DeepSeek-V3.2's MTP block: `model_flops_per_step` counts its attention over the whole sequence,
    so the causal count halves that term (it was left whole: the block's top-k read as capped)."""
    from autoparallel.configs import TrainingConfig
    from autoparallel.models import load_model
    from autoparallel.perf.training import megatron_log_flops_per_step, model_flops_per_step

    model = load_model("deepseek-ai/DeepSeek-V3.2")
    att = model.layers[-1].attention
    cfg = TrainingConfig(seq_len=8192, global_batch=1)
    core = 2.0 * att.num_heads * (att.head_dim + att.v_head_dim) * cfg.seq_len
    gap = model_flops_per_step(model, cfg) - megatron_log_flops_per_step(model, cfg)
    assert abs(gap - 3.0 * cfg.seq_len * model.mtp_layers * core / 2.0) <= 1e-9 * gap
