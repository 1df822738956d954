"""`autoparallel models` and `autoparallel model <source>`."""

from __future__ import annotations

import argparse
import json

import pytest

from autoparallel.cli.model_cmd import add_model_parser, add_models_parser, cmd_model, cmd_models
from autoparallel.errors import InputError
from autoparallel.models import list_models


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="autoparallel")
    sub = parser.add_subparsers(dest="command")
    add_models_parser(sub)
    add_model_parser(sub)
    return parser.parse_args(argv)


def test_models_table(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse("models")
    assert args.func is cmd_models and cmd_models(args) == 0
    out = capsys.readouterr().out
    assert "deepseek-ai/DeepSeek-V3" in out and "fp8 block 128x128" in out and "mxfp4" in out
    assert f"{len(list_models())} models" in out


def test_models_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd_models(_parse("models", "--json")) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == len(list_models())
    assert {"id", "family", "total_params", "active_params", "quantization"} <= set(rows[0])


def test_model_card_text(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse("model", "Qwen/Qwen3-30B-A3B")
    assert args.func is cmd_model and cmd_model(args) == 0
    out = capsys.readouterr().out
    assert "routed_experts" in out and "valid tp (1..64): 1, 2, 4" in out
    assert "tp_kv_heads" in out and "KV cache per token" in out


def test_model_card_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd_model(_parse("model", "google/gemma-3-27b-it", "--json")) == 0
    card = json.loads(capsys.readouterr().out)
    assert {
        "name",
        "total_params",
        "active_params",
        "kv_bytes_per_token",
        "limits",
        "params_by_group",
    } <= set(card)
    assert card["name"] == "google/gemma-3-27b-it"
    assert card["total_params"] == sum(card["params_by_group"].values())
    assert set(card["kv_bytes_per_token"]["bf16"]) == {"sliding", "full"}
    assert card["kv_bytes_per_token"]["fp8"]["full"] * 2 == card["kv_bytes_per_token"]["bf16"]["full"]
    assert card["params_by_group"]["vision"] > 0
    assert all({"name", "reason"} <= set(rule) for rule in card["limits"])
    assert 1 in card["valid_tp"] and 3 not in card["valid_tp"]


def test_model_card_linear_state_and_mla(capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd_model(_parse("model", "Qwen/Qwen3-Next-80B-A3B-Instruct")) == 0
    assert "linear-attention state per sequence" in capsys.readouterr().out
    assert cmd_model(_parse("model", "deepseek-ai/DeepSeek-R1", "--json")) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["kv_bytes_per_token"]["bf16"] == {"mla": 61 * 576 * 2}
    assert card["published_deviation"]["total"] == pytest.approx(0, abs=1e-3)


def test_model_unknown_source_raises_input_error(tmp_path: object) -> None:
    with pytest.raises(InputError, match="no such file"):
        cmd_model(_parse("model", "./missing/config.json"))


def test_deepseek_v3_counts_the_main_model_and_mtp_apart(capsys: pytest.CaptureFixture[str]) -> None:
    from autoparallel.cli import main

    assert main(["model", "deepseek-ai/DeepSeek-V3", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert abs(card["total_params"] / 671e9 - 1) < 0.005
    assert abs(card["active_params"] / 37e9 - 1) < 0.02
    assert card["mtp_params"] > 11e9
    assert card["total_params"] + card["mtp_params"] == card["total_params_with_mtp"]


def test_model_card_names_the_engines_that_load_it(capsys: pytest.CaptureFixture[str]) -> None:
    from autoparallel.cli import main

    assert main(["model", "bigscience/bloom", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["architecture"] == "BloomForCausalLM"
    assert card["engines"]["vllm"] == "runs"
    assert card["engines"]["sglang"] != "runs" and card["engines"]["trtllm"] != "runs"
    assert main(["model", "meta-llama/Llama-3.1-8B"]) == 0
    assert "serving engines that load it: vLLM, SGLang, TensorRT-LLM" in capsys.readouterr().out


def test_model_card_says_which_kv_cache_the_checkpoint_declares(capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd_model(_parse("model", "nvidia/Llama-3.1-70B-Instruct-FP8")) == 0
    assert "KV cache: the checkpoint declares fp8_e4m3" in capsys.readouterr().out
    assert cmd_model(_parse("model", "meta-llama/Llama-3.1-70B")) == 0
    assert "KV cache: the checkpoint" not in capsys.readouterr().out


def test_the_zoo_card_and_plan_count_deepseek_v3_as_served_mtp_apart(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`models` listed 682.6B (MTP included) where `model --json` says 671.0B, and the card's weights
    and the plan's "weights alone need" counted ~10.8 GiB of MTP that vLLM does not load without
    speculative decoding (deepseek_v2.py load_weights skips the spec-decode layers)."""
    from autoparallel.cli import main

    assert cmd_models(_parse("models", "--json")) == 0
    row = next(r for r in json.loads(capsys.readouterr().out) if r["id"] == "deepseek-ai/DeepSeek-V3")
    assert main(["model", "deepseek-ai/DeepSeek-V3", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert row["total_params"] == card["total_params"] < card["total_params_with_mtp"]
    assert card["weight_gib_with_mtp"] - card["weight_gib"] == pytest.approx(10.8, abs=0.1)
    assert main(["model", "deepseek-ai/DeepSeek-V3"]) == 0
    text = capsys.readouterr().out
    assert f"weights: {card['weight_gib']:.2f} GiB" in text and "MTP modules 10.82 GiB more" in text
    assert main(["plan", "deepseek-ai/DeepSeek-V3", "--cluster", "1xH100"]) != 0
    assert f"weights alone need {card['weight_gib']:.2f} GiB" in capsys.readouterr().err


def test_model_card_shows_vllms_default_context_for_longrope(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    from autoparallel.models.zoo import find_entry

    cfg = dict(find_entry("microsoft/phi-4").config)  # type: ignore[union-attr]
    cfg.update(
        max_position_embeddings=131072,
        original_max_position_embeddings=4096,
        rope_scaling={"type": "longrope", "long_factor": [1.0] * 48, "short_factor": [1.0] * 48},
    )
    path = Path(str(tmp_path)) / "config.json"
    path.write_text(json.dumps(cfg))
    assert cmd_model(_parse("model", str(path), "--json")) == 0
    card = json.loads(capsys.readouterr().out)
    assert (card["max_position_embeddings"], card["vllm_default_max_model_len"]) == (131072, 4096)
    assert cmd_model(_parse("model", str(path))) == 0
    assert "context 131072 (vLLM's max_model_len without --max-model-len: 4096)" in capsys.readouterr().out
