"""What each serving engine can run: model architectures, checkpoint formats, KV-cache dtypes and
online quantization. The one place for the refusals `plan` (its runtime domain, hence the deployment
candidates and `--engine auto`) and `evaluate --engine` share.

- **vLLM** is the reference engine: its model registry covers the zoo but for Llama 3.2 Vision, and
  its own start-up checks are modelled elsewhere (memory/vllm_*.py). It drops architectures over
  releases: 0.32's registry (`_PREVIOUSLY_SUPPORTED_MODELS`) refuses each with "was supported in vLLM
  until v…, and is not supported anymore"; the encoder-decoder ones, Mllama among them, went with the
  V0 engine after 0.10.2 (`VLLM_REMOVED_ARCHITECTURES`, checked against the vLLM version planned for).
- **An architecture autoparallel does not know** (parsed by the generic llama-like fallback, named by no
  zoo card: `architecture_known`) is unverified on vLLM and SGLang, whose registries refuse what they
  lack at start-up (`REGISTRY_CHECKS`): the model card does not say they load it, and a plan runs them
  with `unverified_architecture_note`.
- **SGLang** (`python/sglang/srt/models`): every zoo architecture has an implementation there but
  BLOOM (no `bloom.py`); an architecture is refused only when it is known to be missing, so a hub
  model SGLang may run is never turned away. KV cache: SGLang 0.5.6 `--kv-cache-dtype`
  auto / bf16 / bfloat16 / fp8_e4m3 / fp8_e5m2 (its argument choices; `ModelRunner.init_memory_pool`),
  and DeepSeek Sparse Attention only over bf16 or fp8_e4m3 (`ServerArgs`: "DeepSeek NSA only supports
  bf16/bfloat16 or fp8_e4m3 kv_cache_dtype").
- **TensorRT-LLM**, PyTorch backend (`trtllm-serve --backend pytorch`, what frameworks/trtllm.py
  writes): the architectures of its supported-models list (`docs/source/models/supported-models.md`,
  both tables) that run on that backend, and the decoders its code registers
  (`TRTLLM_ARCHITECTURES`); those the list marks as AutoDeploy-only (Granite 3, DeepSeek-V2, ...)
  are not. It reads quantized checkpoints in ModelOpt format (`hf_quant_config.json`)
  or with a Hugging Face `quantization_config` of FP8 in 128 x 128 blocks or MXFP4
  (`ModelConfig.from_pretrained` / `load_hf_quant_config`), so GPTQ, AWQ, bitsandbytes and INT8
  checkpoints are not loaded, and it has no online weight quantization. FP8 weights or KV cache need
  FP8 tensor cores (its support matrix: Ampere runs FP32, FP16, BF16, INT8, INT4; SGLang and vLLM run
  FP8 weights there as Marlin W8A16 GEMMs, SGLang's `can_auto_enable_marlin_fp8`). NVFP4 needs FP4 tensor
  cores (Blackwell) in TensorRT-LLM and SGLang (their FP4 GEMMs are SM100 kernels; SGLang 0.5.6's
  `ModelOptNvFp4FusedMoEMethod` raises "Please use Blackwell and above"); vLLM runs it on
  older GPUs too, as W4A16 GEMMs (its FP4 Marlin kernels, SM75 on). KV cache:
  `kv_cache_config.dtype` auto / fp8 (E4M3); DeepSeek Sparse Attention on Hopper runs only over a
  BF16 cache (`_torch/modules/attention.py` sends every DSA token below SM100 through
  `forward_sparse_mla_kvcache_bf16`, whose FlashMLA kernel checks `kv.dtype() == kBFloat16`).
  It runs on NVIDIA GPUs only, Ampere and later (its supported-hardware list: Blackwell, Hopper, Ada
  Lovelace, Ampere; Volta and Turing are not on it).
- **DeepSeek Sparse Attention** (V3.2) needs sparse-MLA and indexer kernels that exist for few
  architectures. vLLM 0.32 has sparse MLA backends for compute capability 9.x (FlashMLA-Sparse,
  FlashAttention-MLA-Sparse, FlashInfer SM90), 10.x (FlashMLA-Sparse, FlashInfer) and, on ROCm,
  AITER's (`platforms/cuda.py` backend priorities, each backend's `supports_compute_capability`); none
  below 9.0. SGLang 0.5.6's NSA backend computes the indexer with DeepGEMM (`nsa_indexer.py`:
  `fp8_mqa_logits`, `fp8_paged_mqa_logits`; DeepGEMM runs on SM90 and SM100) and attention with
  FlashMLA or FlashAttention-3 (Hopper, Blackwell); its AMD path needs `--nsa-*-backend aiter`, which
  the emitters never pass and the step model does not price. TensorRT-LLM's DSA runs FlashMLA on
  Hopper and its own kernels on Blackwell. So: Hopper and Blackwell for every engine, and AMD CDNA3
  for vLLM.
- **Quantized checkpoints** need a least compute capability, each engine's `get_min_capability` of the
  format's config, checked at start-up ("The quantization method ... is not supported for the current
  GPU. Minimum capability: ..."; vLLM 0.32 `config/vllm.py`, SGLang 0.5.6 `model_loader/loader.py`):
  vLLM FP8 7.5 (`Fp8Config`, also `--quantization fp8` online), ModelOpt FP8 8.0, AWQ 7.5, MXFP4
  8.0, GPTQ 7.5 (`AutoGPTQConfig.get_min_capability` says 6.0, but 0.32 runs GPTQ on Marlin only:
  `AutoGPTQLinearMethod.__init__` calls `verify_marlin_supported`, and `marlin_utils.
  query_marlin_supported_quant_types` returns no type below 7.5), INT8 W8A8 7.5
  (`CompressedTensorsW8A8Int8.get_min_capability`, checked per scheme by `CompressedTensorsConfig.
  _check_scheme_supported`); SGLang FP8 8.0 (8.9 for MoE experts: `_sglang_fp8_moe_problem`),
  ModelOpt FP8 8.9, AWQ 7.5, GPTQ 6.0 (`GPTQConfig`), MXFP4 8.0, INT8 W8A8 8.9 (0.5.6
  `CompressedTensorsW8A8Int8.get_min_capability`: 89, "lovelace and up"). A pre-quantized checkpoint is
  held to its own format's floor whatever `--quantization` names it (a name that contradicts it is
  refused by `vllm_config.checkpoint_quantization`). A compressed-tensors checkpoint is held to its
  scheme's floor (`CompressedTensorsConfig._check_scheme_supported(scheme.get_min_capability())`):
  weight-only INT4/INT8 (`CompressedTensorsWNA16`) 7.5 in vLLM, 8.0 ("ampere and up") in SGLang;
  SGLang's `CompressedTensorsW8A8Int8` 8.9 ("lovelace and up"), its `CompressedTensorsW8A8Fp8` 8.9
  too, but it falls back to `CompressedTensorsW8A16Fp8` (8.0) below that, so FP8 keeps 8.0 (the MoE
  experts aside). SGLang's compressed-tensors loader takes weight-only INT 4 or 8 bits, symmetric
  only (`_is_wNa16_group_channel`, `WNA16_SUPPORTED_BITS`; else "No compressed-tensors compatible
  scheme was found"), where vLLM's `CompressedTensorsWNA16` takes 2 to 8 bits with zero points, and
  none of vLLM's GPTQ-Marlin rules (`_vllm_gptq_problem`). TensorRT-LLM's MXFP4
  experts run on Blackwell (its TRTLLM MoE backend) and Hopper (TRITON) only (its GPT-OSS deployment
  guide's MoE-backend support matrix): 9.0. NVFP4 has its own rule above.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from autoparallel.hardware.gpu import ARCH_COMPUTE_CAPABILITY
from autoparallel.models.parse_quant import is_compressed_tensors

if TYPE_CHECKING:
    from autoparallel.hardware import GPU
    from autoparallel.models.spec import ModelSpec

ENGINE_NAMES = {"vllm": "vLLM", "sglang": "SGLang", "trtllm": "TensorRT-LLM"}
VLLM_REMOVED_ARCHITECTURES: dict[str, str] = {
    "AquilaForCausalLM": "0.24.0",
    "AquilaModel": "0.24.0",
    "ArcticForCausalLM": "0.28.0",
    "AyaVisionForConditionalGeneration": "0.24.0",
    "BaiChuanForCausalLM": "0.23.0",
    "BaichuanForCausalLM": "0.23.0",
    "BambaForCausalLM": "0.23.0",
    "ChameleonForConditionalGeneration": "0.28.0",
    "Dots1ForCausalLM": "0.23.0",
    "Fairseq2LlamaForCausalLM": "0.28.0",
    "FuyuForCausalLM": "0.25.0",
    "Grok1ForCausalLM": "0.24.0",
    "Grok1ModelForCausalLM": "0.24.0",
    "HCXVisionForCausalLM": "0.28.0",
    "InternLM2VEForCausalLM": "0.23.0",
    "InternLMForCausalLM": "0.23.0",
    "JAISLMHeadModel": "0.22.0",
    "MPTForCausalLM": "0.28.0",
    "MiniMaxForCausalLM": "0.23.0",
    "MiniMaxM1ForCausalLM": "0.23.0",
    "MiniMaxText01ForCausalLM": "0.23.0",
    "MiniMaxVL01ForConditionalGeneration": "0.23.0",
    "MllamaForConditionalGeneration": "0.10.2",
    "MotifForCausalLM": "0.10.2",
    "MptForCausalLM": "0.28.0",
    "OuroForCausalLM": "0.26.0",
    "PersimmonForCausalLM": "0.25.0",
    "Phi3SmallForCausalLM": "0.9.2",
    "Phi4FlashForCausalLM": "0.10.2",
    "Phi4MultimodalForCausalLM": "0.12.0",
    "Plamo2ForCausalLM": "0.26.0",
    "QWenLMHeadModel": "0.23.0",
    "QwenVLForConditionalGeneration": "0.23.0",
    "RWForCausalLM": "0.28.0",
    "StableLMEpochForCausalLM": "0.28.0",
    "TeleChatForCausalLM": "0.25.0",
    "XverseForCausalLM": "0.23.0",
}
"""Generative architectures vLLM ran and dropped, with the last release that ran each (vLLM 0.32's
`_PREVIOUSLY_SUPPORTED_MODELS`; pooling, speech and geospatial entries left out)."""
SGLANG_UNSUPPORTED_ARCHS = ("volta",)
"""NVIDIA architectures SGLang 0.5.6 refuses at start-up (`ModelRunner.load_model`: "SGLang only supports
sm75 and above."). Below SM80 it runs every model in float16 (no bfloat16), the same 2 bytes."""
TRTLLM_UNSUPPORTED_ARCHS = ("volta", "turing")
"""NVIDIA architectures older than TensorRT-LLM's supported-hardware list (Ampere, Ada Lovelace, Hopper,
Blackwell); an architecture this list does not know (a custom GPU file's) is not refused."""
SPARSE_ATTENTION_ARCHS: dict[str, tuple[str, ...]] = {
    "vllm": ("hopper", "blackwell", "cdna3"),
    "sglang": ("hopper", "blackwell"),
    "trtllm": ("hopper", "blackwell"),
}
"""GPU architectures each engine runs DeepSeek Sparse Attention on (module docstring)."""
ARCH_NAMES = {"hopper": "Hopper", "blackwell": "Blackwell", "cdna3": "AMD CDNA3"}
QUANT_MIN_CAPABILITY: dict[str, dict[str, int]] = {
    "vllm": {
        "fp8": 75,
        "modelopt_fp8": 80,
        "awq": 75,
        "gptq": 75,
        "mxfp4": 80,
        "int8": 75,
        "ct_wna16": 75,
        "ct_w8a16_int8": 75,
    },
    "sglang": {
        "fp8": 80,
        "modelopt_fp8": 89,
        "awq": 75,
        "gptq": 60,
        "mxfp4": 80,
        "int8": 89,
        "ct_wna16": 80,
        "ct_w8a16_int8": 80,
    },
    "trtllm": {"mxfp4": 90},
}
"""Least compute capability of each engine's config for a weight format (module docstring); `ct_*`:
a compressed-tensors checkpoint's weight-only schemes (`CompressedTensorsWNA16`), `int8` its W8A8 INT8
one (`CompressedTensorsW8A8Int8`; INT8 comes only from compressed-tensors)."""
SGLANG_AMD_NO_MXFP4_ARCHS = ("cdna", "cdna2", "cdna3")
"""AMD architectures SGLang 0.5.6 has no MXFP4 method on: `QUANTIZATION_METHODS` gains "mxfp4" on ROCm
only where `mxfp_supported()` (a gfx95x ISA, CDNA4: MI350, MI355); on CDNA3 (gfx942: MI300X, MI325X)
an MXFP4 checkpoint such as gpt-oss's is "Unknown quantization method: mxfp4" at start-up. A custom
GPU of another architecture is given the benefit of the doubt."""
QUANT_NAMES = {
    "fp8": "FP8",
    "modelopt_fp8": "ModelOpt FP8",
    "awq": "AWQ",
    "gptq": "GPTQ",
    "mxfp4": "MXFP4",
    "int8": "INT8 W8A8",
    "ct_wna16": "compressed-tensors weight-only INT (WNA16)",
    "ct_w8a16_int8": "compressed-tensors INT8 W8A16",
}
ENGINE_KV_CACHE_DTYPES: dict[str, tuple[str, ...]] = {
    "sglang": ("auto", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2"),
    "trtllm": ("auto", "fp8", "fp8_e4m3"),
}
"""KV-cache dtypes (vLLM's spelling) each engine other than vLLM can store. SGLang 0.5.6's
`--kv-cache-dtype` choices are auto, fp8_e5m2, fp8_e4m3, bf16, bfloat16 and fp4_e2m1 (not planned);
`bfloat16` overrides a checkpoint's declared FP8 cache (`ModelRunner.init_memory_pool`)."""
SGLANG_SPARSE_KV_CACHE_DTYPES = ("auto", "bfloat16", "fp8", "fp8_e4m3")
"""KV-cache dtypes SGLang runs DeepSeek Sparse Attention with: bf16 (`auto` on Hopper, or `bfloat16`)
or fp8_e4m3."""
SGLANG_DP_ATTENTION_ARCHITECTURES = frozenset(
    {
        "BailingMoEForCausalLM",
        "BailingMoeForCausalLM",
        "BailingMoeV2ForCausalLM",
        "DeepseekV2ForCausalLM",
        "DeepseekV3ForCausalLM",
        "DeepseekV32ForCausalLM",
        "Glm4MoeForCausalLM",
        "GptOssForCausalLM",
        "Llama4ForCausalLM",
        "Llama4ForConditionalGeneration",
        "LongcatFlashForCausalLM",
        "MiniMaxM2ForCausalLM",
        "PhiMoEForCausalLM",
        "Qwen2MoeForCausalLM",
        "Qwen3MoeForCausalLM",
        "Qwen3NextForCausalLM",
        "Step3VLForConditionalGeneration",
    }
)
"""Mixture-of-experts architectures whose SGLang 0.5.6 model code runs attention data parallelism
(`--enable-dp-attention`): those that shard attention by the attention-TP size
(`get_attention_tp_size`, `LayerCommunicator`). Mixtral, OLMoE, Grok and DBRX do not: their attention
stays tensor-parallel over the whole server, so their experts are shared by one TP engine only."""
SGLANG_PP_ARCHITECTURES = frozenset(
    {
        "ApertusForCausalLM",
        "ArceeForCausalLM",
        "BailingMoEForCausalLM",
        "BailingMoeForCausalLM",
        "BailingMoeV2ForCausalLM",
        "DeciLMForCausalLM",
        "DeepseekV2ForCausalLM",
        "DeepseekV32ForCausalLM",
        "DeepseekV3ForCausalLM",
        "DotsVLMForCausalLM",
        "Glm4ForCausalLM",
        "Glm4MoeForCausalLM",
        "GptOssForCausalLM",
        "InternLM3ForCausalLM",
        "KimiLinearForCausalLM",
        "LLaDA2MoeModelLM",
        "Llama4ForCausalLM",
        "LlamaForCausalLM",
        "LlavaForConditionalGeneration",
        "Mistral3ForConditionalGeneration",
        "MistralForCausalLM",
        "MixtralForCausalLM",
        "NemotronHForCausalLM",
        "OPTForCausalLM",
        "Phi3ForCausalLM",
        "Qwen2ForCausalLM",
        "Qwen2MoeForCausalLM",
        "Qwen2_5_VLForConditionalGeneration",
        "Qwen3ForCausalLM",
        "Qwen3MoeForCausalLM",
        "TeleFLMForCausalLM",
    }
)
"""Architectures SGLang 0.5.6 runs with pipeline stages (`--pp-size`): those whose model class's
`forward` takes `pp_proxy_tensors` (`ModelRunner`: "Pipeline Parallel is not compatible with this
model." otherwise; Mistral 3 delegates to LLaVA's). Gemma, Granite, Phi-2, GPT-2, Llama 4's multimodal
class, Qwen3-Next and the Transformers fallback (GPT-NeoX) are not among them."""
SGLANG_MISSING_ARCHITECTURES = frozenset({"BloomForCausalLM"})
"""Architectures SGLang has no implementation of (known ones; others are not refused)."""
VLLM_FP4_MARLIN_ARCHS = ("turing", "ampere", "ada", "hopper")
"""GPU architectures without FP4 tensor cores where vLLM still runs NVFP4 weights: its FP4 Marlin
kernels (W4A16); 0.32 `marlin_utils_fp4.is_fp4_marlin_supported`: CUDA, compute capability 7.5 and up."""
TRTLLM_ARCHITECTURES = frozenset(
    {
        "AfmoeForCausalLM",
        "BertForSequenceClassification",
        "Cohere2ForCausalLM",
        "Cosmos3ForConditionalGeneration",
        "DeciLMForCausalLM",
        "DeepseekV32ForCausalLM",
        "DeepseekV3ForCausalLM",
        "DeepseekV4ForCausalLM",
        "Exaone4ForCausalLM",
        "Exaone4_5_ForConditionalGeneration",
        "ExaoneMoEForCausalLM",
        "Gemma3ForCausalLM",
        "Gemma3ForConditionalGeneration",
        "Gemma4ForCausalLM",
        "Gemma4ForConditionalGeneration",
        "Gemma4UnifiedForConditionalGeneration",
        "Glm4MoeForCausalLM",
        "GlmMoeDsaForCausalLM",
        "GptOssForCausalLM",
        "HCXVisionForCausalLM",
        "HunYuanDenseV1ForCausalLM",
        "HunYuanMoEV1ForCausalLM",
        "KimiK25ForConditionalGeneration",
        "KimiK3ForConditionalGeneration",
        "KimiLinearForCausalLM",
        "LagunaForCausalLM",
        "Llama4ForConditionalGeneration",
        "LlamaForCausalLM",
        "LlavaLlamaModel",
        "LlavaNextForConditionalGeneration",
        "MiniCPMV4_6ForConditionalGeneration",
        "MiniMaxM2ForCausalLM",
        "MiniMaxM3SparseForCausalLM",
        "MiniMaxM3SparseForConditionalGeneration",
        "Mistral3ForConditionalGeneration",
        "MistralForCausalLM",
        "MistralLarge3ForCausalLM",
        "MixtralForCausalLM",
        "MllamaForConditionalGeneration",
        "NemotronForCausalLM",
        "NemotronHForCausalLM",
        "NemotronHPuzzleForCausalLM",
        "NemotronH_Nano_Omni_Reasoning_V3",
        "NemotronH_Nano_VL_V2",
        "NemotronNASForCausalLM",
        "Phi3ForCausalLM",
        "Phi4MMForCausalLM",
        "PixtralForConditionalGeneration",
        "Qwen2ForCausalLM",
        "Qwen2ForProcessRewardModel",
        "Qwen2ForRewardModel",
        "Qwen2MoeForCausalLM",
        "Qwen2VLForConditionalGeneration",
        "Qwen2_5_VLForConditionalGeneration",
        "Qwen3ForCausalLM",
        "Qwen3MoeForCausalLM",
        "Qwen3NextForCausalLM",
        "Qwen3VLForConditionalGeneration",
        "Qwen3VLMoeForConditionalGeneration",
        "Qwen3_5ForCausalLM",
        "Qwen3_5ForConditionalGeneration",
        "Qwen3_5MoeForCausalLM",
        "Qwen3_5MoeForConditionalGeneration",
        "SeedOssForCausalLM",
        "Starcoder2ForCausalLM",
        "Step3p5ForCausalLM",
        "Step3p7ForConditionalGeneration",
    }
)
"""Architectures TensorRT-LLM's PyTorch backend runs: its supported-models list (AutoDeploy-only
entries left out) and the decoder models its code registers (`@register_auto_model`, indexed in
`_torch/models/_arch_index.py` `MODEL_ARCH_TO_MODULE`; speculative drafts, vision towers, encoders
and encoder-decoders left out). The list alone missed registered ones: Qwen2-MoE
(`modeling_qwen_moe.py`, Qwen1.5-MoE's architecture), StarCoder 2, Seed-OSS, Hunyuan, Kimi Linear."""


REGISTRY_CHECKS = {
    "vllm": "vllm/model_executor/models/registry.py `_ModelRegistry._raise_for_unsupported`",
    "sglang": "sglang/srt/models/registry.py `_ModelRegistry._raise_for_unsupported`",
}
"""Where vLLM and SGLang refuse, at start-up, an architecture their model registry lacks ("Model
architectures [...] are not supported for now"). Their registries are not copied here: an architecture
autoparallel does not know (`architecture_known`) is said to be unverified on them
(`unverified_architecture_note`), not refused."""


@cache
def _zoo_architectures() -> frozenset[str]:
    """The `architectures[0]` of every zoo card: architectures the zoo's tests run the engines' own
    start-up code over (tests/frameworks/test_sglang_checker.py, test_vllm_checker.py), whichever parse
    reads them (Granite's `granite` has no family of its own and is parsed by the generic fallback)."""
    from autoparallel.models.zoo import list_models

    names = (entry.config.get("architectures") for entry in list_models())
    return frozenset(n[0] for n in names if isinstance(n, list) and n and isinstance(n[0], str))


def architecture_known(model: ModelSpec) -> bool:
    """autoparallel knows `model`'s architecture: a zoo card names it (`_zoo_architectures`), or a
    family of ours parsed its `model_type` (`models.parse.known_family`) and the name is one of that
    family's generators (`_family_generator`)."""
    from autoparallel.models.parse import known_family

    arch = model.architecture
    if arch in _zoo_architectures():
        return True
    return known_family(model.model_type) and _family_generator(arch, model.model_type)


_GENERATE_SUFFIXES = ("ForCausalLM", "LMHeadModel", "ChatModel")


def _family_generator(arch: str, model_type: str) -> bool:
    """`arch` names a generator of the family that parsed `model_type`: none named (the family's rules
    are all there is to go on), a multimodal wrapper around the family's text model (`*ForConditional
    Generation`: Llava, Qwen2-VL, ...), a zoo card's of the same family, or the family's own
    `<ModelType>ForCausalLM` (Starcoder2ForCausalLM for `starcoder2`). Another name (FooForCausalLM
    with model_type llama) is the family's parse of a class vLLM may not have."""
    if not arch or arch.endswith("ForConditionalGeneration") or arch in _family_architectures(model_type):
        return True
    stem = next((arch.removesuffix(s) for s in _GENERATE_SUFFIXES if arch.endswith(s)), None)
    return stem is not None and stem.lower() == model_type.removesuffix("_text").replace("_", "")


@cache
def _family_architectures(model_type: str) -> frozenset[str]:
    """The `architectures[0]` of the zoo cards whose (text) model_type is `model_type`."""
    from autoparallel.models.zoo import list_models

    out = set()
    for entry in list_models():
        names = entry.config.get("architectures")
        first = names[0] if isinstance(names, list) and names else None
        if isinstance(first, str) and entry.spec().model_type == model_type:
            out.add(first)
    return frozenset(out)


def unverified_architecture_note(model: ModelSpec) -> str | None:
    """The note a plan (text and JSON) carries for a model whose architecture autoparallel does not
    know (`architecture_known` false): the generic llama-like fallback parsed it, or a family of ours
    parsed a class name that is none of the family's generators. Whether vLLM and SGLang load it is
    unverified. None for a known architecture."""
    if architecture_known(model):
        return None
    arch = model.architecture or "(no `architectures` named)"
    return (
        f"architecture {arch} (model_type {model.model_type!r}) is {_unknown_how(model)}: vLLM and "
        "SGLang load it only if their model registries have it, and refuse it at start-up otherwise "
        f"({REGISTRY_CHECKS['vllm']}; {REGISTRY_CHECKS['sglang']})"
    )


def _unknown_how(model: ModelSpec) -> str:
    from autoparallel.models.parse import known_family

    if known_family(model.model_type):
        return f"no {model.model_type} generator autoparallel knows (parsed by the {model.model_type} rules)"
    return "unknown to autoparallel (parsed as a generic llama-like decoder)"


def _unverified_problem(engine: str, model: ModelSpec) -> str | None:
    """`engine_model_problem`'s line for vLLM or SGLang and an architecture autoparallel does not know
    (`unverified_architecture_note`); None for a known architecture or another engine."""
    if engine not in REGISTRY_CHECKS or unverified_architecture_note(model) is None:
        return None
    name, arch = ENGINE_NAMES[engine], model.architecture or "(no `architectures` named)"
    return (
        f"{name}: unverified: {arch} (model_type {model.model_type!r}) is no architecture autoparallel "
        f"knows; {name} loads it only if its model registry has it ({REGISTRY_CHECKS[engine]})"
    )


def engine_model_problem(
    engine: str, model: ModelSpec, vllm_version: str | None = None, *, unverified: bool = True
) -> str | None:
    """Why `engine` cannot load `model`'s checkpoint at all (None: it can); `vllm_version`: the vLLM
    release planned for (None: the one the memory model defaults to). With `unverified` (the model
    card), vLLM and SGLang are not said to load an architecture autoparallel does not know either
    (`_unverified_problem`); `engine_runtime_problem` leaves those out (`unverified=False`): a plan runs
    them with `unverified_architecture_note`."""
    problem = _engine_model_problem(engine, model, vllm_version)
    if problem is None and unverified:
        return _unverified_problem(engine, model)
    return problem


def _engine_model_problem(engine: str, model: ModelSpec, vllm_version: str | None) -> str | None:
    """`engine_model_problem`'s refusals known from the engines' code."""
    name, arch = ENGINE_NAMES.get(engine, engine), model.architecture or "(none named)"
    if engine == "vllm":
        return _vllm_removed_problem(model, vllm_version) or _vllm_gptq_problem(model, vllm_version)
    if engine == "sglang" and model.architecture in SGLANG_MISSING_ARCHITECTURES:
        return f"{name} has no implementation of {arch} ({model.name})"
    if engine == "sglang":
        return _sglang_compressed_tensors_problem(model)
    if engine != "trtllm":
        return None
    if model.architecture not in TRTLLM_ARCHITECTURES:
        return f"{name}'s PyTorch backend does not run architecture {arch} ({model.name})"
    q = model.quantization
    if q is None or q.source.startswith("ModelOpt") or q.method.value == "mxfp4":
        return None
    if q.method.value == "fp8" and (q.block_n, q.block_k) == (128, 128):
        return None
    if q.method.value == "modelopt_fp4":
        return f"{name} reads NVFP4 only as a ModelOpt checkpoint (hf_quant_config.json), not {q.source}"
    return (
        f"{name} does not load {q.method.value} checkpoints ({model.name}; it reads ModelOpt, FP8 "
        "128x128-block and MXFP4 ones)"
    )


SGLANG_WNA16_BITS = (4, 8)
"""Weight widths SGLang 0.5.6's compressed-tensors `CompressedTensorsWNA16` takes
(`WNA16_SUPPORTED_BITS`: uint4b8, uint8b128; no zero-point types)."""


def _sglang_compressed_tensors_problem(model: ModelSpec) -> str | None:
    """Why SGLang 0.5.6 finds no scheme for `model`'s compressed-tensors weight-only INT checkpoint
    (None: it does, or the checkpoint is another format). `CompressedTensorsConfig.
    _get_scheme_from_parts` sends weight-only channel- or group-wise INT weights to
    `CompressedTensorsWNA16` only when `_is_wNa16_group_channel` holds, which requires
    `weight_quant.symmetric`, and only for 4 or 8 bits; anything else falls through to "No
    compressed-tensors compatible scheme was found" (its MoE method asserts "Only symmetric
    quantization is supported for MoE"). vLLM's `CompressedTensorsWNA16` takes zero points."""
    q = model.quantization
    if q is None or not is_compressed_tensors(q):
        return None
    if model.is_moe and q.method.value == "int8":  # `CompressedTensorsMoEMethod.get_moe_method`
        return (
            f"SGLang does not load compressed-tensors INT8 W8A8 MoE experts ({model.name}): its fused-MoE "
            'method takes WNA16 or FP8 W8A8 only ("Unsupported FusedMoe scheme"); plan for vLLM '
            "(--engine vllm)"
        )
    if q.method.value != "gptq":
        return None
    if not q.symmetric:
        return (
            f"SGLang does not load asymmetric compressed-tensors INT{q.bits} weights ({model.name}: "
            "symmetric: false): its WNA16 scheme takes symmetric ones only (`_is_wNa16_group_channel`); "
            "plan for vLLM (--engine vllm)"
        )
    if q.bits not in SGLANG_WNA16_BITS:
        return (
            f"SGLang does not load {q.bits}-bit compressed-tensors INT weights ({model.name}): its WNA16 "
            "scheme takes 4 or 8 bits (`WNA16_SUPPORTED_BITS`); plan for vLLM (--engine vllm)"
        )
    return None


def nixl_role_problem(model: ModelSpec, pp: int, role: str) -> str | None:
    """Why vLLM 0.32's NIXL connector refuses a disaggregated `role` engine ("prefill" / "decode") of
    `pp` pipeline stages (None: it runs). `NixlConnector`, what the P/D launches name, is the pull
    connector; `NixlBaseConnectorWorker.__init__` (nixl/base_worker.py) raises NotImplementedError for
    pp > 1 on the decode side ("consumer (decode) does not support pipeline_parallel_size > 1") and for
    pp > 1 with a hybrid KV layout in either role (HMA: a sliding-window, chunked or linear-attention
    layer beside full ones; Mamba/SSM layers)."""
    if pp <= 1:
        return None
    if role == "decode":
        return f"pp={pp}: vLLM's NIXL connector runs decode engines without pipeline stages"
    hybrid = {"sliding", "chunked", "linear"} & {layer.attention.kind.value for layer in model.layers}
    if hybrid:
        return (
            f"pp={pp}: vLLM's NIXL pull connector runs no pipeline stages over a hybrid KV layout "
            f"({', '.join(sorted(hybrid))} layers)"
        )
    return None


def _vllm_gptq_problem(model: ModelSpec, vllm_version: str | None) -> str | None:
    """Why vLLM `vllm_version` cannot load `model`'s GPTQ checkpoint (None: it can). vLLM 0.32 runs
    GPTQ on Marlin kernels only (`AutoGPTQConfig.TYPE_MAP`: 4- and 8-bit, symmetric: "Unsupported
    quantization config: bits=..., sym=..."; the exllama kernels for 2/3-bit and zero points went
    with vLLM PR #37770), and without group activation ordering: `AutoGPTQConfig.__init__` (and
    `MoeWNA16Config`'s) calls `normalize_and_validate_gptq_desc_act` (`quantization/utils/
    gptq_utils.py`), which raises "GPTQ group activation ordering (desc_act=True) is no longer
    supported" for `desc_act` with a `group_size` other than -1 (with one group per channel the order
    is a no-op and is dropped); the g_idx kernels went with vLLM PR #54809 (opened 2026-09-01, after
    0.27.0 of 2026-08-11). Both checked for 0.32 and later only: the releases that dropped them are
    not pinned."""
    q = model.quantization
    if q is None or q.method.value != "gptq" or is_compressed_tensors(q):
        return None  # compressed-tensors INT weights load through `CompressedTensorsWNA16`, not GPTQ
    from autoparallel.memory.vllm_versions import DEFAULT_VLLM_VERSION, parse_vllm_version

    text = vllm_version or DEFAULT_VLLM_VERSION
    if not parse_vllm_version(text).at_least(32):
        return None
    if not (q.bits in (4, 8) and q.symmetric):
        shape = f"{q.bits}-bit{'' if q.symmetric else ' asymmetric'}"
        return (
            f"vLLM {text} does not load {shape} GPTQ weights ({model.name}): its Marlin GPTQ kernels take "
            "4- or 8-bit symmetric ones; plan for SGLang (--engine sglang)"
        )
    # QuantSpec.act_order: `desc_act` with a group size other than -1, in the config or a `dynamic`
    # rule, as models/parse_quant.py reads it.
    if q.act_order:
        return (
            f"vLLM {text} does not load GPTQ checkpoints with group activation ordering ({model.name}: "
            'desc_act with grouped scales): `normalize_and_validate_gptq_desc_act` refuses them ("GPTQ '
            'group activation ordering (desc_act=True) is no longer supported"); plan for SGLang '
            "(--engine sglang)"
        )
    return None


def _vllm_removed_problem(model: ModelSpec, vllm_version: str | None) -> str | None:
    """Why the vLLM release `vllm_version` no longer runs `model`'s architecture (None: it does)."""
    last = VLLM_REMOVED_ARCHITECTURES.get(model.architecture or "")
    if last is None:
        return None
    from autoparallel.memory.vllm_versions import DEFAULT_VLLM_VERSION, parse_vllm_version

    text = vllm_version or DEFAULT_VLLM_VERSION
    if parse_vllm_version(text).key <= parse_vllm_version(last).key:
        return None
    return (
        f"vLLM {text} does not run {model.architecture} ({model.name}): vLLM ran it until v{last}; "
        "plan for SGLang or TensorRT-LLM (--engine), or size an older vLLM with `memory --vllm-version`"
    )


def engine_runtime_problem(
    engine: str,
    quantization: str | None,
    kv_cache_dtype: str,
    model: ModelSpec | None = None,
    gpu: GPU | None = None,
    vllm_version: str | None = None,
) -> str | None:
    """Why `engine` cannot run `model` on `gpu` at these precisions (None: it can), in this order: the
    checkpoint itself (`engine_model_problem`; `vllm_version` as there), online quantization not
    planned (`vllm_config.online_quant_problem`), the GPU (`engine_gpu_problem`),
    NVFP4 without FP4 tensor cores or Marlin, a weight format below its least compute capability,
    vLLM's dtype rules (`vllm_config.dtype_problem`), the KV-cache dtype (`kv_dtype_problem` and each
    engine's own), or TensorRT-LLM asked to quantize online (a `quantization` equal to the
    checkpoint's own method is the checkpoint as loaded)."""
    name = ENGINE_NAMES.get(engine, engine)
    if model is not None and (problem := engine_model_problem(engine, model, vllm_version, unverified=False)):
        return problem
    if model is not None and engine != "trtllm":
        from autoparallel.memory.vllm_config import online_quant_problem

        if (problem := online_quant_problem(model, quantization, engine)) is not None:
            return problem
    if gpu is not None and (problem := engine_gpu_problem(engine, gpu, model)) is not None:
        return problem
    q = model.quantization if model is not None else None
    if q is not None and q.method.value == "modelopt_fp4" and gpu is not None and not gpu.fp4_tflops:
        if engine != "vllm":
            return f"{name} runs NVFP4 checkpoints only with FP4 tensor cores (Blackwell), not on {gpu.name}"
        if gpu.arch not in VLLM_FP4_MARLIN_ARCHS:
            return f"vLLM runs NVFP4 on FP4 tensor cores or FP4 Marlin kernels (SM75 on), not on {gpu.name}"
    least = quant_capability_problem(engine, quantization, model, gpu) if gpu is not None else None
    if least is not None:
        return least
    if engine == "vllm":
        if gpu is None or model is None:
            return None
        from autoparallel.memory.vllm_config import dtype_problem

        return dtype_problem(model, gpu, "auto", quantization) or kv_dtype_problem(
            engine, model, kv_cache_dtype, gpu, vllm_version
        )
    if kv_cache_dtype not in ENGINE_KV_CACHE_DTYPES[engine]:
        return f"{name} has no KV-cache dtype {kv_cache_dtype!r}"
    if gpu is not None and (problem := kv_dtype_problem(engine, model, kv_cache_dtype, gpu)) is not None:
        return problem
    if engine == "trtllm" and gpu is not None and not gpu.fp8_tflops:
        from autoparallel.memory.vllm_config import checkpoint_kv_dtype

        # Past the dtype check the cache is auto (the model's or the checkpoint's declared dtype) or FP8.
        kv = checkpoint_kv_dtype(model, kv_cache_dtype) if model is not None else kv_cache_dtype
        what = "FP8 weights" if q is not None and q.method.value == "fp8" else None
        what = what or ("an FP8 KV cache" if kv != "auto" else None)
        if what is not None:
            return f"{name} runs {what} only on GPUs with FP8 tensor cores (Ada and later), not on {gpu.name}"
    sparse = model is not None and model.has_sparse_attention
    if engine == "sglang" and sparse and kv_cache_dtype not in SGLANG_SPARSE_KV_CACHE_DTYPES:
        return (
            f"{name} runs DeepSeek Sparse Attention only with a bf16 or fp8_e4m3 KV cache, "
            f"not {kv_cache_dtype!r}"
        )
    hopper = gpu is not None and gpu.arch == "hopper"
    if engine == "trtllm" and sparse and hopper and kv_cache_dtype != "auto":
        return (
            f"{name} runs DeepSeek Sparse Attention on Hopper only over a BF16 KV cache "
            f"(FlashMLA's BF16 sparse kernel), not {kv_cache_dtype!r}"
        )
    if engine == "trtllm" and quantization is not None and _quantizes_online(model, quantization):
        return (
            f"{name} does not quantize weights online (--quantization {quantization}); "
            "use a quantized checkpoint"
        )
    return None


def _quantizes_online(model: ModelSpec | None, quantization: str) -> bool:
    """`quantization` asks for online weight quantization: the checkpoint is not quantized, or it is
    not a name of the checkpoint's own format (`vllm_config.checkpoint_quant_names`)."""
    from autoparallel.memory.vllm_config import checkpoint_quant_names

    q = model.quantization if model is not None else None
    return q is None or quantization.lower() not in checkpoint_quant_names(q)


FLASHINFER_HEAD_SIZES = (64, 128, 256, 512)
"""Head sizes vLLM 0.32's FlashInfer backend takes (`FlashInferBackend.get_supported_head_sizes`)."""
ATTENTION_SINK_MODEL_TYPES = ("gpt_oss",)
"""Models with attention sinks, which vLLM 0.32's FlashInfer backend serves only through TensorRT-LLM's
kernels on SM90, SM100 and SM120 (`FlashInferBackend.supports_sink`)."""
REMOTE_CONFIG_MODEL_TYPES = frozenset({"kimi_k2"})
"""`model_type`s of zoo families whose config class is the checkpoint's own code (its `auto_map`), which
an engine reading configs through transformers runs only with `trust_remote_code`. Kimi-K2's
`kimi_k2` is the one: transformers 4.57.1 (SGLang 0.5.6's pin) and 5.x have no such type, SGLang's own
config registry neither, and TensorRT-LLM's Kimi K2 Thinking deployment guide sets
`trust_remote_code: true`; vLLM 0.32 maps it onto DeepseekV3Config itself. DeepSeek-V3.2's
`deepseek_v32` SGLang reads as `deepseek_v3` (`_load_deepseek_v32_model`).
tests/frameworks/test_sglang_checker.py runs SGLang's start-up code over every zoo model's line."""
REMOTE_CONFIG_ENGINES = ("sglang", "trtllm")
"""Engines that need `trust_remote_code` for the `REMOTE_CONFIG_MODEL_TYPES`."""
REMOTE_TOKENIZER_MODEL_TYPES = frozenset({"kimi_k2"})
"""`model_type`s whose tokenizer is the checkpoint's own code: Kimi-K2's `tokenizer_config.json` names
`TikTokenTokenizer` through `auto_map` (`tokenization_kimi.py`), a class transformers does not have, so
every engine loading it through `AutoTokenizer` needs `trust_remote_code` (vLLM 0.32
`tokenizers/hf.py` `CachedHfTokenizer.from_pretrained` passes `--trust-remote-code` on, and its
tokenizer registry has no Kimi-K2 mode), although vLLM reads the config itself."""


def needs_remote_code(engine: str, model: ModelSpec | None) -> bool:
    """`engine` reads `model`'s config (`REMOTE_CONFIG_MODEL_TYPES`) or tokenizer
    (`REMOTE_TOKENIZER_MODEL_TYPES`) only with `trust_remote_code`."""
    if model is None:
        return False
    config = engine in REMOTE_CONFIG_ENGINES and model.model_type in REMOTE_CONFIG_MODEL_TYPES
    return config or model.model_type in REMOTE_TOKENIZER_MODEL_TYPES


TRITON_FP8E4_ARCHS = ("volta", "turing", "ampere")
"""NVIDIA architectures below SM89, where Triton has no `fp8e4nv` (E4M3) type: the engines' Triton
attention kernels cannot read an E4M3 KV cache there (vLLM 0.32's Triton backends: "native FP8
(fp8e4nv) requires SM89+")."""
SGLANG_TRITON_ATTENTION_BELOW: dict[str, int] = {
    "GptOssForCausalLM": 90,
    "Llama4ForCausalLM": 90,
    "Llama4ForConditionalGeneration": 90,
    "Olmo2ForCausalLM": 80,
}
"""Architectures SGLang 0.5.6 runs on its Triton attention backend below this compute capability
(`ServerArgs._handle_model_specific_adjustments`, no `--attention-backend` given): gpt-oss and Llama 4
take `trtllm_mha` on SM100, FA3 on SM90, else `triton`; OLMo 2 takes `triton` below SM80. MLA models
run Triton below Hopper too (`kv_dtype_problem`)."""
SGLANG_BF16_MIN_CAPABILITY = 80
"""Least compute capability SGLang 0.5.6 has bfloat16 on (`ModelRunner.load_model`: "Compute capability
below sm80. Use float16 due to lack of bfloat16 support.")."""


def kv_dtype_problem(
    engine: str, model: ModelSpec | None, kv_cache_dtype: str, gpu: GPU, vllm_version: str | None = None
) -> str | None:
    """Why `engine` has no attention backend that reads `model`'s KV cache in this dtype on `gpu` (None:
    it has, or no rule is known): an FP8 cache, or vLLM's bfloat16 one below SM80. `auto` is the
    checkpoint's declared KV dtype (`checkpoint_kv_dtype`); an explicit 16-bit dtype overrides it.

    - **vLLM 0.32** (its backend selection, `platforms/cuda.py` priorities and each backend's
      compute-capability and KV-dtype checks; `vllm_version` older than 0.32: not known): the Triton
      attention and Triton MLA backends refuse any FP8 cache below SM89; FlashAttention stores FP8
      only as FA3 (Hopper), FlashInfer runs from SM80 at head sizes 64/128/256/512 and without
      attention sinks, the other MLA backends need Hopper or Blackwell. So on Ampere an FP8 cache
      runs where FlashInfer takes the model, not for MLA models (Triton MLA is their only backend
      there), gpt-oss (sinks) or odd head sizes (Phi-2's 80, GPT-NeoX-20B's 96); below Ampere not
      at all.
    - **SGLang 0.5.6** runs MLA below Hopper on its Triton backend (`ServerArgs` default attention
      backend: FA3 on Hopper, FlashInfer on SM100, else Triton), and gpt-oss, Llama 4 (below SM90)
      and OLMo 2 (below SM80) there too (`SGLANG_TRITON_ATTENTION_BELOW`), whose decode kernel loads
      the cache in its own dtype: an E4M3 cache (fp8 / fp8_e4m3) cannot be read below SM89; E5M2 can.
      `auto` is what SGLang stores (`memory.sglang.sglang_stored_kv_dtype`: a compressed-tensors
      checkpoint's declared FP8 cache is not read). A `bfloat16` cache needs SM80
      (`SGLANG_BF16_MIN_CAPABILITY`). On
      Blackwell DeepSeek-V3's architecture runs `trtllm_mla` (`sglang.SGLANG_BLACKWELL_ATTENTION`), which
      refuses E5M2 ("TensorRT-LLM MLA backend only supports kv-cache-dtype of fp8_e4m3, fp4_e2m1, or
      auto").
    - **vLLM 0.32, MLA and E5M2**: no CUDA MLA backend stores an E5M2 cache (`supported_kv_cache_dtypes`
      of FlashMLA, FlashAttention MLA, FlashInfer MLA, CUTLASS MLA and Triton MLA: auto, float16,
      bfloat16, fp8, fp8_e4m3 at most), so backend selection finds none for an MLA model on any NVIDIA
      GPU (ROCm's AITER MLA takes fp8_e5m2). DeepSeek Sparse Attention models are not refused: their
      `verify_and_update_config` turns every fp8 dtype into `fp8_ds_mla` (`vllm_stored_kv_dtype`).
    """
    if model is None or gpu.vendor != "nvidia":
        return None
    from autoparallel.memory.sglang import SGLANG_BLACKWELL_ATTENTION, sglang_stored_kv_dtype
    from autoparallel.memory.vllm_config import checkpoint_kv_dtype

    kv = checkpoint_kv_dtype(model, kv_cache_dtype)
    if engine == "sglang":
        kv = sglang_stored_kv_dtype(model, gpu, kv_cache_dtype)
    where = f"{model.name} on {gpu.name} ({gpu.arch})"
    trtllm_mla = SGLANG_BLACKWELL_ATTENTION.get(model.architecture) == "trtllm_mla"
    if engine == "sglang" and gpu.arch == "blackwell" and kv == "fp8_e5m2" and trtllm_mla:
        return (
            f"SGLang has no E5M2 KV cache for {where}: it runs this architecture on its TensorRT-LLM MLA "
            "kernel there, which reads fp8_e4m3 or auto only; use --kv-cache-dtype fp8_e4m3"
        )
    if gpu.arch not in TRITON_FP8E4_ARCHS:
        return _vllm_mla_e5m2_problem(model, kv, where, vllm_version) if engine == "vllm" else None
    if engine == "vllm" and kv == "bfloat16" and gpu.arch != "ampere":
        # 0.32's Triton backends, the only ones below SM80: "bfloat16 requires SM80+".
        return f"vLLM has no bfloat16 KV cache for {where} (it needs SM80); use --kv-cache-dtype float16"
    if engine == "sglang":
        return _sglang_triton_kv_problem(model, kv, gpu, where)
    if engine != "vllm" or not kv.startswith("fp8"):
        return None
    from autoparallel.memory.vllm_versions import DEFAULT_VLLM_VERSION, parse_vllm_version

    if not parse_vllm_version(vllm_version or DEFAULT_VLLM_VERSION).at_least(32):
        return None
    if gpu.arch != "ampere":
        why = "FlashInfer and FlashAttention need SM80, and its Triton backends store FP8 only from SM89"
        return f"vLLM has no FP8 KV cache for {where}: {why}; use --kv-cache-dtype float16"
    heads = {
        layer.attention.head_dim for layer in model.layers if layer.attention.kind not in ("mla", "linear")
    }
    odd = sorted(heads - set(FLASHINFER_HEAD_SIZES))
    if model.is_mla:
        why = "its only MLA backend there, Triton MLA, stores FP8 only from SM89 (Ada) on"
    elif model.model_type in ATTENTION_SINK_MODEL_TYPES:
        why = "FlashInfer serves attention sinks only from SM90, and Triton stores FP8 only from SM89"
    elif odd:
        why = f"FlashInfer takes no head size {odd[0]}, and Triton stores FP8 only from SM89"
    else:
        return None  # FlashInfer stores it
    return f"vLLM has no FP8 KV cache for {where}: {why}; use --kv-cache-dtype bfloat16"


def _sglang_triton_kv_problem(model: ModelSpec, kv: str, gpu: GPU, where: str) -> str | None:
    """`kv_dtype_problem` for SGLang below SM89 (`TRITON_FP8E4_ARCHS`), `kv` the dtype it stores: a
    bfloat16 cache below SM80, or an E4M3 one where it runs attention on Triton (None: neither)."""
    cc = gpu.compute_capability
    if kv == "bfloat16" and cc is not None and cc < SGLANG_BF16_MIN_CAPABILITY:
        return (
            f"SGLang has no bfloat16 KV cache for {where}: it has no bfloat16 below SM80 "
            "(`ModelRunner`: it runs float16 there); use --kv-cache-dtype auto"
        )
    if kv not in ("fp8", "fp8_e4m3"):
        return None
    below = SGLANG_TRITON_ATTENTION_BELOW.get(model.architecture or "")
    if model.is_mla:
        what = "MLA"
    elif below is not None and cc is not None and cc < below:
        what = model.architecture
    else:
        return None
    return (
        f"SGLang has no FP8 (E4M3) KV cache for {where}: it runs {what} there on its Triton backend, and "
        "Triton reads E4M3 only from SM89 (Ada) on; use --kv-cache-dtype fp8_e5m2 or auto"
    )


def _vllm_mla_e5m2_problem(model: ModelSpec, kv: str, where: str, vllm_version: str | None) -> str | None:
    """Why vLLM has no backend for `model`'s MLA layers over an E5M2 cache from Ada on (None: it has;
    `kv_dtype_problem`, vLLM 0.32 and later only: older releases are not checked)."""
    if kv != "fp8_e5m2" or not model.is_mla or model.has_sparse_attention:
        return None
    from autoparallel.memory.vllm_versions import DEFAULT_VLLM_VERSION, parse_vllm_version

    if not parse_vllm_version(vllm_version or DEFAULT_VLLM_VERSION).at_least(32):
        return None
    return (
        f"vLLM has no E5M2 KV cache for {where}: none of its MLA backends (FlashMLA, FlashAttention MLA, "
        "FlashInfer MLA, CUTLASS MLA, Triton MLA) stores fp8_e5m2; use --kv-cache-dtype fp8_e4m3 or auto"
    )


def engine_gpu_problem(engine: str, gpu: GPU, model: ModelSpec | None = None) -> str | None:
    """Why `engine` cannot run on `gpu` at all, or cannot run `model`'s attention there (None: it
    can): TensorRT-LLM off NVIDIA GPUs or below Ampere; SGLang on Volta; DeepSeek Sparse Attention on
    a known architecture `SPARSE_ATTENTION_ARCHS` does not name (a custom GPU of an architecture the
    catalog does not know is given the benefit of the doubt)."""
    name = ENGINE_NAMES.get(engine, engine)
    if engine == "trtllm" and (gpu.vendor != "nvidia" or gpu.arch in TRTLLM_UNSUPPORTED_ARCHS):
        return (
            f"{name} runs on NVIDIA Ampere, Ada, Hopper and Blackwell GPUs only, not on {gpu.name} "
            f"({gpu.vendor} {gpu.arch})"
        )
    if engine == "sglang" and gpu.vendor == "nvidia" and gpu.arch in SGLANG_UNSUPPORTED_ARCHS:
        return (
            f"{name} runs on NVIDIA GPUs from compute capability 7.5 (Turing), not on {gpu.name} ({gpu.arch})"
        )
    archs = SPARSE_ATTENTION_ARCHS.get(engine, ())
    known = gpu.arch in ARCH_COMPUTE_CAPABILITY or gpu.arch in ARCH_NAMES
    if model is not None and model.has_sparse_attention and known and gpu.arch not in archs:
        where = " or ".join(", ".join(ARCH_NAMES[a] for a in archs).rsplit(", ", 1))
        return (
            f"{name} has no DeepSeek Sparse Attention kernels for {gpu.name} ({gpu.arch}): it runs "
            f"{model.name} on {where} GPUs only"
        )
    return None


def quant_capability_problem(
    engine: str, quantization: str | None, model: ModelSpec | None, gpu: GPU
) -> str | None:
    """Why `engine` refuses the weight format (the checkpoint's, or `quantization` applied online) on
    `gpu`'s compute capability (None: it does not, or no rule is known). A pre-quantized checkpoint
    is loaded in its own format whatever `--quantization` names it (`compressed-tensors`, `fp8`, ...):
    its format decides. SGLang's FP8 experts need more than its FP8 floor (`_sglang_fp8_moe_problem`)."""
    q = model.quantization if model is not None else None
    fmt = q.method.value if q is not None else quantization
    if fmt == "fp8" and q is not None and q.method.value == "fp8" and q.source.startswith("ModelOpt"):
        fmt = "modelopt_fp8"
    if q is not None and is_compressed_tensors(q):
        # The scheme's own floor: weight-only INT is `CompressedTensorsWNA16` (parsed as GPTQ-style
        # groups, or INT8 without `input_activations`), not the GPTQ config's.
        if fmt == "gptq":
            fmt = "ct_wna16"
        elif fmt == "int8" and q.weight_only:
            fmt = "ct_w8a16_int8"
    if (
        engine == "sglang"
        and fmt == "mxfp4"
        and gpu.vendor == "amd"
        and gpu.arch in SGLANG_AMD_NO_MXFP4_ARCHS
    ):
        return (
            f"SGLang runs MXFP4 weights on AMD GPUs only from CDNA4 (gfx950: MI350, MI355), not on "
            f"{gpu.name} ({gpu.arch}): 0.5.6 registers its mxfp4 method on ROCm only where `mxfp_supported`"
        )
    need = QUANT_MIN_CAPABILITY.get(engine, {}).get(fmt or "")
    have = gpu.compute_capability
    if need is not None and have is not None and have < need:
        return (
            f"{ENGINE_NAMES.get(engine, engine)} runs {QUANT_NAMES[fmt or '']} weights on compute "
            f"capability {need // 10}.{need % 10} and up, not on {gpu.name} ({have // 10}.{have % 10})"
        )
    if engine == "sglang" and fmt == "fp8":
        return _sglang_fp8_moe_problem(model, gpu)
    return None


SGLANG_FP8_MOE_MIN_CAPABILITY = 89
"""Least compute capability SGLang 0.5.6 runs FP8 MoE experts on (`_sglang_fp8_moe_problem`)."""


def _sglang_fp8_moe_problem(model: ModelSpec | None, gpu: GPU) -> str | None:
    """Why SGLang 0.5.6 cannot run `model`'s routed experts in FP8 on `gpu` (None: it can, or they are
    not FP8). Its FP8 MoE methods, `Fp8MoEMethod` (an `fp8` checkpoint or `--quantization fp8` online:
    `Fp8Config.get_quant_method` gives every `FusedMoE` layer one) and compressed-tensors'
    `CompressedTensorsW8A8Fp8MoEMethod`, run the Triton fused-MoE kernel with `use_fp8_w8a8`
    (`Fp8MoEMethod.create_moe_runner` picks `MoeRunnerBackend.TRITON` unless DeepEP or Mooncake is the
    all-to-all backend, which the emitters never pass, and DeepGEMM needs SM90 anyway): the
    activations are quantized to `float8_e4m3fn` and `tl.dot` multiplies E4M3 operands, and Triton has
    no E4M3 (`fp8e4nv`) below SM89 (`TRITON_FP8E4_ARCHS`). The Marlin W8A16 fallback
    (`can_auto_enable_marlin_fp8`, SM80-SM88) exists only in `Fp8LinearMethod`, the dense layers, so a
    dense FP8 model still runs on Ampere. ModelOpt FP8 has its own 8.9 floor (`QUANT_MIN_CAPABILITY`)."""
    if model is None or not model.is_moe or gpu.vendor != "nvidia":
        return None
    q = model.quantization
    if q is not None and "routed_experts" not in q.quantized_groups:
        return None
    have = gpu.compute_capability
    below = gpu.arch in TRITON_FP8E4_ARCHS or (have is not None and have < SGLANG_FP8_MOE_MIN_CAPABILITY)
    if not below:
        return None
    cc = f" ({have // 10}.{have % 10})" if have is not None else f" ({gpu.arch})"
    need = SGLANG_FP8_MOE_MIN_CAPABILITY
    return (
        f"SGLang runs FP8 MoE experts ({model.name}) on compute capability {need // 10}.{need % 10} (Ada) "
        f"and up, not on {gpu.name}{cc}: its FP8 MoE kernel is Triton's fused MoE in E4M3, which Triton "
        "has only from SM89, and its Marlin FP8 fallback covers dense layers only"
    )


def node_span_problem(engine: str, width: int, gpus_per_node: int) -> str | None:
    """Why `engine` cannot run a process group of `width` GPUs (`span_width`) on nodes of
    `gpus_per_node` as the emitters launch it (None: it can). Every engine spans whole nodes, the same
    GPU count on each: SGLang (`--nnodes`) and TensorRT-LLM (one MPI world) an engine; vLLM one
    data-parallel rank or replica (tp × pp): its Ray `span` packing asserts "world_size must be a
    multiple of number of devices per node" (0.32 v1/engine/utils.py), its multiprocessing backend
    splits a rank evenly over `--nnodes` (multiproc_executor.py), and frameworks/vllm.py gives each
    multi-node replica nodes of its own."""
    if width <= gpus_per_node or width % gpus_per_node == 0:
        return None
    unit = "data-parallel rank" if engine == "vllm" else "engine"
    return (
        f"{ENGINE_NAMES.get(engine, engine)} cannot run one {unit} over {width} GPUs on nodes of "
        f"{gpus_per_node}: multi-node {unit}s span whole nodes, the same GPU count on each"
    )


def sglang_layout_problem(model: ModelSpec, tp: int, replicas: int, expert_parallel: bool) -> str | None:
    """Why SGLang cannot run `replicas` data-parallel ranks sharing `model`'s experts (attention DP,
    `frameworks/sglang.py`): its model code for the architecture has no attention data parallelism
    (`SGLANG_DP_ATTENTION_ARCHITECTURES`). None: it can, or the layout is not attention DP."""
    if not (expert_parallel and replicas > 1) or model.architecture in SGLANG_DP_ATTENTION_ARCHITECTURES:
        return None
    return (
        f"SGLang has no attention data parallelism (--enable-dp-attention) for "
        f"{model.architecture or 'this architecture'} ({model.name}); use one tp={tp * replicas} engine "
        "with expert parallelism, or independent replicas"
    )


def sglang_pipeline_problem(model: ModelSpec, pp: int) -> str | None:
    """Why SGLang cannot run `model` in `pp` pipeline stages (`SGLANG_PP_ARCHITECTURES`; None: it can)."""
    if pp <= 1 or model.architecture in SGLANG_PP_ARCHITECTURES:
        return None
    return (
        f"SGLang has no pipeline parallelism (--pp-size) for {model.architecture or 'this architecture'} "
        f"({model.name}): its model code takes no pp_proxy_tensors"
    )


def trtllm_layout_problem(tp: int, replicas: int, expert_parallel: bool) -> str | None:
    """TensorRT-LLM's attention data parallelism (`enable_attention_dp`) makes every rank of the engine
    its own data-parallel rank, attention and dense MLP at TP 1 (`mlp_tp_size = 1` "if using attention
    DP"): tensor-parallel data-parallel ranks are not a TensorRT-LLM layout (None: the layout is)."""
    if not (expert_parallel and replicas > 1 and tp > 1):
        return None
    width = tp * replicas
    return (
        f"TensorRT-LLM's attention data parallelism (enable_attention_dp) runs each rank at tp=1; "
        f"tp={tp} with {replicas} data-parallel ranks is not a TensorRT-LLM layout "
        f"(use tp=1 with {width} ranks, or one tp={width} engine)"
    )
