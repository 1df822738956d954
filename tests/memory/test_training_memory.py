"""Training memory: ZeRO's published model-state formulas and Korthikanti et al.'s activation formulas."""

from __future__ import annotations

import pytest

from autoparallel.configs import Recompute, TrainingConfig, ZeroStage
from autoparallel.hardware import get_gpu
from autoparallel.memory.margins import MemoryConfig
from autoparallel.memory.training import (
    embedding_activation_bytes,
    embedding_state_bytes,
    gpt_like_spec,
    inflight_microbatches,
    layer_activation_bytes,
    layer_state_breakdown,
    layer_state_bytes,
    lm_head_state_bytes,
    logits_bytes,
    stage_memory_bytes,
    training_memory,
)
from autoparallel.models.spec import (
    AttentionKind,
    AttentionSpec,
    LayerSpec,
    MlpKind,
    MlpSpec,
    ModelSpec,
    ParamGroups,
)

GPT3 = gpt_like_spec(96, 12288, 96, 51200, 2048, name="GPT-3 175B")


def _one_layer_model(psi: int) -> tuple[ModelSpec, LayerSpec]:
    """A model whose only layer holds exactly `psi` TP-shardable parameters."""
    layer = LayerSpec(
        attention=AttentionSpec(
            kind=AttentionKind.FULL, num_heads=8, num_kv_heads=8, head_dim=64, v_head_dim=64
        ),
        mlp=MlpSpec(kind=MlpKind.DENSE, intermediate_size=2048),
        params=ParamGroups(attention=psi),
    )
    model = ModelSpec(
        name="psi",
        model_type="llama",
        hidden_size=512,
        vocab_size=1000,
        max_position_embeddings=2048,
        layers=(layer,),
        tie_word_embeddings=True,
        embedding_params=0,
        lm_head_params=0,
        final_norm_params=0,
    )
    return model, layer


# ----- ZeRO (Rajbhandari et al. 2020, Figure 1: Ψ = 7.5B, Nd = 64, K = 12) ------------------------------
@pytest.mark.parametrize(
    ("zero", "published_gb"),
    [
        (ZeroStage.NONE, 120.0),  # (2 + 2 + K)Ψ
        (ZeroStage.OPTIMIZER, 31.4),  # 4Ψ + KΨ/Nd
        (ZeroStage.GRADIENTS, 16.6),  # 2Ψ + (2 + K)Ψ/Nd
        (ZeroStage.PARAMETERS, 1.9),  # (2 + 2 + K)Ψ/Nd
    ],
)
def test_zero_paper_figure_1(zero: ZeroStage, published_gb: float) -> None:
    model, layer = _one_layer_model(7_500_000_000)
    cfg = TrainingConfig(dp=64, global_batch=64, zero=zero)
    assert layer_state_bytes(model, layer, cfg) / 1e9 == pytest.approx(published_gb, abs=0.05)


@pytest.mark.parametrize("nd", [1, 2, 8, 64, 1024])
def test_zero_formulas_exact(nd: int) -> None:
    psi = 1_000_000
    model, layer = _one_layer_model(psi)

    def state(zero: ZeroStage, **kw: bool) -> float:
        return layer_state_bytes(model, layer, TrainingConfig(dp=nd, global_batch=nd, zero=zero, **kw))

    assert state(ZeroStage.NONE) == 16 * psi
    assert state(ZeroStage.OPTIMIZER) == pytest.approx(4 * psi + 12 * psi / nd, rel=1e-12)
    assert state(ZeroStage.GRADIENTS) == pytest.approx(2 * psi + 14 * psi / nd, rel=1e-12)
    assert state(ZeroStage.PARAMETERS) == pytest.approx(16 * psi / nd, rel=1e-12)
    # Megatron distributed optimizer, bf16 params + fp32 grads: 6 + 12/d (dist_optimizer.md).
    assert state(ZeroStage.DISTRIBUTED_OPTIMIZER) == pytest.approx(6 * psi + 12 * psi / nd, rel=1e-12)
    # Under fp16 Megatron keeps fp16 gradients (accumulate_allreduce_grads_in_fp32 is a bf16 rule).
    fp16 = TrainingConfig(dp=nd, global_batch=nd, zero=ZeroStage.DISTRIBUTED_OPTIMIZER, precision="fp16")
    assert layer_state_bytes(model, layer, fp16) == pytest.approx(4 * psi + 12 * psi / nd, rel=1e-12)
    # ZeRO-Offload: optimizer states leave the GPU; ZeRO-3 + parameter offload: weights too.
    assert state(ZeroStage.OPTIMIZER, offload_optimizer=True) == 4 * psi
    assert state(ZeroStage.PARAMETERS, offload_optimizer=True, offload_params=True) == pytest.approx(
        2 * psi / nd
    )


def test_state_shards_over_tp_and_cp() -> None:
    psi = 8_000_000
    model, layer = _one_layer_model(psi)
    cfg = TrainingConfig(tp=4, dp=2, cp=2, global_batch=2, zero=ZeroStage.OPTIMIZER)
    # TP splits the weights; the optimizer shards over the dp × cp data-parallel group.
    assert layer_state_bytes(model, layer, cfg) == pytest.approx(4 * psi / 4 + 12 * psi / 4 / 4)


def test_expert_states_shard_over_ep_and_expert_dp() -> None:
    experts = 1_000_000 * 64
    layer = LayerSpec(
        attention=AttentionSpec(
            kind=AttentionKind.FULL, num_heads=8, num_kv_heads=8, head_dim=64, v_head_dim=64
        ),
        mlp=MlpSpec(kind=MlpKind.MOE, intermediate_size=256, num_experts=64, experts_per_token=4),
        params=ParamGroups(routed_experts=experts),
    )
    model, _ = _one_layer_model(1)
    cfg = TrainingConfig(tp=2, dp=8, ep=8, etp=1, global_batch=8, zero=ZeroStage.DISTRIBUTED_OPTIMIZER)
    per_gpu = experts / 8  # ep × etp = 8
    edp = 2 * 8 / 8  # tp·dp·cp / (etp·ep)
    assert layer_state_bytes(model, layer, cfg) == pytest.approx(6 * per_gpu + 12 * per_gpu / edp)
    split = layer_state_breakdown(model, layer, cfg)
    assert split.weights_bytes == pytest.approx(2 * per_gpu)
    assert split.optimizer_bytes == pytest.approx(12 * per_gpu / edp)


def test_embedding_and_head_states() -> None:
    cfg = TrainingConfig(tp=8, pp=8, dp=1, global_batch=1, zero=ZeroStage.NONE)
    emb = GPT3.embedding_params
    assert embedding_state_bytes(GPT3, cfg) == pytest.approx(16 * emb / 8)
    # Tied embeddings with pp > 1: the last stage keeps its own copy of the word embeddings.
    assert lm_head_state_bytes(GPT3, cfg) == pytest.approx(16 * (emb / 8 + GPT3.final_norm_params))
    one_stage = cfg.model_copy(update={"pp": 1})
    assert lm_head_state_bytes(GPT3, one_stage) == pytest.approx(16 * GPT3.final_norm_params)


# ----- Korthikanti et al. 2022, Table 2 (per layer, bytes) ------------------------------------------------
S, B, H, A = 2048, 1, 12288, 96


def _act(tp: int, sp: bool, recompute: Recompute) -> float:
    cfg = TrainingConfig(tp=tp, seq_len=S, micro_batch=B, sequence_parallel=sp, global_batch=1)
    return layer_activation_bytes(GPT3, GPT3.layers[0], cfg, recompute, flash_attention=False)


def test_korthikanti_no_parallelism() -> None:
    assert _act(1, False, Recompute.NONE) == pytest.approx(S * B * H * (34 + 5 * A * S / H))


@pytest.mark.parametrize("t", [2, 4, 8])
def test_korthikanti_tensor_parallel(t: int) -> None:
    sbh = S * B * H
    assert _act(t, False, Recompute.NONE) == pytest.approx(sbh * (10 + 24 / t + 5 * A * S / (H * t)))
    assert _act(t, True, Recompute.NONE) == pytest.approx(sbh / t * (34 + 5 * A * S / H))
    assert _act(t, False, Recompute.SELECTIVE) == pytest.approx(sbh * (10 + 24 / t))
    assert _act(t, True, Recompute.SELECTIVE) == pytest.approx(sbh * 34 / t)
    assert _act(t, False, Recompute.FULL) == pytest.approx(2 * sbh)


def test_megatron_first_stage_formula_gpt3_175b() -> None:
    """Korthikanti's GPT-3 175B setting (t = 8, p = 8, s = 2048, b = 1, selective + SP): the first
    stage holds p micro-batches of L/p layers = L layers' worth, as Megatron-LM's
    `theoretical_memory_usage.compute_activation_memory` computes: (sbh·34·L + 8sbp + sbhp) / t."""
    cfg = TrainingConfig(tp=8, pp=8, dp=1, seq_len=S, micro_batch=1, global_batch=64)
    stage = stage_memory_bytes(
        GPT3, get_gpu("A100"), cfg, 0, tuple(range(12)), Recompute.SELECTIVE, flash_attention=False
    )
    megatron = (S * H * 34 * 96 + 8 * S * 8 + S * H * 8) / 8
    assert stage.activations_gib * 2**30 == pytest.approx(megatron, rel=1e-3)
    assert stage.activations_gib == pytest.approx(9.59, abs=0.01)


@pytest.mark.parametrize(
    ("name", "layers", "hidden", "heads", "pp", "selective_gib", "none_gib"),
    [
        # Korthikanti Table 3 settings (t = 8, s = 2048, b = 1); first-stage activations, GiB, from
        # Table 2's formulas (selective: 34·sbh/t per layer; no recompute: sbh/t·(34 + 5as/h)).
        ("175B", 96, 12288, 96, 8, 9.56, 32.06),
        ("530B", 105, 20480, 128, 35, 17.43, 50.24),
        ("1T", 128, 25600, 160, 64, 26.56, 76.56),
    ],
)
def test_korthikanti_settings(
    name: str, layers: int, hidden: int, heads: int, pp: int, selective_gib: float, none_gib: float
) -> None:
    model = gpt_like_spec(layers, hidden, heads, 51200, 2048, name=name)
    cfg = TrainingConfig(tp=8, pp=pp, seq_len=2048, micro_batch=1, global_batch=4 * pp)
    per_stage = layers // pp
    inflight = inflight_microbatches(cfg, 0)
    assert inflight == pp
    for mode, expected in ((Recompute.SELECTIVE, selective_gib), (Recompute.NONE, none_gib)):
        act = layer_activation_bytes(model, model.layers[0], cfg, mode, flash_attention=False)
        assert act * per_stage * inflight / 2**30 == pytest.approx(expected, abs=0.01)


def test_no_dropout_keeps_no_masks() -> None:
    """dropout = 0 (Llama, MPT, ...): ATen's dropout returns its input, so the two hidden-dropout masks
    (2sbh), the attention-dropout mask and output (3as per token, unfused) and the embedding mask go."""
    plain = GPT3.model_copy(update={"dropout": False})
    t = 8
    sbh = S * B * H
    for sp in (False, True):
        cfg = TrainingConfig(tp=t, seq_len=S, micro_batch=B, global_batch=1, sequence_parallel=sp)
        rep = t if sp else 1
        for mode in (Recompute.SELECTIVE, Recompute.NONE):
            with_masks = layer_activation_bytes(GPT3, GPT3.layers[0], cfg, mode, flash_attention=False)
            without = layer_activation_bytes(plain, plain.layers[0], cfg, mode, flash_attention=False)
            internal = 3 * A * S * S * B / t if mode is Recompute.NONE else 0.0
            assert with_masks - without == pytest.approx(2 * sbh / rep + internal)
        flash = layer_activation_bytes(plain, plain.layers[0], cfg, Recompute.NONE)
        assert flash == pytest.approx(sbh * (8 / rep + 24 / t) + S * B * 4 * A / t)
        assert embedding_activation_bytes(plain, cfg) == pytest.approx(8 * S * B)
        full = Recompute.FULL
        assert layer_activation_bytes(plain, plain.layers[0], cfg, full) == pytest.approx(
            layer_activation_bytes(GPT3, GPT3.layers[0], cfg, full)
        )


def test_flash_attention_is_34_sbh_over_t() -> None:
    cfg = TrainingConfig(tp=8, seq_len=S, micro_batch=B, global_batch=1)
    act = layer_activation_bytes(GPT3, GPT3.layers[0], cfg, Recompute.NONE)
    # Flash attention stores only a fp32 log-sum-exp per head instead of the s² tensors.
    assert act == pytest.approx(S * B * H * 34 / 8 + S * B * 4 * A / 8)
    full = layer_activation_bytes(GPT3, GPT3.layers[0], cfg, Recompute.FULL)
    assert full == pytest.approx(2 * S * B * H / 8)


def test_context_parallel_divides_activations() -> None:
    base = TrainingConfig(tp=2, seq_len=8192, global_batch=1)
    cp = base.model_copy(update={"cp": 4})
    a1 = layer_activation_bytes(GPT3, GPT3.layers[0], base, Recompute.SELECTIVE)
    a4 = layer_activation_bytes(GPT3, GPT3.layers[0], cp, Recompute.SELECTIVE)
    assert a4 == pytest.approx(a1 / 4, rel=1e-3)


def test_gqa_and_swiglu_inventory() -> None:
    """Llama-2-70B-like layer: Q 2·a·d, K and V 2·kv·d each, SwiGLU stores gate, up and product (6f)."""
    llama = gpt_like_spec(
        80,
        8192,
        64,
        32000,
        4096,
        ffn=28672,
        kv_heads=8,
        gated=True,
        bias=False,
        learned_positions=False,
        tie_embeddings=False,
    )
    cfg = TrainingConfig(tp=8, seq_len=4096, global_batch=1)
    act = layer_activation_bytes(llama, llama.layers[0], cfg, Recompute.SELECTIVE)
    h, f, kv_dim = 8192, 28672, 8 * 128
    per_token = (10 * h + 2 * h + 4 * kv_dim + 2 * h + 6 * f) / 8
    assert act == pytest.approx(4096 * per_token)


def test_moe_activations_scale_with_top_k() -> None:
    def moe_model(top_k: int) -> ModelSpec:
        layer = LayerSpec(
            attention=AttentionSpec(
                kind=AttentionKind.FULL, num_heads=16, num_kv_heads=4, head_dim=128, v_head_dim=128
            ),
            mlp=MlpSpec(kind=MlpKind.MOE, intermediate_size=1024, num_experts=64, experts_per_token=top_k),
            params=ParamGroups(attention=1, routed_experts=64 * 3 * 2048 * 1024),
        )
        return gpt_like_spec(1, 2048, 16, 1000, 4096).model_copy(update={"layers": (layer,)})

    cfg = TrainingConfig(tp=1, ep=8, dp=8, seq_len=4096, global_batch=8)
    a2 = layer_activation_bytes(moe_model(2), moe_model(2).layers[0], cfg, Recompute.SELECTIVE)
    a8 = layer_activation_bytes(moe_model(8), moe_model(8).layers[0], cfg, Recompute.SELECTIVE)
    # Each routed copy stores its input and output (4h) and the expert intermediates (6f).
    assert a8 - a2 == pytest.approx(4096 * 6 * (4 * 2048 + 6 * 1024))


# ----- pipeline in-flight micro-batches --------------------------------------------------------------
def test_inflight_1f1b() -> None:
    cfg = TrainingConfig(pp=4, dp=1, micro_batch=1, global_batch=16)
    assert [inflight_microbatches(cfg, s) for s in range(4)] == [4, 3, 2, 1]
    few = cfg.model_copy(update={"global_batch": 2})
    assert [inflight_microbatches(few, s) for s in range(4)] == [2, 2, 2, 1]
    assert inflight_microbatches(TrainingConfig(global_batch=8), 0) == 1


def test_inflight_interleaved_matches_megatron_penalty() -> None:
    """Megatron: first-stage memory × (1 + (p − 1)/(p·v)) layers' worth of L."""
    p, v = 8, 3
    cfg = TrainingConfig(pp=p, vp=v, global_batch=64)
    chunks = inflight_microbatches(cfg, 0)
    assert chunks / v == pytest.approx(p * (1 + (p - 1) / (p * v)))


# ----- whole report -----------------------------------------------------------------------------------
def test_training_memory_report_gpt3_fits_a100() -> None:
    cfg = TrainingConfig(tp=8, pp=8, dp=16, seq_len=2048, micro_batch=1, global_batch=1536)
    report = training_memory(GPT3, get_gpu("A100"), cfg)
    assert report.fits and not report.problems
    assert len(report.stages) == 8
    first, last = report.stages[0], report.stages[-1]
    assert first.activations_gib > last.activations_gib
    assert last.logits_gib > 0 and first.logits_gib == 0
    assert report.peak_gib == max(s.total_gib for s in report.stages)
    assert report.usable_gib == pytest.approx(MemoryConfig.for_training().usable_gib(get_gpu("A100")))
    for s in report.stages:
        parts = s.weights_gib + s.gradients_gib + s.optimizer_gib + s.activations_gib + s.logits_gib
        assert s.total_gib == pytest.approx(parts + s.fragmentation_gib)
        assert s.fragmentation_gib == pytest.approx(MemoryConfig.for_training().fragmentation * parts)


def test_training_memory_reports_what_does_not_fit() -> None:
    cfg = TrainingConfig(tp=1, pp=1, dp=8, seq_len=2048, global_batch=8, zero=ZeroStage.NONE)
    report = training_memory(GPT3, get_gpu("A100"), cfg)
    assert not report.fits
    assert "stage 0 needs" in report.problems[0] and "over by" in report.problems[0]


def test_zero3_gathers_working_layers() -> None:
    cfg = TrainingConfig(dp=64, seq_len=2048, global_batch=64, zero=ZeroStage.PARAMETERS)
    st = stage_memory_bytes(
        GPT3, get_gpu("A100"), cfg, 0, tuple(range(96)), Recompute.FULL, fragmentation=0.0
    )
    layer = GPT3.layers[0].params.total
    expected = (2 * GPT3.params.total - 2 * GPT3.final_norm_params) / 64 + 2 * 2 * layer
    assert st.weights_gib * 2**30 == pytest.approx(expected, rel=1e-3)


def test_logits_and_embedding_buffers() -> None:
    cfg = TrainingConfig(tp=8, cp=2, seq_len=4096, micro_batch=2, global_batch=2)
    tokens = 2048 * 2
    assert logits_bytes(GPT3, cfg) == pytest.approx(tokens * (6 * 51200 / 8 + 4 * 12288 / 8))
    assert embedding_activation_bytes(GPT3, cfg) == pytest.approx(8 * tokens + tokens * 12288 / 8)


def test_mtp_modules_sit_on_the_last_stage() -> None:
    """DeepSeek-V3's MTP module (Megatron puts it on the last stage): a decoder block like the last
    layer + eh_proj (2h → h) + norms in the LM head's states; one more layer's activations and its
    own logits in the last stage's buffers; nothing on the other stages."""
    from autoparallel.models import load_model

    v3 = load_model("deepseek-ai/DeepSeek-V3")
    plain = v3.model_copy(update={"mtp_layers": 0, "mtp_params": 0})
    cfg = TrainingConfig(pp=16, dp=128, ep=64, seq_len=4096, global_batch=15360, zero=ZeroStage.OPTIMIZER)
    block = layer_state_bytes(v3, v3.layers[-1], cfg)
    h = v3.hidden_size
    eh_proj = (2.0 + 2.0 + 12.0 / 128) * (2 * h * h + 3 * h)  # ZeRO-1 over dp = 128, tp = 1
    extra = lm_head_state_bytes(v3, cfg) - lm_head_state_bytes(plain, cfg)
    assert extra == pytest.approx(block + eh_proj, rel=1e-9)
    act = logits_bytes(v3, cfg) - logits_bytes(plain, cfg)
    layer = layer_activation_bytes(v3, v3.layers[-1], cfg, Recompute.NONE)
    assert act == pytest.approx(layer + 4096 * 8 * h + logits_bytes(plain, cfg))
    gpu = get_gpu("H100")
    for stage in (0, 7):
        idx = tuple(range(4 * stage, 4 * stage + 4))
        a = stage_memory_bytes(v3, gpu, cfg, stage, idx, Recompute.SELECTIVE)
        b = stage_memory_bytes(plain, gpu, cfg, stage, idx, Recompute.SELECTIVE)
        assert a == b


def test_training_below_sm80_runs_unfused_attention_without_context_parallelism() -> None:
    """Transformer Engine (Megatron-Core's attention) has no FlashAttention or cuDNN backend below
    compute capability 8.0 and runs UnfusedDotProductAttention, which keeps the s x s scores and does
    not support context parallelism: on V100 / T4 a layer without recompute keeps more activations
    than on an A100, the planner offers no cp > 1 (rule named), and evaluate refuses it."""
    from autoparallel.cli import main
    from autoparallel.hardware import Cluster
    from autoparallel.models import load_model
    from autoparallel.solvers.training.space import TrainingOptions, build_space
    from autoparallel.workload import Training

    v100, t4, a100 = get_gpu("V100-SXM2-32G"), get_gpu("T4"), get_gpu("A100-80G")
    assert not v100.fused_attention and not t4.fused_attention
    assert a100.fused_attention and get_gpu("MI300X").fused_attention
    assert a100.model_copy(update={"arch": "rubin"}).fused_attention  # an architecture not in the catalog
    model = load_model("meta-llama/Llama-3.1-8B")
    cfg = TrainingConfig(tp=1, seq_len=4096, global_batch=8, micro_batch=1, recompute=Recompute.NONE)
    idx = tuple(range(model.num_layers))
    unfused = stage_memory_bytes(model, v100, cfg, 0, idx, Recompute.NONE)
    fused = stage_memory_bytes(model, v100, cfg, 0, idx, Recompute.NONE, flash_attention=True)
    assert unfused.activations_gib > 1.5 * fused.activations_gib
    cluster = Cluster.parse("8xV100-SXM2-32G")
    work = Training(seq_len=8192, global_batch=64)
    space = build_space(model, cluster, work, TrainingOptions())
    assert {s.cp for s in space.shapes} == {1}
    assert (
        main(
            [
                "evaluate",
                "meta-llama/Llama-3.1-8B",
                "--train",
                "--seq-len",
                "8192",
                "--global-batch",
                "64",
                "--cluster",
                "8xV100-SXM2-32G",
                "--tp",
                "2",
                "--cp",
                "4",
                "--dp",
                "1",
            ]
        )
        == 2
    )
