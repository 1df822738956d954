"""Malformed config fields are refused, naming the field and the value (exit 2), as a string
`hidden_size` is: `torch_dtype`, `architectures`, `tie_word_embeddings` (and every boolean flag),
`mlp_only_layers`, and a RoPE type vLLM's `get_rope` does not know."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autoparallel.cli import main
from autoparallel.errors import InputError
from autoparallel.models import spec_from_config


def _llama(**over: Any) -> dict[str, Any]:
    """Llama-3.1-8B's config.json (the keys the parse reads)."""
    cfg: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "max_position_embeddings": 131072,
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 8,
        "rope_scaling": {
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
            "rope_type": "llama3",
        },
        "rope_theta": 500000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "vocab_size": 128256,
    }
    cfg.update(over)
    return cfg


def _qwen3_moe(**over: Any) -> dict[str, Any]:
    """Qwen3-30B-A3B's config.json (the keys the parse reads)."""
    cfg: dict[str, Any] = {
        "architectures": ["Qwen3MoeForCausalLM"],
        "model_type": "qwen3_moe",
        "decoder_sparse_step": 1,
        "head_dim": 128,
        "hidden_size": 2048,
        "intermediate_size": 6144,
        "max_position_embeddings": 40960,
        "mlp_only_layers": [],
        "moe_intermediate_size": 768,
        "num_attention_heads": 32,
        "num_experts": 128,
        "num_experts_per_tok": 8,
        "num_hidden_layers": 48,
        "num_key_value_heads": 4,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "vocab_size": 151936,
    }
    cfg.update(over)
    return cfg


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        (_llama(torch_dtype="int3"), r"`torch_dtype` must be one of .*, got 'int3'"),
        (_llama(torch_dtype=5), r"`torch_dtype` must be one of .*, got 5"),
        (_llama(torch_dtype=None, dtype="int8"), r"`dtype` must be one of .*, got 'int8'"),
        (_llama(architectures="LlamaForCausalLM"), r"`architectures` must be a list .*'LlamaForCausalLM'"),
        (_llama(architectures=[5]), r"`architectures` must be a list .*\[5\]"),
        (_llama(tie_word_embeddings="yes"), r"`tie_word_embeddings` must be true or false, got 'yes'"),
        (_llama(tie_word_embeddings=5), r"`tie_word_embeddings` must be true or false, got 5"),
        (_llama(attention_bias="no"), r"`attention_bias` must be true or false, got 'no'"),
        (_qwen3_moe(mlp_only_layers="all"), r"`mlp_only_layers` must be a list of layer indices .*'all'"),
        (_llama(rope_scaling={"rope_type": "zzz", "factor": 4.0}), r"RoPE scaling `rope_type` 'zzz'"),
        (_llama(rope_scaling={"type": "zzz", "factor": 4.0}), r"RoPE scaling `type` 'zzz'"),
        (_llama(rope_parameters={"rope_type": 7}), r"RoPE scaling `rope_type` 7"),
    ],
)
def test_malformed_fields_are_refused_naming_field_and_value(cfg: dict[str, Any], match: str) -> None:
    with pytest.raises(InputError, match=match):
        spec_from_config(cfg, name="m")


def test_nested_text_config_takes_no_malformed_outer_tie() -> None:
    outer = {"model_type": "llava_like", "text_config": _llama(tie_word_embeddings=None)}
    with pytest.raises(InputError, match=r"`tie_word_embeddings` must be true or false, got 'yes'"):
        spec_from_config({**outer, "tie_word_embeddings": "yes"}, name="m")


@pytest.mark.parametrize(
    "rope",
    [
        {"rope_type": "default"},
        {"rope_type": "linear", "factor": 2.0},
        {"rope_type": "dynamic", "factor": 2.0},
        {"rope_type": "ntk", "factor": 2.0},
        {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768},
        {"type": "su", "short_factor": [1.0], "long_factor": [1.0], "original_max_position_embeddings": 4096},
        {"type": "mrope", "mrope_section": [16, 24, 24]},
        {"factor": 2.0},  # no type: "default"
    ],
)
def test_rope_types_vllm_knows_still_parse(rope: dict[str, Any]) -> None:
    spec_from_config(_llama(rope_scaling=rope), name="m")


def test_well_formed_values_still_parse() -> None:
    assert spec_from_config(_llama(torch_dtype="torch.float32"), name="m").dtype_bytes == 4
    assert spec_from_config(_llama(torch_dtype=None, dtype="float16"), name="m").dtype_bytes == 2
    assert spec_from_config(_llama(architectures=[]), name="m").architecture == ""
    assert spec_from_config(_llama(architectures=None), name="m").architecture == ""
    assert spec_from_config(_llama(tie_word_embeddings=True), name="m").lm_head_params == 0
    dense = spec_from_config(_qwen3_moe(mlp_only_layers=[0, 1]), name="m")
    assert [layer.mlp.kind.value for layer in dense.layers[:3]] == ["dense", "dense", "moe"]


def test_unknown_rope_type_does_not_scale_the_context() -> None:
    """Before: an unknown type "zzz" multiplied the context by its factor (131,072 -> 524,288)."""
    with pytest.raises(InputError, match="zzz"):
        spec_from_config(_llama(rope_scaling={"rope_type": "zzz", "factor": 4.0}), name="m")


@pytest.mark.parametrize(
    ("cfg", "field"),
    [
        (_llama(torch_dtype="int3"), "torch_dtype"),
        (_llama(architectures="LlamaForCausalLM"), "architectures"),
        (_llama(tie_word_embeddings="yes"), "tie_word_embeddings"),
        (_qwen3_moe(mlp_only_layers="all"), "mlp_only_layers"),
        (_llama(rope_scaling={"rope_type": "zzz", "factor": 4.0}), "rope_type"),
    ],
)
@pytest.mark.parametrize("command", [["memory", "--gpu", "H100"], ["plan", "--cluster", "8xH100"]])
def test_cli_refuses_in_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cfg: dict[str, Any], field: str, command: list[str]
) -> None:
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert main([command[0], str(tmp_path), *command[1:]]) == 2
    err = capsys.readouterr().err.strip()
    assert f"`{field}`" in err and "\n" not in err
