"""load_model: every source kind, and the errors users see."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from autoparallel.errors import InputError
from autoparallel.models import ModelSpec, QuantMethod, load_model
from autoparallel.models import loader as loader_mod
from autoparallel.models.zoo import find_entry

LLAMA_8B = copy.deepcopy(find_entry("meta-llama/Llama-3.1-8B").config)  # type: ignore[union-attr]


def test_zoo_id_alias_case_and_short_name() -> None:
    spec = load_model("meta-llama/Llama-3.1-70B")
    assert load_model("META-LLAMA/llama-3.1-70b-instruct") is spec
    assert load_model("meta-llama/Meta-Llama-3.1-70B") is spec
    assert load_model("Llama-3.1-70B") is spec
    assert spec.name == "meta-llama/Llama-3.1-70B"


def test_dict_and_model_spec_passthrough() -> None:
    spec = load_model(copy.deepcopy(LLAMA_8B))
    assert spec.total_params == load_model("meta-llama/Llama-3.1-8B").total_params
    assert load_model(spec) is spec


def test_directory_and_config_path(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(LLAMA_8B))
    by_dir = load_model(tmp_path)
    by_file = load_model(str(tmp_path / "config.json"))
    assert by_dir.total_params == by_file.total_params == 8_030_261_248
    assert by_dir.name == tmp_path.name


def test_directory_with_modelopt_quant_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(LLAMA_8B))
    (tmp_path / "hf_quant_config.json").write_text(
        json.dumps(
            {
                "producer": {"name": "modelopt"},
                "quantization": {
                    "quant_algo": "FP8",
                    "kv_cache_quant_algo": "FP8",
                    "exclude_modules": ["lm_head"],
                },
            }
        )
    )
    spec = load_model(tmp_path)
    assert spec.quantization is not None and spec.quantization.method is QuantMethod.FP8


class _FakeConfig:
    name_or_path = "org/fake"

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(LLAMA_8B)


def test_object_with_to_dict() -> None:
    spec = load_model(_FakeConfig())
    assert spec.name == "org/fake" and spec.num_layers == 32


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_model(tmp_path / "nope" / "config.json")
    with pytest.raises(InputError, match="no such file"):
        load_model("./does/not/exist.json")
    with pytest.raises(InputError, match=r"no config\.json"):
        load_model(tmp_path)


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text('{\n  "model_type": "llama",\n  "hidden_size": 4096,,\n}\n')
    with pytest.raises(InputError, match=r"config\.json: malformed JSON at line 3"):
        load_model(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(InputError, match="JSON object"):
        load_model(bad)


def test_unknown_id_suggests_near_names(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(model_id: str) -> Path:
        raise InputError("could not be fetched: OSError: We couldn't connect (offline?)")

    monkeypatch.setattr(loader_mod, "fetch_config_file", offline)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    with pytest.raises(InputError) as info:
        load_model("meta-llama/Llama-3.1-80B")
    message = str(info.value)
    assert "not in the zoo and could not be fetched" in message
    assert "known ids like" in message and "meta-llama/Llama-3.1-8B" in message


def test_hub_id_fetches_its_config_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[str] = []
    fetched = tmp_path / "config.json"
    fetched.write_text(json.dumps(LLAMA_8B))

    def fetch(model_id: str) -> Path:
        seen.append(model_id)
        return fetched

    monkeypatch.setattr(loader_mod, "fetch_config_file", fetch)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    loader_mod._load_hub.cache_clear()
    spec = load_model("someone/custom-llama")
    assert seen == ["someone/custom-llama"] and spec.name == "someone/custom-llama"
    # Once per process: `evaluate` reads the model to build the configuration, then again to plan it.
    assert load_model("someone/custom-llama") is spec and seen == ["someone/custom-llama"]
    loader_mod._load_hub.cache_clear()


def test_bad_source_types() -> None:
    with pytest.raises(InputError, match="empty"):
        load_model("  ")
    with pytest.raises(InputError, match="cannot load"):
        load_model(42)  # type: ignore[arg-type]


@pytest.mark.slow
def test_real_pretrained_config() -> None:
    transformers = pytest.importorskip("transformers")
    cfg = transformers.LlamaConfig(**{k: v for k, v in copy.deepcopy(LLAMA_8B).items() if k != "model_type"})
    spec = load_model(cfg)
    assert isinstance(spec, ModelSpec) and spec.total_params == 8_030_261_248


def test_offline_mode_never_imports_transformers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(loader_mod, "fetch_config_file", lambda model_id: pytest.fail("tried the hub"))
    with pytest.raises(InputError, match="HF_HUB_OFFLINE"):
        load_model("someone/unknown-model")


def test_id_without_owner_is_a_zoo_miss_without_the_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(loader_mod, "fetch_config_file", lambda model_id: pytest.fail("tried the hub"))
    with pytest.raises(InputError, match="owner/name"):
        load_model("llama-70")
