"""DeepSeek Sparse Attention (DeepSeek-V3.2) as the serving engines' kernels run it, in floats.

A sparse layer's *model* work is small: the lightning indexer scores every earlier token, then MLA
attends to the `index_topk` (2,048) tokens it keeps (`ModelSpec.forward_flops_per_token`). The
kernels that run it on Hopper do more, and the step model charges what they do:

- **Every top-k slot, whatever the context.** FlashMLA's sparse kernels (deepseek-ai/FlashMLA, the
  2025-09 release that vLLM, SGLang and TensorRT-LLM ship for V3.2) loop over all of a query's
  top-k index blocks (`num_topk_blocks = params.topk / B_TOPK`, `csrc/sm90/prefill/sparse/fwd.cu`)
  and mask the invalid ones; a per-query valid length (`topk_length`) came on 2026-01-16. A query
  over a 200-token prompt costs 2,048 slots.
- **Absorbed (MQA) form:** per slot and head a 576-wide score (512 latent + 64 RoPE) and a 512-wide
  value product, 2·(576 + 512) FLOPs.
- **Heads in tiles.** The prefill kernel takes query heads 64 at a time (`B_H = 64`,
  `prefill/sparse/fwd.cu`). The FP8 decode kernel runs every query token as a cluster of two 64-head
  CTAs that share the dequantized KV ("crossover", FlashMLA's 2025-09-29 deep-dive blog: without it
  the kernel is dequantization-bound, 250 TFLOPS): `num_m_block = ceil_div(q_head_per_hk, 2*64) * 2`
  with a cluster of 2 (`decode/sparse_fp8/splitkv_mla.cu`, 2025-09-24), so a rank's heads are padded
  to 128. A TP8 rank's 16 heads (128 heads) cost 64 head-rows in the prefill kernel and 128 in the
  decode kernel. (FlashMLA's 2026-01-16 refactoring added a 64-head single-CTA decode variant,
  dequantization-bound without a partner CTA; the engines of the reference rows predate it: vLLM's
  `flashmla.cmake` took its fork at 46d64a8, 2025-10-22, until its 2026 update.)
- **Rates.** 640 TFLOPS for the BF16 prefill kernel and 410 for the FP8-KV decode kernel on H800
  SXM5 (FlashMLA README): 0.65 and 0.41 of the 989 TFLOPS dense BF16 peak.

Which kernel runs which tokens, per engine (`sparse_kernels`):

- **vLLM** (`flashmla_sparse.py` after PR #27532, opened 2025-10-26 and merged; taken as the rule
  of the 0.13 rows, whose V3.2 cache defaults to `fp8_ds_mla`):
  below 32 heads per rank every token, prompt or decode, runs the FP8 decode kernel as one mixed
  batch; from 32 heads up, prompt tokens run the BF16 prefill kernel and decode tokens the decode
  kernel.
- **SGLang** (0.5.6 `ServerArgs._handle_model_specific_adjustments` for DeepSeek NSA; the flags are
  `--nsa-prefill-backend` / `--nsa-decode-backend`, resolved by `sglang_nsa_backends`):
  - `auto` KV is BF16 on Hopper, FP8 (`fp8_e4m3`) from Blackwell on (`major >= 10`);
  - an FP8 cache, given or forced, prefills with `flashmla_auto` (PR #11655: the prefill kernel over
    a dequantized copy, or the decode kernel, by a heuristic; charged as the prefill kernel) and
    decodes with FlashMLA's FP8 decode kernel (`flashmla_kv`): both backends are *assigned* there,
    whatever the flags say, so from Blackwell on, and over an FP8 cache anywhere, the flags never run;
  - a BF16 cache on Hopper runs the flags, by default FlashMLA's sparse prefill kernel
    (`flashmla_sparse`) and FlashAttention-3 over the selected pages (`fa3`) for decode, which reads
    only the valid slots: the ordinary roofline. A BF16 cache from Blackwell on is assigned
    `flashmla_sparse` for both, whatever the flags say;
  - `flashmla_kv` over a BF16 cache quantizes the layer's *whole* KV buffer to FP8 first, at every
    decode step (`nsa_backend._forward_flashmla_kv`: "inefficiently quantize the whole cache",
    `quantize_k_cache`): one read of 576 BF16 and one write of 656 bytes per pool token and layer,
    charged at the attention HBM rate whatever the batch.
- **TensorRT-LLM** (`_torch/modules/attention.py`: below SM100 `forward_context_dsa` and
  `forward_generation_dsa` both call `forward_sparse_mla_kvcache_bf16`, "for BF16 KV cache for both
  context and generation phases"): on Hopper every token, context or generation, runs FlashMLA's
  BF16 sparse prefill kernel (`flash_mla_sparse_fwd`, heads padded to a multiple of 64), over a BF16
  cache only; an FP8 cache is refused there (`engine_support`). From SM100 it runs its own
  trtllm-gen kernels, charged as the prefill kernel for context and the decode kernel for
  generation.

The indexer's scores (FP8 DeepGEMM `fp8_mqa_logits` over the whole context) are computed on every
TP rank: its projections are replicated, so they are not divided by TP.

**Dense MHA for a prompt step within the top-k** (`SparseKernels.short_prefill_mha`): a prompt
step whose longest sequence (context and chunk) fits `index_topk` runs as dense MHA over the prompts'
own tokens, the ordinary attention roofline (2 · heads · (qk + v) FLOPs per attended token), and the
indexer writes its keys without scoring:

- SGLang 0.5.6 (PR #11892, documented in PR #12868): `NativeSparseAttnBackend.set_nsa_prefill_impl`
  takes MHA on SM90 and SM100 over a BF16 or FP8 E4M3 pool for an extend batch whose longest
  sequence fits `index_topk` and whose sequences sum to at most 128 Ki tokens (always so in the
  replay: no prefix cache, a step budget of at most 32 Ki, every sequence within 2,048), whatever
  `--nsa-prefill-backend` says; its indexer is called with `return_indices=False` ("auto-skip topk").
  I214 (default `flashmla_sparse`) and I216 (`fa3`) measured mean TTFT 5.62 and 5.30 s; charged
  through each flag's kernel they came out 4.04 and 3.32 s, now both 3.31.
- vLLM from PR #47327 (merged 2026-07-01; `sparse_mla_attention._use_dense_mha_prefill`,
  `DeepseekV32Attention._use_sparse_mha` and its short-prefill scoring skip, read in 0.32's source),
  from the release `serving_steps.VLLM_DENSE_SHORT_PREFILL_SINCE` says.

The step model is told the step's longest prompt sequence (`prefill_longest`: the replay knows it, the
steady state takes the workload's mean prompt); without it, the top-k kernels.

Not modelled, in releases no reference row ran: vLLM 0.32 pads a rank's FP8 decode heads to 64 rather
than 128 below 65 heads (`FlashMLASparseImpl._compute_fp8_decode_padded_heads`, the 64-head variant
of FlashMLA's 2026-01-16 refactoring, whose rate is not published) and passes FlashMLA each query's
valid top-k length; TensorRT-LLM's own short-context MHA path (PR #11677, merged 2026-02-24:
`forward_context_dsa` hands a context batch of at most `TRTLLM_MLA_SHORT_SEQ_MHA_THRESHOLD` = 10,240
packed tokens to dense MHA and skips the indexer), after the reference rows' `trtllm-serve`, and the
model has no TensorRT-LLM release to gate it on; SGLang's `tilelang`, `aiter` and `trtllm` NSA
backends are refused by name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from autoparallel.errors import InputError
from autoparallel.memo import Memo, memoized
from autoparallel.memory.sglang import sglang_stored_kv_dtype

if TYPE_CHECKING:
    from autoparallel.hardware import GPU
    from autoparallel.models.spec import AttentionSpec, ModelSpec

PREFILL_KERNEL_FRACTION = 640 / 989
"""FlashMLA sparse prefill (BF16): 640 TFLOPS on H800 SXM5 of its 989 dense BF16 peak (README)."""
DECODE_KERNEL_FRACTION = 410 / 989
"""FlashMLA sparse decode (FP8 KV, BF16 math): 410 TFLOPS on H800 SXM5 (README)."""
HEAD_TILES = {"flashmla_sparse": 64, "flashmla_kv": 128}
"""Query heads each kernel runs per query token at the least: the prefill kernel's 64-head tile
(`B_H`), the FP8 decode kernel's cluster of two 64-head CTAs; a rank's heads are padded up to it."""
VLLM_MIN_HEADS_FOR_BF16_PREFILL = 32
"""vLLM runs the whole batch through the FP8 decode kernel below this many heads per rank."""
BF16_LATENT_BYTES_PER_TOKEN = 2 * (512 + 64)
"""One layer's BF16 MLA cache entry (512 latent + 64 RoPE), the input of SGLang's `quantize_k_cache`."""
FP8_LATENT_BYTES_PER_TOKEN = 512 + 4 * 4 + 2 * 64
"""FlashMLA's FP8 layout, its output: 512 FP8, four fp32 tile scales, 64 BF16 RoPE (656 bytes)."""

SparseKernel = Literal["flashmla_sparse", "flashmla_kv", "fa3"]
"""How one phase of a sparse layer runs: FlashMLA's BF16 sparse prefill kernel or its FP8-KV sparse
decode kernel (both over every top-k slot, heads padded to tiles of 64), or FlashAttention-3 over the
selected pages (the valid slots only, the ordinary attention roofline)."""
SGLANG_NSA_BACKENDS = ("flashmla_sparse", "flashmla_kv", "flashmla_auto", "fa3")
"""SGLang `--nsa-prefill-backend` / `--nsa-decode-backend` values the step model prices."""
_FP8_KV = ("fp8", "fp8_e4m3", "fp8_e5m2")


@dataclass(frozen=True)
class SparseKernels:
    """Which kernel runs a sparse layer's prompt tokens and which its decode tokens."""

    prefill: SparseKernel
    decode: SparseKernel
    quantizes_pool: bool = False
    """SGLang's `flashmla_kv` over a BF16 cache: the whole pool is quantized at every decode step."""
    short_prefill_mha: bool = False
    """A prompt step whose longest sequence fits `index_topk` runs as dense MHA (un-absorbed, over the
    prompts' own tokens), not through `prefill`, and skips the indexer's scoring."""


def sparse_kernels(
    model: ModelSpec,
    engine: str,
    tp: int,
    gpu: GPU,
    kv_cache_dtype: str,
    nsa_backends: tuple[str | None, str | None] = (None, None),
    *,
    vllm_dense_short_prefill: bool = False,
) -> SparseKernels:
    """The kernels `engine` runs for `model` at tensor parallelism `tp` (see the module notes);
    `nsa_backends`: SGLang's `--nsa-prefill-backend` / `--nsa-decode-backend` as passed (None: its
    default), run only where SGLang lets them run (`sglang_nsa_backends`); `vllm_dense_short_prefill`:
    the vLLM release runs short prompt steps as dense MHA (`serving_steps.vllm_dense_short_prefill`).

    Raises:
        InputError: a backend the step model does not price, or `flashmla_auto` for decode.
    """
    if engine == "vllm":
        mha = vllm_dense_short_prefill
        if math.ceil(model.num_heads / tp) < VLLM_MIN_HEADS_FOR_BF16_PREFILL:
            return SparseKernels("flashmla_kv", "flashmla_kv", short_prefill_mha=mha)
        return SparseKernels("flashmla_sparse", "flashmla_kv", short_prefill_mha=mha)
    if engine == "trtllm" and gpu.arch == "hopper":
        return SparseKernels("flashmla_sparse", "flashmla_sparse")
    if engine != "sglang":
        return SparseKernels("flashmla_sparse", "flashmla_kv")
    nsa = sglang_nsa_backends(model, gpu, kv_cache_dtype, nsa_backends)
    fp8 = nsa.kv_cache_dtype in _FP8_KV
    # `set_nsa_prefill_impl`: MHA on SM90 and SM100 over a BF16 or FP8 E4M3 pool (FP8 E5M2 not).
    mha = gpu.arch in ("hopper", "blackwell") and nsa.kv_cache_dtype != "fp8_e5m2"
    return SparseKernels(
        "flashmla_sparse" if nsa.prefill == "flashmla_auto" else nsa.prefill,  # type: ignore[arg-type]
        nsa.decode,  # type: ignore[arg-type]
        quantizes_pool=nsa.decode == "flashmla_kv" and not fp8,
        short_prefill_mha=mha,
    )


@dataclass(frozen=True)
class SglangNsaBackends:
    """The DeepSeek NSA backends an SGLang 0.5.6 server runs, and the flags it replaced to get them."""

    prefill: str
    decode: str
    kv_cache_dtype: str
    """The KV dtype SGLang stores (`memory.sglang.sglang_stored_kv_dtype`), which decided them."""
    replaced: tuple[tuple[str, str], ...] = ()
    """(`--nsa-prefill-backend` or `--nsa-decode-backend`, value as passed) for each flag SGLang
    assigns another value to; a flag equal to what SGLang assigns is not listed."""
    reason: str = ""
    """Why SGLang assigns the backends (empty where the flags run)."""


SGLANG_FP8_NSA_BACKENDS = ("flashmla_auto", "flashmla_kv")
"""Prefill / decode backends SGLang 0.5.6 assigns over an `fp8_e4m3` cache, whatever the flags."""
SGLANG_SM100_BF16_NSA_BACKENDS = ("flashmla_sparse", "flashmla_sparse")
"""Prefill / decode backends it assigns over a BF16 cache from compute capability 10 on."""
SGLANG_HOPPER_NSA_DEFAULTS = ("flashmla_sparse", "fa3")
"""`ServerArgs.nsa_prefill_backend` / `nsa_decode_backend` defaults: what a BF16 cache on Hopper runs
when the flags are not given."""


def sglang_nsa_backends(
    model: ModelSpec,
    gpu: GPU,
    kv_cache_dtype: str,
    nsa_backends: tuple[str | None, str | None] = (None, None),
) -> SglangNsaBackends:
    """What SGLang 0.5.6 runs for `--kv-cache-dtype kv_cache_dtype` and `nsa_backends`
    (`--nsa-prefill-backend` / `--nsa-decode-backend` as passed, None: not passed) on `gpu`.

    `ServerArgs._handle_model_specific_adjustments` (DeepSeek NSA, after turning `auto` into
    `fp8_e4m3` when `torch.cuda.get_device_capability()` major >= 10): over `fp8_e4m3` it sets
    `nsa_prefill_backend = "flashmla_auto"` and `nsa_decode_backend = "flashmla_kv"`; over BF16 with
    major >= 10 it sets both to `flashmla_sparse`; only over BF16 below that do the flags (or their
    defaults `flashmla_sparse` / `fa3`) run. Nothing later in `ServerArgs` assigns them again.

    Raises:
        InputError: a backend the step model does not price, or `flashmla_auto` for decode.
    """
    prefill, decode = nsa_backends
    for flag, value in (("prefill", prefill), ("decode", decode)):
        if value is not None and value not in SGLANG_NSA_BACKENDS:
            raise InputError(
                f"--nsa-{flag}-backend {value}: the step model prices {', '.join(SGLANG_NSA_BACKENDS)} only"
            )
    if decode == "flashmla_auto":
        raise InputError("--nsa-decode-backend flashmla_auto: SGLang takes flashmla_auto for prefill only")
    stored = sglang_stored_kv_dtype(model, gpu, kv_cache_dtype)
    sm100 = gpu.arch == "blackwell"  # major >= 10, as `sglang_stored_kv_dtype` reads it
    forced_dtype = (
        " that `--kv-cache-dtype auto` becomes on Blackwell" if sm100 and kv_cache_dtype == "auto" else ""
    )
    if stored in _FP8_KV:
        assigned = SGLANG_FP8_NSA_BACKENDS
        reason = f"over the {'fp8_e4m3' if stored == 'fp8' else stored} KV cache{forced_dtype}"
    elif sm100:
        assigned = SGLANG_SM100_BF16_NSA_BACKENDS
        reason = "over a BF16 KV cache on Blackwell"
    else:
        run = (prefill or SGLANG_HOPPER_NSA_DEFAULTS[0], decode or SGLANG_HOPPER_NSA_DEFAULTS[1])
        return SglangNsaBackends(run[0], run[1], stored)
    replaced = tuple(
        (f"--nsa-{flag}-backend", value)
        for flag, value, runs in (("prefill", prefill, assigned[0]), ("decode", decode, assigned[1]))
        if value is not None and value != runs
    )
    return SglangNsaBackends(assigned[0], assigned[1], stored, replaced, reason)


@dataclass(frozen=True)
class SparseAttentionCost:
    """One step's sparse-attention work on one GPU, over every decoder layer of the model."""

    seconds: float
    """Kernel, indexer and ordinary-roofline time, s (scale by the stage's share of the layers)."""
    model_flops: float
    """The same tokens' sparse-layer attention FLOPs as `forward_flops_per_token` counts them, all
    ranks together: the generic attention roofline must leave these out."""


_LAYERS: Memo[tuple[tuple[AttentionSpec, int], ...]] = {}


def _sparse_layers(model: ModelSpec) -> tuple[tuple[AttentionSpec, int], ...]:
    """The distinct sparse attention specs of `model` with their layer counts, memoized."""

    def compute() -> tuple[tuple[AttentionSpec, int], ...]:
        counts: dict[AttentionSpec, int] = {}
        for layer in model.layers:
            if layer.attention.sparse_topk:
                counts[layer.attention] = counts.get(layer.attention, 0) + 1
        return tuple(counts.items())

    return memoized(_LAYERS, (model,), (), compute)


def is_sparse(model: ModelSpec) -> bool:
    """Whether any layer of `model` uses DeepSeek Sparse Attention."""
    return bool(_sparse_layers(model))


def _kernel_flops_per_token(att: AttentionSpec, tp: int, kernel: SparseKernel) -> float:
    """FLOPs of one query token in one layer on one rank, as FlashMLA's sparse `kernel` runs it."""
    tile = HEAD_TILES[kernel]
    heads = tile * math.ceil(math.ceil(att.num_heads / tp) / tile)  # padded per rank
    latent, rope = att.kv_lora_rank, att.qk_rope_head_dim
    return 2.0 * heads * att.sparse_topk * ((latent + rope) + latent)


def sparse_attention_cost(
    model: ModelSpec,
    gpu: GPU,
    kernels: SparseKernels,
    tp: int,
    *,
    decode_seqs: float,
    context_tokens: float,
    prefill_tokens: float,
    prefill_context: float,
    attention_fraction: float,
    prefill_longest: float | None = None,
    hbm_bytes_per_s: float = 0.0,
    kv_pool_tokens: float = 0.0,
) -> SparseAttentionCost:
    """The sparse layers' attention of one step: `decode_seqs` decode tokens over `context_tokens`
    and `prefill_tokens` prompt tokens over `prefill_context` on average, on one of `tp` ranks, run
    by `kernels` (`sparse_kernels`). `attention_fraction`: the engine's achieved fraction of the
    BF16 peak for ordinary attention; `prefill_longest`: the step's longest prompt sequence, which
    sends the prompt tokens to dense MHA where `kernels.short_prefill_mha` and it fits `index_topk`
    (None: not known, the top-k kernels); `hbm_bytes_per_s` and `kv_pool_tokens` (per GPU) price
    the pool quantization of `kernels.quantizes_pool`."""
    peak = gpu.bf16_tflops * 1e12
    rate: dict[SparseKernel, float] = {
        "flashmla_sparse": peak * PREFILL_KERNEL_FRACTION,
        "flashmla_kv": peak * DECODE_KERNEL_FRACTION,
    }
    quantize_s = 0.0
    if kernels.quantizes_pool and decode_seqs > 0:
        if hbm_bytes_per_s <= 0:
            raise ValueError("pricing the pool quantization needs hbm_bytes_per_s")
        per_token = BF16_LATENT_BYTES_PER_TOKEN + FP8_LATENT_BYTES_PER_TOKEN
        quantize_s = kv_pool_tokens * per_token / hbm_bytes_per_s
    seconds = flops = 0.0
    for att, n_layers in _sparse_layers(model):
        d_attn, d_index = att.context_flops_per_token(context_tokens)
        p_attn, p_index = att.context_flops_per_token(prefill_context)
        dense = (
            kernels.short_prefill_mha and prefill_longest is not None and prefill_longest <= att.sparse_topk
        )
        scored = decode_seqs * d_index + (0.0 if dense else prefill_tokens * p_index)
        layer_s = scored / (peak * attention_fraction)
        for tokens, valid_flops, kind in (
            (prefill_tokens, p_attn, "fa3" if dense else kernels.prefill),
            (decode_seqs, d_attn, kernels.decode),
        ):
            if kind == "fa3":  # FlashAttention over the valid tokens, or dense MHA: the ordinary roofline
                layer_s += tokens * valid_flops / tp / (peak * attention_fraction)
            else:
                layer_s += tokens * _kernel_flops_per_token(att, tp, kind) / rate[kind]
        seconds += n_layers * (layer_s + quantize_s)
        flops += n_layers * (decode_seqs * (d_attn + d_index) + prefill_tokens * (p_attn + p_index))
    return SparseAttentionCost(seconds=seconds, model_flops=flops)
