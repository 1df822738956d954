"""Which FLOPs count `tflops_per_gpu` / `mfu` use (Narayanan et al. 2021, non-causal attention over
each layer's context, Megatron-LM up to core_v0.11 on full-attention models) and the causal count
Megatron-LM core_v0.12.0+ logs (`num_floating_point_operations`, "/ 2  # causal mask", commit 8873b55)."""

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


def _counted_core(model: object, seq: int) -> float:
    """The core attention `model_flops_per_step` counts per token and forward pass: each softmax /
    MLA layer's own context (windows capped, a sparse layer's top-k and indexer)."""
    return sum(
        sum(layer.attention.context_flops_per_token(seq))
        for layer in model.layers  # type: ignore[attr-defined]
        if layer.attention.kind is not AttentionKind.LINEAR
    )


def _whole(att: object, seq: int) -> float:
    return 2.0 * att.num_heads * (att.head_dim + att.v_head_dim) * seq  # type: ignore[attr-defined]


def test_megatron_counts_every_layer_as_full_causal_attention() -> None:
    """Megatron's `num_floating_point_operations` has no window: gpt-oss's sliding layers count as
    causal attention over the whole sequence in its log, as its full ones do."""
    oss = load_model("openai/gpt-oss-20b")
    cfg = TrainingConfig(seq_len=32768, global_batch=1)
    seq = cfg.seq_len
    assert any(layer.attention.kind is AttentionKind.SLIDING for layer in oss.layers)
    without_core = model_flops_per_step(oss, cfg) - 3.0 * seq * _counted_core(oss, seq)
    megatron_core = sum(_whole(layer.attention, seq) / 2.0 for layer in oss.layers)
    assert megatron_log_flops_per_step(oss, cfg) == pytest.approx(
        without_core + 3.0 * seq * megatron_core, rel=1e-9
    )
    # the log reads above what the layers compute: windows are not in Megatron's count
    assert megatron_log_flops_per_step(oss, cfg) > model_flops_per_step(oss, cfg) - 3.0 * seq * (
        sum(_whole(la.attention, seq) for la in oss.layers if la.attention.kind is AttentionKind.FULL) / 2.0
    )


def test_the_mtp_block_and_a_sparse_layer_count_as_megatron_counts_them() -> None:
    """DeepSeek-V3's MTP block is halved with its layers; DeepSeek-V3.2's top-k layers and indexer
    count, in Megatron's log, as full causal MLA (its formula has no sparse attention), and its MTP
    block, counted whole by `model_flops_per_step`, is halved."""
    cfg = TrainingConfig(seq_len=8192, global_batch=1)
    seq = cfg.seq_len
    for name in ("deepseek-ai/DeepSeek-V3", "deepseek-ai/DeepSeek-V3.2"):
        model = load_model(name)
        last = model.layers[-1].attention
        assert model.mtp_layers == 1
        ours_core = _counted_core(model, seq) + _whole(last, seq)  # the MTP block counted whole
        megatron_core = (len(model.layers) + 1) * _whole(last, seq) / 2.0
        expected = model_flops_per_step(model, cfg) + 3.0 * seq * (megatron_core - ours_core)
        assert megatron_log_flops_per_step(model, cfg) == pytest.approx(expected, rel=1e-9)


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
    assert "non-causal" in rows["tflops_per_gpu"] and "Narayanan" in rows["tflops_per_gpu"]
    assert "Megatron-LM core_v0.12.0+ logs" in rows["megatron_log_tflops_per_gpu"]
    nar = float(rows["tflops_per_gpu"].split()[1])
    meg = float(rows["megatron_log_tflops_per_gpu"].split()[1])
    assert meg < 0.85 * nar
