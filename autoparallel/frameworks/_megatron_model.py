"""Megatron-LM model-shape arguments: the layers, widths, heads, MLA and MoE structure a plan assumed.

Flag names from Megatron-LM d98e8a6 (`megatron/training/arguments.py`, `TransformerConfig`).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from autoparallel.errors import InputError
from autoparallel.models.parse_common import gqa_attention
from autoparallel.models.spec import AttentionKind, MlpKind

if TYPE_CHECKING:
    from autoparallel.configs import TrainingConfig
    from autoparallel.models.spec import AttentionSpec, LayerSpec, ModelSpec

_SIGMOID_ROUTERS = frozenset({"deepseek_v3", "deepseek_v32", "kimi_k2", "glm4_moe", "llama4", "llama4_text"})
"""Families whose router scores experts with a sigmoid, not a softmax (Hugging Face's
DeepseekV3TopkRouter, DeepSeek-V3.2's config `scoring_func: sigmoid`, Glm4MoeTopkRouter, Llama4TextMoe).
Megatron's default is softmax, and rejects softmax with top-1 routing (Llama 4) unless the softmax
runs before the top-k."""

_ATTENTION_PARTS = ("qkv_bias", "o_bias", "qk_norm", "q_gate", "sinks")
"""`models.parse_common.gqa_attention`'s switches: the optional parts the parser counts in a softmax
attention block (`attention_parts` reads them back from the counted parameters)."""

_NOPE_ON_FULL_LAYERS = frozenset({"llama4", "llama4_text"})
"""Families whose full-attention layers run without positions (NoPE): Llama 4 rotates only its
chunked-attention layers (Hugging Face Llama4TextAttention `use_rope = no_rope_layers[i]`;
models/families/moe.py `build_llama4` gives the RoPE layers the CHUNKED kind, the NoPE ones FULL).
Megatron-LM's `--no-rope-freq` skips RoPE on the layers its pattern marks 1 (TransformerConfig
`no_rope_freq`; examples/post_training/modelopt/conf/meta-llama/Llama-4-Maverick-17B-128E-Instruct.sh
passes `--no-rope-freq 4`)."""


_CLASSIC_POSITIONS = {
    "gpt2": "learned_absolute",
    "opt": "learned_absolute",
    "bloom": "none",
    "gpt_neox": "rope",
    "phi": "rope",
}
"""Families with LayerNorm (weight + bias) and biased linear layers, which Megatron's defaults
(`--normalization LayerNorm`, `add_bias_linear`) express, by their position embedding as
`--position-embedding-type` names it (models/families/classic.py, phi.py): GPT-2 and OPT learn a
position table, GPT-NeoX and Phi rotate part of each head, BLOOM adds ALiBi biases to the attention
scores, which Megatron-LM has no type for (`architecture_notes` says so)."""


_GATED_GELU = frozenset({"gemma", "gemma2", "gemma3", "gemma3_text"})
"""Families whose gated MLP gates with tanh-approximated GELU (GeGLU), not SiLU: Hugging Face's Gemma
configs (`hidden_activation` gelu_pytorch_tanh; Gemma 1's MLP uses it whatever its `hidden_act`
says). Megatron-LM has no flag for it: `--swiglu` gates with SiLU, `--quick-geglu` with x·σ(1.702x),
`--openai-gelu` is tanh GELU without a gate, and `gated_linear_unit` alone is not a command-line
argument (megatron/training/arguments.py `_add_network_size_args` excludes it)."""

_GPT_OSS_ACTIVATION: dict[str, object] = {
    "--quick-geglu": True,
    "--glu-linear-offset": 1.0,
    "--activation-func-clamp-value": 7.0,
    "--softmax-type": "learnable",
}
"""gpt-oss's MLP and attention as Megatron-LM runs them (examples/gptoss/02_train.sh): its experts
compute (up + 1) · gate·σ(1.702·gate) with gate and up clamped at 7 (Hugging Face GptOssExperts,
config.json `swiglu_limit` 7.0 in gpt-oss-20b and -120b), which is Megatron's quick GELU gate
(`--quick-geglu`, megatron/core/fusions/fused_bias_geglu.py `quick_gelu`), the +1 offset
(`--glu-linear-offset`, TransformerConfig.glu_linear_offset) and the clamp
(`--activation-func-clamp-value`); its attention sinks are a learnable softmax offset
(`--softmax-type learnable`). Not `--swiglu`, whose SiLU gate is another function."""


def activation_args(model: ModelSpec) -> dict[str, object]:
    """The MLP activation flags: gpt-oss's own (`_GPT_OSS_ACTIVATION`), `--swiglu` for the other gated
    MLPs (GeGLU families included, `architecture_notes` says it stands in), none for a plain MLP
    (Megatron's default GELU)."""
    if model.model_type == "gpt_oss":
        return dict(_GPT_OSS_ACTIVATION)
    return {"--swiglu": True} if model.layers[0].mlp.gated else {}


def _softmax_layer(model: ModelSpec) -> LayerSpec | None:
    """The first layer with GQA / MHA softmax attention (None: MLA or linear attention only)."""
    plain = (AttentionKind.MLA, AttentionKind.LINEAR)
    return next((layer for layer in model.layers if layer.attention.kind not in plain), None)


def attention_parts(model: ModelSpec) -> dict[str, bool] | None:
    """Which optional parts the model's softmax attention has (`_ATTENTION_PARTS`: q/k/v biases, an
    output-projection bias, per-head q/k norms, an output gate, sinks), read back from the parameters
    the parser counted: the one combination of `parse_common.gqa_attention`'s switches that gives the
    counted attention parameters of its first softmax layer. None when there is no such layer, or
    when no combination, or several, give the count (a block counted otherwise)."""
    layer = _softmax_layer(model)
    if layer is None:
        return None
    att = layer.attention
    found = [
        dict(zip(_ATTENTION_PARTS, bits, strict=True))
        for bits in itertools.product((False, True), repeat=len(_ATTENTION_PARTS))
        if gqa_attention(
            model.hidden_size,
            att.num_heads,
            att.num_kv_heads,
            att.head_dim,
            **dict(zip(_ATTENTION_PARTS, bits, strict=True)),
        )
        == layer.params.attention
    ]
    return found[0] if len(found) == 1 else None


def _sparse_attention(model: ModelSpec) -> AttentionSpec | None:
    """The DeepSeek Sparse Attention layer spec (lightning indexer + top-k), None without one."""
    return next((layer.attention for layer in model.layers if layer.attention.sparse_topk), None)


def _sliding_window(model: ModelSpec) -> int | None:
    """The one sliding window of the model's SLIDING layers (None: none, or several widths)."""
    widths = _windows(model, AttentionKind.SLIDING)
    return widths.pop() if len(widths) == 1 and None not in widths else None


def _windows(model: ModelSpec, kind: AttentionKind) -> set[int | None]:
    """The window widths of the model's `kind` layers (empty: no such layer)."""
    return {layer.attention.window_tokens for layer in model.layers if layer.attention.kind is kind}


def _rotary_percent(model: ModelSpec) -> float | None:
    """The share of each head RoPE rotates where it is below 1 and the same for every cache
    (`ModelSpec.rope_caches`: rotary_dim over the head size; GPT-NeoX's rotary_pct, Phi's, GLM-4.5's
    and Qwen3-Next's partial_rotary_factor), for GQA / MHA attention; None otherwise (MLA rotates its
    own decoupled head, `--qk-pos-emb-head-dim`)."""
    layer = _softmax_layer(model)
    if layer is None or model.is_mla or not model.rope_caches:
        return None
    shares = {cache.rotary_dim / layer.attention.head_dim for cache in model.rope_caches}
    share = shares.pop() if len(shares) == 1 else None
    return share if share is not None and 0 < share < 1 else None


def architecture_notes(model: ModelSpec) -> list[str]:
    """Where the model's architecture is beyond Megatron's GPT flags, in sentences."""
    mt = model.model_type
    notes = []
    parts = attention_parts(model) if mt not in _CLASSIC_POSITIONS else None
    if parts is not None and parts["o_bias"]:
        notes.append(
            "the attention output projection's bias (config attention_bias) has no Megatron flag of its "
            "own: --add-qkv-bias covers q, k and v, and add_bias_linear (no --disable-bias-linear) would "
            "also bias every MLP projection."
        )
    if mt in _NOPE_ON_FULL_LAYERS:
        notes.append(
            "Llama 4 normalizes queries and keys with a weightless L2 norm on its RoPE layers where its "
            "config.json sets use_qk_norm; the model spec does not record that flag (the norm has no "
            "parameters), so add --qk-l2-norm then (TransformerConfig.qk_l2_norm, 'llama 4-style qk L2 "
            "norm'), which Megatron applies on every layer, NoPE ones included."
        )
    if chunks := _windows(model, AttentionKind.CHUNKED):
        notes.append(
            f"chunked attention ({', '.join(str(c) for c in sorted(c for c in chunks if c))}-token "
            "chunks) has no Megatron-LM flag (--window-size slides, it does not restart at chunk "
            "boundaries): those layers run full causal attention."
        )
    if _windows(model, AttentionKind.SLIDING) and _sliding_window(model) is None:
        notes.append(
            "the sliding-window layers use several window widths; Megatron-LM has one --window-size for "
            "all of them, so the arguments leave sliding windows out."
        )
    if (sparse := _sparse_attention(model)) is not None:
        notes.append(
            f"DeepSeek Sparse Attention runs as Megatron-LM's experimental DSA variant (indexer of "
            f"{sparse.indexer_heads} heads x {sparse.indexer_head_dim}, top-{sparse.sparse_topk}); it "
            "needs RoPE fusion off (--no-rope-fusion) and, with context parallelism, --cp-comm-type "
            "allgather (TransformerConfig.__post_init__), which the planner does not price: its plans "
            "keep such a model at cp = 1 (validation.cp_comm_problem)."
        )
    if mt == "bloom":
        notes.append(
            "BLOOM's ALiBi attention biases have no Megatron-LM position-embedding type (learned_absolute, "
            "rope, yarn, mrope, relative, none): the arguments run without positions (none); its "
            "embedding LayerNorm has no flag either."
        )
    if mt in ("gpt_neox", "phi"):
        share = _rotary_percent(model)
        rotary = f" (--rotary-percent {round(share, 6):g} in the arguments)" if share is not None else ""
        notes.append(
            f"rotary embeddings cover only part of each head{rotary}; the attention and MLP branches run "
            "in parallel off one residual, which Megatron's GPT layer (sequential) does not express."
        )
    if mt == "phi":
        notes.append("Phi's LM head bias has no Megatron flag (the output layer has none).")
    if mt == "opt":
        notes.append("OPT's ReLU MLP has no Megatron flag (--squared-relu is ReLU²): GELU stands in.")
    if mt in _GATED_GELU and model.layers[0].mlp.gated:
        notes.append(
            "Gemma's GeGLU MLP (a tanh-GELU gate) has no Megatron flag (--swiglu gates with SiLU, "
            "--quick-geglu with x·sigmoid(1.702x)): --swiglu stands in, with the same three matrices."
        )
    return notes


def position_table_note(model: ModelSpec, seq_len: int) -> str | None:
    """The one-line note where `architecture_args` sets --max-position-embeddings above the model's
    learned position table (GPT-2, OPT: `_CLASSIC_POSITIONS` learned_absolute): max(the config's
    max_position_embeddings, seq_len) rows, which the checkpoint's table of the config's rows does
    not fill; None otherwise (RoPE extends without a table, BLOOM has none)."""
    table = model.max_position_embeddings
    if _CLASSIC_POSITIONS.get(model.model_type) != "learned_absolute" or seq_len <= table:
        return None
    return (
        f"--max-position-embeddings {seq_len} (the sequence length) exceeds the checkpoint's learned "
        f"position table of {table} positions (config max_position_embeddings): the table does not load "
        f"as is; extend it before training from the checkpoint, or plan --seq-len {table} or less."
    )


def architecture_args(model: ModelSpec, config: TrainingConfig) -> dict[str, object]:
    """Shapes the memory plan assumed: layers, widths, heads, MLA / MoE structure, embeddings, and
    the architecture switches a converted checkpoint needs to load (`attention_args`).

    Raises:
        InputError: DeepSeek Sparse Attention with context parallelism (`attention_args`).
    """
    args: dict[str, object] = {
        "--num-layers": model.num_layers,
        "--hidden-size": model.hidden_size,
        "--num-attention-heads": model.num_heads,
    }
    if model.is_mla:
        att = next(layer.attention for layer in model.layers if layer.attention.kind is AttentionKind.MLA)
        args["--multi-latent-attention"] = True
        if att.q_lora_rank:
            args["--q-lora-rank"] = att.q_lora_rank
        args["--kv-lora-rank"] = att.kv_lora_rank
        args["--qk-head-dim"] = att.head_dim - att.qk_rope_head_dim
        args["--qk-pos-emb-head-dim"] = att.qk_rope_head_dim
        args["--v-head-dim"] = att.v_head_dim
    else:
        if model.num_kv_heads < model.num_heads:
            args["--group-query-attention"] = True
            args["--num-query-groups"] = model.num_kv_heads
        if model.head_dim * model.num_heads != model.hidden_size:
            args["--kv-channels"] = model.head_dim
    dense = [layer.mlp for layer in model.layers if layer.mlp.kind is MlpKind.DENSE]
    moe = [layer.mlp for layer in model.layers if layer.mlp.kind is MlpKind.MOE]
    args["--ffn-hidden-size"] = (dense or moe)[0].intermediate_size
    if moe:
        m = moe[0]
        args["--num-experts"] = m.num_experts
        args["--moe-router-topk"] = m.experts_per_token
        if model.model_type in _SIGMOID_ROUTERS:
            args["--moe-router-score-function"] = "sigmoid"
        args["--moe-ffn-hidden-size"] = m.intermediate_size
        if m.num_shared_experts:
            args["--moe-shared-expert-intermediate-size"] = m.num_shared_experts * m.shared_intermediate_size
        if dense:
            args["--moe-layer-freq"] = _moe_pattern(model)
    if model.mtp_layers:
        args["--mtp-num-layers"] = model.mtp_layers
    args["--max-position-embeddings"] = max(model.max_position_embeddings, config.seq_len)  # (notes:
    # `position_table_note` where a learned table is shorter)
    classic = _CLASSIC_POSITIONS.get(model.model_type)
    args["--position-embedding-type"] = classic or "rope"
    args["--normalization"] = "LayerNorm" if classic else "RMSNorm"
    args.update(activation_args(model))
    if not classic:  # the classic families keep Megatron's default biases on every linear layer
        args["--disable-bias-linear"] = True
    if not model.tie_word_embeddings:
        args["--untie-embeddings-and-output-weights"] = True
    args.update(attention_args(model, config))
    return args


def attention_args(model: ModelSpec, config: TrainingConfig) -> dict[str, object]:
    """The attention switches of the model's checkpoint (flag names: Megatron-LM d98e8a6,
    `TransformerConfig` fields through `megatron/training/arguments.py` `_add_network_size_args`'s
    ArgumentGroupFactory, `--window-size` / `--no-rope-freq` / `--rotary-percent` its own arguments):

    - `--qk-layernorm` (TransformerConfig.qk_layernorm): per-head q/k norms the parser counted
      (`attention_parts`: Qwen3, Qwen3-MoE / Coder, GLM-4.5's use_qk_norm, Gemma 3, Qwen3-Next), and
      every MLA model, whose q_a / kv_a latent norms Megatron builds only under it
      (`gpt_layer_specs`: `column_parallel_layer_norm_linear` for linear_q_up_proj / linear_kv_up_proj
      if qk_layernorm, else a plain linear); without it those weights have nowhere to load;
    - `--add-qkv-bias` (TransformerConfig.add_qkv_bias, "a bias term only for QKV projections"): q/k/v
      biases (Qwen2 / 2.5, GLM-4.5's attention_bias, gpt-oss); the output projection's bias has no
      flag of its own (`architecture_notes`);
    - `--attention-output-gate` (TransformerConfig.attention_output_gate): Qwen3-Next's gated query;
    - `--window-size W-1,0` and `--window-attn-skip-freq` (1 = sliding-window layer): a W-token window
      attends to the query and W − 1 tokens before it (Hugging Face's sliding mask), as
      examples/gptoss/02_train.sh passes `--window-size 127,0` for gpt-oss's 128;
    - `--no-rope-freq` (1 = no RoPE): Llama 4's NoPE layers (`_NOPE_ON_FULL_LAYERS`);
    - `--rotary-percent` (`_rotary_percent`): partial rotary embeddings (also GPT-NeoX's and Phi's,
      the only switch here the classic families take: Megatron's default biases cover their biases);
    - DeepSeek Sparse Attention: `--experimental-attention-variant dsa` with `--dsa-indexer-n-heads`,
      `--dsa-indexer-head-dim`, `--dsa-indexer-topk` from the spec's indexer (config index_n_heads,
      index_head_dim, index_topk) and `--no-rope-fusion` (TransformerConfig.__post_init__ asserts "RoPE
      fusion is not supported for DSAttention").

    Raises:
        InputError: DeepSeek Sparse Attention with cp > 1: Megatron-LM runs DSA context parallelism only
            with cp_comm_type allgather (TransformerConfig.__post_init__), which the plan does not
            price; the planner never offers such a plan (`validation.cp_comm_problem`), a hand-written
            config reaches this.
    """
    args: dict[str, object] = {}
    share = _rotary_percent(model)
    if model.model_type in _CLASSIC_POSITIONS:  # Megatron's default biases cover their q/k/v/o biases
        rope = _CLASSIC_POSITIONS[model.model_type] == "rope"
        return {"--rotary-percent": round(share, 6)} if rope and share is not None else {}
    parts = attention_parts(model) or {}
    if model.is_mla or parts.get("qk_norm"):
        args["--qk-layernorm"] = True
    if parts.get("qkv_bias"):
        args["--add-qkv-bias"] = True
    if parts.get("q_gate"):
        args["--attention-output-gate"] = True
    if (window := _sliding_window(model)) is not None:
        args["--window-size"] = f"{window - 1},0"
        sliding = [int(layer.attention.kind is AttentionKind.SLIDING) for layer in model.layers]
        if not all(sliding):  # every layer sliding: --window-size alone (`is_layer_window_attention`)
            args["--window-attn-skip-freq"] = layer_pattern(sliding)
    if model.model_type in _NOPE_ON_FULL_LAYERS:
        nope = [int(layer.attention.kind is AttentionKind.FULL) for layer in model.layers]
        if any(nope):
            args["--no-rope-freq"] = layer_pattern(nope)
    if share is not None:
        args["--rotary-percent"] = round(share, 6)
    if (sparse := _sparse_attention(model)) is not None:
        if config.cp > 1:
            raise InputError(
                f"DeepSeek Sparse Attention with cp={config.cp}: Megatron-LM runs DSA context parallelism "
                f"only with --cp-comm-type allgather (TransformerConfig.__post_init__), and the plan prices "
                f"{config.cp_comm}; a plan at cp=1 has Megatron arguments"
            )
        args["--experimental-attention-variant"] = "dsa"
        args["--dsa-indexer-n-heads"] = sparse.indexer_heads
        args["--dsa-indexer-head-dim"] = sparse.indexer_head_dim
        args["--dsa-indexer-topk"] = sparse.sparse_topk
        args["--no-rope-fusion"] = True
    return args


def layer_pattern(bits: list[int]) -> str:
    """A per-layer 0/1 list as Megatron's list expression (`arguments.py` `_eval_pattern`): a repeating
    period as "([1]*5+[0])*8", with the remainder after it ("(([1]*5+[0])*10+[1]*2)"); a pattern
    without one as its runs, "([0]*3+[1]*58)"."""
    n = len(bits)
    period = next(p for p in range(1, n + 1) if all(bits[i] == bits[i % p] for i in range(n)))
    whole, rest = divmod(n, period)
    if period == n or whole == 1:
        return "(" + _runs(bits) + ")"
    body = f"({_runs(bits[:period])})*{whole}"
    return f"({body}+{_runs(bits[:rest])})" if rest else body


def _runs(bits: list[int]) -> str:
    """`bits` as a sum of runs: "[0]*3+[1]*58"."""
    return "+".join(
        f"[{bit}]*{len(run)}" if len(run) > 1 else f"[{bit}]"
        for bit, run in ((bit, list(group)) for bit, group in itertools.groupby(bits))
    )


def _moe_pattern(model: ModelSpec) -> str:
    """--moe-layer-freq as Megatron's list expression, e.g. "([0]*3+[1]*58)" (1 = MoE layer)."""
    return layer_pattern([1 if layer.mlp.kind is MlpKind.MOE else 0 for layer in model.layers])
