"""DeepSeek Sparse Attention: V3.2's indexer in the spec, and its kernels' cost in the step model."""

from __future__ import annotations

import pytest

from autoparallel.configs import ServingConfig
from autoparallel.errors import InputError
from autoparallel.hardware import Cluster, get_gpu
from autoparallel.models import load_model
from autoparallel.perf.serving_load import run_benchmark
from autoparallel.perf.serving_steps import ReplicaShape, vllm_dense_short_prefill
from autoparallel.perf.sparse_attention import SparseKernels, sparse_attention_cost, sparse_kernels
from autoparallel.workload import Serving

V32 = "deepseek-ai/DeepSeek-V3.2"
LAYERS = 61
# One query token in one layer as FlashMLA's sparse kernels run it on a rank of TP8: all 2,048 top-k
# slots, a 576-wide score and a 512-wide value product per slot and head; the prefill kernel pads 16
# heads to its 64-head tile, the FP8 decode kernel to its cluster of two 64-head CTAs (128).
KERNEL_FLOPS_TP8 = 2 * 64 * 2048 * (576 + 512)
DECODE_KERNEL_FLOPS_TP8 = 2 * 128 * 2048 * (576 + 512)
KERNEL_FLOPS_TP1 = 2 * 128 * 2048 * (576 + 512)
INDEXER_FLOPS_PER_CONTEXT_TOKEN = 2 * 64 * 128


def test_v32_is_v3_plus_the_indexer() -> None:
    v32, v3 = load_model(V32), load_model("deepseek-ai/DeepSeek-V3")
    # wq_b 1536 x 64 x 128, wk 7168 x 128, k_norm weight + bias, weights_proj 7168 x 64: per layer,
    # on the 61 decoder layers and the MTP layer's block.
    per_layer = 1536 * 64 * 128 + 7168 * 128 + 2 * 128 + 7168 * 64
    assert per_layer == 13_959_424
    assert v32.total_params - v3.total_params == per_layer * (LAYERS + 1)
    att = v32.layers[10].attention
    assert (att.sparse_topk, att.indexer_heads, att.indexer_head_dim) == (2048, 64, 128)
    # The indexer's FP8 key and its fp32 scale ride beside the latent, whatever the KV dtype.
    assert att.indexer_key_bytes_per_token == 132
    assert v32.kv_bytes_per_token(2.0) == v3.kv_bytes_per_token(2.0) + LAYERS * 132
    # An FP8 cache is FlashMLA's layout: 512 FP8 + 4 fp32 scales + 64 BF16 RoPE = 656 B, not 576.
    assert v32.kv_bytes_per_token(1.0) == LAYERS * (656 + 132)
    assert att.kv_bytes_per_token_per_rank(8, 1.0) == 656 + 132
    assert v3.kv_bytes_per_token(1.0) == LAYERS * 576  # dense MLA keeps the plain FP8 latent


def test_v32_model_flops_attend_to_the_top_k_only() -> None:
    v32, v3 = load_model(V32), load_model("deepseek-ai/DeepSeek-V3")
    params = v32.forward_flops_per_token(0)
    per_ctx = 2 * 128 * (192 + 128)
    short, long = 1_000, 100_000
    assert v32.forward_flops_per_token(short) - params == pytest.approx(
        LAYERS * (per_ctx + INDEXER_FLOPS_PER_CONTEXT_TOKEN) * short
    )
    assert v32.forward_flops_per_token(long) - params == pytest.approx(
        LAYERS * (per_ctx * 2048 + INDEXER_FLOPS_PER_CONTEXT_TOKEN * long)
    )
    # Far below dense MLA at a long context.
    assert v32.forward_flops_per_token(long) < 0.4 * v3.forward_flops_per_token(long)


def _cost(
    engine: str, tp: int, kv: str = "auto", nsa: tuple[str | None, str | None] = (None, None), **kw: float
) -> float:
    base = dict(decode_seqs=0.0, context_tokens=0.0, prefill_tokens=0.0, prefill_context=0.0)
    base.update(kw)
    gpu = get_gpu("H100")
    kernels = sparse_kernels(load_model(V32), engine, tp, gpu, kv, nsa)
    return sparse_attention_cost(
        load_model(V32), gpu, kernels, tp, attention_fraction=0.45, hbm_bytes_per_s=HBM, **base
    ).seconds


HBM = 3.0e12


def test_vllm_tp8_runs_every_token_through_the_padded_decode_kernel() -> None:
    """Below 32 heads per rank, vLLM's mixed batch runs prompt and decode tokens alike through the FP8
    decode kernel (410 TFLOPS on H800): 16 heads padded to 128 (the kernel launches
    `ceil_div(h_q, 2*64) * 2` CTAs in clusters of 2, FlashMLA 2025-09 / vLLM's fork at 46d64a8),
    2,048 slots even over a 200-token prompt."""
    indexer = INDEXER_FLOPS_PER_CONTEXT_TOKEN * 200 / (get_gpu("H100").bf16_tflops * 1e12 * 0.45)
    expected = LAYERS * (DECODE_KERNEL_FLOPS_TP8 / 410e12 + indexer)
    assert _cost("vllm", 8, decode_seqs=1, context_tokens=200) == pytest.approx(expected)
    assert _cost("vllm", 8, prefill_tokens=1, prefill_context=200) == pytest.approx(expected)
    # The kernel part does not shrink with the context: only the indexer's scores do.
    assert (
        _cost("vllm", 8, decode_seqs=1, context_tokens=20) > 0.99 * LAYERS * DECODE_KERNEL_FLOPS_TP8 / 410e12
    )
    # Eight and sixteen heads per rank cost the same 128-head cluster; 128 heads (TP1) too.
    assert _cost("vllm", 16, decode_seqs=1, context_tokens=20) == pytest.approx(
        _cost("vllm", 8, decode_seqs=1, context_tokens=20), rel=0.01
    )


def test_vllm_with_all_heads_on_a_rank_prefills_with_the_bf16_kernel() -> None:
    """Attention data parallel (128 heads per rank): prompt tokens at the prefill kernel's 640 TFLOPS,
    decode tokens at the decode kernel's 410."""
    prefill = _cost("vllm", 1, prefill_tokens=1000, prefill_context=0)
    decode = _cost("vllm", 1, decode_seqs=1000, context_tokens=0)
    assert prefill == pytest.approx(1000 * LAYERS * KERNEL_FLOPS_TP1 / 640e12)
    assert decode == pytest.approx(1000 * LAYERS * KERNEL_FLOPS_TP1 / 410e12)


def test_sglang_decodes_over_the_valid_slots_only() -> None:
    """SGLang's default Hopper decode backend (FA3 over the selected pages) reads only the valid slots,
    so a short context decodes cheaper than FlashMLA's padded kernel; its prefill is FlashMLA's."""
    short = _cost("sglang", 8, decode_seqs=100, context_tokens=200)
    assert short < 0.1 * _cost("vllm", 8, decode_seqs=100, context_tokens=200)
    indexer_rate = get_gpu("H100").bf16_tflops * 1e12 * 0.45
    assert _cost("sglang", 8, decode_seqs=100, context_tokens=4000) == pytest.approx(
        _cost("sglang", 8, decode_seqs=100, context_tokens=2048)
        + 100 * LAYERS * INDEXER_FLOPS_PER_CONTEXT_TOKEN * (4000 - 2048) / indexer_rate
    )
    assert _cost("sglang", 8, prefill_tokens=1, prefill_context=0) == pytest.approx(
        LAYERS * KERNEL_FLOPS_TP8 / 640e12
    )


def test_sparse_attention_slows_a_v32_prefill_step_against_v3() -> None:
    """The step model charges the kernels: an 8k-token TP8 prefill step of V3.2 is slower than V3's."""
    from autoparallel.hardware import Cluster
    from autoparallel.perf.serving_steps import ReplicaShape, stage_step_s

    cluster = Cluster.parse("1x8xH100")
    shape = ReplicaShape(
        tp=8, pp=1, ep_ranks=1, quantization=None, kv_cache_dtype="auto", enforce_eager=False
    )
    kw = dict(decode_seqs=0.0, context_tokens=0.0, prefill_tokens=8192.0, prefill_context=200.0)
    v32, _ = stage_step_s(load_model(V32), cluster, shape, **kw)
    v3, _ = stage_step_s(load_model("deepseek-ai/DeepSeek-V3"), cluster, shape, **kw)
    kernel_s = 8192 * LAYERS * DECODE_KERNEL_FLOPS_TP8 / 410e12  # vLLM at TP8: the decode kernel
    assert v32 - v3 == pytest.approx(kernel_s, rel=0.1)


def test_sglang_backends_follow_the_kv_dtype_and_the_gpu() -> None:
    """SGLang 0.5.6's defaults for DeepSeek NSA: a BF16 cache (auto on Hopper) prefills with FlashMLA's
    sparse kernel and decodes with FA3; an FP8 cache (auto on Blackwell) decodes with FlashMLA's FP8
    kernel; flashmla_kv over a BF16 cache quantizes the pool each step. Whatever the flags, a prompt
    step within the top-k runs as dense MHA on SM90 and SM100 over a BF16 or FP8 E4M3 pool
    (`set_nsa_prefill_impl`)."""
    h100, b200, a100, v32 = get_gpu("H100"), get_gpu("B200"), get_gpu("A100"), load_model(V32)
    mha = {"short_prefill_mha": True}
    assert sparse_kernels(v32, "sglang", 8, h100, "auto") == SparseKernels("flashmla_sparse", "fa3", **mha)
    assert sparse_kernels(v32, "sglang", 8, h100, "fp8") == SparseKernels(
        "flashmla_sparse", "flashmla_kv", **mha
    )
    assert sparse_kernels(v32, "sglang", 8, b200, "auto") == SparseKernels(
        "flashmla_sparse", "flashmla_kv", **mha
    )
    assert sparse_kernels(v32, "sglang", 8, h100, "auto", (None, "flashmla_kv")) == SparseKernels(
        "flashmla_sparse", "flashmla_kv", quantizes_pool=True, short_prefill_mha=True
    )
    assert sparse_kernels(v32, "sglang", 8, h100, "auto", ("fa3", "fa3")) == SparseKernels(
        "fa3", "fa3", **mha
    )
    assert not sparse_kernels(v32, "sglang", 8, h100, "fp8_e5m2").short_prefill_mha
    assert not sparse_kernels(v32, "sglang", 8, a100, "auto").short_prefill_mha
    # vLLM and TensorRT-LLM take no NSA flags; vLLM's rule is the heads per rank, and its release
    # says whether short prompt steps run as dense MHA.
    assert sparse_kernels(v32, "vllm", 8, h100, "auto") == SparseKernels("flashmla_kv", "flashmla_kv")
    assert sparse_kernels(v32, "vllm", 1, h100, "auto") == SparseKernels("flashmla_sparse", "flashmla_kv")
    assert sparse_kernels(v32, "vllm", 8, h100, "auto", vllm_dense_short_prefill=True) == SparseKernels(
        "flashmla_kv", "flashmla_kv", **mha
    )
    # TensorRT-LLM on Hopper runs context and generation through the BF16 sparse kernel
    # (forward_sparse_mla_kvcache_bf16); from SM100 its own kernels, charged as prefill / decode.
    assert sparse_kernels(v32, "trtllm", 8, h100, "auto") == SparseKernels(
        "flashmla_sparse", "flashmla_sparse"
    )
    assert sparse_kernels(v32, "trtllm", 8, b200, "auto") == SparseKernels("flashmla_sparse", "flashmla_kv")
    with pytest.raises(InputError, match="prices"):
        sparse_kernels(v32, "sglang", 8, h100, "auto", ("tilelang", None))
    with pytest.raises(InputError, match="prefill only"):
        sparse_kernels(v32, "sglang", 8, h100, "auto", (None, "flashmla_auto"))


def test_sglang_flashmla_kv_over_a_bf16_cache_pays_for_the_whole_pool() -> None:
    """`_forward_flashmla_kv` quantizes the layer's whole BF16 buffer (576 x 2 bytes read, 656 written
    per token) at every decode step: the cost grows with the pool, not with the batch, and is absent
    over an FP8 cache or in a step without decode tokens."""
    kernel = 1 * LAYERS * DECODE_KERNEL_FLOPS_TP8 / 410e12
    decode = dict(decode_seqs=1.0, context_tokens=0.0)
    for pool in (100_000, 400_000):
        quantized = _cost("sglang", 8, "auto", (None, "flashmla_kv"), kv_pool_tokens=pool, **decode)
        assert quantized == pytest.approx(kernel + LAYERS * pool * (1152 + 656) / HBM)
    assert _cost("sglang", 8, "fp8", kv_pool_tokens=400_000, **decode) == pytest.approx(kernel)
    prefill_only = _cost(
        "sglang", 8, "auto", (None, "flashmla_kv"), kv_pool_tokens=400_000, prefill_tokens=1.0
    )
    assert prefill_only == pytest.approx(LAYERS * KERNEL_FLOPS_TP8 / 640e12)


def test_sglang_fa3_prefill_reads_only_the_valid_slots() -> None:
    """`--nsa-prefill-backend fa3`: a 200-token prompt costs its own context, not 2,048 padded slots."""
    fa3 = _cost("sglang", 8, "auto", ("fa3", None), prefill_tokens=1000.0, prefill_context=200.0)
    flashmla = _cost("sglang", 8, "auto", prefill_tokens=1000.0, prefill_context=200.0)
    assert fa3 < 0.2 * flashmla


def test_sglang_prices_v32_auto_cache_on_blackwell_as_fp8() -> None:
    """SGLang stores DeepSeek-V3.2's `auto` cache as fp8_e4m3 on Blackwell and BF16 on Hopper, so the
    B200 pool under `auto` is the FP8 pool (656 + 132 bytes per token and layer), the H200 one BF16."""
    from autoparallel.configs import ServingConfig
    from autoparallel.hardware import Cluster
    from autoparallel.perf.serving_engines import engine_kv_for

    v32 = load_model(V32)
    tokens = {}
    for gpu in ("B200", "H200"):
        for kv in ("auto", "fp8", "bfloat16"):
            config = ServingConfig(tp=8, max_model_len=32768, kv_cache_dtype=kv)
            pool, _ = engine_kv_for("sglang", v32, Cluster.parse(f"1x8x{gpu}"), config)
            tokens[gpu, kv] = pool.kv_cache_tokens
    assert tokens["B200", "auto"] == tokens["B200", "fp8"] > 1.5 * tokens["B200", "bfloat16"]
    assert tokens["H200", "auto"] == tokens["H200", "bfloat16"] < tokens["H200", "fp8"]


def test_a_prompt_step_within_the_top_k_runs_as_dense_mha_where_the_engine_does() -> None:
    """SGLang 0.5.6 (`set_nsa_prefill_impl`) and vLLM from PR #47327 (`_use_dense_mha_prefill`) run a
    prompt step whose longest sequence fits the 2,048 top-k slots as dense MHA over the prompts' own
    tokens, skipping the indexer's scoring: the ordinary attention roofline, 2 x 128 heads x (192 +
    128) FLOPs per attended token. One sequence past the top-k sends the whole step back to the
    sparse kernels, and so does a step whose longest sequence is not known."""
    h100, v32 = get_gpu("H100"), load_model(V32)
    peak = h100.bf16_tflops * 1e12 * 0.45
    step = dict(decode_seqs=0.0, context_tokens=0.0, prefill_tokens=4096.0, prefill_context=100.0)

    def seconds(kernels: SparseKernels, longest: float | None) -> float:
        return sparse_attention_cost(
            v32, h100, kernels, 8, attention_fraction=0.45, prefill_longest=longest, **step
        ).seconds

    for engine, flag in (("sglang", False), ("vllm", True)):
        kernels = sparse_kernels(v32, engine, 8, h100, "auto", vllm_dense_short_prefill=flag)
        dense = 4096 * LAYERS * 2 * 128 * (192 + 128) * 100 / 8 / peak
        assert seconds(kernels, 200.0) == pytest.approx(dense)
        assert seconds(kernels, 2048.0) == pytest.approx(dense)
        assert seconds(kernels, 2049.0) == seconds(kernels, None) > 20 * dense
    # A vLLM release before the rule prices the sparse kernels whatever the prompts.
    old = sparse_kernels(v32, "vllm", 8, h100, "auto")
    assert seconds(old, 200.0) == seconds(old, None)


def test_the_vllm_release_decides_the_short_prompt_kernel() -> None:
    """PR #47327 merged on 2026-07-01; 0.26 is the first release certain to hold it."""
    assert not vllm_dense_short_prefill("v0.13.0")
    assert not vllm_dense_short_prefill("0.25.0")
    assert vllm_dense_short_prefill("0.26.0") and vllm_dense_short_prefill("0.32")
    assert ReplicaShape.of(ServingConfig(tp=8), "0.13").dense_short_prefill is False
    assert ReplicaShape.of(ServingConfig(tp=8)).dense_short_prefill is True


def test_the_replay_prices_a_v32_burst_with_its_release_s_prompt_kernels() -> None:
    """DeepSeek-V3.2 at TP8 on 8 x H200, 200 prompts of 200 tokens at once: on vLLM 0.13 every prompt
    token pays the padded decode kernel over 2,048 slots (about 84 us a token on every rank); on 0.32
    the prompt steps run as dense MHA, so the prompts are taken in several times faster. Prompts past
    the top-k keep the sparse kernels on both."""
    v32, gpu = load_model(V32), get_gpu("H200")
    cluster = Cluster.from_shape(nodes=1, gpus_per_node=8, gpu=gpu)
    config = ServingConfig(tp=8, max_num_seqs=256, max_model_len=8192)

    def ttft_ms(version: str, isl: int) -> float:
        workload = Serving(isl=isl, osl=8, num_prompts=200)
        return run_benchmark(v32, cluster, config, workload, vllm_version=version).mean_ttft_ms

    assert ttft_ms("0.32", 200) < ttft_ms("0.13", 200) / 3
    assert ttft_ms("0.32", 3000) == pytest.approx(ttft_ms("0.13", 3000), rel=0.05)


def test_the_steady_state_prices_v32_by_its_vllm_release() -> None:
    """`evaluate_serving` (the float model the planner's decoder and oracle use) and the planner's
    tables build the step shape with the release's rules: DeepSeek-V3.2 at TP8 on 8 x H200 with
    1,024-token prompts costs the sparse prompt kernels on vLLM 0.25, dense MHA on 0.26."""
    from autoparallel.perf.serving import evaluate_serving

    v32, gpu = load_model(V32), get_gpu("H200")
    cluster = Cluster.from_shape(nodes=1, gpus_per_node=8, gpu=gpu)
    config = ServingConfig(tp=8, max_num_seqs=256, max_model_len=2048, gpu_memory_utilization=0.92)
    workload = Serving(isl=1024, osl=256)
    old, new = (
        evaluate_serving(v32, cluster, config, workload, vllm_version=v).perf for v in ("0.25", "0.26")
    )
    assert new.tpot_ms < old.tpot_ms / 2
    assert new.output_tokens_per_s > 2 * old.output_tokens_per_s
