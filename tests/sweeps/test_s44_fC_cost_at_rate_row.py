"""A sweep row planned by the deployment planner at a request rate (a vLLM row with objective cost at a
rate, `execute.cost_at_a_rate_row`'s sibling, or a `disagg` row) priced its $ per million tokens only
at the deployment's capacity: Llama-3.1-8B isl 1024 osl 256 at 5 req/s on 1x8xH100 showed $0.186/M
where `plan --objective cost --request-rate 5` prints $0.651/M (1 H100 at $3/h serving 1,280 tokens/s).
The row now has `usd_per_million_tokens_at_rate`, the deployment's own figure that `plan` prints;
`usd_per_million_tokens` and `throughput_tok_s` stay at capacity in every row, as a plan row's are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autoparallel.cli import main
from autoparallel.sweeps.execute import solve_scenario
from autoparallel.sweeps.results import SweepResult, read_rows, write_rows
from autoparallel.sweeps.scenario import make_scenario

MODEL, CLUSTER = "meta-llama/Llama-3.1-8B-Instruct", "1x8xH100"
AT_RATE = {"isl": 1024, "osl": 256, "request_rate": 5}


def _plan_json(capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    flags = ["--isl", "1024", "--osl", "256", "--request-rate", "5", "--objective", "cost", "--json"]
    assert main(["plan", MODEL, "--cluster", CLUSTER, *flags, *extra]) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


def test_cost_at_a_rate_row_is_priced_as_plan_prices_it(capsys: pytest.CaptureFixture[str]) -> None:
    row = solve_scenario(make_scenario(MODEL, CLUSTER, AT_RATE, "cost", engine="vllm"))
    d = _plan_json(capsys)["deployment"]
    assert row["status"] == "ok" and row["mode"] == "aggregated"
    # the row's figures at the rate are the CLI's: $0.651 per M tokens, 1 GPU, $3/h, 1,280 tokens/s
    assert row["usd_per_million_tokens_at_rate"] == pytest.approx(d["usd_per_million_tokens"], rel=1e-5)
    assert row["usd_per_million_tokens_at_rate"] == pytest.approx(0.651, abs=1e-3)
    assert (row["gpus"], row["usd_per_hour"]) == (d["gpus_used"], d["usd_per_hour"]) == (1, 3.0)
    assert row["goodput_tok_s"] == pytest.approx(d["goodput_tokens_per_s"]) == 5 * 256
    # capacity figures under the plan rows' names, as before ($0.186: 4,491 tokens/s at $3/h)
    assert row["throughput_tok_s"] == pytest.approx(d["throughput_tokens_per_s"], rel=1e-5)
    assert row["usd_per_million_tokens"] == pytest.approx(3.0 / row["throughput_tok_s"] / 3600 * 1e6)


def test_disaggregated_row_at_a_rate_too(capsys: pytest.CaptureFixture[str]) -> None:
    row = solve_scenario(make_scenario(MODEL, CLUSTER, AT_RATE, "cost", disagg="on"))
    d = _plan_json(capsys, "--disagg", "on")["deployment"]
    assert row["mode"] == d["mode"] == "disaggregated" and row["usd_per_hour"] == d["usd_per_hour"]
    assert row["usd_per_million_tokens_at_rate"] == pytest.approx(d["usd_per_million_tokens"], rel=1e-5)


def test_the_column_is_a_figure_and_the_table_says_which_is_which(tmp_path: Path) -> None:
    rated = solve_scenario(make_scenario(MODEL, CLUSTER, AT_RATE, "cost", engine="vllm"))
    full = solve_scenario(make_scenario(MODEL, CLUSTER, {"isl": 1024, "osl": 256}, "cost", disagg="off"))
    assert "usd_per_million_tokens_at_rate" not in full  # no rate: capacity is what it serves
    out = tmp_path / "r.csv"
    write_rows(out, [rated, full])
    back = {r["scenario_id"]: r for r in read_rows(out)}
    value = back[rated["scenario_id"]]["usd_per_million_tokens_at_rate"]
    assert isinstance(value, float) and value == pytest.approx(rated["usd_per_million_tokens_at_rate"])
    _, head, _, first, second = SweepResult([rated, full]).table().splitlines()
    assert "tok/s at rate" in head and "$/Mtok at rate" in head
    assert "1,280" in first and "0.651" in first and "0.186" in first
    assert "1,280" not in second  # a row without a rate leaves the at-rate columns empty
    assert "at rate" not in SweepResult([full]).table()
