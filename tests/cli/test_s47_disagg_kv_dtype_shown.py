"""A disaggregated plan's KV-cache dtype was visible only inside its launch lines: with `--kv-cache-dtype
auto,fp8` the comparison's layout and the JSON's prefill / decode engines did not say which dtype the
pair shares. The layout names a dtype other than auto, and the JSON carries it."""

from __future__ import annotations

import json

import pytest

from autoparallel.cli import main

ARGV = [
    "plan", "meta-llama/Llama-3.1-70B-Instruct", "--cluster", "2x8xH100", "--workload", "chatbot",
    "--disagg", "on", "--kv-cache-dtype", "auto,fp8",
]  # fmt: skip


def test_the_layout_and_the_json_say_the_pairs_kv_cache_dtype(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*ARGV, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    summary, deployment = doc["comparison"]["disaggregated"], doc["deployment"]
    assert summary["kv_cache_dtype"] == "fp8" and summary["layout"].endswith("(KV cache fp8)")
    engines = deployment["prefill"] + deployment["decode"]
    assert engines and {e["kv_cache_dtype"] for e in engines} == {"fp8"}
    assert all("--kv-cache-dtype fp8" in json.dumps(e["vllm"]) for e in engines)
