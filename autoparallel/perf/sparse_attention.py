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
- **Heads in tiles of 64.** The prefill kernel takes query heads 64 at a time (`B_H = 64`), the FP8
  decode kernel only h_q = 64 or 128; a TP rank's 16 heads (128 heads, TP8) are padded to 64.
- **Rates.** 640 TFLOPS for the BF16 prefill kernel and 410 for the FP8-KV decode kernel on H800
  SXM5 (FlashMLA README): 0.65 and 0.41 of the 989 TFLOPS dense BF16 peak.

Which kernel runs which tokens, per engine:

- **vLLM** (`flashmla_sparse.py` after PR #27532, opened 2025-10-26 and merged; taken as the rule
  of the 0.13 rows, whose V3.2 cache defaults to `fp8_ds_mla`):
  below 32 heads per rank every token, prompt or decode, runs the FP8 decode kernel as one mixed
  batch; from 32 heads up, prompt tokens run the BF16 prefill kernel and decode tokens the decode
  kernel.
- **SGLang** (0.5 defaults on Hopper with a BF16 cache): prompt tokens run FlashMLA's sparse
  prefill kernel (`nsa_prefill_backend=flashmla_sparse`); decode runs FlashAttention-3 over the
  selected pages (`nsa_decode_backend=fa3`), which reads only the valid slots: the ordinary roofline.
- **TensorRT-LLM** (FlashMLA is its sparse-MLA backend on Hopper): the prefill kernel for context
  tokens, the decode kernel for generation tokens.

The indexer's scores (FP8 DeepGEMM `fp8_mqa_logits` over the whole context) are computed on every
TP rank: its projections are replicated, so they are not divided by TP.

Not modelled: newer vLLM releases run short prompts as dense MHA and pass `topk_length`; SGLang's
`--nsa-prefill-backend` / `--nsa-decode-backend` overrides (the defaults are charged).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from autoparallel.memo import Memo, memoized

if TYPE_CHECKING:
    from autoparallel.hardware import GPU
    from autoparallel.models.spec import AttentionSpec, ModelSpec

PREFILL_KERNEL_FRACTION = 640 / 989
"""FlashMLA sparse prefill (BF16): 640 TFLOPS on H800 SXM5 of its 989 dense BF16 peak (README)."""
DECODE_KERNEL_FRACTION = 410 / 989
"""FlashMLA sparse decode (FP8 KV, BF16 math): 410 TFLOPS on H800 SXM5 (README)."""
HEAD_TILE = 64
"""Query heads per kernel tile: a rank's heads are padded up to a multiple of it."""
VLLM_MIN_HEADS_FOR_BF16_PREFILL = 32
"""vLLM runs the whole batch through the FP8 decode kernel below this many heads per rank."""


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


def _kernel_flops_per_token(att: AttentionSpec, tp: int) -> float:
    """FLOPs of one query token in one layer on one rank, as the FlashMLA sparse kernels run it."""
    heads = HEAD_TILE * math.ceil(math.ceil(att.num_heads / tp) / HEAD_TILE)  # padded per rank
    latent, rope = att.kv_lora_rank, att.qk_rope_head_dim
    return 2.0 * heads * att.sparse_topk * ((latent + rope) + latent)


def sparse_attention_cost(
    model: ModelSpec,
    gpu: GPU,
    engine: str,
    tp: int,
    *,
    decode_seqs: float,
    context_tokens: float,
    prefill_tokens: float,
    prefill_context: float,
    attention_fraction: float,
) -> SparseAttentionCost:
    """The sparse layers' attention of one step: `decode_seqs` decode tokens over `context_tokens`
    and `prefill_tokens` prompt tokens over `prefill_context` on average, on one of `tp` ranks.
    `attention_fraction`: the engine's achieved fraction of the BF16 peak for ordinary attention."""
    peak = gpu.bf16_tflops * 1e12
    seconds = flops = 0.0
    for att, n_layers in _sparse_layers(model):
        heads_per_rank = math.ceil(att.num_heads / tp)
        kernel = _kernel_flops_per_token(att, tp)
        d_attn, d_index = att.context_flops_per_token(context_tokens)
        p_attn, p_index = att.context_flops_per_token(prefill_context)
        layer_s = (decode_seqs * d_index + prefill_tokens * p_index) / (peak * attention_fraction)
        if engine == "vllm" and heads_per_rank < VLLM_MIN_HEADS_FOR_BF16_PREFILL:
            layer_s += (decode_seqs + prefill_tokens) * kernel / (peak * DECODE_KERNEL_FRACTION)
        else:
            layer_s += prefill_tokens * kernel / (peak * PREFILL_KERNEL_FRACTION)
            if engine == "sglang":
                layer_s += decode_seqs * d_attn / tp / (peak * attention_fraction)
            else:
                layer_s += decode_seqs * kernel / (peak * DECODE_KERNEL_FRACTION)
        seconds += n_layers * layer_s
        flops += n_layers * (decode_seqs * (d_attn + d_index) + prefill_tokens * (p_attn + p_index))
    return SparseAttentionCost(seconds=seconds, model_flops=flops)
