"""SGLang's and TensorRT-LLM's KV-pool rules (memory/sglang.py, memory/trtllm.py)."""

from __future__ import annotations

import pytest

from autoparallel.configs import ServingConfig
from autoparallel.hardware import get_gpu
from autoparallel.memory.serving import serving_memory
from autoparallel.memory.sglang import (
    aiter_fraction_scale,
    default_mem_fraction_static,
    page_size,
    profiled_cell_ratio,
    sglang_defaults,
    sglang_kv,
    sglang_server_kv,
)
from autoparallel.memory.trtllm import TOKENS_PER_BLOCK, trtllm_kv
from autoparallel.models import load_model

H100 = get_gpu("H100-SXM")


def test_sglang_defaults_follow_gpu_memory() -> None:
    # 24 GB (L4, A10): SGLang 0.5.6's "A10, 4090, 5090" branch
    assert sglang_defaults(get_gpu("L4"), 1) == (2048, 24)
    assert sglang_defaults(get_gpu("A10"), 4) == (2048, 80)
    assert sglang_defaults(H100, 1) == (8192, 256)
    assert sglang_defaults(H100, 8) == (8192, 512)
    # 80 GB: reserved = max(512 + 1.5·8192 + 1024/8 + 2·256, 10 GiB) = 13440 MiB
    mem = H100.memory_bytes / 2**20
    assert default_mem_fraction_static(H100, tp=1) == pytest.approx(round((mem - 13440) / mem, 3))
    # more GPUs per replica and DP attention reserve more
    assert default_mem_fraction_static(H100, tp=8) < default_mem_fraction_static(H100, tp=1)
    dp_attention = default_mem_fraction_static(H100, tp=8, dp_attention_size=8)
    assert dp_attention < default_mem_fraction_static(H100, tp=8)


def test_sglang_pool_is_static_fraction_minus_weights() -> None:
    model = load_model("Qwen/Qwen3-8B")
    mem = serving_memory(model, H100, ServingConfig(max_model_len=4096))
    kv = sglang_kv(mem, H100, context_len=4096, mem_fraction_static=0.8)
    expected = H100.memory_bytes * 0.8 / 2**30 - mem.weights_gib - mem.non_torch_gib
    assert kv.kv_cache_gib == pytest.approx(expected)
    assert kv.block_size == 1 and kv.fits
    assert kv.kv_cache_tokens == int(expected * 2**30 // mem.kv_bytes_per_token_per_gpu)
    assert 2048 <= kv.max_running <= 4096
    more = sglang_kv(mem, H100, context_len=4096, mem_fraction_static=0.9)
    assert more.kv_cache_tokens > kv.kv_cache_tokens


def test_sglang_dp_attention_splits_the_chunked_prefill_size() -> None:
    """SGLang `_handle_data_parallelism`: with DP attention each of the dp ranks prefills at most
    chunked_prefill_size // dp tokens a step ("to avoid MoE kernel issues")."""
    mem = serving_memory(load_model("Qwen/Qwen3-8B"), H100, ServingConfig(max_model_len=4096))
    assert sglang_kv(mem, H100, context_len=4096).step_tokens == 8192
    assert sglang_kv(mem, H100, context_len=4096, dp_attention_size=8).step_tokens == 1024
    assert (
        sglang_kv(mem, H100, context_len=4096, dp_attention_size=4, chunked_prefill_size=4096).step_tokens
        == 1024
    )


def test_trtllm_pool_is_a_fraction_of_free_memory() -> None:
    model = load_model("meta-llama/Llama-3.1-8B")
    mem = serving_memory(model, H100, ServingConfig(max_model_len=4096))
    kv90 = trtllm_kv(mem, H100)
    kv95 = trtllm_kv(mem, H100, free_gpu_memory_fraction=0.95)
    free = H100.memory_bytes / 2**30 - mem.weights_gib - mem.activation_peak_gib - mem.non_torch_gib
    assert kv90.kv_cache_gib == pytest.approx(0.9 * free)
    assert kv95.kv_cache_tokens > kv90.kv_cache_tokens
    assert kv90.kv_cache_tokens % TOKENS_PER_BLOCK == 0
    assert (kv90.max_running, kv90.step_tokens) == (2048, 8192)


def test_a_model_too_big_for_the_gpu_has_no_pool() -> None:
    model = load_model("meta-llama/Llama-3.1-70B")
    mem = serving_memory(model, H100, ServingConfig(max_model_len=4096))
    assert not sglang_kv(mem, H100, context_len=4096).fits
    assert not trtllm_kv(mem, H100).fits


def test_sglang_and_tensorrt_keep_every_layer_of_a_sliding_window_model_per_token() -> None:
    """Gemma-2-9B (21 of 42 layers slide over 4,096 tokens): vLLM's hybrid allocator prices one more
    long-context token at the 21 full layers; SGLang's profile (`get_cell_size_per_token`) and
    TensorRT-LLM's one-window pool store it in all 42: 42 · 2 · 8 heads · 256 · 2 B = 344,064 B
    (SGLang 0.5.6 turns its hybrid sliding-window pool off for Gemma 2/3 and gpt-oss:
    `disable_hybrid_swa_memory = True` in `_handle_model_specific_adjustments`)."""
    model = load_model("google/gemma-2-9b")
    mem = serving_memory(model, H100, ServingConfig(max_model_len=8192))
    assert mem.kv_bytes_per_token_all_layers_per_gpu == 42 * 2 * 8 * 256 * 2
    assert mem.kv_bytes_per_token_per_gpu == pytest.approx(mem.kv_bytes_per_token_all_layers_per_gpu / 2)
    for kv in (sglang_kv(mem, H100, context_len=8192), trtllm_kv(mem, H100)):
        assert kv.kv_bytes_per_token_per_gpu == 42 * 2 * 8 * 256 * 2
        assert kv.kv_cache_tokens * kv.kv_bytes_per_token_per_gpu <= kv.kv_cache_gib * 2**30
    # A model without such layers prices a token the same under all three.
    dense = serving_memory(load_model("Qwen/Qwen3-8B"), H100, ServingConfig(max_model_len=4096))
    assert dense.kv_bytes_per_token_all_layers_per_gpu == dense.kv_bytes_per_token_per_gpu


def test_vllm_stores_v32_auto_as_fp8_ds_mla_and_sglang_as_bf16() -> None:
    """vLLM's `DeepseekV32ForCausalLM.verify_and_update_config` turns `auto` into `fp8_ds_mla`:
    656 B of latent (FlashMLA's FP8 layout) + the indexer's 132 B per token and layer, on every TP
    rank. `bfloat16` keeps BF16 (1,152 B). SGLang's `auto` is BF16, read from the same report."""
    h200 = get_gpu("H200")
    v32 = load_model("deepseek-ai/DeepSeek-V3.2")
    cfg = ServingConfig(tp=8, max_model_len=32768)
    auto = serving_memory(v32, h200, cfg)
    bf16 = serving_memory(v32, h200, cfg.model_copy(update={"kv_cache_dtype": "bfloat16"}))
    assert auto.kv_cache_dtype_stored == "fp8_ds_mla" and bf16.kv_cache_dtype_stored == "bfloat16"
    assert auto.kv_bytes_per_token_per_gpu == 61 * (656 + 132)
    assert bf16.kv_bytes_per_token_per_gpu == 61 * (1152 + 132)
    assert auto.kv_cache_tokens > 1.5 * bf16.kv_cache_tokens
    # the engine-neutral price SGLang and TensorRT-LLM read stays the dtype as named
    assert auto.kv_bytes_per_token_all_layers_per_gpu == 61 * (1152 + 132)
    assert (
        sglang_kv(auto, h200, context_len=32768).kv_cache_tokens
        == sglang_kv(bf16, h200, context_len=32768).kv_cache_tokens
    )
    # DeepSeek-V3 (dense MLA) keeps `auto` as BF16 in vLLM
    v3 = serving_memory(load_model("deepseek-ai/DeepSeek-V3"), h200, cfg)
    assert v3.kv_cache_dtype_stored == "auto" and v3.kv_bytes_per_token_per_gpu == 61 * 1152


def test_sglang_dp_attention_server_takes_its_full_tp_sizes_defaults() -> None:
    """`--tp-size 8 --dp-size 8 --enable-dp-attention` (one-GPU attention ranks): SGLang 0.5.6's
    `_handle_gpu_memory_settings` reads the server's tp_size, 8, so on an H200 cuda_graph_max_bs is
    512 and reserved = 512 + 1.5·8192 + 2·512 + 1024·8/8 + 3·512·8 + 1.5·512·8 (cuda_graph_max_bs
    above 300) = 33,280 MiB; read as tp 1 it had been 19,584 MiB (fraction 0.863, not 0.768)."""
    h200 = get_gpu("H200")
    model = load_model("deepseek-ai/DeepSeek-V3.2")
    config = ServingConfig(tp=1, replicas=8, enable_expert_parallel=True, max_model_len=32768)
    mem = serving_memory(model, h200, config)
    kv = sglang_kv(mem, h200, context_len=32768, dp_attention_size=8)
    gpu_mib = h200.memory_bytes / 2**20
    assert kv.cuda_graph_max_batch == 512 and kv.step_tokens == 1024
    assert kv.rule == f"--mem-fraction-static {round((gpu_mib - 33280) / gpu_mib, 3):.3f}"
    tp8 = sglang_kv(
        serving_memory(model, h200, ServingConfig(tp=8, max_model_len=32768)), h200, context_len=32768
    )
    assert tp8.rule == f"--mem-fraction-static {round((gpu_mib - 14848) / gpu_mib, 3):.3f}"


def test_sglang_pages_deepseek_sparse_attention_in_64_tokens() -> None:
    """SGLang 0.5.6 sets page_size 64 for DeepSeek NSA (`_handle_model_specific_adjustments`), 1
    otherwise: a V3.2 request holds whole 64-token pages, and the pool is whole pages."""
    from autoparallel.memory.sglang import sglang_server_kv

    h200 = get_gpu("H200")
    for name, page in (("deepseek-ai/DeepSeek-V3.2", 64), ("deepseek-ai/DeepSeek-V3", 1)):
        model = load_model(name)
        config = ServingConfig(tp=8, max_model_len=4096)
        kv = sglang_server_kv(model, serving_memory(model, h200, config), h200, config)
        assert kv.block_size == page and kv.kv_cache_tokens % page == 0 and kv.kv_cache_tokens > 0


def test_sglang_qwen3_next_mamba_pool_takes_its_share_and_caps_running_requests() -> None:
    """Qwen3-Next on SGLang 0.5.6 (radix cache on): the linear-attention state pool takes 0.9 / 1.9 of
    the memory left after the weights, a request's state being 36 layers × (BF16 convolution state
    3 · 8192 / tp + float32 SSM state 32 · 128 · 128 / tp); the KV pool keeps the rest, and at most a
    third of the state slots run (`MAMBA_CACHE_SIZE_MAX_RUNNING_REQUESTS_RATIO`)."""
    from autoparallel.memory.sglang import mamba_state_bytes, sglang_server_kv

    model, h200 = load_model("Qwen/Qwen3-Next-80B-A3B-Instruct"), get_gpu("H200")
    state = mamba_state_bytes(model, 4)
    assert state == 36 * (2 * 3 * 8192 / 4 + 4 * 32 * 128 * 128 / 4)
    assert mamba_state_bytes(load_model("Qwen/Qwen3-8B"), 4) == 0.0
    config = ServingConfig(tp=4, max_model_len=2048, max_num_seqs=4096)  # SGLang's own cap, unset
    mem = serving_memory(model, h200, config)
    kv = sglang_server_kv(model, mem, h200, config)
    rest = (kv.total_gib * float(kv.rule.split()[-1]) - kv.weights_gib - mem.non_torch_gib) * 2**30
    slots = int(rest * 0.9 / 1.9 // state)
    assert kv.max_running == slots // 3 < 1000  # 4,096 without the mamba pool
    assert kv.kv_cache_gib * 2**30 == pytest.approx(rest - slots * state)
    assert kv.kv_cache_tokens == int(kv.kv_cache_gib * 2**30 // mem.kv_bytes_per_token_all_layers_per_gpu)


def test_sglang_lowers_the_default_fraction_of_multimodal_models_by_their_vision_tower() -> None:
    """SGLang 0.5.6 `adjust_mem_fraction_for_vlm`: 0.95 · clamp(1 − 0.1 · (r − 1), 0.8, 1.05), r = the
    tower's layers × hidden² over ViT-L/14's 24 × 1024². Pixtral (24 × 1024, Mistral-Small-3.1) is
    r = 1; Llama-3.2-Vision (32 × 1280) r = 2.083; Qwen2.5-VL writes its 32 layers as `depth`, which
    SGLang's transformers (4.57.1) does not alias to `num_hidden_layers`, so SGLang reads the default
    24: 24 × 1280, r = 1.5625. Gemma 3 and Llama 4 are served text-only by default (no adjustment),
    text models too."""
    from autoparallel.memory.sglang import sglang_server_kv, vlm_fraction_factor

    wide = 0.95 * (1 - 0.1 * (32 * 1280**2 / (24 * 1024**2) - 1))
    qwen = 0.95 * (1 - 0.1 * (1280**2 / 1024**2 - 1))
    assert vlm_fraction_factor(load_model("mistralai/Mistral-Small-3.1-24B-Instruct-2503")) == pytest.approx(
        0.95
    )
    assert vlm_fraction_factor(load_model("meta-llama/Llama-3.2-11B-Vision")) == pytest.approx(wide)
    assert vlm_fraction_factor(load_model("Qwen/Qwen2.5-VL-7B-Instruct")) == pytest.approx(qwen)
    for text_only in ("google/gemma-3-27b-it", "meta-llama/Llama-4-Scout-17B-16E-Instruct", "Qwen/Qwen3-8B"):
        assert vlm_fraction_factor(load_model(text_only)) == 1.0
    model, config = load_model("Qwen/Qwen2.5-VL-7B-Instruct"), ServingConfig(max_model_len=4096)
    mem = serving_memory(model, H100, config)
    kv = sglang_server_kv(model, mem, H100, config)
    base = default_mem_fraction_static(H100, tp=1)
    scaled = round(base * qwen, 3)  # the 3 decimals the launch line passes, and the pool is priced at
    assert kv.rule == f"--mem-fraction-static {scaled:.3f}"
    plain = sglang_kv(mem, H100, context_len=4096)
    assert kv.kv_cache_gib == pytest.approx(plain.kv_cache_gib - H100.memory_bytes / 2**30 * (base - scaled))


def test_trtllm_blocks_deepseek_mla_in_64_tokens_on_hopper() -> None:
    """TensorRT-LLM forces `tokens_per_block` 64 on SM90 for MLA with a 576-wide latent + RoPE (its
    attention op runs FlashMLA only there); elsewhere its default is 32."""
    from autoparallel.hardware import Cluster
    from autoparallel.memory.trtllm import tokens_per_block
    from autoparallel.perf.serving_engines import engine_kv_for

    v3, llama = load_model("deepseek-ai/DeepSeek-V3"), load_model("Qwen/Qwen3-8B")
    assert tokens_per_block(v3, get_gpu("H200")) == 64
    assert tokens_per_block(v3, get_gpu("B200")) == TOKENS_PER_BLOCK == 32
    assert tokens_per_block(llama, get_gpu("H200")) == 32
    cluster = Cluster.from_shape(nodes=1, gpus_per_node=8, gpu=get_gpu("H200"))
    kv, _ = engine_kv_for("trtllm", v3, cluster, ServingConfig(tp=8, max_model_len=4096))
    assert kv.block_size == 64 and kv.kv_cache_tokens % 64 == 0


def test_sglang_page_size_follows_its_attention_backend() -> None:
    """64-token pages for DeepSeek Sparse Attention everywhere, and on Blackwell for the architectures
    SGLang 0.5.6 gives TensorRT-LLM attention kernels (trtllm_mla, trtllm_mha); 1 elsewhere."""
    b200 = get_gpu("B200")
    assert page_size(load_model("deepseek-ai/DeepSeek-V3.2"), H100) == 64
    for model_id in (
        "deepseek-ai/DeepSeek-V3",
        "openai/gpt-oss-120b",
        "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    ):
        assert page_size(load_model(model_id), b200) == 64
        assert page_size(load_model(model_id), H100) == 1
    assert page_size(load_model("Qwen/Qwen3-8B"), b200) == 1
    assert page_size(load_model("deepseek-ai/DeepSeek-Coder-V2-Lite-Base"), b200) == 1  # MLA on FlashInfer


def test_sglang_on_rocm_shrinks_its_fraction_past_8k_tokens() -> None:
    """On AMD GPUs SGLang 0.5.6 multiplies the fraction it read (given or default) by 0.85 when attention
    runs on aiter and the context passes 8,192 tokens: the pool is priced at the scaled fraction, while
    the rule keeps the value the line passes. MLA runs on aiter only at 16 or 128 KV heads per rank."""
    mi300x, model = get_gpu("MI300X"), load_model("Qwen/Qwen3-8B")
    assert aiter_fraction_scale(model, mi300x, 1, 8192) == 1.0
    assert aiter_fraction_scale(model, mi300x, 1, 8193) == 0.85
    assert aiter_fraction_scale(model, H100, 1, 32768) == 1.0
    v3 = load_model("deepseek-ai/DeepSeek-V3")  # 128 KV heads in its config
    assert aiter_fraction_scale(v3, mi300x, 8, 32768) == 0.85  # 16 per rank: aiter
    assert aiter_fraction_scale(v3, mi300x, 4, 32768) == 1.0  # 32 per rank: Triton
    short, long = (ServingConfig(max_model_len=n) for n in (8192, 32768))
    pools = []
    for config in (short, long):
        memory = serving_memory(model, mi300x, config)
        kv = sglang_server_kv(model, memory, mi300x, config)
        pools.append(kv)
    assert pools[0].rule == pools[1].rule  # the line passes the same fraction
    frac = float(pools[0].rule.split()[-1])
    assert pools[0].kv_cache_gib - pools[1].kv_cache_gib == pytest.approx(
        mi300x.memory_bytes * frac * 0.15 / 2**30, rel=0.01
    )


def test_sglang_counts_a_sparse_fp8_token_at_its_profiled_cell() -> None:
    """SGLang 0.5.6 sizes DeepSeek-V3.2's FP8 pool dividing the budget by (512 + 64) x 1 B + the
    132-B indexer key per layer, while the pool stores 656 + 132 B (FlashMLA's FP8 layout): it holds
    788 / 708 as many tokens as the stored size would give. BF16 caches and other models count what
    they store."""
    v32 = load_model("deepseek-ai/DeepSeek-V3.2")
    assert profiled_cell_ratio(v32, "fp8_e4m3") == pytest.approx(708 / 788)
    assert profiled_cell_ratio(v32, "auto") == 1.0
    assert profiled_cell_ratio(load_model("deepseek-ai/DeepSeek-V3"), "fp8_e4m3") == 1.0
    h200 = get_gpu("H200")
    tokens = {}
    for kv in ("fp8_e4m3", "auto"):
        config = ServingConfig(tp=8, max_model_len=8192, kv_cache_dtype=kv)
        memory = serving_memory(v32, h200, config)
        pool = sglang_server_kv(v32, memory, h200, config)
        counted = memory.kv_bytes_per_token_all_layers_per_gpu * profiled_cell_ratio(v32, kv)
        assert pool.kv_cache_tokens == int(pool.kv_cache_gib * 2**30 // counted) // 64 * 64
        tokens[kv] = pool.kv_cache_tokens
    assert tokens["fp8_e4m3"] / tokens["auto"] == pytest.approx(1284 / 708, rel=0.01)


def test_trtllm_holds_a_recurrent_state_in_every_batch_slot() -> None:
    """TensorRT-LLM's `MambaCacheManager` allocates conv and SSM states for all `max_batch_size` slots
    beside the cache the profile runs with, so they are in the measured peak: Qwen3-Next at TP 4 keeps
    36 layers × (3 · 8192 / 4 + 32 · 128 · 128 / 4) BF16 elements (9.4 MiB) a slot, and its KV pool
    is 0.9 × 512 × that smaller at 512 slots (34.4 GiB before, 30.2 now)."""
    from autoparallel.memory.trtllm import mamba_state_bytes, trtllm_server_kv

    model = load_model("Qwen/Qwen3-Next-80B-A3B-Instruct")
    config = ServingConfig(tp=4, max_model_len=32768, max_num_seqs=512)
    mem = serving_memory(model, H100, config, engine="trtllm")
    state = mamba_state_bytes(model, mem, H100)
    assert state == 36 * 2 * (3 * 8192 / 4 + 32 * 128 * 128 / 4)
    assert mamba_state_bytes(load_model("Qwen/Qwen3-8B"), mem, H100) == 0.0
    kv = trtllm_server_kv(model, mem, H100, config)
    plain = trtllm_kv(mem, H100, max_batch_size=512)
    assert (plain.kv_cache_gib - kv.kv_cache_gib) * 2**30 == pytest.approx(0.9 * 512 * state)
    assert kv.kv_cache_gib == pytest.approx(30.29, abs=0.05)  # RoPE cache at partial_rotary_factor 0.25


def test_sglang_runs_the_requests_its_flag_asks_for() -> None:
    """SGLang 0.5.6 `init_memory_pool` gives the request pool `--max-running-requests` slots when the
    flag is set (the 2,048-4,096 formula only without it), and `tp_worker` runs min(flag, slots): Llama
    3.1 8B at 131,072 tokens asked for 4,096 runs 4,096, not the formula's 2,048."""
    model = load_model("meta-llama/Llama-3.1-8B")
    config = ServingConfig(max_model_len=131072, max_num_seqs=4096)
    mem = serving_memory(model, H100, config)
    assert sglang_server_kv(model, mem, H100, config).max_running == 4096
    unset = sglang_kv(mem, H100, context_len=131072)
    assert unset.max_running == 2048  # min(max(tokens / 131072 · 512, 2048), 4096) slots
