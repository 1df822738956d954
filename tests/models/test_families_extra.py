"""Phi, Qwen2.5-VL, Mistral 3 (Pixtral) and Llama 3.2 Vision (mllama): exact counts and config handling.

The meta-device cross-check at the end builds each new zoo card with transformers' image-text-to-text
class (causal-LM class for phi) on torch's meta device and requires the exact same total.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from typing import Any

import pytest

from autoparallel.errors import InputError
from autoparallel.models import AttentionKind, load_model, spec_from_config
from autoparallel.models.zoo import ZooEntry, find_entry

_NEW_CARDS = {
    "microsoft/phi-2": 2_779_683_840,
    "Qwen/Qwen2.5-VL-7B-Instruct": 8_292_166_656,
    "mistralai/Mistral-Small-3.1-24B-Instruct-2503": 24_011_361_280,
    "meta-llama/Llama-3.2-11B-Vision": 10_670_220_835,
}
_VISION = {
    "Qwen/Qwen2.5-VL-7B-Instruct": 676_550_144,
    "mistralai/Mistral-Small-3.1-24B-Instruct-2503": 438_958_080,
    "meta-llama/Llama-3.2-11B-Vision": 895_028_755,
}


def _entry(model_id: str) -> ZooEntry:
    entry = find_entry(model_id)
    assert entry is not None, model_id
    return entry


@pytest.mark.parametrize("model_id", list(_NEW_CARDS))
def test_new_cards_exact_totals_and_vision_groups(model_id: str) -> None:
    spec = _entry(model_id).spec()
    assert spec.total_params == _NEW_CARDS[model_id]
    assert spec.vision_params == _VISION.get(model_id, 0)
    assert spec.active_params == spec.total_params - spec.vision_params  # dense: all text weights active


# ----- phi -----------------------------------------------------------------------------------------
def _phi(**over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "model_type": "phi",
        "hidden_size": 64,
        "intermediate_size": 256,
        "num_attention_heads": 8,
        "num_hidden_layers": 2,
        "vocab_size": 1000,
    }
    cfg.update(over)
    return cfg


def test_phi_counts_by_hand() -> None:
    h, i, v, n = 64, 256, 1000, 2
    layer = 4 * (h * h + h) + (h * i + i) + (i * h + h) + 2 * h  # q/k/v/dense, fc1/fc2, one LayerNorm
    s = spec_from_config(_phi(), name="phi")
    assert s.total_params == v * h + n * layer + 2 * h + (v * h + v)
    assert s.lm_head_params == v * h + v and s.final_norm_params == 2 * h
    assert s.layers[0].mlp.gated is False
    assert s.max_position_embeddings == 2048  # PhiConfig default


def test_phi_gqa_and_qk_layernorm() -> None:
    base = spec_from_config(_phi(num_key_value_heads=2), name="phi")
    mha = spec_from_config(_phi(), name="phi")
    hd = 8
    assert mha.total_params - base.total_params == 2 * 2 * (64 * 6 * hd + 6 * hd)  # k/v rows dropped
    qk = spec_from_config(_phi(qk_layernorm=True), name="phi")
    assert qk.total_params - mha.total_params == 2 * 4 * hd  # per layer: q/k LayerNorm weight + bias
    assert base.num_kv_heads == 2


def test_phi_tied_head_keeps_its_bias() -> None:
    s = spec_from_config(_phi(tie_word_embeddings=True), name="phi")
    assert s.lm_head_params == 1000


# ----- Qwen2.5-VL -----------------------------------------------------------------------------------
def test_qwen2_5_vl_flat_and_nested_configs_agree() -> None:
    flat = copy.deepcopy(_entry("Qwen/Qwen2.5-VL-7B-Instruct").config)
    text_keys = (
        "hidden_size",
        "intermediate_size",
        "max_position_embeddings",
        "max_window_layers",
        "num_attention_heads",
        "num_hidden_layers",
        "num_key_value_heads",
        "rms_norm_eps",
        "sliding_window",
        "use_sliding_window",
        "vocab_size",
    )
    nested = {k: v for k, v in flat.items() if k not in text_keys and k != "tie_word_embeddings"}
    nested["tie_word_embeddings"] = False
    nested["text_config"] = {"model_type": "qwen2_5_vl_text", **{k: flat[k] for k in text_keys}}
    a = spec_from_config(flat, name="flat")
    b = spec_from_config(nested, name="nested")
    assert a.model_type == b.model_type == "qwen2_5_vl_text"
    assert a.params == b.params
    assert a.layers[0].attention.kind is AttentionKind.FULL


def test_qwen2_5_vl_text_has_qkv_bias_only() -> None:
    s = _entry("Qwen/Qwen2.5-VL-7B-Instruct").spec()
    h, kv = 3584, 4 * 128
    assert s.layers[0].params.attention == h * h + h + 2 * (h * kv + kv) + h * h


def test_qwen2_5_vl_sliding_window_layers_follow_max_window_layers() -> None:
    cfg = copy.deepcopy(_entry("Qwen/Qwen2.5-VL-7B-Instruct").config)
    cfg.update(use_sliding_window=True, max_window_layers=20)
    kinds = [layer.attention.kind for layer in spec_from_config(cfg, name="q").layers]
    assert kinds[:20] == [AttentionKind.FULL] * 20 and set(kinds[20:]) == {AttentionKind.SLIDING}


def test_nested_text_config_takes_the_outer_tie_flag() -> None:
    cfg = copy.deepcopy(_entry("Qwen/Qwen2.5-VL-7B-Instruct").config)
    tied = {
        "model_type": "qwen2_5_vl",
        "tie_word_embeddings": True,
        "vision_config": cfg["vision_config"],
        "text_config": {
            "model_type": "qwen2_5_vl_text",
            "hidden_size": 2048,
            "intermediate_size": 11008,
            "num_attention_heads": 16,
            "num_key_value_heads": 2,
            "num_hidden_layers": 36,
            "vocab_size": 151936,
        },
    }
    assert spec_from_config(tied, name="q").tie_word_embeddings
    tied["text_config"]["tie_word_embeddings"] = False  # the text config's own value wins
    assert not spec_from_config(tied, name="q").tie_word_embeddings


# ----- Mistral 3 / Pixtral ---------------------------------------------------------------------------
def test_mistral3_text_model_is_the_old_text_only_count() -> None:
    entry = _entry("mistralai/Mistral-Small-3.1-24B-Instruct-2503")
    text = spec_from_config(copy.deepcopy(entry.config["text_config"]), name="text")
    spec = entry.spec()
    assert text.total_params == spec.total_params - spec.vision_params == 23_572_403_200
    assert not spec.tie_word_embeddings


def test_pixtral_projector_options() -> None:
    cfg = copy.deepcopy(_entry("mistralai/Mistral-Small-3.1-24B-Instruct-2503").config)
    base = spec_from_config(cfg, name="m").vision_params
    cfg["multimodal_projector_bias"] = True
    assert spec_from_config(cfg, name="m").vision_params - base == 2 * 5120
    cfg["multimodal_projector_bias"] = False
    cfg["vision_feature_layer"] = [-1, -2]
    assert spec_from_config(cfg, name="m").vision_params - base == 1024 * 5120
    del cfg["vision_feature_layer"]  # Mistral3Config default: -1
    assert spec_from_config(cfg, name="m").vision_params == base


# ----- Llama 3.2 Vision (mllama) -----------------------------------------------------------------------
def test_mllama_cross_attention_layers() -> None:
    s = _entry("meta-llama/Llama-3.2-11B-Vision").spec()
    h, kv, hd = 4096, 8 * 128, 128
    self_att = 2 * h * h + 2 * h * kv
    by_kind = {j: layer.params.attention for j, layer in enumerate(s.layers)}
    assert {j for j, a in by_kind.items() if a != self_att} == {3, 8, 13, 18, 23, 28, 33, 38}
    assert by_kind[3] == self_att + 2 * hd + 2
    assert s.embedding_params == (128256 + 8) * h and s.lm_head_params == 128256 * h
    assert all(layer.attention.kind is AttentionKind.FULL for layer in s.layers)


def test_mllama_vision_tiles_and_aspect_ratios() -> None:
    cfg = copy.deepcopy(_entry("meta-llama/Llama-3.2-11B-Vision").config)
    base = spec_from_config(cfg, name="m").vision_params
    cfg["vision_config"]["supported_aspect_ratios"] = [[1, 1], [1, 2], [2, 1]]
    cfg["vision_config"]["max_num_tiles"] = 2
    patches, vh = (560 // 14) ** 2 + 1, 1280
    old = 9 * 4 * patches * vh + 2 * 9 * 4 * vh
    new = 4 * 2 * patches * vh + 2 * 4 * 2 * vh
    assert base - spec_from_config(cfg, name="m").vision_params == old - new


@pytest.mark.parametrize("bad", [[3, 40], "3,8", [True]])
def test_mllama_bad_cross_attention_layers_raise(bad: Any) -> None:
    cfg = copy.deepcopy(_entry("meta-llama/Llama-3.2-11B-Vision").config)
    cfg["text_config"]["cross_attention_layers"] = bad
    with pytest.raises(InputError, match="cross_attention_layers"):
        spec_from_config(cfg, name="m")


def test_mllama_defaults_fill_a_sparse_config() -> None:
    sparse = {"model_type": "mllama", "text_config": {"model_type": "mllama_text_model"}, "vision_config": {}}
    s = spec_from_config(sparse, name="m")
    full = _entry("meta-llama/Llama-3.2-11B-Vision").spec()
    assert s.total_params - s.vision_params == full.total_params - full.vision_params
    assert s.vision_params < full.vision_params  # default image_size 448 < 560


def test_new_zoo_models_import_neither_transformers_nor_torch() -> None:
    ids = ", ".join(repr(i) for i in _NEW_CARDS)
    code = (
        f"import sys; from autoparallel.models import load_model; [load_model(i) for i in ({ids})]; "
        "bad = [m for m in ('transformers', 'torch') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_load_model_by_alias() -> None:
    assert load_model("meta-llama/Llama-3.2-11B-Vision-Instruct").total_params == 10_670_220_835


# ----- meta-device cross-check --------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("model_id", list(_NEW_CARDS))
def test_new_cards_match_transformers_meta_model(model_id: str) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    entry = _entry(model_id)
    cfg = {k: copy.deepcopy(v) for k, v in entry.config.items() if k not in ("architectures",)}
    model_type = cfg.pop("model_type")
    if model_type not in transformers.CONFIG_MAPPING:
        pytest.skip(f"transformers {transformers.__version__} has no {model_type!r}")
    config = transformers.AutoConfig.for_model(model_type, **cfg)
    auto = (
        transformers.AutoModelForImageTextToText
        if "vision_config" in cfg
        else transformers.AutoModelForCausalLM
    )
    with torch.device("meta"):
        model = auto.from_config(config)
    hf = sum(p.numel() for p in model.parameters())
    assert entry.spec().total_params == hf, f"{model_id}: ours {entry.spec().total_params:,} vs {hf:,}"
