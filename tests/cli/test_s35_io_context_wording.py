"""`evaluate` with requests longer than the model's context names what the user gave (isl + osl, or a
workload file's max_model_len), not a --max-model-len never given ("--max-model-len 200256 exceeds
...") or a field bound ("max_model_len: Input should be ≤ 16777216"); still exit 2 (an explicit
configuration that is invalid), where `plan` exits 1 (s35 bug 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoparallel import api
from autoparallel.cli import main
from autoparallel.configs import ServingConfig
from autoparallel.errors import InputError
from autoparallel.workload import Serving

MODEL = "meta-llama/Llama-3.1-8B"
EVALUATE = ["evaluate", MODEL, "--cluster", "1x8xH100"]


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


@pytest.mark.parametrize("isl", [200000, 16777216])
def test_evaluate_names_isl_plus_osl(capsys: pytest.CaptureFixture[str], isl: int) -> None:
    assert main([*EVALUATE, "--isl", str(isl)]) == 2
    line = _one_line(capsys)
    need = isl + 256  # the chatbot preset's osl
    assert f"(isl {isl} + osl 256 = {need} tokens) need a context of {need}" in line
    assert "max_position_embeddings (131072)" in line
    assert "--max-model-len" not in line and "Input should be" not in line


def test_an_explicit_max_model_len_is_still_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*EVALUATE, "--isl", "200000", "--max-model-len", "200256"]) == 2
    assert "--max-model-len 200256 exceeds" in _one_line(capsys)


def test_a_workload_file_max_model_len_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wl = tmp_path / "wl.json"
    wl.write_text(json.dumps({"serving": {"name": "w", "isl": 1000, "osl": 100, "max_model_len": 300000}}))
    assert main([*EVALUATE, "--workload-file", str(wl)]) == 2
    line = _one_line(capsys)
    assert "the workload's max_model_len 300000 is over" in line and "--max-model-len" not in line


def test_plan_still_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", MODEL, "--cluster", "1x8xH100", "--isl", "200000"]) == 1


def test_the_api_words_it_the_same(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InputError, match=r"isl 200000 \+ osl 256 = 200256 tokens"):
        api.evaluate(MODEL, "1x8xH100", ServingConfig(tp=8), Serving(isl=200000, osl=256))
