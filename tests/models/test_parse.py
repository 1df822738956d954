"""spec_from_config: exact counts per family, defaults, quantization, and bad input."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from autoparallel.errors import InputError
from autoparallel.models import AttentionKind, MlpKind, QuantMethod, spec_from_config
from autoparallel.models.zoo import find_entry


def _llama(**over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 160,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "num_hidden_layers": 3,
        "vocab_size": 1000,
        "max_position_embeddings": 512,
        "torch_dtype": "bfloat16",
    }
    cfg.update(over)
    return cfg


def test_llama_counts_by_hand() -> None:
    s = spec_from_config(_llama(), name="tiny")
    h, i, hd = 64, 160, 8
    attention = h * 8 * hd + 2 * h * 2 * hd + 8 * hd * h
    layer = attention + 3 * h * i + 2 * h
    assert s.layers[0].params.attention == attention
    assert s.total_params == 2 * 1000 * h + 3 * layer + h
    assert s.active_params == s.total_params
    assert (s.num_heads, s.num_kv_heads, s.head_dim) == (8, 2, 8)
    assert s.dtype_bytes == 2 and s.quantization is None
    assert all(layer.attention.kind is AttentionKind.FULL for layer in s.layers)


@pytest.mark.parametrize(
    ("over", "limit"),
    [
        ({}, 512),
        ({"rope_scaling": {"type": "linear", "factor": 4.0}}, 2048),  # vLLM multiplies linear/dynamic
        ({"rope_scaling": {"rope_type": "dynamic", "factor": 2}}, 1024),
        ({"rope_parameters": {"rope_type": "linear", "factor": 3.0}}, 1536),
        ({"rope_scaling": {"rope_type": "linear", "factor": None}}, 512),  # null factor: 1.0
        (
            {"rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 128}},
            512,
        ),
        ({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}}, 512),
        ({"rope_scaling": {"type": "mrope", "mrope_section": [2, 1, 1]}}, 512),
        ({"seq_length": 256}, 256),  # the least length key wins
        ({"seq_length": 256, "model_max_length": 1024}, 1024),  # Command-R's key wins where set
        ({"model_type": "gemma3_text", "rope_scaling": {"rope_type": "linear", "factor": 8.0}}, 512),
    ],
)
def test_context_limit_is_vllms_derived_max_model_len(over: dict[str, Any], limit: int) -> None:
    """vLLM 0.32 `_get_and_verify_max_len`: the least length key, times a RoPE factor not already
    counted in it (linear, dynamic), never for YaRN, Llama 3 or Gemma 3."""
    assert spec_from_config(_llama(**over), name="tiny").max_position_embeddings == limit


@pytest.mark.parametrize("factor", ["8", -2.0, True, 1e30])
def test_a_bad_rope_factor_is_one_line(factor: object) -> None:
    with pytest.raises(InputError, match="factor"):
        spec_from_config(_llama(rope_scaling={"type": "linear", "factor": factor}), name="tiny")


def test_tied_embeddings_drop_lm_head() -> None:
    s = spec_from_config(_llama(tie_word_embeddings=True), name="tiny")
    assert s.lm_head_params == 0 and s.tie_word_embeddings


def test_qwen2_has_qkv_bias_only_and_qwen3_has_qk_norm() -> None:
    base = spec_from_config(_llama(), name="a").layers[0].params.attention
    q2 = spec_from_config(_llama(model_type="qwen2"), name="b").layers[0].params.attention
    q3 = spec_from_config(_llama(model_type="qwen3", head_dim=8), name="c").layers[0].params.attention
    assert q2 - base == 8 * 8 + 2 * 2 * 8  # q, k, v biases; o has none
    assert q3 - base == 2 * 8  # q_norm, k_norm over head_dim
    biased = spec_from_config(_llama(attention_bias=True), name="d").layers[0].params.attention
    assert biased - base == 8 * 8 + 2 * 2 * 8 + 64  # llama attention_bias also biases o_proj


def test_explicit_null_sliding_window_is_full_attention() -> None:
    s = spec_from_config(_llama(model_type="mistral", sliding_window=None), name="m")
    assert {layer.attention.kind for layer in s.layers} == {AttentionKind.FULL}
    s = spec_from_config(_llama(model_type="mistral", sliding_window=4096), name="m")
    assert s.layers[0].attention.kind is AttentionKind.SLIDING
    assert s.layers[0].attention.window_tokens == 4096


def test_mixtral_moe_active_counts_top_k() -> None:
    s = spec_from_config(_llama(model_type="mixtral", num_local_experts=4, num_experts_per_tok=2), name="x")
    layer = s.layers[0]
    assert layer.mlp.kind is MlpKind.MOE
    assert layer.params.routed_experts == 4 * 3 * 64 * 160
    assert layer.params.router == 64 * 4
    assert layer.active_params == layer.params.total - layer.params.routed_experts // 2
    assert s.is_moe and s.num_experts == 4 and s.experts_per_token == 2


def _deepseek(**over: Any) -> dict[str, Any]:
    cfg = copy.deepcopy(find_entry("deepseek-ai/DeepSeek-V3").config)  # type: ignore[union-attr]
    cfg.update({"num_hidden_layers": 4, "first_k_dense_replace": 1})
    cfg.update(over)
    return cfg


def test_deepseek_mla_and_mtp() -> None:
    s = spec_from_config(_deepseek(), name="ds")
    att = s.layers[0].attention
    assert att.kind is AttentionKind.MLA and att.kv_lora_rank == 512 and att.qk_rope_head_dim == 64
    assert att.kv_bytes_per_token_per_element == 576
    assert s.layers[0].mlp.kind is MlpKind.DENSE and s.layers[1].mlp.kind is MlpKind.MOE
    assert s.layers[1].params.router == 7168 * 256 + 256  # gate + e_score_correction_bias
    assert s.mtp_layers == 1
    assert s.mtp_params == 2 * 7168 * 7168 + 3 * 7168 + s.layers[-1].params.total
    assert s.active_params < s.total_params - s.mtp_params  # MTP never counts as active


def test_deepseek_null_q_lora_uses_q_proj() -> None:
    with_lora = spec_from_config(_deepseek(), name="a").layers[0].params.attention
    without = spec_from_config(_deepseek(q_lora_rank=None), name="b").layers[0].params.attention
    q_lora = 7168 * 1536 + 1536 + 1536 * 128 * 192
    assert with_lora - without == q_lora - 7168 * 128 * 192
    assert spec_from_config(_deepseek(q_lora_rank=None), name="b").layers[0].attention.q_lora_rank == 0


def test_gpt_oss_sinks_biases_and_alternating_windows() -> None:
    s = find_entry("openai/gpt-oss-20b").spec()  # type: ignore[union-attr]
    kinds = [layer.attention.kind for layer in s.layers]
    assert kinds[:2] == [AttentionKind.SLIDING, AttentionKind.FULL]
    assert s.layers[0].attention.window_tokens == 128 and s.layers[1].attention.window_tokens is None
    p = s.layers[0].params
    assert p.attention == 2880 * 4096 + 4096 + 2 * (2880 * 512 + 512) + 4096 * 2880 + 2880 + 64
    assert p.router == 2880 * 32 + 32
    assert p.routed_experts == 32 * (3 * 2880 * 2880 + 2 * 2880 + 2880)
    q = s.quantization
    assert q is not None and q.method is QuantMethod.MXFP4 and q.quantized_groups == ("routed_experts",)


def test_gemma3_sparse_config_gets_family_defaults() -> None:
    full = find_entry("google/gemma-3-27b-it").config  # type: ignore[union-attr]
    keep = (
        "head_dim",
        "hidden_size",
        "intermediate_size",
        "model_type",
        "num_attention_heads",
        "num_hidden_layers",
        "num_key_value_heads",
        "query_pre_attn_scalar",
        "rope_scaling",
        "sliding_window",
    )
    sparse = {
        "architectures": ["Gemma3ForConditionalGeneration"],
        "model_type": "gemma3",
        "text_config": {k: full["text_config"][k] for k in keep},
        "vision_config": full["vision_config"],
        "torch_dtype": "bfloat16",
    }
    a = spec_from_config(sparse, name="sparse")
    b = spec_from_config(full, name="full")
    assert a.params == b.params
    assert a.vocab_size == 262208 and a.tie_word_embeddings and a.model_type == "gemma3_text"
    kinds = [layer.attention.kind for layer in a.layers]
    assert kinds[5] is AttentionKind.FULL and kinds[:5] == [AttentionKind.SLIDING] * 5
    assert a.layers[0].params.norms == 4 * 5376
    assert a.vision_params > 400_000_000


def test_llama4_chunked_pattern_and_interleaved_moe() -> None:
    s = find_entry("meta-llama/Llama-4-Maverick-17B-128E-Instruct").spec()  # type: ignore[union-attr]
    kinds = [layer.attention.kind for layer in s.layers[:4]]
    assert kinds == [AttentionKind.CHUNKED] * 3 + [AttentionKind.FULL]
    assert s.layers[0].attention.window_tokens == 8192
    assert [layer.mlp.kind for layer in s.layers[:2]] == [MlpKind.DENSE, MlpKind.MOE]
    assert s.layers[1].mlp.num_shared_experts == 1
    assert s.vision_params == 871_932_416


def test_qwen3_next_hybrid_layers() -> None:
    s = find_entry("Qwen/Qwen3-Next-80B-A3B-Instruct").spec()  # type: ignore[union-attr]
    kinds = [layer.attention.kind for layer in s.layers[:4]]
    assert kinds == [AttentionKind.LINEAR] * 3 + [AttentionKind.FULL]
    assert s.kv_bytes_per_token_by_kind(2.0) == {"full": 12 * 2 * 2 * 256 * 2}
    assert s.state_bytes_per_sequence() == 36 * (32 * 128 * 128 + 3 * (2 * 2048 + 4096)) * 2
    assert s.layers[3].params.shared_experts == 3 * 2048 * 512 + 2048  # + shared_expert_gate


def test_classic_families_have_biases_and_positions() -> None:
    gpt2 = find_entry("gpt2").spec()  # type: ignore[union-attr]
    assert gpt2.total_params == 124_439_808
    assert gpt2.embedding_params == 50257 * 768 + 1024 * 768
    assert gpt2.layers[0].mlp.gated is False
    opt = spec_from_config(
        {
            "model_type": "opt",
            "hidden_size": 16,
            "ffn_dim": 64,
            "num_attention_heads": 2,
            "num_hidden_layers": 1,
            "vocab_size": 10,
            "max_position_embeddings": 8,
        },
        name="opt",
    )
    assert opt.embedding_params == 10 * 16 + (8 + 2) * 16


def test_dropout_follows_the_config_and_family_defaults() -> None:
    assert find_entry("gpt2").spec().dropout is True  # type: ignore[union-attr]  # GPT2Config: 0.1
    assert find_entry("facebook/opt-66b").spec().dropout is True  # type: ignore[union-attr]  # dropout 0.1
    assert spec_from_config(_llama(), name="x").dropout is False
    assert spec_from_config(_llama(attention_dropout=0.0), name="x").dropout is False
    assert spec_from_config(_llama(attention_dropout=0.1), name="x").dropout is True
    assert spec_from_config(_llama(model_type="phi3", resid_pdrop=0.1), name="x").dropout is True
    # MPT / DBRX keep attn_pdrop inside attn_config; non-numeric values are ignored.
    assert spec_from_config(_llama(model_type="x", attn_config={"attn_pdrop": 0.1}), name="x").dropout
    assert not spec_from_config(_llama(model_type="x", dropout="none"), name="x").dropout
    gpt2 = find_entry("gpt2").config  # type: ignore[union-attr]
    no_drop = {**gpt2, "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
    assert spec_from_config(no_drop, name="gpt2").dropout is False


def test_multimodal_nesting_and_dtype() -> None:
    cfg = {"model_type": "llava_like", "torch_dtype": "float32", "text_config": _llama()}
    s = spec_from_config(cfg, name="mm")
    assert s.model_type == "llama" and s.dtype_bytes == 4
    assert s.total_params == spec_from_config(_llama(), name="x").total_params


def test_unknown_type_is_parsed_generically_with_note() -> None:
    s = spec_from_config(_llama(model_type="brand_new", tie_word_embeddings=False), name="new")
    assert s.total_params == spec_from_config(_llama(), name="x").total_params
    assert "not a known family" in s.notes
    moe = spec_from_config(
        _llama(
            model_type="brand_new_moe", num_local_experts=4, num_experts_per_tok=1, moe_intermediate_size=32
        ),
        name="moe",
    )
    assert moe.is_moe and moe.layers[0].params.routed_experts == 4 * 3 * 64 * 32


# ----- quantization -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("qc", "method", "check"),
    [
        (
            {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": True},
            QuantMethod.GPTQ,
            lambda q: q.bits == 4 and q.group_size == 128,
        ),
        (
            {"quant_method": "awq", "bits": 4, "group_size": 64, "zero_point": True},
            QuantMethod.AWQ,
            lambda q: q.group_size == 64,
        ),
        (
            {"quant_method": "awq", "w_bit": 4, "q_group_size": 128},
            QuantMethod.AWQ,
            lambda q: q.group_size == 128,
        ),
        (
            {"quant_method": "fp8", "weight_block_size": [128, 128]},
            QuantMethod.FP8,
            lambda q: (q.block_n, q.block_k) == (128, 128),
        ),
        ({"quant_method": "fp8"}, QuantMethod.FP8, lambda q: q.block_n == 0),
        (
            {
                "quant_method": "bitsandbytes",
                "load_in_4bit": True,
                "bnb_4bit_quant_type": "nf4",
                "bnb_4bit_use_double_quant": True,
            },
            QuantMethod.BITSANDBYTES,
            lambda q: q.bits == 4 and q.double_quant,
        ),
        ({"quant_method": "modelopt", "quant_algo": "FP8"}, QuantMethod.FP8, lambda q: q.block_n == 0),
        (
            {"quant_method": "modelopt", "quant_algo": "NVFP4", "group_size": 16},
            QuantMethod.NVFP4,
            lambda q: q.group_size == 16 and q.bytes_per_weight == 0.5 + 1 / 16,
        ),
        (
            {
                "quant_method": "compressed-tensors",
                "format": "nvfp4-pack-quantized",
                "config_groups": {
                    "group_0": {
                        "weights": {
                            "num_bits": 4,
                            "type": "float",
                            "strategy": "tensor_group",
                            "group_size": 16,
                        }
                    }
                },
            },
            QuantMethod.NVFP4,
            lambda q: q.bits == 4 and "NVFP4" in q.source,
        ),
        (
            {
                "quant_method": "compressed-tensors",
                "config_groups": {
                    "group_0": {
                        "weights": {
                            "num_bits": 8,
                            "type": "float",
                            "strategy": "block",
                            "block_structure": [128, 128],
                        }
                    }
                },
            },
            QuantMethod.FP8,
            lambda q: q.block_k == 128,
        ),
        (
            {
                "quant_method": "compressed-tensors",
                "config_groups": {
                    "group_0": {
                        "weights": {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128}
                    }
                },
            },
            QuantMethod.GPTQ,
            lambda q: q.bits == 4,
        ),
        (
            {
                "quant_method": "gptq",
                "bits": 4,
                "group_size": 128,
                "modules_to_not_convert": ["model.layers.*.self_attn"],
            },
            QuantMethod.GPTQ,
            lambda q: "attention" not in q.quantized_groups,
        ),
    ],
)
def test_quantization_config(qc: dict[str, Any], method: QuantMethod, check: Any) -> None:
    s = spec_from_config(_llama(quantization_config=qc), name="q")
    assert s.quantization is not None and s.quantization.method is method
    assert check(s.quantization)
    assert s.weight_bytes() < s.total_params * 2


def test_unsupported_quantization_raises() -> None:
    with pytest.raises(InputError, match="hqq"):
        spec_from_config(_llama(quantization_config={"quant_method": "hqq"}), name="q")
    with pytest.raises(InputError, match="group_size 32"):
        nvfp4 = {"quant_method": "modelopt", "quant_algo": "NVFP4", "group_size": 32}
        spec_from_config(_llama(quantization_config=nvfp4), name="q")
    with pytest.raises(InputError, match=r"W4A8_AWQ.*FP8 and NVFP4"):
        spec_from_config(
            _llama(quantization_config={"quant_method": "modelopt", "quant_algo": "W4A8_AWQ"}), name="q"
        )


@pytest.mark.parametrize(
    ("qc", "match"),
    [
        ({"quant_method": "awq", "bits": 3, "group_size": 128}, "4-bit AWQ only"),  # AWQConfig, both engines
        ({"quant_method": "fp8", "weight_block_size": [128, 128, 1]}, "two positive integers"),
        ({"quant_method": "fp8", "weight_block_size": ["a", 128]}, "two positive integers"),
        ({"quant_method": "fp8", "weight_block_size": [0, 128]}, "two positive integers"),
        ({"quant_method": "fp8", "weight_block_size": 128}, "two positive integers"),
    ],
)
def test_quantization_the_engines_refuse_is_refused(qc: dict[str, Any], match: str) -> None:
    with pytest.raises(InputError, match=match):
        spec_from_config(_llama(quantization_config=qc), name="q")


def test_gptq_shapes_vllm_032_does_not_load_are_refused_for_vllm_only() -> None:
    """vLLM 0.32's Marlin-only GPTQ (`AutoGPTQConfig.TYPE_MAP`: (4, sym), (8, sym)); SGLang's GPTQConfig
    takes 2, 3, 4, 8 bits."""
    from autoparallel.perf.engine_support import engine_model_problem

    def spec(bits: int, sym: bool) -> Any:
        qc = {"quant_method": "gptq", "bits": bits, "group_size": 128, "sym": sym, "desc_act": False}
        return spec_from_config(_llama(quantization_config=qc), name="q")

    assert engine_model_problem("vllm", spec(4, True)) is None
    assert engine_model_problem("vllm", spec(8, True)) is None
    assert "3-bit GPTQ" in str(engine_model_problem("vllm", spec(3, True)))
    assert "4-bit asymmetric GPTQ" in str(engine_model_problem("vllm", spec(4, False)))
    assert engine_model_problem("vllm", spec(3, True), vllm_version="0.10.2") is None  # not pinned before
    assert engine_model_problem("sglang", spec(3, False)) is None


def test_expert_parallelism_keeps_routed_experts_whole_over_tp() -> None:
    """vLLM's FusedMoE runs at tp_size 1 under EP (`FusedMoEParallelConfig.make`): FP8-block Qwen3 MoE
    (expert width 1536, 128-wide blocks) runs tp 8 with EP though 1536 / 8 = 192 splits no block."""
    from autoparallel.models.zoo import find_entry

    entry = find_entry("Qwen/Qwen3-235B-A22B")
    assert entry is not None
    fp8 = {"quant_method": "fp8", "weight_block_size": [128, 128]}
    spec = spec_from_config({**entry.config, "quantization_config": fp8}, name="q")
    assert any("tp_divides_mlp" in v for v in spec.tp_violations(8))
    assert spec.tp_violations(8, expert_parallel=True) == []
    assert spec.tp_violations(3, expert_parallel=True)  # heads still split


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"model_type": "mistral", "sliding_window": -1}, "sliding_window"),  # priced negative attention
        ({"model_type": "mixtral", "num_local_experts": 4, "sliding_window": 0}, "sliding_window"),
        ({"quantization_config": "fp8"}, "`quantization_config` must be an object"),  # was planned bf16
        ({"text_config": "x"}, "`text_config` must be an object"),  # was parsed from the outer keys
        ({"model_type": 5}, "`model_type` must be a string"),
        ({"layer_types": "full_attention"}, "`layer_types` must be a list"),
        ({"quantization_config": {"quant_method": "gptq", "bits": -4}}, "GPTQ weights of -4 bits"),
        ({"quantization_config": {"quant_method": "gptq", "bits": 16}}, "GPTQ weights of 16 bits"),
        ({"quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 0}}, "group_size 0"),
    ],
)
def test_config_values_no_engine_reads_are_one_line_errors(over: dict[str, Any], match: str) -> None:
    with pytest.raises(InputError, match=match):
        spec_from_config(_llama(**over), name="bad")


# ----- bad input ----------------------------------------------------------------------------------
def test_missing_heads_names_the_field() -> None:
    cfg = _llama()
    del cfg["num_attention_heads"]
    with pytest.raises(InputError, match="num_attention_heads"):
        spec_from_config(cfg, name="broken")


@pytest.mark.parametrize("key", ["hidden_size", "num_hidden_layers", "vocab_size", "intermediate_size"])
@pytest.mark.parametrize("value", [0, -4])
def test_zero_or_negative_sizes_raise(key: str, value: int) -> None:
    with pytest.raises(InputError, match=key):
        spec_from_config(_llama(**{key: value}), name="broken")


@pytest.mark.parametrize("bad", [{"hidden_size": "64"}, {"num_hidden_layers": 2.5}, {"vocab_size": True}])
def test_non_integer_sizes_raise(bad: dict[str, Any]) -> None:
    with pytest.raises(InputError, match="integer"):
        spec_from_config(_llama(**bad), name="broken")


def test_missing_model_type_and_non_dict() -> None:
    cfg = _llama()
    del cfg["model_type"]
    with pytest.raises(InputError, match="model_type"):
        spec_from_config(cfg, name="broken")
    with pytest.raises(InputError, match="JSON object"):
        spec_from_config([1, 2], name="broken")  # type: ignore[arg-type]


def test_layer_types_length_mismatch() -> None:
    with pytest.raises(InputError, match="layer_types"):
        spec_from_config(_llama(layer_types=["full_attention"]), name="broken")
    with pytest.raises(InputError, match="unknown layer type"):
        spec_from_config(_llama(layer_types=["weird"] * 3), name="broken")


# ----- KV dtype a checkpoint declares ----------------------------------------------------------------
_FP8_SCHEME = {"type": "float", "num_bits": 8, "dynamic": False}


@pytest.mark.parametrize(
    ("qc", "kv"),
    [
        # ModelOpt's config.json form (ModelOpt 0.31+): `kv_cache_scheme`, not `kv_cache_quant_algo`.
        ({"quant_method": "modelopt", "quant_algo": "FP8", "kv_cache_scheme": _FP8_SCHEME}, "fp8_e4m3"),
        ({"quant_method": "modelopt", "quant_algo": "FP8", "kv_cache_quant_algo": "FP8"}, "fp8_e4m3"),
        # vLLM's get_kv_cache_quant_algo_string: a dynamic scheme falls back to auto.
        (
            {
                "quant_method": "modelopt",
                "quant_algo": "FP8",
                "kv_cache_scheme": {**_FP8_SCHEME, "dynamic": True},
            },
            None,
        ),
        (
            {
                "quant_method": "modelopt",
                "quant_algo": "NVFP4",
                "kv_cache_scheme": {"type": "float", "num_bits": 4},
            },
            None,
        ),
        ({"quant_method": "modelopt", "quant_algo": "FP8"}, None),
        (
            {
                "quant_method": "compressed-tensors",
                "config_groups": {"g": {"weights": {"num_bits": 8, "type": "float", "strategy": "channel"}}},
                "kv_cache_scheme": {**_FP8_SCHEME, "strategy": "tensor", "symmetric": True},
            },
            "fp8_e4m3",
        ),
        (
            {
                "quant_method": "compressed-tensors",
                "config_groups": {"g": {"weights": {"num_bits": 8, "type": "float", "strategy": "channel"}}},
            },
            None,
        ),
    ],
)
def test_auto_kv_dtype_follows_the_checkpoints_kv_cache_scheme(qc: dict[str, Any], kv: str | None) -> None:
    """vLLM 0.32 turns `--kv-cache-dtype auto` into FP8 for a checkpoint with a `kv_cache_scheme`
    (Attention.__init__, get_kv_cache_quant_algo_string); both were priced in the model dtype."""
    q = spec_from_config(_llama(quantization_config=qc), name="q").quantization
    assert q is not None and q.kv_cache_dtype == kv


# ----- generic parse refuses layers it cannot price --------------------------------------------------
@pytest.mark.parametrize(
    "over",
    [
        {"attn_type_list": [0, 0, 1]},
        {"layers_block_type": ["mamba", "attention", "mamba"]},
        {"hybrid_override_pattern": "M*-"},
        {"layer_types": ["linear_attention", "full_attention", "full_attention"]},
    ],
)
def test_an_unknown_type_with_per_layer_mixers_is_refused_naming_the_key(over: dict[str, Any]) -> None:
    key = next(iter(over))
    with pytest.raises(InputError, match=f"not a known family.*`?{key}`?"):
        spec_from_config(_llama(model_type="some_hybrid", **over), name="hybrid")
    ok = spec_from_config(_llama(model_type="some_llama", layer_types=["sliding_attention"] * 3), name="ok")
    assert ok.num_layers == 3
    # MiniMax-M2's `attn_type_list` is all 1s, softmax attention (vLLM `get_num_layers_by_block_type`).
    assert (
        spec_from_config(_llama(model_type="minimax_m2", attn_type_list=[1, 1, 1]), name="m2").num_layers == 3
    )


def test_minimax_m1_is_refused_not_priced_as_80_softmax_layers() -> None:
    """MiniMax-M1's `attn_type_list` makes 70 of its 80 layers lightning attention; the generic parse
    priced all 80 as GQA layers (8x the KV cache, ~10B parameters short)."""
    import json
    from pathlib import Path

    path = (
        Path(__file__).parents[2]
        / ".."
        / "shared"
        / "reference"
        / "model_configs"
        / "MiniMaxAI__MiniMax-M1.json"
    )
    if not path.is_file():
        pytest.skip("reference config not found")
    with pytest.raises(InputError, match="attn_type_list"):
        spec_from_config(json.loads(path.read_text()), name="MiniMaxAI/MiniMax-M1")


# ----- vLLM's default context ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("over", "default"),
    [
        ({"rope_scaling": {"type": "longrope", "long_factor": [1.0], "short_factor": [1.0]}}, 4096),
        ({"rope_scaling": {"type": "su", "long_factor": [1.0], "short_factor": [1.0]}}, 4096),
        (
            {
                "original_max_position_embeddings": 8192,
                "rope_scaling": {"rope_type": "longrope", "long_factor": [1.0], "short_factor": [1.0]},
            },
            8192,
        ),
        ({}, None),
        (
            {"rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 4096}},
            None,
        ),
    ],
)
def test_longrope_serves_its_original_length_by_default(over: dict[str, Any], default: int | None) -> None:
    """vLLM 0.32 `_get_and_verify_max_len`: without --max-model-len a LongRoPE config starts at
    `original_max_position_embeddings` (Phi-3's class default 4096); the limit stays the scaled one."""
    s = spec_from_config(_llama(model_type="phi3", max_position_embeddings=131072, **over), name="phi")
    assert s.max_position_embeddings == 131072 and s.default_max_model_len == default
    assert s.vllm_default_max_model_len == (default or 131072)


def test_served_params_leave_the_mtp_modules_out() -> None:
    s = find_entry("deepseek-ai/DeepSeek-V3").spec()  # type: ignore[union-attr]
    assert s.served_params.mtp == 0 and s.served_params.total == s.total_params - s.mtp_params
    assert s.weight_bytes(s.served_params) < s.weight_bytes() - 10 * 2**30
