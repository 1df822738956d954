"""A RoPE scaling that is not a mapping, or a YaRN factor that is not a number, is refused (exit 2):
vLLM reads `rope_type` and `factor` from the dict (`_get_and_verify_max_len`, vllm/config/model.py;
YaRN's rotary embedding takes the factor too). Both were accepted with a plan printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autoparallel.cli import main
from autoparallel.errors import InputError
from autoparallel.models import spec_from_config

BASE: dict[str, Any] = {
    "architectures": ["Qwen3ForCausalLM"],
    "model_type": "qwen3",
    "head_dim": 128,
    "hidden_size": 4096,
    "intermediate_size": 12288,
    "max_position_embeddings": 40960,
    "num_attention_heads": 32,
    "num_hidden_layers": 36,
    "num_key_value_heads": 8,
    "vocab_size": 151936,
}


@pytest.mark.parametrize(
    "rope",
    [[1, 2], "yarn", {"type": "yarn", "factor": "abc"}, {"rope_type": "yarn", "factor": -4.0}],
)
def test_a_malformed_rope_scaling_is_refused(rope: object) -> None:
    with pytest.raises(InputError, match=r"rope_scaling|factor"):
        spec_from_config({**BASE, "rope_scaling": rope}, name="broken")


@pytest.mark.parametrize("rope", [None, {}, {"rope_type": "yarn", "factor": None}])
def test_an_absent_or_null_rope_scaling_is_none(rope: object) -> None:
    assert spec_from_config({**BASE, "rope_scaling": rope}, name="plain").max_position_embeddings == 40960


def test_the_cli_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config.json").write_text(json.dumps({**BASE, "rope_scaling": [1, 2]}))
    assert main(["model", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "rope_scaling" in err and len(err.splitlines()) == 1
