"""SGLang's KV pool: `--mem-fraction-static`, as `ServerArgs` resolves and `ModelRunner` spends it.

SGLang 0.5 (`server_args.handle_gpu_memory_settings`, `model_runner.profile_max_num_token`):

- `mem_fraction_static` is (weights + KV pool) / GPU memory. Unset, it is
  (gpu_mem − reserved) / gpu_mem with gpu_mem in MiB and
  reserved = 512 + 1.5 · max(chunked_prefill_size, 2048) + 1024 · tp · pp / 8 + 2 · cuda_graph_max_bs
  (+ 3 · cuda_graph_max_bs · dp with DP attention, and 1.5 · cuda_graph_max_bs · dp more when
  cuda_graph_max_bs > 300), at least 10 GiB on GPUs above 60 GiB;
- chunked_prefill_size and cuda_graph_max_bs default by GPU memory: < 20 GiB 2048 / 8, < 35 GiB
  2048 / 24 (80 at tp ≥ 4), < 60 GiB 4096 / 32 (160), < 160 GiB 8192 / 256 (512 at tp ≥ 4),
  else 16384 / 512;
- `tp` in these rules is the server's `--tp-size`: with DP attention the attention TP times the DP
  ranks (`frameworks/sglang.py` launches `--tp-size tp · dp --dp-size dp`), so a DP8 server of
  one-GPU attention ranks takes the tp ≥ 4 defaults;
- the pool is what the measured free memory after loading leaves above total · (1 − fraction):
  KV = total · fraction − weights − non-torch memory (CUDA context, NCCL); page size 1 token, 64
  for DeepSeek Sparse Attention (`_handle_model_specific_adjustments`: "Setting page size to 64
  for DeepSeek NSA") and for the TensorRT-LLM attention kernels SGLang picks on Blackwell
  (`page_size`), so a request holds whole 64-token pages;
- the weights are vLLM's layout, except under attention DP (`models/deepseek_v2.py`; the LM head
  likewise in `qwen2_moe.py`, `qwen3_moe.py`, `glm4_moe.py`): there only attention runs per DP
  rank; dense MLPs, shared experts and the LM head stay sharded over the server's whole TP group
  (`DeepseekV2MLP` at the full tp, `ParallelLMHead` without `--enable-dp-lm-head`), where vLLM's DP
  ranks each hold them whole (`dp_attention_sharded_gib`);
- with DP attention each of the dp ranks prefills at most chunked_prefill_size // dp tokens a step
  (`_handle_data_parallelism`);
- the req_to_token pool has `--max-running-requests` request slots, or without the flag
  min(max(pool tokens / context_len · 512, 2048), 4096) (`model_runner.init_memory_pool`), and a rank
  runs min(the flag / dp ranks, or pool tokens // 2 without it, the slots) (`tp_worker`);
- sliding-window models keep every token at every layer: 0.5.6 turns its hybrid SWA pool off for
  gpt-oss, Gemma 2/3/3n and OLMo 2/3 (`_handle_model_specific_adjustments`:
  `disable_hybrid_swa_memory = True`), and Llama 4's chunked pool needs `--hybrid-kvcache-ratio`;
- on AMD GPUs, where SGLang runs attention on aiter (`aiter_fraction_scale`), a context longer than
  8,192 tokens scales the fraction, given or default, by 0.85 after it is read;
- a multimodal model's default fraction is scaled by 0.95 · clamp(1 − 0.1 · (r − 1), 0.8, 1.05), r
  its vision tower's layers × hidden² over ViT-L/14's 24 × 1024² (`adjust_mem_fraction_for_vlm`,
  `vision_config.num_hidden_layers` and `hidden_size`, 24 / 1024 when absent: Qwen2-VL's and
  Qwen2.5-VL's `depth` has no alias in transformers 4.57.1, SGLang 0.5.6's pin), for the architectures
  SGLang serves as multimodal by default (its `multimodal_model_archs`, less Gemma 3, Llama 4 and
  Step3-VL, whose multimodality is off unless `--enable-multimodal`);
- Qwen3-Next's linear-attention layers keep a recurrent state per request in a mamba pool that
  takes `--mamba-full-memory-ratio` (0.9) of the KV memory for every 1 left to the KV cache
  (`handle_max_mamba_cache`, with the radix cache on, as it is for this architecture): slots =
  memory · 0.9 / 1.9 / state bytes (divided by the DP ranks under attention DP), the state being
  the short-convolution state in BF16 and the SSM state in `--mamba-ssm-dtype` float32, per
  attention-TP rank (`configs/mamba_utils.py`), and at most slots // 3 requests run
  (`MAMBA_CACHE_SIZE_MAX_RUNNING_REQUESTS_RATIO`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autoparallel.hardware.gpu import ARCH_COMPUTE_CAPABILITY
from autoparallel.memo import Memo, memoized
from autoparallel.memory.engine_kv import EngineKv
from autoparallel.memory.vllm_config import apply_dtype_and_quant, checkpoint_kv_dtype
from autoparallel.memory.vllm_profile import stage_params_per_rank
from autoparallel.models.parse_quant import is_compressed_tensors
from autoparallel.models.quant import QuantMethod
from autoparallel.models.spec import AttentionKind, ParamGroups

if TYPE_CHECKING:
    from autoparallel.configs import ServingConfig
    from autoparallel.hardware import GPU
    from autoparallel.memory.serving import VllmMemoryReport
    from autoparallel.models.quant import QuantSpec
    from autoparallel.models.spec import ModelSpec

SGLANG_BLACKWELL_ATTENTION = {
    "DeepseekV3ForCausalLM": "trtllm_mla",
    "GptOssForCausalLM": "trtllm_mha",
    "Llama4ForConditionalGeneration": "trtllm_mha",
    "Llama4ForCausalLM": "trtllm_mha",
}
"""Architectures SGLang 0.5.6 runs on Blackwell with a TensorRT-LLM attention kernel by default
(`ServerArgs._handle_model_specific_adjustments`): `trtllm_mla` for DeepSeek-V3's architecture (DeepSeek
Sparse Attention aside, which runs its own backends), `trtllm_mha` for gpt-oss and Llama 4. Both keep
64-token pages (`_handle_attention_backend_compatibility`), and `trtllm_mla` takes no E5M2 cache."""

MIB = float(2**20)
GIB = float(2**30)
MAX_REQUEST_SLOTS = 4096
"""The most request slots SGLang's default `max_running_requests` gives a rank (`ModelRunner`:
min(max(pool tokens / context_len · 512, 2048), 4096))."""
MULTIMODAL_ARCHITECTURES = frozenset(
    {
        "CLIPModel",
        "DeepseekVL2ForCausalLM",
        "DeepseekOCRForCausalLM",
        "DotsOCRForCausalLM",
        "DotsVLMForCausalLM",
        "Gemma3nForConditionalGeneration",
        "Glm4vForConditionalGeneration",
        "Glm4vMoeForConditionalGeneration",
        "Grok1AForCausalLM",
        "Grok1VForCausalLM",
        "InternS1ForConditionalGeneration",
        "InternVLChatModel",
        "JetVLMForConditionalGeneration",
        "KimiVLForConditionalGeneration",
        "LlavaForConditionalGeneration",
        "LlavaLlamaForCausalLM",
        "LlavaMistralForCausalLM",
        "LlavaQwenForCausalLM",
        "LlavaVidForCausalLM",
        "MiniCPMO",
        "MiniCPMV",
        "Mistral3ForConditionalGeneration",
        "MllamaForConditionalGeneration",
        "MultiModalityCausalLM",
        "NVILAForConditionalGeneration",
        "NVILALiteForConditionalGeneration",
        "NemotronH_Nano_VL_V2",
        "POINTSV15ChatModel",
        "Phi4MMForCausalLM",
        "Qwen2AudioForConditionalGeneration",
        "Qwen2VLForConditionalGeneration",
        "Qwen2_5_VLForConditionalGeneration",
        "Qwen3OmniMoeForConditionalGeneration",
        "Qwen3VLForConditionalGeneration",
        "Qwen3VLMoeForConditionalGeneration",
        "Sarashina2VisionForCausalLM",
    }
)
"""Architectures SGLang 0.5.6 serves as multimodal by default (`configs/model_config.py`
`multimodal_model_archs`, without the three whose multimodality is off by default)."""
VIT_L14_SIZE = 24 * 1024**2
"""ViT-L/14's layers × hidden², the base of SGLang's multimodal memory adjustment."""
RADIX_MAMBA_ARCHITECTURES = frozenset({"Qwen3NextForCausalLM"})
"""Linear-attention architectures SGLang runs with the radix cache on (`MambaRadixCache`), whose mamba
pool is sized by `--mamba-full-memory-ratio` (others, e.g. Kimi-Linear, turn the radix cache off)."""
CONV_STATE_BYTES = 2
"""SGLang's convolution-state dtype, BF16 (`mamba_utils.CONV_DTYPE`)."""
SSM_STATE_BYTES = 4
"""SGLang's SSM-state dtype, `--mamba-ssm-dtype` default float32."""
MAMBA_FULL_MEMORY_RATIO = 0.9
"""`--mamba-full-memory-ratio` default: mamba-state memory per unit of KV-cache memory."""
MAMBA_SLOTS_PER_RUNNING_REQUEST = 3
"""`MAMBA_CACHE_SIZE_MAX_RUNNING_REQUESTS_RATIO`: mamba pool slots per running request."""


def sglang_stored_kv_dtype(model: ModelSpec, gpu: GPU, kv_cache_dtype: str) -> str:
    """The KV dtype SGLang runs for `--kv-cache-dtype kv_cache_dtype`: for DeepSeek Sparse Attention
    `auto` becomes `fp8_e4m3` from Blackwell on and stays BF16 on Hopper (0.5.6
    `ServerArgs._handle_model_specific_adjustments`); `auto` on a checkpoint that declares its KV
    dtype is that dtype where SGLang reads the declaration, otherwise the model's 16-bit dtype
    (`sglang_reads_declared_kv`); otherwise as given."""
    if kv_cache_dtype == "auto" and model.has_sparse_attention and gpu.arch == "blackwell":
        return "fp8_e4m3"
    q = model.quantization
    if kv_cache_dtype == "auto" and q is not None and q.kv_cache_dtype and not sglang_reads_declared_kv(q):
        return "bfloat16" if gpu.bf16_native else "float16"  # `ModelRunner`: float16 below SM80
    return checkpoint_kv_dtype(model, kv_cache_dtype)


def sglang_reads_declared_kv(q: QuantSpec) -> bool:
    """SGLang 0.5.6 stores `--kv-cache-dtype auto` in the KV dtype `q`'s checkpoint declares: its
    `ModelRunner.init_memory_pool` reads `quant_config.kv_cache_quant_algo` ("FP8": float8_e4m3fn,
    else the model dtype), which ModelOpt's configs set (`ModelOptFp8Config.from_config`, from
    `kv_cache_quant_algo` or an 8-bit float `kv_cache_scheme`) and `CompressedTensorsConfig` has not:
    a compressed-tensors `kv_cache_scheme` (FP8 under vLLM, `parse_quant._compressed_tensors_kv_dtype`)
    leaves SGLang's cache in the model dtype."""
    return not is_compressed_tensors(q)


SGLANG_MXFP4_BLOCK = 32
"""`Mxfp4MoEMethod.create_weights`'s `mxfp4_block`: what it rounds the per-rank expert intermediate
size up to off SM100 (with `triton_kernels` installed, as gpt-oss's MoE runner needs)."""
SGLANG_FLASHINFER_MXFP4_TILE = 256
"""What it rounds the per-rank intermediate and the hidden size up to on SM100 for the FlashInfer MXFP4
MoE (`moe_runner_backend` `flashinfer_mxfp4`, which `ServerArgs` picks for gpt-oss on Blackwell)."""


def sglang_mxfp4_alignment(gpu: GPU) -> tuple[int, int]:
    """(per-rank expert intermediate, hidden) sizes SGLang 0.5.6 pads MXFP4 (gpt-oss) experts to on
    `gpu`, allocating the padded weights, scales and biases (`Mxfp4MoEMethod.create_weights`): on
    SM100 (`_is_sm100_supported`, the catalog's Blackwell) under FlashInfer's MXFP4 MoE, 256 and 256;
    elsewhere the intermediate size rounded to 32 and the hidden size as it is. Not vLLM's padding
    (`vllm_profile.vllm_mxfp4_alignment`: 128 x 256 on Ampere, Ada and Turing for Marlin)."""
    if gpu.vendor == "nvidia" and gpu.arch == "blackwell":
        return SGLANG_FLASHINFER_MXFP4_TILE, SGLANG_FLASHINFER_MXFP4_TILE
    return SGLANG_MXFP4_BLOCK, 1


def sglang_upcasts_mxfp4(model: ModelSpec, gpu: GPU, ep: int) -> bool:
    """SGLang 0.5.6 holds `model`'s MXFP4 experts in BF16 on `gpu` with `ep` expert-parallel ranks.
    `ServerArgs._handle_model_specific_adjustments` gives gpt-oss the `triton_kernel` MoE runner only
    at `ep_size == 1` (Blackwell, SM10x and SM12x, gets `flashinfer_mxfp4` whatever the EP size); with
    `--ep-size` > 1 the runner stays `auto`, so `Mxfp4MoEMethod.process_weights_after_loading`, using
    neither FlashInfer nor triton_kernels, upcasts the experts to BF16 (`upcast_from_mxfp`): four times
    the MXFP4 bytes (about 107 GiB a GPU for gpt-oss-120b at EP 2). A known NVIDIA architecture below
    Blackwell; AMD and unknown GPUs are given the benefit of the doubt."""
    q = model.quantization
    mxfp4 = q is not None and q.method is QuantMethod.MXFP4 and "routed_experts" in q.quantized_groups
    below = gpu.vendor == "nvidia" and gpu.arch in ARCH_COMPUTE_CAPABILITY and gpu.arch != "blackwell"
    return mxfp4 and ep > 1 and below


_UPCAST: Memo[ModelSpec] = {}


def sglang_loaded_spec(model: ModelSpec, gpu: GPU, ep: int) -> ModelSpec:
    """`model` (as loaded: dtype and quantization applied) with the experts SGLang upcasts held in its
    16-bit dtype (`sglang_upcasts_mxfp4`), else `model` itself; memoized per model object."""
    if not sglang_upcasts_mxfp4(model, gpu, ep):
        return model

    def upcast() -> ModelSpec:
        q = model.quantization
        assert q is not None
        groups = tuple(g for g in q.quantized_groups if g != "routed_experts")
        return model.model_copy(update={"quantization": q.model_copy(update={"quantized_groups": groups})})

    return memoized(_UPCAST, (model,), (), upcast)


def sglang_priced_config(model: ModelSpec, gpu: GPU, config: ServingConfig) -> ServingConfig:
    """`config` with the KV dtype SGLang stores (`sglang_stored_kv_dtype`): what its pool is priced in."""
    stored = sglang_stored_kv_dtype(model, gpu, config.kv_cache_dtype)
    return config if stored == config.kv_cache_dtype else config.model_copy(update={"kv_cache_dtype": stored})


def page_size(model: ModelSpec, gpu: GPU) -> int:
    """Tokens per KV page SGLang 0.5.6 runs `model` with on `gpu` by default: 64 for DeepSeek Sparse
    Attention, and on Blackwell for the architectures it gives TensorRT-LLM attention kernels
    (`SGLANG_BLACKWELL_ATTENTION`); else 1 (FlashAttention 3, FlashInfer and Triton's
    default)."""
    if model.has_sparse_attention:
        return 64
    return 64 if gpu.arch == "blackwell" and model.architecture in SGLANG_BLACKWELL_ATTENTION else 1


def vlm_fraction_factor(model: ModelSpec) -> float:
    """The factor SGLang scales its default `--mem-fraction-static` by for a multimodal model's vision
    tower (module docstring); 1 for text-only models and those served text-only by default."""
    has_vision = model.vision_params > 0 or model.vision_hidden_size is not None
    if not has_vision or model.architecture not in MULTIMODAL_ARCHITECTURES:
        return 1.0
    layers, hidden = model.vision_layers or 24, model.vision_hidden_size or 1024
    ratio = layers * hidden**2 / VIT_L14_SIZE
    return 0.95 * min(1.05, max(0.8, 1.0 - 0.1 * (ratio - 1.0)))


def linear_state_bytes(model: ModelSpec, tp: int) -> float:
    """One request's linear-attention state on one attention-TP rank as SGLang keeps it: the
    convolution state in BF16, the SSM state in `--mamba-ssm-dtype` float32 (`configs/mamba_utils.py`)."""
    return model.linear_state_bytes(tp, conv_bytes=CONV_STATE_BYTES, ssm_bytes=SSM_STATE_BYTES)


def mamba_state_bytes(model: ModelSpec, tp: int) -> float:
    """`linear_state_bytes` for the `RADIX_MAMBA_ARCHITECTURES`, whose mamba pool SGLang sizes by
    `--mamba-full-memory-ratio`; 0 for other models."""
    return linear_state_bytes(model, tp) if model.architecture in RADIX_MAMBA_ARCHITECTURES else 0.0


def dp_attention_size(config: ServingConfig) -> int:
    """SGLang's `--dp-size` with `--enable-dp-attention` for `config` (1: no attention DP): replicas
    that share their experts run as one server's attention-DP ranks (`frameworks/sglang.py`)."""
    return config.replicas if config.shares_experts else 1


def dp_attention_sharded_gib(model: ModelSpec, config: ServingConfig) -> float:
    """GiB per GPU of the weights vLLM's DP layout holds whole on every rank and SGLang's attention
    DP shards over the server's TP group: the dense MLPs, shared experts and LM head of one
    attention-TP rank (`config.tp`), at the checkpoint's precision. 0 without attention DP, and with
    pipeline stages (the pool rule reads the tightest stage's weights; none is taken off there)."""
    if dp_attention_size(config) == 1 or config.pp > 1:
        return 0.0
    spec = apply_dtype_and_quant(model, "auto", config.quantization)
    ep = config.tp * config.replicas
    g = stage_params_per_rank(spec, range(spec.num_layers), 0, 1, config.tp, ep)
    shardable = ParamGroups(dense_mlp=g.dense_mlp, shared_experts=g.shared_experts, lm_head=g.lm_head)
    return spec.weight_bytes(shardable) / GIB


def sglang_defaults(gpu: GPU, tp: int) -> tuple[int, int]:
    """(chunked_prefill_size, cuda_graph_max_bs) SGLang picks from the GPU's memory and the server's
    `--tp-size` `tp`."""
    mem = gpu.memory_bytes / MIB
    if mem < 20 * 1024:
        return 2048, 8
    if mem < 35 * 1024:
        return 2048, 24 if tp < 4 else 80
    if mem < 60 * 1024:
        return 4096, 32 if tp < 4 else 160
    if mem < 160 * 1024:
        return 8192, 256 if tp < 4 else 512
    return 16384, 512


LEAST_RESERVED_CHUNK = 2048
"""The chunked-prefill tokens SGLang's memory reservation counts at least, 1.5 MiB each
(`_handle_gpu_memory_settings`: `max(chunked_prefill_size, 2048)`)."""


def default_mem_fraction_static(
    gpu: GPU,
    *,
    tp: int,
    pp: int = 1,
    dp_attention_size: int = 1,
    chunked_prefill_size: int | None = None,
    vlm_factor: float = 1.0,
) -> float:
    """SGLang's default `--mem-fraction-static` for this GPU and parallel layout (`tp`: the server's
    `--tp-size`, DP ranks included; `vlm_factor`: `vlm_fraction_factor`, applied after the rounding as
    SGLang applies it, then rounded to the 3 decimals the launch line passes)."""
    chunk, graph_bs = sglang_defaults(gpu, tp)
    chunk = chunked_prefill_size or chunk
    mem = gpu.memory_bytes / MIB
    reserved = 512 + 1.5 * max(chunk, LEAST_RESERVED_CHUNK) + 1024 * tp * pp / 8 + 2 * graph_bs
    if dp_attention_size > 1:
        reserved += 3 * graph_bs * dp_attention_size
        if graph_bs > 300:
            reserved += 1.5 * graph_bs * dp_attention_size
    if mem > 60 * 1024:
        reserved = max(reserved, 10 * 1024)
    base = round((mem - reserved) / mem, 3)
    # SGLang scales its own default unrounded; the launch line passes it to 3 decimals, and the pool
    # is priced at the value the line passes.
    return base if vlm_factor == 1.0 else round(base * vlm_factor, 3)


def sglang_kv(
    memory: VllmMemoryReport,
    gpu: GPU,
    *,
    context_len: int,
    mem_fraction_static: float | None = None,
    dp_attention_size: int = 1,
    chunked_prefill_size: int | None = None,
    max_running_requests: int | None = None,
    nsa_backends: tuple[str | None, str | None] = (None, None),
    dp_sharded_gib: float = 0.0,
    page_tokens: int = 1,
    mamba_bytes_per_request: float = 0.0,
    vlm_factor: float = 1.0,
    fraction_scale: float = 1.0,
    counted_bytes_ratio: float = 1.0,
) -> EngineKv:
    """The KV pool SGLang builds on one GPU of the deployment `memory` describes (`nsa_backends`:
    `--nsa-prefill-backend` / `--nsa-decode-backend`, carried for the step model;
    `dp_sharded_gib`: `dp_attention_sharded_gib`, of which each GPU holds 1 / dp_attention_size;
    `max_running_requests`: a rank's cap, `max_num_seqs` (the line passes it times the DP ranks,
    frameworks/sglang.py); `page_tokens`: `page_size`; `mamba_bytes_per_request`:
    `mamba_state_bytes`; `vlm_factor`: `vlm_fraction_factor`, for the default fraction;
    `fraction_scale`: `aiter_fraction_scale`, what
    SGLang multiplies the fraction by after reading it, so the pool is priced at the scaled value
    while the rule names the one the line passes; `counted_bytes_ratio`: `profiled_cell_ratio`, the
    bytes a token is counted at when SGLang sizes the pool over those it stores)."""
    tp, pp = memory.tp * dp_attention_size, memory.pp  # the server's --tp-size
    chunk, graph_bs = sglang_defaults(gpu, tp)
    frac = mem_fraction_static or default_mem_fraction_static(
        gpu,
        tp=tp,
        pp=pp,
        dp_attention_size=dp_attention_size,
        chunked_prefill_size=chunked_prefill_size,
        vlm_factor=vlm_factor,
    )
    total = gpu.memory_bytes

    def rank_pool(view: VllmMemoryReport) -> tuple[int, float, float, int | None]:
        """(pool tokens, KV bytes, weights GiB, mamba slots) of the rank `view` reads."""
        weights_gib = view.weights_gib - dp_sharded_gib * (1.0 - 1.0 / dp_attention_size)
        kv = total * frac * fraction_scale - weights_gib * GIB - view.non_torch_gib * GIB
        mamba_slots = None
        if mamba_bytes_per_request > 0 and kv > 0:
            share = MAMBA_FULL_MEMORY_RATIO / (1.0 + MAMBA_FULL_MEMORY_RATIO)
            mamba_slots = int(kv * share // mamba_bytes_per_request) // dp_attention_size
            kv -= mamba_slots * mamba_bytes_per_request
        per_token = view.kv_bytes_per_token_all_layers_per_gpu
        counted = per_token * counted_bytes_ratio
        tokens = int(kv // counted) // page_tokens * page_tokens if kv > 0 and per_token > 0 else 0
        return tokens, kv, weights_gib, mamba_slots

    # Every pipeline rank sizes its pool by this rule over its own layers and weights; a request keeps
    # its tokens on every rank, so the smallest pool is the server's: with `get_pp_indices`' split the
    # last stage's (the extra layers of an uneven split and the LM head).
    pools = [(rank_pool(view), view) for view in memory.stage_views()]
    (tokens, kv, weights_gib, mamba_slots), rank = min(pools, key=lambda p: (p[0][0], p[0][1]))
    per_token = rank.kv_bytes_per_token_all_layers_per_gpu
    flag = max_running_requests * dp_attention_size if max_running_requests else None
    slots = flag or min(max(int(tokens / max(context_len, 1) * 512), 2048), MAX_REQUEST_SLOTS)
    if mamba_slots is not None:
        slots = min(slots, mamba_slots // MAMBA_SLOTS_PER_RUNNING_REQUEST)
    running = min(max_running_requests or tokens // 2, slots)
    room, start_problem = 0.0, None
    left_gib = (1.0 - frac * fraction_scale) * total / GIB
    if mem_fraction_static is not None and left_gib <= rank.cuda_graph_gib:
        # SGLang allocates the pool first and captures its CUDA graphs, then runs activations, in what
        # the fraction leaves (`profile_max_num_token`: rest = available − total · (1 − fraction))
        graphs = f" (the graphs alone {rank.cuda_graph_gib:.1f} GiB)" if rank.cuda_graph_gib >= 0.05 else ""
        start_problem = (
            f"--mem-fraction-static {frac:g} leaves {max(left_gib, 0.0):.1f} GiB per GPU beside weights and "
            f"KV pool for CUDA graphs and activations{graphs}: SGLang runs out of memory at start-up (a "
            "lower fraction leaves room)"
        )
    if mem_fraction_static is None:  # what the smallest reservation of the chunked prefill would free
        least = default_mem_fraction_static(
            gpu,
            tp=tp,
            pp=pp,
            dp_attention_size=dp_attention_size,
            chunked_prefill_size=LEAST_RESERVED_CHUNK,
            vlm_factor=vlm_factor,
        )
        room = max(least - frac, 0.0) * fraction_scale * total / GIB
    return EngineKv(
        engine="sglang",
        rule=f"--mem-fraction-static {frac:.3f}",
        fraction=round(frac, 3),
        total_gib=total / GIB,
        weights_gib=weights_gib,
        kv_cache_gib=kv / GIB,
        kv_cache_tokens=tokens,
        block_size=page_tokens,
        kv_bytes_per_token_per_gpu=per_token,
        max_running=running,
        step_tokens=max(1, (chunked_prefill_size or chunk) // dp_attention_size),
        cuda_graph_max_batch=graph_bs,
        chunk_room_gib=room,
        start_problem=start_problem,
        nsa_backends=nsa_backends,
    )


def sglang_server_kv(
    model: ModelSpec,
    memory: VllmMemoryReport,
    gpu: GPU,
    config: ServingConfig,
    *,
    nsa_backends: tuple[str | None, str | None] = (None, None),
) -> EngineKv:
    """`sglang_kv` for the server `frameworks/sglang.py` launches for `config`: its attention-DP
    ranks, `--chunked-prefill-size`, `--max-running-requests` and `--mem-fraction-static` as the config
    sets them (None: SGLang's default)."""
    return sglang_kv(
        memory,
        gpu,
        context_len=config.max_model_len,
        mem_fraction_static=config.mem_fraction_static,
        dp_attention_size=dp_attention_size(config),
        chunked_prefill_size=config.max_num_batched_tokens,
        max_running_requests=config.max_num_seqs,
        nsa_backends=nsa_backends,
        dp_sharded_gib=dp_attention_sharded_gib(model, config),
        page_tokens=page_size(model, gpu),
        mamba_bytes_per_request=mamba_state_bytes(model, config.tp),
        vlm_factor=vlm_fraction_factor(model),
        fraction_scale=aiter_fraction_scale(
            model, gpu, config.tp * dp_attention_size(config), config.max_model_len
        ),
        counted_bytes_ratio=profiled_cell_ratio(
            model, sglang_stored_kv_dtype(model, gpu, config.kv_cache_dtype)
        ),
    )


def profiled_cell_ratio(model: ModelSpec, stored_kv_dtype: str) -> float:
    """Bytes SGLang 0.5.6 counts a token at when it sizes the pool, over the bytes it stores. Its
    `profile_max_num_token` divides the budget by (kv_lora_rank + qk_rope_head_dim) x element size
    (+ the indexer key) per MLA layer, but the NSA pool with an FP8 cache stores FlashMLA's FP8 layout
    (`NSATokenToKVPool`: scales, and the RoPE part in BF16; 656 B for V3.2 where 576 were counted). So
    that pool holds budget / (576 + 132) tokens a layer, and allocates 656 + 132 B for each: about
    11 % more than its budget. 1 for every other cache, where the two agree."""
    if not model.has_sparse_attention or not stored_kv_dtype.startswith("fp8"):
        return 1.0
    counted = stored = 0.0
    for layer in model.layers:
        a = layer.attention
        if a.kind is not AttentionKind.MLA:
            continue
        counted += a.kv_lora_rank + a.qk_rope_head_dim + a.indexer_key_bytes_per_token
        stored += a.kv_bytes_per_token_per_rank(1, 1)
    return counted / stored if stored else 1.0


AITER_LONG_CONTEXT = 8192
"""Context length above which SGLang 0.5.6 shrinks the static fraction on ROCm's aiter backend."""
AITER_FRACTION_SCALE = 0.85
"""What it multiplies `mem_fraction_static` by then (`_handle_attention_backend_compatibility`)."""
AITER_MLA_HEADS = (16, 128)
"""KV heads per rank (`get_num_kv_heads(tp_size)`) at which SGLang runs MLA on aiter on ROCm; Triton
otherwise."""


def aiter_fraction_scale(model: ModelSpec, gpu: GPU, server_tp: int, context_len: int) -> float:
    """The factor SGLang 0.5.6 applies to `--mem-fraction-static`, given or default, after reading it:
    0.85 on an AMD GPU when the attention backend is aiter (every non-MLA model; MLA at 16 or 128 KV
    heads per rank of the server's `--tp-size`) and the context is longer than 8,192 tokens
    (`_handle_attention_backend_compatibility`: "if model_config.context_len > 8192:
    self.mem_fraction_static *= 0.85"); else 1."""
    if gpu.vendor != "amd" or context_len <= AITER_LONG_CONTEXT:
        return 1.0
    if model.is_mla and max(1, model.num_kv_heads // server_tp) not in AITER_MLA_HEADS:
        return 1.0
    return AITER_FRACTION_SCALE
