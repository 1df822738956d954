"""TensorRT-LLM over pp stages: a bare `evaluate` prices the engine's own default (max_batch_size 2048
per micro-batch, 2048 × pp running: `commands/serve.py` takes `BuildConfig.max_batch_size`), and a
plan's binding reason names the next batch pp divides.
Before: `evaluate ... --engine trtllm --tp 2 --pp 3` listed "max_num_seqs 256 is not a multiple of
pp 3" for a value the user never gave; `plan ... --cluster 1x6xH100 --engine trtllm` blamed the KV
cache for max_num_seqs=128 ("would need 4.22 GiB ... the pool holds 47.88 GiB"), refused by pp 3."""

from __future__ import annotations

import json

import pytest

from autoparallel.cli import main

WORK = ["--isl", "1024", "--osl", "256"]


def test_a_bare_evaluate_runs_trtllm_default_of_2048_per_micro_batch(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["evaluate", "meta-llama/Llama-3.1-70B", "--cluster", "1x8xH100", "--engine", "trtllm"]
    assert main([*argv, "--tp", "2", "--pp", "3", *WORK, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["max_num_seqs"] == 6144
    assert not any("not a multiple of pp" in p for p in out.get("problems", []))


def test_the_binding_reason_names_the_next_batch_pp_divides(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "meta-llama/Llama-3.1-70B", "--cluster", "1x3xH100", "--engine", "trtllm"]
    assert main([*argv, "--concurrency", "64", *WORK, "--disagg", "off", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["pp"] == 3 and out["config"]["max_num_seqs"] == 96
    binding = " ".join(out["binding"])
    assert "max_num_seqs=128" not in binding and "max_num_seqs=192" in binding
