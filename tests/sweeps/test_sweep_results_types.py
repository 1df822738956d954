"""Sweep results keep their column types: a row's status says whose fault it was, a CSV resume reads back
what was written, results files of several sweeps read together, and a non-vLLM row has no vLLM knob."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import autoparallel as ap
from autoparallel.errors import InputError, InternalError
from autoparallel.sweeps import execute, make_scenario, sweep
from autoparallel.sweeps.front import BaseFront
from autoparallel.sweeps.results import COLUMN_TYPES, DTYPES, frame, read_rows, write_rows
from autoparallel.sweeps.scenario import Scenario

SMALL = "meta-llama/Llama-3.2-1B"
LEADING_ZERO_ID = "060887576975216"
"""15 digits of an id with a leading zero; the 16th is the scenario's seq_len in K tokens."""


def test_an_internal_error_in_a_row_is_status_internal(monkeypatch: pytest.MonkeyPatch) -> None:
    """InternalError is an AutoParallelError: the `except AutoParallelError` made it `error` (bad input)."""

    def disagree(*args: Any, **kwargs: Any) -> Any:
        raise InternalError("solver and float model disagree on tp=2: 12.0 vs 13.0 GiB\nsecond line")

    monkeypatch.setattr("autoparallel.api.solve", disagree)
    (row,) = sweep([make_scenario(SMALL, "1xH100")], workers=1).rows
    assert row["status"] == "internal"
    assert row["message"] == "InternalError: solver and float model disagree on tp=2: 12.0 vs 13.0 GiB"


def _fake_solve(scenario: Scenario, time_limit_s: float = 10.0) -> dict[str, Any]:
    """A finished training row as `solve_scenario` writes it (ZeRO stage as text, figures as floats)."""
    return {
        **execute.input_row(scenario),
        "tp": 1,
        "zero": "3" if dict(scenario.workload)["seq_len"] == 1024 else "dist",
        "recompute": "none",
        "sequence_parallel": True,
        "layers_per_stage": "16",
        "usd_per_hour": 6.0,
        "throughput_tok_s": 1000.0,
        "status": "ok",
        "message": "",
        "version": "0.1.0",
    }


def test_a_csv_resume_skips_the_done_scenario_and_writes_parquet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read back with type guessing, the id `0608875769752169` became 608875769752169 (solved again: two
    rows) and `zero` came back as 3 beside new rows' "3" (pyarrow: Could not convert '3' with type str)."""
    calls: list[str] = []

    def solve(scenario: Scenario, time_limit_s: float = 10.0) -> dict[str, Any]:
        calls.append(scenario.id)
        return _fake_solve(scenario, time_limit_s)

    monkeypatch.setattr(execute, "solve_scenario", solve)
    monkeypatch.setattr(
        Scenario, "id", property(lambda s: f"{LEADING_ZERO_ID}{dict(s.workload)['seq_len'] // 1024}")
    )
    first = make_scenario(SMALL, "1x2xH100", {"seq_len": 1024, "global_batch": 16})
    second = make_scenario(SMALL, "1x2xH100", {"seq_len": 2048, "global_batch": 16})
    assert (first.id, second.id) == (LEADING_ZERO_ID + "1", LEADING_ZERO_ID + "2")
    out = tmp_path / "r.csv"
    sweep([first], workers=1, out=out)
    res = sweep([first, second], workers=1, out=out)
    assert res.skipped == 1 and calls == [first.id, second.id]
    assert [r["scenario_id"] for r in read_rows(out)] == [first.id, second.id]
    old = read_rows(out)[0]
    assert old == {k: v for k, v in _fake_solve(first).items() if v != ""}
    res.write(tmp_path / "x.parquet")
    df = pd.read_parquet(tmp_path / "x.parquet")
    assert list(df["zero"]) == ["3", "dist"] and list(df["scenario_id"]) == [first.id, second.id]


def test_two_results_files_read_together(tmp_path: Path) -> None:
    """Whole floats became Int64 (`convert_dtypes`): request_rate 10 in one file, 2.5 in the other, and
    `pd.read_parquet(folder)` raised "Float value 2.500000 was truncated converting to int64"."""
    parts = tmp_path / "parts"
    parts.mkdir()
    for name, rate in (("a", 10), ("b", 2.5)):
        row = {"scenario_id": f"{name}1", "request_rate": float(rate), "ttft_ms_slo": 1000.0}
        write_rows(parts / f"{name}.parquet", [{**row, "usd_per_hour": 3.0, "gpus": 1, "status": "ok"}])
    both = pd.read_parquet(parts).sort_values("scenario_id")
    assert list(both["request_rate"]) == [10.0, 2.5]
    assert {str(both[c].dtype) for c in ("request_rate", "ttft_ms_slo", "usd_per_hour")} == {"float64"}
    assert str(both["gpus"].dtype) == "Int64"


class _Points(BaseFront[float]):
    def metric(self, point: float, name: str) -> float:
        return point if name == "throughput" else -point

    def titles(self) -> dict[str, tuple[str, bool]]:
        return {"throughput": ("tok/s", True), "cost": ("$/h", False)}

    def label(self, point: float) -> str:
        return f"p{point:g}"

    def columns(self, point: float) -> dict[str, Any]:
        return {"gpus": 1, "usd_per_hour": 3.0, "tp": 1, "enforce_eager": False, "engine": "vllm"}


def test_a_front_and_a_sweep_table_give_a_column_one_dtype() -> None:
    front = _Points([1.0, 2.0], ("throughput", "cost"), complete=True, cap=10)
    df = front.to_pandas()
    assert {c: str(t) for c, t in df.dtypes.items()} == {
        "point": "Int64",
        "label": "string",
        "knee": "boolean",
        "objective_throughput": "float64",
        "objective_cost": "float64",
        "gpus": "Int64",
        "usd_per_hour": "float64",
        "tp": "Int64",
        "enforce_eager": "boolean",
        "engine": "string",
    }
    table = frame([{"scenario_id": "01", "usd_per_hour": 3.0, "gpus": 1, "tp": None}])
    assert all(table[c].dtype == df[c].dtype for c in ("usd_per_hour", "gpus", "tp"))
    assert all(DTYPES[COLUMN_TYPES[c]] == str(df[c].dtype) for c in ("usd_per_hour", "gpus", "knee"))


def test_a_value_not_of_its_columns_type_is_one_line_not_a_pyarrow_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"results file .*x.parquet.*: column 'tp': 'two' is not a whole"):
        write_rows(tmp_path / "x.parquet", [{"scenario_id": "a", "tp": "two"}])
    (tmp_path / "bad.csv").write_text("scenario_id,gpus\n01,2.5\n")
    with pytest.raises(InputError, match=r"bad.csv.*column 'gpus': 2.5 is not a whole number"):
        read_rows(tmp_path / "bad.csv")


@pytest.mark.parametrize("engine", ["sglang", "trtllm"])
def test_non_vllm_rows_leave_gpu_memory_utilization_empty(engine: str) -> None:
    """`plan --json` drops vLLM's knob for SGLang and TensorRT-LLM (`ServingPlan.to_dict`); rows had 0.92."""
    plan = ap.solve(SMALL, "1xH100", "chatbot", options=ap.ServingOptions(engines=(engine,)))
    assert "gpu_memory_utilization" not in plan.to_dict()["config"]
    from autoparallel.sweeps.front import plan_columns

    assert plan_columns(plan)["gpu_memory_utilization"] is None
    vllm = ap.solve(SMALL, "1xH100", "chatbot")
    assert plan_columns(vllm)["gpu_memory_utilization"] == vllm.to_dict()["config"]["gpu_memory_utilization"]


def test_real_rows_come_back_from_csv_as_written(tmp_path: Path) -> None:
    """Every column a serving row (at a rate, with a finite benchmark) and a training row has is typed by
    its meaning, and a CSV gives the rows back as the sweep made them."""
    todo = [
        make_scenario(SMALL, "1xH100", {"isl": 1024, "osl": 128, "request_rate": 2.0, "ttft_ms": 1000}),
        make_scenario(SMALL, "1xH100", "batch", engine="sglang"),
        make_scenario(SMALL, "1x2xH100", {"seq_len": 1024, "global_batch": 16, "tokens": 1e9}),
    ]
    res = sweep(todo, workers=1, out=tmp_path / "r.csv")
    assert res.counts() == {"ok": 3}
    assert sorted({k for r in res for k in r} - set(COLUMN_TYPES)) == []
    written = [{k: v for k, v in r.items() if v is not None and v != ""} for r in res]
    assert read_rows(tmp_path / "r.csv") == written
