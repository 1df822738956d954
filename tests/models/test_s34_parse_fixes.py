"""Raw-config parse fixes: YaRN context length, the fallback's tie default, StarCoder2, hybrid refusal,
`use_sliding_window: false` in the generic parse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autoparallel.cli import main
from autoparallel.errors import InputError
from autoparallel.models import AttentionKind, spec_from_config


def _qwen3_8b(**over: Any) -> dict[str, Any]:
    """Qwen3-8B's config.json (the keys the parse reads)."""
    cfg: dict[str, Any] = {
        "architectures": ["Qwen3ForCausalLM"],
        "model_type": "qwen3",
        "head_dim": 128,
        "hidden_size": 4096,
        "intermediate_size": 12288,
        "max_position_embeddings": 40960,
        "max_window_layers": 36,
        "num_attention_heads": 32,
        "num_hidden_layers": 36,
        "num_key_value_heads": 8,
        "rope_scaling": None,
        "rope_theta": 1000000,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_sliding_window": False,
        "vocab_size": 151936,
    }
    cfg.update(over)
    return cfg


_YARN = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}
_LEGACY_YARN = {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}


@pytest.mark.parametrize(
    ("over", "limit"),
    [
        ({"rope_scaling": _YARN}, 40960),  # Qwen3's documented YaRN: the length already stated
        ({"rope_scaling": _LEGACY_YARN}, 40960),  # the legacy `type` key
        ({"rope_parameters": _YARN}, 40960),
        ({"rope_scaling": {"rope_type": "deepseek_yarn", "factor": 2.0}}, 40960),
        ({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}}, 40960),
        ({"rope_scaling": {"rope_type": "longrope", "factor": 8.0, "short_factor": [1.0]}}, 40960),
        ({"rope_scaling": {"rope_type": "linear", "factor": 2.0}}, 81920),
        ({"rope_scaling": {"rope_type": "dynamic", "factor": 2.0}}, 81920),
        ({}, 40960),
    ],
)
def test_yarn_context_is_vllm_032s_stated_length(over: dict[str, Any], limit: int) -> None:
    """vLLM 0.32 `_get_and_verify_max_len` (vllm/config/model.py): "YaRN variants leave
    max_position_embeddings already scaled", so su / longrope / llama3 / yarn / deepseek_yarn /
    deepseek_llama_scaling keep the stated length and only the others (linear, dynamic) multiply it.
    (Later vLLM releases scale YaRN's original length; 0.32 is the release the planner follows.)"""
    spec = spec_from_config(_qwen3_8b(**over), name="qwen3-yarn")
    assert spec.max_position_embeddings == limit
    assert spec.vllm_default_max_model_len == limit


def test_yarn_zoo_style_configs_keep_their_length() -> None:
    """DeepSeek-style YaRN (4096 x 40 = 163840) and gpt-oss (4096 x 32 = 131072) already state the
    scaled length: unchanged."""
    ds = _qwen3_8b(
        max_position_embeddings=163840,
        rope_scaling={"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096},
    )
    assert spec_from_config(ds, name="ds").max_position_embeddings == 163840
    oss = _qwen3_8b(
        max_position_embeddings=131072,
        rope_scaling={"rope_type": "yarn", "factor": 32.0, "original_max_position_embeddings": 4096},
    )
    assert spec_from_config(oss, name="oss").max_position_embeddings == 131072


def _cohere() -> dict[str, Any]:
    """CohereForAI/c4ai-command-r-v01's config.json: no `tie_word_embeddings` key."""
    return {
        "architectures": ["CohereForCausalLM"],
        "model_type": "cohere",
        "hidden_size": 8192,
        "intermediate_size": 22528,
        "max_position_embeddings": 8192,
        "model_max_length": 131072,
        "num_attention_heads": 64,
        "num_hidden_layers": 40,
        "num_key_value_heads": 64,
        "torch_dtype": "float16",
        "vocab_size": 256000,
    }


def test_generic_parse_ties_embeddings_when_the_config_is_silent() -> None:
    """transformers' `PreTrainedConfig.tie_word_embeddings` defaults to True (and `CohereConfig`'s):
    Command-R counts 34.98B, not 37.08B with a second 2.1B vocabulary matrix."""
    spec = spec_from_config(_cohere(), name="cohere")
    assert spec.tie_word_embeddings and spec.lm_head_params == 0
    assert spec.total_params == 34_981_158_912
    untied = spec_from_config({**_cohere(), "tie_word_embeddings": False}, name="cohere")
    assert untied.lm_head_params == 256000 * 8192
    # A family that declares its own default keeps it: Llama's is False.
    llama = {**_cohere(), "model_type": "llama", "num_key_value_heads": 8}
    assert spec_from_config(llama, name="llama").lm_head_params == 256000 * 8192


def _starcoder2_3b() -> dict[str, Any]:
    """bigcode/starcoder2-3b's config.json (the keys the parse reads)."""
    return {
        "architectures": ["Starcoder2ForCausalLM"],
        "model_type": "starcoder2",
        "hidden_size": 3072,
        "intermediate_size": 12288,
        "max_position_embeddings": 16384,
        "num_attention_heads": 24,
        "num_hidden_layers": 30,
        "num_key_value_heads": 2,
        "sliding_window": 4096,
        "use_bias": True,
        "vocab_size": 49152,
        "torch_dtype": "float32",
        "residual_dropout": 0.1,
    }


def test_starcoder2_counts_its_published_3b() -> None:
    """modeling_starcoder2: biased q/k/v/o (GQA), c_fc / c_proj MLP with biases, two LayerNorms with
    bias per block, a final LayerNorm, the head tied (Starcoder2Config default): 3,030,371,328, as
    transformers' meta-device model counts it (was 4.31B as a generic gated llama)."""
    spec = spec_from_config(_starcoder2_3b(), name="sc2")
    h, i, kv = 3072, 12288, 2 * 128
    attention = 2 * (h * h + h) + 2 * (h * kv + kv)
    mlp = h * i + i + i * h + h
    assert spec.layers[0].params.attention == attention
    assert spec.layers[0].params.dense_mlp == mlp
    assert spec.total_params == 3_030_371_328 == 30 * (attention + mlp + 4 * h) + 49152 * h + 2 * h
    assert spec.tie_word_embeddings and not spec.layers[0].mlp.gated
    assert {layer.attention.kind for layer in spec.layers} == {AttentionKind.SLIDING}
    assert spec.layers[0].attention.window_tokens == 4096
    assert spec.dropout  # residual_dropout 0.1 trains with dropout
    assert "not a known family" not in spec.notes


def _bamba() -> dict[str, Any]:
    """ibm-ai-platform/Bamba-9B's config.json (the keys the parse reads)."""
    return {
        "architectures": ["BambaForCausalLM"],
        "model_type": "bamba",
        "attn_layer_indices": [9, 18, 27],
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "mamba_d_state": 128,
        "mamba_expand": 2,
        "mamba_n_heads": 128,
        "max_position_embeddings": 262144,
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 8,
        "tie_word_embeddings": False,
        "vocab_size": 128256,
    }


def test_bamba_hybrid_is_refused_not_priced_as_a_transformer() -> None:
    with pytest.raises(InputError, match="attn_layer_indices"):
        spec_from_config(_bamba(), name="bamba")
    mamba_only = {k: v for k, v in _bamba().items() if k != "attn_layer_indices"}
    with pytest.raises(InputError, match="mamba_d_state"):
        spec_from_config(mamba_only, name="bamba")


def test_bamba_refusal_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config.json").write_text(json.dumps(_bamba()))
    assert main(["model", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "attn_layer_indices" in err and len(err.splitlines()) == 1


def test_generic_parse_honours_use_sliding_window_false() -> None:
    """vLLM `get_hf_config_sliding_window`: `use_sliding_window: false` means no window (Qwen2-VL's
    config carries `sliding_window: 32768` with it); every layer is full attention."""
    cfg = _qwen3_8b(model_type="qwen2_vl", sliding_window=32768, use_sliding_window=False)
    spec = spec_from_config(cfg, name="qwen2vl")
    assert {layer.attention.kind for layer in spec.layers} == {AttentionKind.FULL}
    assert spec.layers[0].attention.window_tokens is None
    on = spec_from_config({**cfg, "use_sliding_window": True}, name="qwen2vl")
    assert {layer.attention.kind for layer in on.layers} == {AttentionKind.SLIDING}
    unset = spec_from_config({k: v for k, v in cfg.items() if k != "use_sliding_window"}, name="x")
    assert {layer.attention.kind for layer in unset.layers} == {AttentionKind.SLIDING}
