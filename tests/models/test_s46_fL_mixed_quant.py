"""Session 46 fL: mixed quantization layouts priced per linear group (compressed-tensors
`config_groups`, GPTQ `dynamic` / `modules_in_block_to_quantize`), and pooling architectures
(classifiers, embedding and reward models) refused; an unknown class name of a known family noted."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from autoparallel.cli import main
from autoparallel.errors import InputError
from autoparallel.models import load_model, spec_from_config
from autoparallel.models.spec import ModelSpec, ParamGroups
from autoparallel.models.zoo import find_entry, list_models
from autoparallel.perf.engine_support import unverified_architecture_note

_FP8_CHANNEL = {"num_bits": 8, "type": "float", "strategy": "channel", "symmetric": True, "dynamic": False}
_INT4_G128 = {
    "num_bits": 4,
    "type": "int",
    "strategy": "group",
    "group_size": 128,
    "symmetric": True,
    "dynamic": False,
}
_TOKEN_FP8 = {"num_bits": 8, "type": "float", "strategy": "token", "dynamic": True}


def _llama(**over: Any) -> dict[str, Any]:
    entry = find_entry("meta-llama/Llama-3.1-8B")
    assert entry is not None
    cfg = copy.deepcopy(dict(entry.config))
    cfg.update(over)
    return cfg


def _bytes(spec: ModelSpec, **groups: int) -> float:
    return spec.weight_bytes(ParamGroups(**groups))


def _ct(groups: dict[str, Any]) -> dict[str, Any]:
    qc = {"quant_method": "compressed-tensors", "format": "mixed-precision", "config_groups": groups}
    return _llama(quantization_config={**qc, "ignore": ["lm_head"]})


_ATTN_FP8 = {"targets": ["re:.*self_attn.*"], "weights": _FP8_CHANNEL, "input_activations": _TOKEN_FP8}
_MLP_INT4 = {"targets": ["re:.*mlp.*"], "weights": _INT4_G128}


def test_compressed_tensors_groups_price_each_family_by_its_matching_group() -> None:
    """Before: only the first config group was read: 8.46 GiB (FP8 first) or 5.33 GiB (INT4 first)."""
    one = spec_from_config(_ct({"group_0": _ATTN_FP8, "group_1": _MLP_INT4}), name="ct")
    two = spec_from_config(_ct({"group_1": _MLP_INT4, "group_0": _ATTN_FP8}), name="ct")
    p = one.params
    want = p.attention * (1 + 4 / 4096) + p.dense_mlp * (0.5 + 2.5 / 128)
    want += (p.total - p.attention - p.dense_mlp) * 2
    assert one.weight_bytes() == pytest.approx(want, rel=1e-12)
    assert two.weight_bytes() == pytest.approx(want, rel=1e-12)
    assert one.weight_bytes() / 2**30 == pytest.approx(5.94, abs=0.005)
    assert _bytes(one, attention=4096) == pytest.approx(4096 * (1 + 4 / 4096))


def test_compressed_tensors_layer_no_group_targets_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: planned at 5.33 GiB with the attention counted INT4; vLLM fails at load."""
    cfg = _ct({"group_0": _MLP_INT4})
    with pytest.raises(InputError, match=r"self_attn.*\(attention\).*`ignore` does not list it"):
        spec_from_config(cfg, name="ct")
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert main(["model", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "find_matched_target" in err
    # Listed in `ignore`, the attention is left unquantized (2 bytes) and the config loads.
    cfg["quantization_config"]["ignore"] = ["lm_head", "re:.*self_attn.*"]
    spec = spec_from_config(cfg, name="ct")
    assert _bytes(spec, attention=10) == 20 and _bytes(spec, dense_mlp=128) == pytest.approx(64 + 2.5)


def test_single_linear_group_is_priced_as_before() -> None:
    cfg = _ct({"g": {"targets": ["Linear"], "weights": _INT4_G128}})
    spec = spec_from_config(cfg, name="ct")
    assert spec.quantization is not None and not spec.quantization.group_schemes
    assert "group_schemes" not in spec.quantization.model_dump(mode="json")
    assert _bytes(spec, attention=128) == pytest.approx(64 + 2.5)


def _gptq(**extra: Any) -> dict[str, Any]:
    qc = {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False, "sym": True, **extra}
    return _llama(quantization_config=qc)


def test_gptq_negative_dynamic_rule_leaves_attention_unquantized() -> None:
    """Before: 5.33 GiB (attention counted 4-bit); vLLM `get_linear_quant_method`: unquantized, 7.19."""
    spec = spec_from_config(_gptq(dynamic={"-:.*self_attn.*": {}}), name="g")
    assert _bytes(spec, attention=10) == 20
    assert _bytes(spec, dense_mlp=128) == pytest.approx(64 + 2.5)
    assert spec.weight_bytes() / 2**30 == pytest.approx(7.19, abs=0.005)


def test_gptq_positive_dynamic_rule_overrides_the_bits() -> None:
    """Before: 5.33 GiB; vLLM `override_config`: 8-bit MLP, 7.98 GiB."""
    spec = spec_from_config(_gptq(dynamic={"+:.*mlp.*": {"bits": 8}}), name="g")
    assert _bytes(spec, dense_mlp=128) == pytest.approx(128 + 3)
    assert _bytes(spec, attention=128) == pytest.approx(64 + 2.5)
    assert spec.weight_bytes() / 2**30 == pytest.approx(7.98, abs=0.005)


def test_gptq_modules_in_block_to_quantize() -> None:
    listed = [["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"], ["self_attn.o_proj"]]
    spec = spec_from_config(_gptq(modules_in_block_to_quantize=listed), name="g")
    assert _bytes(spec, dense_mlp=10) == 20
    assert _bytes(spec, attention=128) == pytest.approx(64 + 2.5)


@pytest.mark.parametrize(
    ("arch", "kind"),
    [
        ("LlamaForSequenceClassification", "a sequence classifier"),
        ("MistralModel", "an embedding model"),
        ("LlamaForRewardModeling", "a reward model"),
        ("Qwen2ForRewardModel", "a reward model"),
    ],
)
def test_pooling_architectures_are_refused(
    arch: str, kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: planned as a text generator (31,834 output tok/s and a `vllm serve` line)."""
    cfg = _llama(architectures=[arch])
    with pytest.raises(InputError, match=kind):
        spec_from_config(cfg, name="x")
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    serve = ["plan", str(tmp_path), "--cluster", "1xH100"]
    for argv in (serve, [*serve, "--train"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "pooling runner" in err and "causal-LM generation" in err


@pytest.mark.parametrize(
    "arch", ["LlamaForCausalLM", "GPT2LMHeadModel", "ChatGLMModel", "LlavaForConditionalGeneration", ""]
)
def test_generators_are_not_pooling(arch: str) -> None:
    from autoparallel.models.parse import pooling_kind

    assert pooling_kind(arch) is None


def test_unknown_class_of_a_known_family_gets_the_note() -> None:
    """Before: FooForCausalLM with model_type llama passed as known (no note); vLLM refuses it."""
    note = unverified_architecture_note(spec_from_config(_llama(architectures=["FooForCausalLM"]), name="f"))
    assert note is not None and "FooForCausalLM" in note and "llama" in note and "\n" not in note
    for arch in ("LlamaForCausalLM", "LlavaForConditionalGeneration"):
        assert unverified_architecture_note(spec_from_config(_llama(architectures=[arch]), name="k")) is None


def test_every_zoo_model_keeps_its_architecture() -> None:
    for entry in list_models():
        assert unverified_architecture_note(load_model(entry.spec())) is None, entry


def test_a_target_in_two_groups_takes_the_later_and_keeps_its_first_place() -> None:
    """vLLM fills `target_scheme_map` in group order: a later group overwrites a repeated target, and
    `find_matched_target` tries targets in first-insertion order. Before (s46 review): the first group
    won a repeated target and targets were tried in reverse group order, so `down_proj` (int8 in group_0,
    matched first) was priced at group_1's int4."""
    int8 = {"num_bits": 8, "type": "int", "strategy": "channel", "symmetric": True, "dynamic": False}
    down = {"targets": ["re:.*down_proj"], "weights": int8}
    rest = {"targets": ["re:.*mlp.*", "re:.*self_attn.*"], "weights": _INT4_G128}
    spec = spec_from_config(_ct({"group_0": down, "group_1": rest}), name="ct")
    assert _bytes(spec, dense_mlp=4096) == pytest.approx(4096 * (1 + 4 / 4096))  # down_proj's int8 prices it
    both = spec_from_config(
        _ct(
            {
                "group_0": {"targets": ["Linear"], "weights": int8},
                "group_1": {**_MLP_INT4, "targets": ["Linear"]},
            }
        ),
        name="ct",
    )
    assert _bytes(both, attention=4096) == pytest.approx(4096 * (0.5 + 2.5 / 128))  # the later group


def test_a_multimodal_model_class_named_model_is_no_bare_decoder() -> None:
    """vLLM's registry lists UltravoxModel and Qwen2_5OmniModel among its multimodal generators (before its
    suffix rule); a config nesting its language model's is a wrapper, whatever its class. A bare
    `LlamaModel` stays refused, quantized or not (`quantization_config` is no nested model)."""
    from autoparallel.models.parse import pooling_kind

    assert pooling_kind("UltravoxModel") is None and pooling_kind("Qwen2_5OmniModel") is None
    assert pooling_kind("SomeWrapperModel", wrapper=True) is None
    assert pooling_kind("SomeWrapperModel") is not None
    assert pooling_kind("LlamaForSequenceClassification", wrapper=True) == "a sequence classifier"
    text = _llama()
    spec = spec_from_config(
        {"model_type": "llava", "architectures": ["FooVlModel"], "text_config": text}, name="w"
    )
    assert spec.architecture == "FooVlModel"
    with pytest.raises(InputError, match="pooling runner"):
        spec_from_config(
            _llama(architectures=["LlamaModel"], quantization_config=_gptq()["quantization_config"]), name="q"
        )


def test_a_config_regex_that_backtracks_without_end_does_not_hang() -> None:
    """Before: `re.match` on a GPTQ `dynamic` rule or compressed-tensors target such as `((\\w|\\.)+)+X`
    never returned on a layer name (catastrophic backtracking), and `autoparallel model DIR` hung. The
    `regex` module matches it at once, and bounds any slower pattern (`REGEX_TIMEOUT_S`)."""
    import subprocess
    import sys

    script = (
        "import copy\n"
        "from autoparallel.models import spec_from_config\n"
        "from autoparallel.models.zoo import find_entry\n"
        "cfg = copy.deepcopy(dict(find_entry('meta-llama/Llama-3.1-8B').config))\n"
        "cfg['quantization_config'] = {'quant_method': 'gptq', 'bits': 4, 'group_size': 128,\n"
        "    'desc_act': False, 'sym': True, 'dynamic': {'-:((\\\\w|\\\\.)+)+X': {}}}\n"
        "print(spec_from_config(cfg, name='d').quantization.bits)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "4", out.stderr


def test_a_regex_past_the_time_bound_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from autoparallel.models import parse_quant

    def slow(*args: object, **kwargs: object) -> None:
        raise TimeoutError("regex timed out")

    monkeypatch.setattr(parse_quant.regex, "match", slow)
    with pytest.raises(InputError, match=r"took over 1 s to match the layer name .*vLLM's loader would hang"):
        spec_from_config(_gptq(dynamic={"-:.*self_attn.*": {}}), name="g")


# ----- s46 fQ: rules naming layers by index are matched on every layer; one regex budget a config --

_INT8_CHANNEL = {"num_bits": 8, "type": "int", "strategy": "channel", "symmetric": True, "dynamic": False}
_INT4 = 0.5 + 2.5 / 128  # GPTQ-style 4-bit, group 128: bytes a weight
_INT8 = 1 + 4 / 4096  # INT8 per channel


def test_compressed_tensors_groups_by_layer_index_price_each_layer() -> None:
    """Before: 5.33 GiB (layer 0's names only: every layer int4); layers 16-31 are int8: 6.90 GiB."""
    early = {"targets": [r"re:model\.layers\.([0-9]|1[0-5])\..*"], "weights": _INT4_G128}
    late = {"targets": [r"re:model\.layers\.(1[6-9]|2\d|3[01])\..*"], "weights": _INT8_CHANNEL}
    spec = spec_from_config(_ct({"early": early, "late": late}), name="half")
    p = spec.params
    linear = p.attention + p.dense_mlp
    want = linear / 2 * (_INT4 + _INT8) + (p.total - linear) * 2
    assert spec.weight_bytes() == pytest.approx(want)
    assert spec.weight_bytes() / 2**30 == pytest.approx(6.90, abs=0.005)
    assert _bytes(spec, attention=64) == pytest.approx(32 * (_INT4 + _INT8))


def test_gptq_dynamic_rule_on_late_layers_prices_them_8_bit() -> None:
    """Before: 5.33 GiB; vLLM `get_dynamic_override` on layers 16-31: 8-bit there, 6.97 GiB."""
    spec = spec_from_config(_gptq(dynamic={r"+:.*\.(1[6-9]|2\d|3[01])\..*": {"bits": 8}}), name="g")
    p = spec.params
    linear = p.attention + p.dense_mlp
    want = linear / 2 * (_INT4 + 1 + 3 / 128) + (p.total - linear) * 2
    assert spec.weight_bytes() == pytest.approx(want)
    assert spec.weight_bytes() / 2**30 == pytest.approx(6.97, abs=0.005)


def test_an_ignored_first_layer_leaves_the_other_layers_quantized() -> None:
    """Before: the whole model bf16 (14.96 GiB) because layer 0 is ignored; 31 of 32 layers quantized."""
    attn8 = {"targets": ["re:.*self_attn.*"], "weights": _INT8_CHANNEL}
    cfg = _ct({"mlp": _MLP_INT4, "attn": attn8})
    cfg["quantization_config"]["ignore"] = ["lm_head", r"re:model\.layers\.0\..*"]
    spec = spec_from_config(cfg, name="l0")
    p = spec.params
    want = p.attention * (31 * _INT8 + 2) / 32 + p.dense_mlp * (31 * _INT4 + 2) / 32
    want += (p.total - p.attention - p.dense_mlp) * 2
    assert spec.weight_bytes() == pytest.approx(want)
    assert spec.weight_bytes() / 2**30 == pytest.approx(6.22, abs=0.005)


def test_deepseek_experts_of_named_layers_int4_rest_fp8() -> None:
    """Before: 626.92 GiB served (layer 0 has no experts the int4 target names: all FP8). Experts of
    layers 3-60 int4, the rest FP8 128x128 blocks; the MTP module no group targets is held in bf16
    (vLLM builds it only for MTP speculative decoding)."""
    entry = find_entry("deepseek-ai/DeepSeek-V3")
    assert entry is not None
    cfg = copy.deepcopy(dict(entry.config))
    fp8_block = {"num_bits": 8, "type": "float", "strategy": "block", "block_structure": [128, 128]}
    experts = {"targets": [r"re:model\.layers\.([3-9]|[1-5]\d|60)\.mlp\.experts\..*"], "weights": _INT4_G128}
    rest = {
        "targets": ["re:.*self_attn.*", "re:.*shared_experts.*", r"re:model\.layers\.[0-2]\.mlp\..*"],
        "weights": fp8_block,
    }
    qc = {"quant_method": "compressed-tensors", "config_groups": {"e": experts, "r": rest}}
    cfg["quantization_config"] = {**qc, "ignore": ["lm_head", "re:.*mlp.gate$"]}
    spec = spec_from_config(cfg, name="dsv3")
    s = spec.served_params
    fp8 = 1 + 4 / 128**2
    want = s.routed_experts * _INT4 + (s.attention + s.dense_mlp + s.shared_experts) * fp8
    want += (s.total - s.routed_experts - s.attention - s.dense_mlp - s.shared_experts) * 2
    assert spec.weight_bytes(s) == pytest.approx(want)
    assert spec.weight_bytes(s) / 2**30 == pytest.approx(334.17, abs=0.01)
    assert spec.weight_bytes(ParamGroups(mtp=10)) == 20


def test_layer_name_regexes_share_one_time_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: each match was bounded at 1 s but not their sum: 60 `ignore` entries of ~0.2 s each made
    `plan --time-limit 2` take 35 s. Past `REGEX_TOTAL_S` in all the config is refused in one line."""
    from autoparallel.models import parse_quant

    monkeypatch.setattr(parse_quant, "REGEX_TOTAL_S", 1e-9)
    cfg = _ct({"group_0": _ATTN_FP8, "group_1": _MLP_INT4})
    with pytest.raises(
        InputError, match=r"regexes took over 1e-09 s in all .*the slowest, .*'\.\*self_attn"
    ) as e:
        spec_from_config(cfg, name="slow")
    assert "\n" not in str(e.value)


def test_each_pattern_and_name_is_matched_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from autoparallel.models import parse_quant

    calls: list[tuple[str, str]] = []
    real = parse_quant.regex.match

    def counted(pattern: str, name: str, **kwargs: Any) -> Any:
        calls.append((pattern, name))
        return real(pattern, name, **kwargs)

    monkeypatch.setattr(parse_quant.regex, "match", counted)
    spec_from_config(_ct({"group_0": _ATTN_FP8, "group_1": _MLP_INT4}), name="c")
    assert calls and len(calls) == len(set(calls))


# ----- s46 fS: one Linear group reads `ignore` per layer; indexed `ignore` entries; GPTQ on FusedMoE --


def _one_linear(ignore: list[str]) -> dict[str, Any]:
    cfg = _ct({"g0": {"targets": ["Linear"], "weights": _INT4_G128}})
    cfg["quantization_config"]["ignore"] = ["lm_head", *ignore]
    return cfg


def test_one_linear_group_ignoring_late_mlps_prices_them_bf16() -> None:
    """Before: 5.33 GiB (the one Linear group returned early, `ignore` beyond its suffix rule unread);
    vLLM's `should_ignore_layer` keeps the MLPs of layers 16-31 bf16: 9.22 GiB, as the two-group form."""
    spec = spec_from_config(_one_linear([r"re:model\.layers\.(1[6-9]|2\d|3[01])\.mlp\..*"]), name="a2")
    p = spec.params
    want = p.attention * _INT4 + p.dense_mlp * (_INT4 + 2) / 2 + (p.total - p.attention - p.dense_mlp) * 2
    assert spec.weight_bytes() == pytest.approx(want)
    assert spec.weight_bytes() / 2**30 == pytest.approx(9.22, abs=0.005)
    every = spec_from_config(_one_linear(["re:.*mlp.*"]), name="a")
    assert every.weight_bytes() / 2**30 == pytest.approx(13.11, abs=0.005)
    assert _bytes(every, dense_mlp=10) == 20 and _bytes(every, attention=128) == pytest.approx(64 + 2.5)


def test_one_linear_group_with_lm_head_ignore_is_unchanged() -> None:
    for ignore in ([], ["re:.*lm_head"], ["model.embed_tokens"]):
        spec = spec_from_config(_one_linear(ignore), name="u")
        assert spec.quantization is not None and not spec.quantization.group_layer_mix
        assert "group_schemes" not in spec.quantization.model_dump(mode="json")
        assert spec.weight_bytes() / 2**30 == pytest.approx(5.33, abs=0.005)


def test_deepseek_one_linear_group_ignoring_experts_of_layers_3_to_30() -> None:
    """Before: 41.51 GiB a GPU at tp 8 (all experts int4), fits; layers 3-30's experts are bf16."""
    entry = find_entry("deepseek-ai/DeepSeek-V3")
    assert entry is not None
    cfg = copy.deepcopy(dict(entry.config))
    qc = {
        "quant_method": "compressed-tensors",
        "config_groups": {"g0": {"targets": ["Linear"], "weights": _INT4_G128}},
    }
    cfg["quantization_config"] = {
        **qc,
        "ignore": ["lm_head", r"re:model\.layers\.([3-9]|[12]\d|30)\.mlp\.experts\..*"],
    }
    spec = spec_from_config(cfg, name="ds")
    s = spec.served_params
    bf16 = 28 / 58  # MoE layers 3-60: 58, of which 3-30 ignored (same experts in each)
    want = s.routed_experts * (bf16 * 2 + (1 - bf16) * _INT4)
    lin = s.attention + s.dense_mlp + s.shared_experts
    want += lin * _INT4 + (s.total - s.routed_experts - lin) * 2
    assert spec.weight_bytes(s) == pytest.approx(want)
    assert spec.weight_bytes(s) / 2**30 / 8 == pytest.approx(95.33, abs=0.01)


@pytest.mark.parametrize("one_group", [True, False])
def test_an_ignore_entry_naming_layer_0_attention_is_not_all_attention(one_group: bool) -> None:
    """Before: 7.19 GiB (`re:model\\.layers\\.0\\.self_attn.*` dropped every layer's attention by the
    suffix rule); only layer 0's attention is bf16: 5.39 GiB."""
    if one_group:
        cfg = _one_linear([r"re:model\.layers\.0\.self_attn.*"])
    else:
        attn = {"targets": ["re:.*self_attn.*"], "weights": _INT4_G128}
        cfg = _ct({"g0": attn, "g1": _MLP_INT4})
        cfg["quantization_config"]["ignore"] = ["lm_head", r"re:model\.layers\.0\.self_attn.*"]
    spec = spec_from_config(cfg, name="c")
    p = spec.params
    want = p.attention * (31 * _INT4 + 2) / 32 + p.dense_mlp * _INT4
    want += (p.total - p.attention - p.dense_mlp) * 2
    assert spec.weight_bytes() == pytest.approx(want)
    assert spec.weight_bytes() / 2**30 == pytest.approx(5.39, abs=0.005)


def _qwen3_moe_gptq(dynamic: dict[str, Any]) -> ModelSpec:
    entry = find_entry("Qwen/Qwen3-30B-A3B")
    assert entry is not None
    cfg = copy.deepcopy(dict(entry.config))
    qc = {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False, "sym": True}
    cfg["quantization_config"] = {**qc, "dynamic": dynamic}
    return spec_from_config(cfg, name="q3")


def test_gptq_dynamic_rules_match_the_fused_moe_prefix() -> None:
    """vLLM's `get_moe_quant_method` matches `dynamic` on `model.layers.{i}.mlp.experts`. Before:
    `-:.*mlp\\.experts$` left the experts 4-bit (15.65 GiB; right: bf16, 55.62) and `+:.*down_proj$`
    bits 8 made them 8-bit (29.25 GiB; right: 4-bit, 15.65)."""
    off = _qwen3_moe_gptq({r"-:.*mlp\.experts$": {}})
    assert _bytes(off, routed_experts=10) == 20
    assert _bytes(off, attention=128) == pytest.approx(64 + 2.5)
    assert off.weight_bytes() / 2**30 == pytest.approx(55.62, abs=0.005)
    down8 = _qwen3_moe_gptq({r"+:.*down_proj$": {"bits": 8}})
    assert _bytes(down8, routed_experts=128) == pytest.approx(64 + 2.5)
    assert down8.weight_bytes() / 2**30 == pytest.approx(15.65, abs=0.005)


def test_a_stage_is_priced_by_the_layers_it_holds() -> None:
    """Before (s46 review): a group whose layers differ was priced at the whole model's mean in every
    pipeline stage, so with layers 0-15 int4 and 16-31 int8 both stages showed the same weights, and
    DeepSeek-V3 int4 with the experts of layers 3-30 left bf16 said stage 0 fits on 8xH100 at --pp 2
    where its bf16 experts alone need 73.5 GiB a GPU. `weight_bytes(groups, layers)` and the memory
    report price each stage by its own layers; the whole model is unchanged."""
    from autoparallel.memory.serving import vllm_memory

    early = {"targets": [r"re:model\.layers\.([0-9]|1[0-5])\..*"], "weights": _INT4_G128}
    late = {"targets": [r"re:model\.layers\.(1[6-9]|2\d|3[01])\..*"], "weights": _INT8_CHANNEL}
    spec = spec_from_config(_ct({"early": early, "late": late}), name="half")
    layer = spec.layers[0].params
    assert spec.weight_bytes(layer, range(16)) == pytest.approx(
        layer.attention * _INT4
        + layer.dense_mlp * _INT4
        + (layer.total - layer.attention - layer.dense_mlp) * 2
    )
    assert spec.weight_bytes(layer, range(16, 32)) > spec.weight_bytes(layer, range(16))
    report = vllm_memory(spec, "H100", pp=2)
    first, second = (stage.weights_gib for stage in report.stages)
    assert second - first == pytest.approx(
        16 * (layer.attention + layer.dense_mlp) * (_INT8 - _INT4) / 2**30, rel=0.02
    )
