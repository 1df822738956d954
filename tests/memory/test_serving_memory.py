"""vLLM serving memory: components on hand-computable models, parallel splits, KV layout, version rules."""

from __future__ import annotations

import math

import pytest

from autoparallel.configs import ServingConfig
from autoparallel.errors import InputError
from autoparallel.hardware import get_gpu
from autoparallel.memory.margins import MemoryConfig
from autoparallel.memory.serving import DEFAULT_VLLM_VERSION, serving_memory, vllm_memory
from autoparallel.memory.vllm_config import kv_block_size, resolve_batch_defaults
from autoparallel.memory.vllm_kv import LayerKv, hybrid_block_size
from autoparallel.memory.vllm_profile import capture_sizes, pp_partition, vocab_rows_per_rank
from autoparallel.memory.vllm_versions import parse_vllm_version, rules_for
from autoparallel.models.spec import (
    AttentionKind,
    AttentionSpec,
    LayerSpec,
    MlpKind,
    MlpSpec,
    ModelSpec,
    ParamGroups,
)

GIB = 2**30
H100 = get_gpu("H100")
HIDDEN, HEADS, KV, HEAD_DIM, INTER, VOCAB, MAX_POS = 1024, 8, 2, 128, 4096, 32000, 4096
Q_O = 2 * HIDDEN * HEADS * HEAD_DIM  # q_proj + o_proj
KV_PROJ = 2 * HIDDEN * KV * HEAD_DIM  # k_proj + v_proj
MLP = 3 * HIDDEN * INTER


def _layer(
    kind: AttentionKind = AttentionKind.FULL, window: int | None = None, experts: int = 0
) -> LayerSpec:
    att = AttentionSpec(
        kind=kind,
        num_heads=HEADS,
        num_kv_heads=KV,
        head_dim=HEAD_DIM,
        v_head_dim=HEAD_DIM,
        window_tokens=window,
    )
    if experts:
        mlp = MlpSpec(kind=MlpKind.MOE, intermediate_size=INTER, num_experts=experts, experts_per_token=2)
        params = ParamGroups(
            attention=Q_O + KV_PROJ, routed_experts=experts * MLP, router=experts * HIDDEN, norms=2 * HIDDEN
        )
    else:
        mlp = MlpSpec(kind=MlpKind.DENSE, intermediate_size=INTER)
        params = ParamGroups(attention=Q_O + KV_PROJ, dense_mlp=MLP, norms=2 * HIDDEN)
    return LayerSpec(attention=att, mlp=mlp, params=params)


def _model(
    layers: tuple[LayerSpec, ...] | None = None, *, n: int = 4, tie: bool = False, vocab: int = VOCAB
) -> ModelSpec:
    return ModelSpec(
        name="toy",
        model_type="llama",
        hidden_size=HIDDEN,
        vocab_size=vocab,
        max_position_embeddings=MAX_POS,
        layers=layers or tuple(_layer() for _ in range(n)),
        tie_word_embeddings=tie,
        embedding_params=vocab * HIDDEN,
        lm_head_params=0 if tie else vocab * HIDDEN,
        final_norm_params=HIDDEN,
    )


ROPE = MAX_POS * HEAD_DIM * 2  # cos/sin cache, bf16


# ----- weights ---------------------------------------------------------------------------------------


def test_single_gpu_weights_are_all_parameters_plus_rope_cache() -> None:
    m = _model()
    r = vllm_memory(m, H100, vllm_version="0.19")
    assert r.weights_gib * GIB == pytest.approx(m.total_params * 2 + ROPE)


def test_tp_shards_attention_mlp_and_vocabulary() -> None:
    r = vllm_memory(_model(), H100, tp=2, vllm_version="0.19")
    per_layer = (Q_O + KV_PROJ) / 2 + MLP / 2 + 2 * HIDDEN
    expected = 4 * per_layer + 2 * (VOCAB // 2) * HIDDEN + HIDDEN
    assert r.weights_gib * GIB == pytest.approx(expected * 2 + ROPE)


def test_kv_heads_are_replicated_when_tp_exceeds_them() -> None:
    r = vllm_memory(_model(), H100, tp=4, vllm_version="0.19")
    per_layer = Q_O / 4 + KV_PROJ / 2 + MLP / 4 + 2 * HIDDEN  # 2 KV heads over 4 ranks: one head each
    expected = 4 * per_layer + 2 * (VOCAB // 4) * HIDDEN + HIDDEN
    assert r.weights_gib * GIB == pytest.approx(expected * 2 + ROPE)
    assert r.kv_bytes_per_token_per_gpu == 4 * 1 * 2 * HEAD_DIM * 2  # layers × 1 head × (K+V) × bf16


def test_vocabulary_is_padded_to_64_before_the_tp_split() -> None:
    assert vocab_rows_per_rank(32001, 2) == 32064 // 2
    assert vocab_rows_per_rank(128256, 8) == 128256 // 8


def test_pipeline_partition_follows_vllm_remainder_rule() -> None:
    assert [len(r) for r in pp_partition(62, 4)] == [15, 16, 16, 15]
    assert [len(r) for r in pp_partition(32, 2)] == [16, 16]
    assert [len(r) for r in pp_partition(5, 2)] == [3, 2]
    assert [len(r) for r in pp_partition(8, 2, (3, 5))] == [3, 5]


def test_pipeline_stages_hold_embedding_first_and_head_last_even_when_tied() -> None:
    m = _model(n=4, tie=True)
    r = vllm_memory(m, H100, pp=2, vllm_version="0.19")
    layer = Q_O + KV_PROJ + MLP + 2 * HIDDEN
    first, last = r.stages
    assert first.weights_gib * GIB == pytest.approx((2 * layer + VOCAB * HIDDEN) * 2 + ROPE)
    assert last.weights_gib * GIB == pytest.approx((2 * layer + VOCAB * HIDDEN + HIDDEN) * 2 + ROPE)


def test_experts_are_tp_sliced_or_split_over_ep_ranks() -> None:
    m = _model(tuple(_layer(experts=8) for _ in range(2)))
    sliced = vllm_memory(m, H100, tp=2, vllm_version="0.19")
    split = vllm_memory(m, H100, tp=2, dp=2, enable_expert_parallel=True, vllm_version="0.19")
    assert split.ep == 4
    routed = 8 * MLP
    assert (sliced.weights_gib - split.weights_gib) * GIB == pytest.approx(
        2 * (routed / 2 - routed * 2 / 8) * 2
    )


def test_online_fp8_quantizes_linear_layers_only() -> None:
    m = _model()
    r = vllm_memory(m, H100, quantization="fp8", vllm_version="0.19")
    linear = 4 * (Q_O + KV_PROJ + MLP)
    rest = m.total_params - linear
    assert r.weights_gib * GIB == pytest.approx(linear * 1 + rest * 2 + ROPE)


# ----- KV cache --------------------------------------------------------------------------------------


def test_kv_is_budget_minus_components_and_whole_blocks() -> None:
    r = vllm_memory(_model(), H100, gpu_memory_utilization=0.9, max_model_len=4096, vllm_version="0.19")
    budget = math.ceil(H100.memory_bytes * 0.9)
    kv = budget - (r.weights_gib + r.activation_peak_gib + r.non_torch_gib) * GIB
    assert r.kv_cache_gib * GIB == pytest.approx(kv)
    page = 16 * KV * 2 * HEAD_DIM * 2  # block × heads × (K+V) × bf16
    assert r.num_gpu_blocks == int(kv // (4 * page))
    assert r.kv_cache_tokens == r.num_gpu_blocks * 16
    assert r.max_concurrency == pytest.approx(r.num_gpu_blocks / (4096 / 16))
    assert not r.cuda_graph_in_budget and r.fits


def test_max_num_seqs_above_the_default_token_budget_does_not_start() -> None:
    """vLLM 0.32 leaves the default token budget (2048 on an A100 for `vllm serve`) below a larger
    max_num_seqs given alone, and SchedulerConfig refuses: evaluate said fits for a line that fails."""
    a100 = get_gpu("A100-80G")
    r = vllm_memory(_model(), a100, max_model_len=4096, max_num_seqs=4096)
    assert not r.fits and any("max_num_batched_tokens 2048" in p for p in r.problems)
    ok = vllm_memory(_model(), a100, max_model_len=4096, max_num_seqs=4096, max_num_batched_tokens=4096)
    assert not any("max_num_batched_tokens" in p for p in ok.problems)


def test_cuda_graphs_come_out_of_the_budget_from_0_21_and_vanish_with_eager() -> None:
    old = vllm_memory(_model(), H100, gpu_memory_utilization=0.9, vllm_version="0.19")
    new = vllm_memory(_model(), H100, gpu_memory_utilization=0.9, vllm_version="0.21")
    eager = vllm_memory(_model(), H100, gpu_memory_utilization=0.9, vllm_version="0.21", enforce_eager=True)
    assert new.cuda_graph_in_budget and new.cuda_graph_gib > 0
    assert old.kv_cache_gib - new.kv_cache_gib == pytest.approx(new.cuda_graph_gib, abs=1e-6)
    assert eager.cuda_graph_gib == 0 and eager.kv_cache_gib > new.kv_cache_gib


def test_fp8_kv_cache_halves_the_bytes_per_token() -> None:
    auto = vllm_memory(_model(), H100, vllm_version="0.19")
    fp8 = vllm_memory(_model(), H100, kv_cache_dtype="fp8", vllm_version="0.19")
    assert fp8.kv_bytes_per_token_per_gpu == auto.kv_bytes_per_token_per_gpu / 2
    assert fp8.num_gpu_blocks in (2 * auto.num_gpu_blocks, 2 * auto.num_gpu_blocks + 1)


def test_pipeline_kv_tokens_are_the_minimum_over_stages() -> None:
    r = vllm_memory(_model(n=4), H100, pp=2, vllm_version="0.19")
    assert r.num_gpu_blocks == min(s.num_blocks for s in r.stages)
    assert r.stage == min(range(2), key=lambda s: r.stages[s].num_blocks)
    assert r.stages[1].activation_peak_gib > r.stages[0].activation_peak_gib  # the sampler runs last


def test_sliding_window_layers_get_their_own_groups() -> None:
    pattern = [AttentionKind.SLIDING, AttentionKind.SLIDING, AttentionKind.FULL] * 2
    m = _model(tuple(_layer(k, 512 if k is AttentionKind.SLIDING else None) for k in pattern))
    old = vllm_memory(m, H100, max_model_len=4096, max_num_batched_tokens=2048, vllm_version="0.19")
    new = vllm_memory(m, H100, max_model_len=4096, max_num_batched_tokens=2048, vllm_version="0.32")
    assert old.kv_cache_groups == 3  # 2 full layers set the group size: (full ×2), (sw ×2), (sw ×2)
    page = 16 * KV * 2 * HEAD_DIM * 2
    assert old.num_gpu_blocks == int(old.kv_cache_gib * GIB // (2 * page))
    # A request: full 256 blocks; each sliding group min(511 + in-flight, 4096) tokens + 1 block.
    assert old.max_concurrency == pytest.approx(old.num_gpu_blocks / (256 + 2 * (math.ceil(2559 / 16) + 1)))
    assert old.kv_cache_tokens == old.num_gpu_blocks // 3 * 16  # 0.19 log formula
    assert new.kv_cache_tokens == int(new.max_concurrency * 4096)  # from 0.20 (vLLM PR #38364)
    assert old.kv_bytes_per_token_per_gpu == 2 * KV * 2 * HEAD_DIM * 2  # only the 2 full layers grow


def test_mamba_hybrids_grow_the_attention_block_to_cover_the_state_page() -> None:
    layers = [
        LayerKv(kind="mamba", stage=0, state_bytes=274432),
        LayerKv(kind="full", stage=0, bytes_per_token=1024),
    ]
    assert hybrid_block_size(layers, 16) == 272  # 16 × cdiv(274432, 16 × 1024)
    assert hybrid_block_size(layers[1:], 16) == 16


def test_mla_latent_is_replicated_across_tp_in_the_mla_backends_blocks() -> None:
    att = AttentionSpec(
        kind=AttentionKind.MLA,
        num_heads=16,
        num_kv_heads=16,
        head_dim=192,
        v_head_dim=128,
        kv_lora_rank=512,
        qk_rope_head_dim=64,
        q_lora_rank=0,
    )
    layer = LayerSpec(
        attention=att,
        mlp=MlpSpec(kind=MlpKind.DENSE, intermediate_size=INTER),
        params=ParamGroups(attention=Q_O, dense_mlp=MLP, norms=2 * HIDDEN),
    )
    m = _model((layer, layer))
    for tp in (1, 2, 4):
        r = vllm_memory(m, H100, tp=tp, vllm_version="0.11")
        assert r.kv_bytes_per_token_per_gpu == 2 * (512 + 64) * 2
        assert r.block_size == 64  # FlashMLA
    assert vllm_memory(m, get_gpu("A100"), vllm_version="0.19").block_size == 16
    # 0.32 `_get_backend_priorities`: FlashAttention MLA (MultipleOf(16)) first on Hopper, FlashMLA
    # (64) for an FP8 cache it cannot read; FlashInfer MLA ([32, 64]) first on Blackwell, CUTLASS (128)
    # before 0.15.
    v32, v14 = rules_for(parse_vllm_version("0.32")), rules_for(parse_vllm_version("0.14"))
    assert vllm_memory(m, H100, vllm_version="0.32").block_size == 16
    assert kv_block_size(m, H100, v32, "fp8") == 64
    b200 = get_gpu("B200")
    assert (kv_block_size(m, b200, v32), kv_block_size(m, b200, v14)) == (32, 128)


# ----- activation, non-torch, defaults ----------------------------------------------------------------


def test_sampler_peak_follows_the_version_rule() -> None:
    m = _model(n=1)
    old = vllm_memory(m, H100, max_num_seqs=256, max_num_batched_tokens=256, vllm_version="0.16")
    new = vllm_memory(m, H100, max_num_seqs=256, max_num_batched_tokens=256, vllm_version="0.17")
    hidden = 256 * HIDDEN * 2
    assert old.activation_peak_gib * GIB == pytest.approx(hidden + 9.6 * 256 * VOCAB * 4)
    assert new.activation_peak_gib * GIB == pytest.approx(hidden + 3.72 * 256 * VOCAB * 4)


def test_non_torch_memory_grows_with_tp_over_nvlink_only() -> None:
    one = vllm_memory(_model(), H100, vllm_version="0.19").non_torch_gib
    two = vllm_memory(_model(), H100, tp=2, vllm_version="0.19").non_torch_gib
    four = vllm_memory(_model(), H100, tp=4, vllm_version="0.19").non_torch_gib
    pcie = vllm_memory(_model(), get_gpu("RTX-4090"), tp=2, vllm_version="0.19").non_torch_gib
    assert one == pytest.approx(0.25) and two == pytest.approx(2.08) and four > two
    assert pcie == pytest.approx(0.40)


def test_batch_defaults_follow_the_gpu_and_release() -> None:
    v19, v0 = rules_for(parse_vllm_version("0.19")), rules_for(parse_vllm_version("0.6.4"))
    assert resolve_batch_defaults(v19, H100, 8192, None, None) == (1024, 8192)
    assert resolve_batch_defaults(v19, get_gpu("A100"), 8192, None, None) == (256, 2048)
    assert resolve_batch_defaults(v19, H100, 8192, None, None, "offline") == (1024, 16384)
    assert resolve_batch_defaults(v0, H100, 20000, None, None) == (256, 20000)
    assert resolve_batch_defaults(v0, H100, 65536, None, None) == (256, 2048)
    assert capture_sizes(256, 8192, blackwell=False)[-1] == 512 and len(capture_sizes(256, 8192, False)) == 51


# ----- versions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "engine"),
    [
        ("0.19.0 (V1)", (0, 19, 0), "v1"),
        ("0.8.3rc2.dev224 (V0)", (0, 8, 3), "v0"),
        ("main ~0.6.5 (2024-12-13)", (0, 6, 5), "v0"),
        (">=0.21 (2026-05)", (0, 21, 0), "v1"),
        ("V1 engine ~0.8.5 (2025-04-24)", (0, 8, 5), "v1"),
        ("0.6.4.dev0", (0, 6, 4), "v0"),
    ],
)
def test_version_strings_parse(text: str, key: tuple[int, int, int], engine: str) -> None:
    v = parse_vllm_version(text)
    assert v.key == key and v.engine == engine


def test_release_rules() -> None:
    r19, r21, r32 = (rules_for(parse_vllm_version(v)) for v in ("0.19", "0.21", DEFAULT_VLLM_VERSION))
    assert r19.default_gpu_memory_utilization == 0.90 and r32.default_gpu_memory_utilization == 0.92
    assert not r19.subtracts_cuda_graphs and r21.subtracts_cuda_graphs
    assert r19.tokens_report == "groups_min_block" and r32.tokens_report == "concurrency"
    assert not rules_for(parse_vllm_version("0.8.2")).hybrid_kv_allocator
    with pytest.raises(InputError):
        parse_vllm_version("latest")


def test_a_release_written_with_a_leading_v_is_not_the_v0_engine() -> None:
    """ "v0.13.0" is release 0.13.0 (V1 engine); only a standalone "V0" / "V1" names the engine."""
    assert parse_vllm_version("v0.13.0").engine == "v1"
    assert parse_vllm_version("v0.13.0").key == (0, 13, 0)
    assert parse_vllm_version("V0.8.5").engine == "v1"
    assert parse_vllm_version("v0.6.4").engine == "v0"  # before 0.8 by its number
    assert parse_vllm_version("V0 ~0.7.2 (2025-02)").engine == "v0"
    assert parse_vllm_version("0.8.3rc2.dev224 (V0)").engine == "v0"
    assert parse_vllm_version("V1 ~0.7.1").engine == "v1"


# ----- cannot start, inputs ---------------------------------------------------------------------------


def test_weights_beyond_the_budget_say_so_and_suggest_a_fix() -> None:
    big = _model(vocab=6_000_000)  # 2 × 6M × 1024 × 2 bytes = 23 GiB of embedding and LM head
    r = vllm_memory(big, get_gpu("L4"), max_num_seqs=8, vllm_version="0.19")
    assert not r.fits
    assert r.problems[0].startswith("model weights take") and "budget gpu_memory_utilization" in r.problems[0]
    assert r.problems[-1].startswith("fix: use --tensor-parallel-size")


def test_one_request_that_does_not_fit_reports_the_estimated_length_and_fixes() -> None:
    m = _model(n=16).model_copy(update={"max_position_embeddings": 1 << 23})
    r = vllm_memory(m, H100, max_model_len=1 << 23, vllm_version="0.19")  # 16 KiB/token × 8M = 128 GiB
    assert not r.fits
    assert "estimated maximum model length is" in r.problems[0]
    assert "--max-model-len" in r.problems[-1]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tp": 3},
        {"max_model_len": MAX_POS + 1},
        {"kv_cache_dtype": "int3"},
        {"quantization": "gptq"},
        {"enable_expert_parallel": True},
        {"gpu_memory_utilization": 1.5},
        {"dtype": "int8"},
        {"pp": 0},
    ],
)
def test_bad_input_raises_input_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(InputError):
        vllm_memory(_model(), H100, **kwargs)  # type: ignore[arg-type]


def test_serving_config_and_report_dict() -> None:
    m = _model()
    cfg = ServingConfig(tp=2, max_model_len=4096, gpu_memory_utilization=0.9, kv_cache_dtype="fp8")
    r = serving_memory(m, H100, cfg)
    assert r == vllm_memory(
        m, H100, tp=2, max_model_len=4096, max_num_seqs=256, gpu_memory_utilization=0.9, kv_cache_dtype="fp8"
    )
    d = r.to_dict()
    for key in (
        "weights_gib",
        "activation_peak_gib",
        "non_torch_gib",
        "cuda_graph_gib",
        "kv_cache_gib",
        "kv_cache_tokens",
        "max_concurrency",
        "block_size",
        "num_gpu_blocks",
        "stage",
        "fits",
        "problems",
    ):
        assert key in d
    assert isinstance(d["stages"], list) and d["vllm_version"].startswith("0.32")


def test_margins_usable_bytes() -> None:
    cfg = MemoryConfig()
    assert cfg.usable_bytes(H100) == int(H100.memory_bytes * 0.85 * 0.95)
    assert cfg.with_fragmentation(100.0) == pytest.approx(110.0)
    with pytest.raises(ValueError):
        MemoryConfig(utilization=1.5)


def test_auto_dtype_resolves_as_vllm_does_on_the_gpu() -> None:
    """vLLM 0.32 `_resolve_auto_dtype`: a float32 checkpoint is cast down to 16 bits, and a model it
    refuses in float16 (Gemma 2/3, GLM-4) runs in float32 on a GPU without bfloat16."""
    from autoparallel.models import load_model

    gemma, t4, a100 = load_model("google/gemma-2-2b-it"), get_gpu("T4"), get_gpu("A100")
    on_t4 = vllm_memory(gemma, t4, max_model_len=2048)
    on_a100 = vllm_memory(gemma, a100, max_model_len=2048)
    assert on_t4.weights_gib == pytest.approx(2 * on_a100.weights_gib, rel=0.01)
    assert on_t4.kv_bytes_per_token_per_gpu == 2 * on_a100.kv_bytes_per_token_per_gpu
    llama = load_model("meta-llama/Llama-3.2-1B")  # bfloat16: float16 on a T4, same bytes
    assert vllm_memory(llama, t4, max_model_len=2048).weights_gib == pytest.approx(
        vllm_memory(llama, a100, max_model_len=2048).weights_gib
    )
    fp32 = llama.model_copy(update={"dtype_bytes": 4})
    assert vllm_memory(fp32, a100, max_model_len=2048).weights_gib == pytest.approx(
        vllm_memory(llama, a100, max_model_len=2048).weights_gib
    )
    with pytest.raises(InputError, match="does not run model type 'gemma2' in float16"):
        vllm_memory(gemma, a100, dtype="float16")
    with pytest.raises(InputError, match="T4 has no bfloat16"):
        vllm_memory(llama, t4, dtype="bfloat16")
    # float32 activations: no quantized weights (fp8's kernels take 16-bit activations only).
    with pytest.raises(InputError, match=r"in float32 .* take 16-bit activations only"):
        vllm_memory(gemma, t4, quantization="fp8")
    assert vllm_memory(gemma, a100, quantization="fp8", max_model_len=2048).fits
    from autoparallel.perf.engine_support import engine_runtime_problem

    assert "float32" in (engine_runtime_problem("vllm", "fp8", "auto", gemma, t4) or "")
    assert engine_runtime_problem("vllm", None, "auto", gemma, t4) is None


def test_the_planner_prices_gemma_on_a_t4_in_float32() -> None:
    """The CP-SAT tables and the step model load the model as the float memory model does."""
    import autoparallel as ap

    with pytest.raises(ap.InfeasibleError, match="memory"):
        ap.solve("google/gemma-3-4b-it", "1xT4", workload="chatbot")  # 16 GiB of float32 weights
    plan = ap.solve("google/gemma-3-4b-it", "2xT4", workload="chatbot")
    assert plan.config.tp * plan.config.pp == 2
    assert plan.memory.weights_gib > 7.5  # half of 16 GiB per GPU, where bfloat16 would be 4
    # Where the KV cache binds, the tables' float32 cache agrees with the float model's (the decoder
    # re-evaluates the plan and raises on any disagreement).
    plan = ap.solve("google/gemma-3-12b-it", "4xV100-SXM2-32G", workload="chatbot")
    assert plan.memory.kv_bytes_per_token_per_gpu % 4 == 0 and plan.solver.status == "OPTIMAL"


@pytest.mark.parametrize("name", ["deepseek-ai/DeepSeek-V3", "google/gemma-2-9b", "Qwen/Qwen3-30B-A3B"])
def test_a_stage_counts_its_layers_by_kind_exactly_as_one_by_one(name: str) -> None:
    """`_stage_params` sums each distinct layer spec once, times its count (a 4,096-layer config spent 6
    s adding 121,000 per-layer counts): the same integers as adding the layers one by one."""
    from autoparallel.memory.vllm_profile import _stage_params, layer_params_per_rank
    from autoparallel.models import load_model

    model = load_model(name)
    for tp, ep, pp in ((1, 1, 1), (2, 1, 3), (4, 8, 2), (8, 16, 4)):
        for stage, layers in enumerate(pp_partition(len(model.layers), pp)):
            one_by_one = ParamGroups()
            for i in layers:
                one_by_one = one_by_one + layer_params_per_rank(model.layers[i], model.hidden_size, tp, ep)
            got = _stage_params(model, layers, stage, pp, tp, ep)
            extra = got.total - one_by_one.total  # the embedding, LM head and final norm of end stages
            assert got.attention == one_by_one.attention and got.routed_experts == one_by_one.routed_experts
            assert got.dense_mlp == one_by_one.dense_mlp and got.shared_experts == one_by_one.shared_experts
            assert got.router == one_by_one.router
            assert extra == 0 or stage in (0, pp - 1)


def test_a_release_is_one_rules_object_so_the_kv_groups_are_built_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`vllm_kv.build_groups` is memoized by the rules object, and `rules_for` built a new one at every
    call: every memory report rebuilt its KV groups (50,000 times in the serving oracle's 300
    instances). A 32x8xH100 + 32x8xH200 fleet of four large models with --engine auto took 30-38 s of
    tables, now 24-26 s."""
    from autoparallel.memory import vllm_kv
    from autoparallel.models import load_model

    assert rules_for(parse_vllm_version("0.32")) is rules_for(parse_vllm_version("0.32.0"))
    built: list[int] = []
    real = vllm_kv._build_groups
    monkeypatch.setattr(vllm_kv, "_build_groups", lambda *a: built.append(1) or real(*a))
    spec = load_model("google/gemma-2-9b")  # sliding and full layers: two kinds of group
    for seqs in (64, 128, 256):
        vllm_memory(spec, get_gpu("H100"), tp=1, max_num_seqs=seqs, max_model_len=4096)
    assert len(built) <= 1


def test_hybrid_requests_hold_two_state_pages_once_prefix_caching_is_their_default() -> None:
    """vLLM 0.28 turns prefix caching on for hybrid models (PR #50991), `MambaModelConfig` then sets
    `mamba_cache_mode` align, and `MambaSpec.max_memory_usage_bytes` counts 2 state pages a request:
    Qwen3-Next at TP 4 and 4,096 tokens takes 16 attention blocks + 2 × 3 linear-attention groups,
    434.91 requests where 0.27's one page a group gave 503.58."""
    from autoparallel.models import load_model

    model = load_model("Qwen/Qwen3-Next-80B-A3B-Instruct")
    new, old = (vllm_memory(model, H100, tp=4, max_model_len=4096, vllm_version=v) for v in ("0.32", "0.27"))
    assert new.num_gpu_blocks == old.num_gpu_blocks
    assert new.max_concurrency == pytest.approx(new.num_gpu_blocks / (16 + 2 * 3))
    assert old.max_concurrency == pytest.approx(old.num_gpu_blocks / (16 + 3))
    assert round(new.max_concurrency, 2) == 436.32  # RoPE cache at partial_rotary_factor 0.25: 32 MiB


def test_a_longrope_model_is_served_at_its_original_length_without_max_model_len() -> None:
    """vLLM 0.32 `_get_and_verify_max_len`: a LongRoPE config (Phi-3.5-mini) starts at
    `original_max_position_embeddings` (4096) when --max-model-len is not given; it said 131,072."""
    m = _model().model_copy(update={"max_position_embeddings": 131072, "default_max_model_len": 4096})
    assert vllm_memory(m, H100).max_model_len == 4096
    assert vllm_memory(m, H100, max_model_len=32768).max_model_len == 32768  # the limit stays 131072


def test_mxfp4_experts_are_padded_to_the_moe_backends_tile() -> None:
    """vLLM 0.32 `mxfp4_round_up_hidden_size_and_intermediate_size` for the backend it picks for gpt-oss:
    Marlin (A100) and FlashInfer TRT-LLM (B200) round the per-rank expert width to 128 and the hidden
    size to 256 (2880 x 2880 -> 2944 x 3072); the Hopper Triton kernels round the width to 64 (720 ->
    768 at tp=4, 2880 unchanged at tp=1). Reference row V016 (gpt-oss-20b, A100) logs 13.72 GiB."""
    from autoparallel.memory.vllm_profile import stage_params_per_rank, vllm_mxfp4_alignment
    from autoparallel.models import load_model

    m = load_model("openai/gpt-oss-20b")
    a100, b200, mi300 = (get_gpu(g) for g in ("A100-SXM-80G", "B200", "MI300X"))
    assert [vllm_mxfp4_alignment(g) for g in (a100, b200, H100, mi300)] == [(128, 256)] * 2 + [
        (64, 1),
        (256, 256),
    ]

    def routed(tp: int, gpu: object, ep: int = 1) -> float:
        align = vllm_mxfp4_alignment(gpu)  # type: ignore[arg-type]
        return stage_params_per_rank(m, range(m.num_layers), 0, 1, tp, ep, mxfp4_align=align).routed_experts

    plain = m.params.routed_experts
    assert routed(1, a100) == pytest.approx(plain * 2944 * 3072 / 2880**2, rel=1e-6)
    assert routed(1, H100) == pytest.approx(plain, rel=1e-6)
    assert routed(4, H100) == pytest.approx(plain / 4 * 768 / 720, rel=1e-6)
    assert routed(1, a100, ep=4) == pytest.approx(plain / 4 * 2944 * 3072 / 2880**2, rel=1e-6)
    weights = m.weight_bytes(
        stage_params_per_rank(m, range(m.num_layers), 0, 1, 1, 1, mxfp4_align=(128, 256))
    )
    assert 13.6 < weights / GIB < 13.72
    # Other formats keep the checkpoint's shapes.
    dense = load_model("Qwen/Qwen3-30B-A3B")
    full = range(dense.num_layers)
    assert stage_params_per_rank(dense, full, 0, 1, 1, 1, mxfp4_align=(128, 256)) == stage_params_per_rank(
        dense, full, 0, 1, 1, 1
    )
