"""Every real config in shared/reference/model_configs parses, and the zoo agrees with it field by field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autoparallel.errors import InputError
from autoparallel.models import spec_from_config
from autoparallel.models.zoo import find_entry

REF = Path(__file__).parents[2] / ".." / "shared" / "reference" / "model_configs"
FILES = (
    sorted(p for p in REF.glob("*.json") if not p.name.endswith(".hf_quant_config.json"))
    if REF.is_dir()
    else []
)

pytestmark = pytest.mark.skipif(not REF.is_dir(), reason=f"reference configs not found at {REF}")


def _model_id(path: Path) -> str:
    return path.name.removesuffix(".json").removesuffix(".text-only-trimmed").replace("__", "/")


def _compare(ref: dict[str, Any], zoo: dict[str, Any], where: str) -> list[str]:
    diffs = []
    for key, value in ref.items():
        if key not in zoo:
            continue
        if isinstance(value, dict) and isinstance(zoo[key], dict) and key in ("text_config", "vision_config"):
            diffs += _compare(value, zoo[key], f"{where}.{key}")
        elif zoo[key] != value:
            diffs.append(f"{where}.{key}: reference {value!r} != zoo {zoo[key]!r}")
    return diffs


REFUSED = {
    # 70 of its 80 layers are lightning attention (`attn_type_list`), which no family prices; vLLM
    # dropped MiniMaxM1ForCausalLM in 0.23.0.
    "MiniMaxAI__MiniMax-M1.json": "attn_type_list",
}
"""Reference configs parsed as a one-line refusal naming the key, not as a wrong count."""


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_reference_config_parses(path: Path) -> None:
    cfg = json.loads(path.read_text())
    if path.name in REFUSED:
        with pytest.raises(InputError, match=REFUSED[path.name]):
            spec_from_config(cfg, name=_model_id(path))
        return
    spec = spec_from_config(cfg, name=_model_id(path))
    assert spec.total_params > 0 and spec.num_layers > 0


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_zoo_entry_agrees_with_reference(path: Path) -> None:
    entry = find_entry(_model_id(path))
    if entry is None:
        pytest.skip(f"{_model_id(path)} is not in the zoo")
    ref = json.loads(path.read_text())
    assert _compare(ref, entry.config, "config") == []
    ours = spec_from_config(ref, name="ref")
    zoo = entry.spec()
    # The reference Llama 4 files are trimmed of their vision_config: compare the text model.
    assert ours.total_params - ours.vision_params == zoo.total_params - zoo.vision_params


def test_modelopt_quant_config_is_in_the_zoo() -> None:
    path = REF / "nvidia__Llama-3.1-70B-Instruct-FP8.hf_quant_config.json"
    quant = json.loads(path.read_text())["quantization"]
    entry = find_entry("nvidia/Llama-3.1-70B-Instruct-FP8")
    assert entry is not None
    assert entry.config["quantization_config"]["quant_algo"] == quant["quant_algo"]
    assert entry.config["quantization_config"]["exclude_modules"] == quant["exclude_modules"]
