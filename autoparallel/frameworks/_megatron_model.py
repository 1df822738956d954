"""Megatron-LM model-shape arguments: the layers, widths, heads, MLA and MoE structure a plan assumed.

Flag names from Megatron-LM d98e8a6 (`megatron/training/arguments.py`, `TransformerConfig`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autoparallel.models.spec import AttentionKind, MlpKind

if TYPE_CHECKING:
    from autoparallel.configs import TrainingConfig
    from autoparallel.models.spec import ModelSpec

_SIGMOID_ROUTERS = frozenset({"deepseek_v3", "kimi_k2", "glm4_moe", "llama4", "llama4_text"})
"""Families whose router scores experts with a sigmoid, not a softmax (Hugging Face's
DeepseekV3TopkRouter, Glm4MoeTopkRouter, Llama4TextMoe). Megatron's default is softmax, and rejects
softmax with top-1 routing (Llama 4) unless the softmax runs before the top-k."""


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


def architecture_notes(model: ModelSpec) -> list[str]:
    """Where the classic families' architecture is beyond Megatron's GPT flags, in sentences."""
    mt = model.model_type
    notes = []
    if mt == "bloom":
        notes.append(
            "BLOOM's ALiBi attention biases have no Megatron-LM position-embedding type (learned_absolute, "
            "rope, yarn, mrope, relative, none): the arguments run without positions (none); its "
            "embedding LayerNorm has no flag either."
        )
    if mt in ("gpt_neox", "phi"):
        notes.append(
            "rotary embeddings cover only part of each head: add --rotary-percent from the config "
            "(rotary_pct / partial_rotary_factor); the attention and MLP branches run in parallel off "
            "one residual, which Megatron's GPT layer (sequential) does not express."
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


def architecture_args(model: ModelSpec, config: TrainingConfig) -> dict[str, object]:
    """Shapes the memory plan assumed: layers, widths, heads, MLA / MoE structure, embeddings."""
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
    args["--max-position-embeddings"] = max(model.max_position_embeddings, config.seq_len)
    classic = _CLASSIC_POSITIONS.get(model.model_type)
    args["--position-embedding-type"] = classic or "rope"
    args["--normalization"] = "LayerNorm" if classic else "RMSNorm"
    args.update(activation_args(model))
    if not classic:  # the classic families keep Megatron's default biases on every linear layer
        args["--disable-bias-linear"] = True
    if not model.tie_word_embeddings:
        args["--untie-embeddings-and-output-weights"] = True
    return args


def _moe_pattern(model: ModelSpec) -> str:
    """--moe-layer-freq as Megatron's list expression, e.g. "([0]*3+[1]*58)" (1 = MoE layer)."""
    runs: list[tuple[int, int]] = []
    for layer in model.layers:
        bit = 1 if layer.mlp.kind is MlpKind.MOE else 0
        if runs and runs[-1][0] == bit:
            runs[-1] = (bit, runs[-1][1] + 1)
        else:
            runs.append((bit, 1))
    return "(" + "+".join(f"[{bit}]*{n}" if n > 1 else f"[{bit}]" for bit, n in runs) + ")"
