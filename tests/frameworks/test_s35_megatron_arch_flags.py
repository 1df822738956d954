"""Megatron arguments carry the architecture switches a converted checkpoint needs to load (flag names
from Megatron-LM d98e8a6: TransformerConfig fields through arguments.py's ArgumentGroupFactory)."""

from __future__ import annotations

import pytest

from autoparallel.configs import TrainingConfig
from autoparallel.errors import InputError
from autoparallel.frameworks._megatron_model import architecture_args, architecture_notes
from autoparallel.frameworks.megatron import megatron_args
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.models.spec import AttentionKind

DEFAULT = TrainingConfig()


def _eval_pattern(pattern: object) -> list[int]:
    """Megatron's `arguments._eval_pattern`: the list expression, evaluated (digits and []()+*, only)."""
    assert isinstance(pattern, str) and set(pattern) <= set("0123456789[]()+*,")
    value = eval(pattern)  # the same restricted expression Megatron evaluates
    assert isinstance(value, list)
    return value


@pytest.mark.parametrize(
    "model_id",
    ["Qwen/Qwen3-8B", "Qwen/Qwen3-30B-A3B", "Qwen/Qwen3-Coder-480B-A35B-Instruct", "zai-org/GLM-4.5"],
)
def test_qk_norms_the_parser_counts_become_qk_layernorm(model_id: str) -> None:
    assert architecture_args(load_model(model_id), DEFAULT).get("--qk-layernorm") is True


def test_the_hunters_qwen3_plan_carries_qk_layernorm() -> None:
    # `plan Qwen/Qwen3-8B --cluster 1x8xH100 --train --seq-len 4096 --global-batch 256`
    cfg = TrainingConfig(dp=8, global_batch=256, seq_len=4096)
    args = megatron_args(load_model("Qwen/Qwen3-8B"), cfg, cluster=Cluster.parse("1x8xH100"))
    assert "--qk-layernorm" in args
    llama = megatron_args(load_model("meta-llama/Llama-3.1-8B"), cfg, cluster=Cluster.parse("1x8xH100"))
    assert "--qk-layernorm" not in llama and "--add-qkv-bias" not in llama


def test_qkv_biases_and_partial_rotary() -> None:
    glm = architecture_args(load_model("zai-org/GLM-4.5"), DEFAULT)
    assert glm["--add-qkv-bias"] is True and glm["--rotary-percent"] == 0.5
    assert architecture_args(load_model("Qwen/Qwen2.5-72B"), DEFAULT)["--add-qkv-bias"] is True
    assert architecture_args(load_model("EleutherAI/gpt-neox-20b"), DEFAULT)["--rotary-percent"] == 0.25


def test_mla_latent_norms_need_qk_layernorm() -> None:
    assert architecture_args(load_model("deepseek-ai/DeepSeek-V3"), DEFAULT)["--qk-layernorm"] is True


def test_deepseek_v32_sparse_attention_runs_as_megatrons_dsa_variant() -> None:
    # `plan deepseek-ai/DeepSeek-V3.2 --cluster 32x8xH100 --train --seq-len 65536 --global-batch 64`
    model = load_model("deepseek-ai/DeepSeek-V3.2")
    args = architecture_args(model, DEFAULT)
    assert args["--experimental-attention-variant"] == "dsa"
    assert (args["--dsa-indexer-n-heads"], args["--dsa-indexer-head-dim"], args["--dsa-indexer-topk"]) == (
        64,
        128,
        2048,
    )
    assert args["--no-rope-fusion"] is True  # MLATransformerConfig: no RoPE fusion under DSA
    assert args["--moe-router-score-function"] == "sigmoid"  # its config: scoring_func sigmoid
    with pytest.raises(InputError, match="allgather"):
        architecture_args(model, TrainingConfig(cp=2, seq_len=65536))


def test_sliding_windows_and_their_layer_pattern() -> None:
    for model_id, window in (("openai/gpt-oss-20b", "127,0"), ("google/gemma-3-27b-it", "1023,0")):
        model = load_model(model_id)
        args = architecture_args(model, DEFAULT)
        assert args["--window-size"] == window
        sliding = [int(layer.attention.kind is AttentionKind.SLIDING) for layer in model.layers]
        assert _eval_pattern(args["--window-attn-skip-freq"]) == sliding


def test_llama4_nope_layers_and_its_l2_qk_norm_note() -> None:
    model = load_model("meta-llama/Llama-4-Scout-17B-16E-Instruct")
    nope = [int(layer.attention.kind is AttentionKind.FULL) for layer in model.layers]
    assert _eval_pattern(architecture_args(model, DEFAULT)["--no-rope-freq"]) == nope
    assert any("--qk-l2-norm" in note for note in architecture_notes(model))


@pytest.mark.parametrize(
    "bits",
    [[0, 0, 0, 1, 1], [1, 0] * 12, ([1] * 5 + [0]) * 10 + [1, 1], [1], [0, 1, 1, 0, 1, 1, 0]],
)
def test_layer_pattern_round_trips(bits: list[int]) -> None:
    from autoparallel.frameworks._megatron_model import layer_pattern

    assert _eval_pattern(layer_pattern(bits)) == bits
