"""An architecture autoparallel does not know (generic parse, no zoo card) is not said to load on vLLM
or SGLang: the model card says their support is unverified, and a plan runs them with a note naming
the registries' start-up check (`engine_support.unverified_architecture_note`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autoparallel.cli import main
from autoparallel.hardware import get_gpu
from autoparallel.models import load_model, spec_from_config
from autoparallel.models.spec import ModelSpec
from autoparallel.perf.engine_support import (
    engine_model_problem,
    engine_runtime_problem,
    unverified_architecture_note,
)


def _config(**over: Any) -> dict[str, Any]:
    """A Llama-3.1-8B config under another name (the hunter's unknown_model_type)."""
    cfg: dict[str, Any] = {
        "architectures": ["ZzzForCausalLM"],
        "model_type": "zzz_unknown",
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "max_position_embeddings": 131072,
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 8,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "vocab_size": 128256,
    }
    cfg.update(over)
    return cfg


def _unknown() -> ModelSpec:
    return spec_from_config(_config(), name="zzz")


def test_unknown_architecture_is_unverified_on_vllm_and_sglang() -> None:
    model = _unknown()
    for engine, check in (("vllm", "vllm/model_executor/models/registry.py"), ("sglang", "sglang/srt/")):
        why = engine_model_problem(engine, model)
        assert why is not None and "unverified" in why and "ZzzForCausalLM" in why and check in why
    assert "does not run architecture ZzzForCausalLM" in str(engine_model_problem("trtllm", model))


def test_unknown_architecture_is_still_planned_with_a_note() -> None:
    model = _unknown()
    h100 = get_gpu("H100")
    assert engine_runtime_problem("vllm", None, "auto", model, h100) is None
    assert engine_runtime_problem("sglang", None, "auto", model, h100) is None
    note = unverified_architecture_note(model)
    assert note is not None and "\n" not in note
    assert "ZzzForCausalLM" in note and "unknown to autoparallel" in note
    assert "_ModelRegistry._raise_for_unsupported" in note


@pytest.mark.parametrize(
    "model",
    [
        lambda: spec_from_config(_config(model_type="llama", architectures=["LlamaForCausalLM"]), name="l"),
        lambda: load_model("ibm-granite/granite-3.1-2b-instruct"),  # generic parse, a zoo architecture
        lambda: load_model("meta-llama/Llama-3.1-8B"),
    ],
)
def test_known_architectures_keep_their_engines(model: Any) -> None:
    spec = model()
    assert unverified_architecture_note(spec) is None
    assert engine_model_problem("vllm", spec) is None
    assert engine_model_problem("sglang", spec) is None


def test_model_card_does_not_claim_vllm_or_sglang(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config.json").write_text(json.dumps(_config()))
    assert main(["model", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "serving engines that load it" in x)
    assert "vLLM" not in line and "SGLang" not in line
    assert "vLLM: unverified" in out and "SGLang: unverified" in out


def test_plan_of_an_unknown_architecture_carries_the_note_in_text_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: `plan` printed a one-line `vllm serve` and JSON notes without a word of it."""
    (tmp_path / "config.json").write_text(json.dumps(_config()))
    argv = ["plan", str(tmp_path), "--cluster", "1x1xH100", "--disagg", "off"]
    assert main(argv) == 0
    assert (
        "note: architecture ZzzForCausalLM (model_type 'zzz_unknown') is unknown" in capsys.readouterr().out
    )
    assert main([*argv, "--json"]) == 0
    notes = json.dumps(json.loads(capsys.readouterr().out))
    assert "ZzzForCausalLM (model_type 'zzz_unknown') is unknown to autoparallel" in notes
