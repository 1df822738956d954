"""TensorRT-LLM's KV pool: `kv_cache_config.free_gpu_memory_fraction` of the memory left after loading.

TensorRT-LLM (PyTorch backend, 1.x: `KvCacheConfig`, `_torch/pyexecutor/_util.KvCacheCreator`) loads
the model, runs a warm-up forward at `max_num_tokens` to measure the activation peak, then gives the
KV cache `free_gpu_memory_fraction` (default 0.9; `trtllm-bench` uses 0.95 in NVIDIA's tables) of the
free memory:

    KV = fraction · (total − weights − activation peak − non-torch memory − recurrent states)

in blocks of `tokens_per_block` = 32 tokens (64 for DeepSeek's MLA on Hopper, which runs FlashMLA).
A hybrid linear-attention model (Qwen3-Next) keeps its recurrent states in `MambaCacheManager`
(`_torch/pyexecutor/mamba_cache_manager.py`), `conv_states` and `ssm_states` of shape
[local linear layers, max_batch_size × pp_size, ...], allocated with the cache the profile runs beside:
they are part of the measured peak, and only the estimation pool's attention tokens are added back
(`_util.KvCacheCreator._cal_max_tokens`: (total − peak + estimation tokens · bytes) · fraction).
`max_num_tokens` (default 8192) caps the tokens of one step, and `max_batch_size` (default 2048) the
requests of one micro-batch: with `pp_size` pipeline stages the engine runs up to max_batch_size ×
pp_size requests (`_util.create_py_executor_instance`: the capacity scheduler and `SeqSlotManager` get
`max_num_sequences = max_batch_size * mapping.pp_size`, the micro-batch scheduler `max_batch_size`;
`MambaCacheManager` holds `max_batch_size * mapping.pp_size` state slots). A plan's `max_num_seqs` is
that total (`trtllm_max_batch_size`), as vLLM's `--max-num-seqs` is its engine's.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from autoparallel.memory.engine_kv import EngineKv
from autoparallel.memory.vllm_config import loaded_on
from autoparallel.models.spec import AttentionKind

if TYPE_CHECKING:
    from autoparallel.configs import ServingConfig
    from autoparallel.hardware import GPU
    from autoparallel.memory.serving import VllmMemoryReport
    from autoparallel.models.spec import ModelSpec

GIB = float(2**30)
DEFAULT_FREE_GPU_MEMORY_FRACTION = 0.9
"""`KvCacheConfig.free_gpu_memory_fraction` default."""
TOKENS_PER_BLOCK = 32
"""`tokens_per_block` default."""
FLASH_MLA_TOKENS_PER_BLOCK = 64
"""`tokens_per_block` TensorRT-LLM forces on Hopper for MLA models whose latent + RoPE is 576 wide
(DeepSeek V2/V3/V3.2, Kimi-K2): `ModelConfig.enable_flash_mla` and the executor creator's override;
its attention op runs FlashMLA only on SM90 with 64-token blocks."""
DEFAULT_MAX_BATCH_SIZE = 2048
"""`max_batch_size` (one micro-batch's requests) of a bare `trtllm-serve` and of the LLM API:
`commands/serve.py` declares `--max_batch_size` with `default=BuildConfig.model_fields["max_batch_size"]
.default`, and `BuildConfig.max_batch_size` (`builder.py`) and `BaseLlmArgs.max_batch_size`
(`llmapi/llm_args.py`) default to 2048; `trtllm-eval` writes the same 2048 out. With pp stages the
engine runs this × pp (`trtllm_default_max_num_seqs`)."""
DEFAULT_MAX_NUM_TOKENS = 8192
"""`max_num_tokens` of a bare `trtllm-serve` and of the LLM API (`BuildConfig.max_num_tokens`): the
tokens of one step and of the warm-up forward the KV pool's activation peak is measured at
(`_util.KvCacheCreator`); `memory.serving.vllm_memory(engine="trtllm")` profiles at it."""
DEFAULT_CUDA_GRAPH_MAX_BATCH = 128
"""Largest CUDA-graph batch when `cuda_graph_config` sets none (`CudaGraphConfig.max_batch_size`
default 0, read as `max_batch_size or 128` in `llm_args.py`): a plain `trtllm-serve` runs larger
decode batches eagerly. The planner's options file sets `cuda_graph_config.max_batch_size` to the
batch it plans (frameworks/trtllm.py)."""


def trtllm_max_batch_size(max_num_seqs: int, pp: int) -> int:
    """The LLM API `max_batch_size` (one micro-batch's requests) of an engine that runs `max_num_seqs`
    requests over `pp` pipeline stages: ⌈max_num_seqs / pp⌉, the engine then running that × pp
    (`_util.create_py_executor_instance`'s `max_num_sequences`). The one place a plan's total and the
    engine's per-micro-batch cap meet: the options file writes it (frameworks/trtllm.py) and
    `trtllm_server_kv` prices the engine it makes; exact when pp divides max_num_seqs, the only
    totals the planner offers (`trtllm_batch_problem`)."""
    return -(-max_num_seqs // pp)


def trtllm_default_max_num_seqs(pp: int) -> int:
    """The requests a bare `trtllm-serve` over `pp` pipeline stages runs: `DEFAULT_MAX_BATCH_SIZE` per
    micro-batch × pp (`_util.create_py_executor_instance`'s `max_num_sequences`), the plan-side total
    (`max_num_seqs`) of TensorRT-LLM's own default, as `trtllm_max_batch_size` reads it back."""
    return DEFAULT_MAX_BATCH_SIZE * pp


def trtllm_batch_problem(max_num_seqs: int, pp: int) -> str | None:
    """Why TensorRT-LLM cannot run exactly `max_num_seqs` requests over `pp` stages (None: it can):
    its running cap is max_batch_size × pp (`trtllm_max_batch_size`), a multiple of pp."""
    if max_num_seqs % pp == 0:
        return None
    per = trtllm_max_batch_size(max_num_seqs, pp)
    return (
        f"TensorRT-LLM runs max_batch_size × pipeline_parallel_size requests: max_num_seqs {max_num_seqs} "
        f"is not a multiple of pp {pp} (max_batch_size {per} runs {per * pp}); choose a multiple of {pp}"
    )


def tokens_per_block(model: ModelSpec, gpu: GPU) -> int:
    """TensorRT-LLM's KV block for `model` on `gpu`: 64 tokens for FlashMLA-eligible MLA on Hopper,
    else its 32-token default."""
    flash_mla = any(
        layer.attention.kv_lora_rank + layer.attention.qk_rope_head_dim == 576
        for layer in model.layers
        if layer.attention.kv_lora_rank
    )
    return FLASH_MLA_TOKENS_PER_BLOCK if flash_mla and gpu.arch == "hopper" else TOKENS_PER_BLOCK


def padded_cuda_graph_batch_sizes(max_batch_size: int) -> tuple[int, ...]:
    """The batch sizes `cuda_graph_config: {max_batch_size: B, enable_padding: true}` captures
    (`CudaGraphConfig._generate_cuda_graph_batch_sizes`, 1.0): 1, 2, 4, multiples of 8 to 128, powers
    of two from 256 below B, and B itself."""
    sizes = {
        1,
        2,
        4,
        *range(8, 129, 8),
        *(2**i for i in range(8, math.ceil(math.log2(max(max_batch_size, 2))))),
    }
    return tuple(sorted({b for b in sizes if b <= max_batch_size} | {max_batch_size}))


def captured_batch_sizes(sizes: tuple[int, ...], max_batch_size: int, max_num_tokens: int) -> tuple[int, ...]:
    """The padded CUDA-graph sizes the engine keeps (`model_engine._filter_cuda_graph_batch_sizes`):
    those up to the largest pure-decode batch, min(max_batch_size, max_num_tokens), plus that largest
    batch itself when a bigger size was asked for (padding to it instead)."""
    cap = min(max_batch_size, max_num_tokens)
    kept = [b for b in sorted(sizes) if b <= cap]
    if any(b > cap for b in sizes) and (not kept or kept[-1] != cap):
        kept.append(cap)
    return tuple(kept)


def mamba_state_bytes(model: ModelSpec, memory: VllmMemoryReport, gpu: GPU) -> float:
    """One request slot of `MambaCacheManager` on one GPU of `memory`'s stage: the convolution and
    SSM states of the stage's linear-attention layers (`get_pp_layers`), split over the attention TP
    ranks (`memory.tp`; 1 under attention DP), both in the dtype the model loads in on `gpu`
    (`KvCacheConfig.mamba_ssm_cache_dtype` auto: `ssm_dtype = mamba_ssm_cache_dtype or dtype`);
    `ModelSpec.linear_state_bytes`, as SGLang's `memory.sglang.linear_state_bytes` at its own
    dtypes. 0 for models without such layers."""
    linear = [i for i, layer in enumerate(model.layers) if layer.attention.kind is AttentionKind.LINEAR]
    if not linear:
        return 0.0
    start = sum(stage.num_layers for stage in memory.stages[: memory.stage])
    here = range(start, start + memory.stages[memory.stage].num_layers)
    share = sum(1 for i in linear if i in here) / len(linear)  # a model's linear layers are alike
    return loaded_on(model, gpu, None, "trtllm").linear_state_bytes(memory.tp) * share


def trtllm_kv(
    memory: VllmMemoryReport,
    gpu: GPU,
    *,
    free_gpu_memory_fraction: float = DEFAULT_FREE_GPU_MEMORY_FRACTION,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    max_num_tokens: int = DEFAULT_MAX_NUM_TOKENS,
    cuda_graph_max_batch: int | None = None,
    cuda_graph_batch_sizes: tuple[int, ...] | None = None,
    chunked_prefill: bool = True,
    block_tokens: int = TOKENS_PER_BLOCK,
    mamba_bytes_per_request: float | tuple[float, ...] = 0.0,
    pp_size: int = 1,
) -> EngineKv:
    """The KV pool TensorRT-LLM builds on one GPU of the deployment `memory` describes.

    `cuda_graph_max_batch`: the largest padded CUDA-graph batch (`cuda_graph_config.max_batch_size`);
    None: graphs up to `max_batch_size`, padded to `padded_cuda_graph_batch_sizes` (the planner's
    options file). `cuda_graph_batch_sizes`: an explicit `cuda_graph_config.batch_sizes` list with
    padding on; a decode batch runs at the next size up. `chunked_prefill`: `enable_chunked_prefill`
    (the planner's options file sets it; TensorRT-LLM's own default and `trtllm-bench` leave it off).
    `block_tokens`: `tokens_per_block(model, gpu)`. `mamba_bytes_per_request`: `mamba_state_bytes`, held
    for each request slot (a tuple: one per pipeline stage of `memory`). `max_batch_size` is one
    micro-batch's cap (the LLM API's, and the CUDA graphs'); with `pp_size` stages the engine runs and
    holds slots for max_batch_size × pp_size requests (module doc), its `max_running`. Every pipeline
    rank sizes its pool by this rule over its own layers (`Mapping.pp_layers`: the first stages take
    the extra layers of an uneven split, the first the embedding too) and a request keeps its tokens
    on every rank: the smallest pool is the engine's.
    """
    total = gpu.memory_bytes
    slots = max_batch_size * pp_size
    by_stage = (
        mamba_bytes_per_request
        if isinstance(mamba_bytes_per_request, tuple)
        else (mamba_bytes_per_request,) * len(memory.stages)
    )

    def rank_pool(view: VllmMemoryReport) -> tuple[int, float, float]:
        """(blocks, KV bytes, state bytes) of the rank `view` reads."""
        states = slots * by_stage[view.stage]
        free = total - (view.weights_gib + view.activation_peak_gib + view.non_torch_gib) * GIB - states
        kv = free_gpu_memory_fraction * free if free > 0 else free
        per_token = view.kv_bytes_per_token_all_layers_per_gpu
        blocks = int(kv // (per_token * block_tokens)) if kv > 0 and per_token > 0 else 0
        return blocks, kv, states

    pools = [(rank_pool(view), view) for view in memory.stage_views()]
    (blocks, kv, states), rank = min(pools, key=lambda p: (p[0][0], p[0][1]))
    per_token = rank.kv_bytes_per_token_all_layers_per_gpu
    if cuda_graph_batch_sizes:
        sizes = captured_batch_sizes(cuda_graph_batch_sizes, max_batch_size, max_num_tokens)
        graph_max = sizes[-1] if sizes else 0
    elif cuda_graph_max_batch is None:
        sizes = captured_batch_sizes(
            padded_cuda_graph_batch_sizes(max_batch_size), max_batch_size, max_num_tokens
        )
        graph_max = sizes[-1]
    else:  # an explicit maximum without padding (TensorRT-LLM's default: 128, no padding)
        graph_max, sizes = cuda_graph_max_batch, ()
    return EngineKv(
        engine="trtllm",
        rule=f"kv_cache_config.free_gpu_memory_fraction {free_gpu_memory_fraction:g}",
        fraction=free_gpu_memory_fraction,
        total_gib=total / GIB,
        weights_gib=rank.weights_gib,
        kv_cache_gib=kv / GIB,
        kv_cache_tokens=blocks * block_tokens,
        block_size=block_tokens,
        kv_bytes_per_token_per_gpu=per_token,
        # the micro-batch scheduler counts a token per decoding request against max_num_tokens and
        # stops there (cpp/tensorrt_llm/batch_manager/microBatchScheduler.cpp): no more decode a step
        max_running=min(max_batch_size, max_num_tokens) * pp_size,
        step_tokens=max_num_tokens,
        cuda_graph_max_batch=graph_max,
        cuda_graph_batch_sizes=sizes,
        chunked_prefill=chunked_prefill,
        states_gib=states / GIB,
    )


def trtllm_server_kv(model: ModelSpec, memory: VllmMemoryReport, gpu: GPU, config: ServingConfig) -> EngineKv:
    """`trtllm_kv` for the engine `frameworks/trtllm.py` launches for `config`: `max_batch_size`
    (`trtllm_max_batch_size`: the config's max_num_seqs over its pipeline stages) and `max_num_tokens`
    as the options file sets them, the model's block size and recurrent states, and the config's
    `free_gpu_memory_fraction` (None: TensorRT-LLM's default)."""
    fraction = config.free_gpu_memory_fraction
    return trtllm_kv(
        memory,
        gpu,
        free_gpu_memory_fraction=DEFAULT_FREE_GPU_MEMORY_FRACTION if fraction is None else fraction,
        max_batch_size=trtllm_max_batch_size(config.max_num_seqs, config.pp),
        pp_size=config.pp,
        max_num_tokens=config.max_num_batched_tokens or DEFAULT_MAX_NUM_TOKENS,
        block_tokens=tokens_per_block(model, gpu),
        mamba_bytes_per_request=tuple(
            mamba_state_bytes(model, memory.at_stage(s), gpu) for s in range(len(memory.stages))
        ),
    )
