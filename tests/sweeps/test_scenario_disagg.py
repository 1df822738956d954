"""Scenarios carrying `disagg`: grid axis, YAML (bare on / off), CSV column, validation, stable ids."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from autoparallel.errors import InputError
from autoparallel.sweeps import grid, load_scenarios, make_scenario

MODEL = "meta-llama/Llama-3.1-8B"


def test_ids_without_disagg_are_unchanged_and_modes_differ() -> None:
    plain = make_scenario(MODEL, "1x8xH100", "chatbot")
    assert "disagg" not in plain.inputs and plain.disagg is None
    modes = [make_scenario(MODEL, "1x8xH100", "chatbot", disagg=d) for d in ("auto", "on", "off")]
    assert len({plain.id, *(s.id for s in modes)}) == 4
    assert modes[0].inputs["disagg"] == "auto" and "[disagg auto]" in modes[0].label


def test_grid_axis_skips_training() -> None:
    train = {"seq_len": 4096, "global_batch": 64}
    out = grid([MODEL], ["1x8xH100"], ["chatbot", train], disaggs=["auto", "off"])
    assert [(s.kind, s.disagg) for s in out] == [("serving", "auto"), ("serving", "off"), ("training", None)]


def test_yaml_and_csv(tmp_path: Path) -> None:
    y = tmp_path / "s.yaml"
    y.write_text(f"grid:\n  models: [{MODEL}]\n  clusters: [1x8xH100]\n  disagg: [on, off, auto]\n")
    assert [s.disagg for s in load_scenarios(y)] == ["on", "off", "auto"]  # YAML 1.1 booleans mapped back
    c = tmp_path / "s.csv"
    c.write_text(f"model,cluster,tpot_ms,disagg\n{MODEL},1x8xH100,20,auto\n{MODEL},1x8xH100,20,\n")
    rows = load_scenarios(c)
    assert [s.disagg for s in rows] == ["auto", None]
    assert dict(rows[0].workload) == {"preset": "chatbot", "tpot_ms": 20}  # as `sweep --tpot-ms` keeps it


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"disagg": "maybe"}, "expected one of auto, on, off"),
        (
            {"workload": {"seq_len": 4096, "global_batch": 64}, "disagg": "auto"},
            "does not apply to a training",
        ),
    ],
)
def test_bad_disagg_is_an_input_error(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InputError, match=match):
        make_scenario(MODEL, "1x8xH100", **kwargs)


def test_disagg_rows_plan_the_objective_and_a_rate_as_plan_does() -> None:
    """A `disagg` row is `plan --disagg`'s answer: the scenario's objective is planned (cost: $/hour at
    the rate, where the rows used the default objective) and a rate the winner cannot carry makes the
    row infeasible with the numbers (an `off` row reported 6.7 req/s of 8 as ok; `plan` exits 1)."""
    from autoparallel.sweeps.execute import solve_scenario

    workload = {"isl": 2048, "osl": 512, "ttft_ms": 2000, "tpot_ms": 20, "request_rate": 8}
    model = "meta-llama/Llama-3.1-70B-Instruct"

    def row(objective: str, disagg: str) -> dict[str, Any]:
        return solve_scenario(make_scenario(model, "2x8xH100", workload, objective, disagg=disagg))

    off = row("cost", "off")
    assert off["status"] == "infeasible" and "needs >= 2 engines" in off["message"]
    auto = row("cost", "auto")
    assert auto["status"] == "ok" and auto["mode"] == "disaggregated" and auto["goodput_tok_s"] == 8 * 512
    soft = row(
        "ttft", "off"
    )  # a single-engine objective: the deployment's default, goodput, counts up to the rate
    assert soft["status"] == "infeasible"
    assert "request_rate: 8 requests/s arrive; the best aggregated deployment" in soft["message"]
    carried = re.search(r"carries ([\d.]+)/s at the SLOs", soft["message"])
    assert carried is not None and 6 < float(carried.group(1)) < 8


def test_disagg_rows_report_what_plan_rows_report() -> None:
    """A `disagg` row's throughput was the goodput served at the rate (an aggregated row's is its capacity
    within the SLOs), its TTFT at that load, its $/M tokens over the goodput, and it had no
    usd_per_hour. Now both modes' rows give capacity figures under the plan rows' names, and what is
    served of the rate as `goodput_tok_s` (a disaggregated TTFT at the rate as `ttft_ms_at_rate`)."""
    from autoparallel.sweeps.execute import solve_scenario

    def row(disagg: str, **rate: float) -> dict[str, Any]:
        workload = {"isl": 2048, "osl": 256, "ttft_ms": 2000, **rate}
        return solve_scenario(make_scenario(MODEL, "1x8xH100", workload, "throughput", disagg=disagg))

    full, at_rate, agg = row("on"), row("on", request_rate=20), row("off", request_rate=20)
    assert full["mode"] == at_rate["mode"] == "disaggregated" and agg["mode"] == "aggregated"
    for r in (full, at_rate, agg):
        assert r["status"] == "ok" and r["usd_per_hour"] == 3 * r["gpus"]  # H100 at $3/GPU-hour
        assert r["usd_per_million_tokens"] == pytest.approx(
            r["usd_per_hour"] / r["throughput_tok_s"] / 3600 * 1e6
        )
        assert r["throughput_tok_s_per_gpu"] == pytest.approx(r["throughput_tok_s"] / r["gpus"])
    # capacity (was 5,120), at the rate with the decode engines rated by their wait for a free slot
    # (without a TPOT limit within a millisecond: 17,829 tokens/s against 18,564 at full load)
    assert 0.9 * full["throughput_tok_s"] < at_rate["throughput_tok_s"] <= full["throughput_tok_s"]
    assert at_rate["goodput_tok_s"] == agg["goodput_tok_s"] == 20 * 256
    assert full["goodput_tok_s"] == full["throughput_tok_s"] and full["ttft_ms"] > 1000
    assert at_rate["ttft_ms"] is None and 0 < at_rate["ttft_ms_at_rate"] < full["ttft_ms"]
    assert agg["throughput_tok_s"] > 20 * 256 and agg["ttft_ms"] > 0


def test_disagg_off_with_another_engine_is_that_engines_plan() -> None:
    """`plan --engine sglang --disagg off` plans SGLang; a sweep row asking the same did exit 2
    ("engine 'sglang' does not apply"), though off asks for no comparison. On still refuses."""
    off = make_scenario(MODEL, "1x8xH100", "chatbot", engine="sglang", disagg="off")
    assert off.disagg is None and off.engine == "sglang"
    with pytest.raises(InputError, match="does not apply"):
        make_scenario(MODEL, "1x8xH100", "chatbot", engine="sglang", disagg="on")
