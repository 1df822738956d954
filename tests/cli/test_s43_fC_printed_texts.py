"""Printed texts that read wrong: `--engine auto`'s reasons named the losing engine twice ("vLLM: vLLM
throughput 1,847 vs 2,062"); examples/check_my_config.py said "100% below the best plan" of a
configuration that misses the SLO (its gap_to_optimum is 1 there: it serves none of the workload); the
runner-up sentence printed "throughput 1.555e+04 vs 1.584e+04" where the rest of the plan prints
15,836; the deployment's idle reason said "1 whole nodes"."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

from autoparallel.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_engine_reasons_name_each_engine_once(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["plan", "meta-llama/Llama-3.1-8B-Instruct", "--cluster", "1x1xH100", "--engine", "auto"]
    assert main([*args, "--isl", "4096", "--osl", "512", "--tpot-ms", "100"]) == 0
    out = capsys.readouterr().out
    why = out.split("\nwhy:\n", 1)[1].split("\n\n", 1)[0]
    assert "  - vLLM: throughput 1,847 vs 2,062 (-10.4%)" in why, why
    assert "  - SGLang: throughput 1,730 vs 2,062 (-16.1%)" in why, why
    for engine in ("vLLM", "SGLang", "TensorRT-LLM"):
        assert f"{engine}: {engine} " not in why, why


def test_the_example_says_a_configuration_that_misses_the_slo_is_short_of_the_workload(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    runpy.run_path(str(EXAMPLES / "check_my_config.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "TPOT 74.5 ms > limit 50 ms" in out  # tp=8, max_num_seqs 256 misses the chatbot's TPOT
    assert "100% below" not in out, out
    assert "This configuration is short of the workload (TPOT 74.5 ms > limit 50 ms" in out, out


def test_the_runner_up_numbers_are_written_as_the_plan_does(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["plan", "deepseek-ai/DeepSeek-V3", "--cluster", "4x8xH200", "--objective", "throughput"]
    assert main(args) == 0
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if line.startswith("runner-up")]
    assert re.search(r": throughput \d{1,3}(,\d{3})+ vs \d{1,3}(,\d{3})+ \(", line), line
    assert "e+0" not in line, line
    assert "vs 15,836 (" in line and "output tokens/s (all replicas)  15,836" in out, out


def test_one_idle_node_is_one_whole_node(capsys: pytest.CaptureFixture[str]) -> None:
    """DeepSeek-V3's smallest engine on H100s takes 16 GPUs: the third node of 3x8 stays idle."""
    assert main(["plan", "deepseek-ai/DeepSeek-V3", "--cluster", "3x8xH100"]) == 0
    out = capsys.readouterr().out
    assert "no candidate engine fits the rest (1 whole node, 0 GPUs in a shared node)" in out, out
    assert "1 whole nodes" not in out
