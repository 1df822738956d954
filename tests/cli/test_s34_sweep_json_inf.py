"""A front point or sweep row whose TTFT is unbounded (a disaggregated deployment's prefill engines at
full load, no --ttft-ms): `pareto --disagg` exited 3 (OverflowError: round(inf)), and `pareto --json`
and `sweep --json` printed Infinity. Now the table says `unbounded` with a note, and the JSON is strict:
null, with the point's / row's `null_reasons` saying why (`_output.strict_object`)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from autoparallel.cli import main

SHAPE = ["--isl", "8192", "--osl", "256"]
PARETO = ["pareto", "meta-llama/Llama-3.1-8B-Instruct", "--cluster", "1x4xH100", *SHAPE, "--disagg", "auto"]


def _strict(text: str) -> Any:
    def refuse(name: str) -> None:
        raise AssertionError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_pareto_disagg_table_and_json_with_an_unbounded_ttft(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(PARETO) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if " disagg " in line and " unbounded " in line]
    assert rows and "note: TTFT of point" in out and "set --ttft-ms" in out
    assert main([*PARETO, "--json"]) == 0
    points = _strict(capsys.readouterr().out)["points"]
    unbounded = [p for p in points if p["mode"] == "disaggregated" and p["ttft_ms"] is None]
    assert unbounded and "unbounded" in unbounded[0]["null_reasons"]["ttft_ms"]


def test_sweep_json_is_strict(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sweep", "--models", "meta-llama/Llama-3.1-8B-Instruct", "--clusters", "1x4xH100", *SHAPE]
    assert main([*argv, "--tpot-ms", "8", "--disagg", "on", "--workers", "1", "--json"]) == 0
    (row,) = _strict(capsys.readouterr().out)
    assert row["mode"] == "disaggregated" and row["ttft_ms"] is None
    assert "no --ttft-ms" in row["null_reasons"]["ttft_ms"]
