"""Sweeps over profiled workloads: a workload file (from `autoparallel profile`) is one more value of
the workload axis; its workload travels inside the scenario."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoparallel.cli import main
from autoparallel.errors import InputError
from autoparallel.sweeps import grid, make_scenario, sweep
from autoparallel.sweeps.results import read_rows
from autoparallel.workload import Serving
from autoparallel.workload_profile import load_workload_file

SMALL = "meta-llama/Llama-3.2-1B"


def _profiled(tmp_path: Path, outputs: list[int], name: str = "w.json") -> Path:
    log = tmp_path / f"{name}.jsonl"
    rows = [
        {"timestamp": 0.5 * i, "prompt_tokens": 300 + i, "completion_tokens": o}
        for i, o in enumerate(outputs)
    ]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / name
    assert main(["profile", str(log), "-o", str(out)]) == 0
    return out


def test_the_scenario_carries_the_files_workload_with_overrides(tmp_path: Path) -> None:
    f = _profiled(tmp_path, [8, 40, 300, 500] * 50)
    s = make_scenario(SMALL, "1xH100", {"workload_file": str(f), "ttft_ms": 900})
    w = s.to_workload()
    assert isinstance(w, Serving)
    assert w == load_workload_file(f).model_copy(update={"ttft_ms": 900.0, "name": w.name})
    assert w.osl_quantiles is not None and w.request_rate == pytest.approx(2.0, rel=0.01)
    assert s.inputs["workload_file"] == str(f) and "file_workload" not in s.inputs
    assert s.workload_label == "profiled ttft_ms=900"
    # a changed file is a new scenario: results of the old one are not reused
    again = make_scenario(SMALL, "1xH100", {"workload_file": str(f), "ttft_ms": 900})
    assert again.id == s.id
    _profiled(tmp_path, [8, 40, 300, 900] * 50)
    assert make_scenario(SMALL, "1xH100", {"workload_file": str(f), "ttft_ms": 900}).id != s.id


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"workload_file": "/no/such/w.json"}, "workload file: cannot read"),
        ({"workload_file": "W", "preset": "rag"}, "preset or a workload file"),
        ({"workload_file": "W", "seq_len": 4096}, "mixes training fields"),
    ],
)
def test_bad_workload_files_are_input_errors(tmp_path: Path, fields: dict[str, str], match: str) -> None:
    f = _profiled(tmp_path, [10, 20] * 20)
    fields = {k: (str(f) if v == "W" else v) for k, v in fields.items()}
    with pytest.raises(InputError, match=match):
        make_scenario(SMALL, "1xH100", fields)


def test_sweep_command_takes_workload_files_as_workload_values(tmp_path: Path) -> None:
    a = _profiled(tmp_path, [8, 300] * 40, "a.json")
    b = _profiled(tmp_path, [100, 120] * 40, "b.json")
    out = tmp_path / "r.csv"
    args = ["sweep", "--models", SMALL, "--clusters", "1xH100", "--workloads", "chatbot"]
    args += ["--workload-file", f"{a},{b}", "--out", str(out), "--executor", "serial", "--no-progress"]
    assert main(args) == 0
    rows = read_rows(out)
    assert [r.get("workload_file") for r in rows] == [None, str(a), str(b)]
    assert all(r["status"] == "ok" for r in rows)
    assert "file_workload" not in rows[1]
    assert main([*args[:-5], "--train", "--seq-len", "1024", "--global-batch", "8"]) == 2


def test_grid_and_sweep_api(tmp_path: Path) -> None:
    f = _profiled(tmp_path, [50, 150] * 30)
    todo = grid([SMALL], ["1xH100"], [{"workload_file": str(f)}, {"workload_file": str(f), "osl": 400}])
    res = sweep(todo, workers=1)
    assert [r["status"] for r in res] == ["ok", "ok"]
    assert [r["workload"] for r in res] == ["profiled", "profiled osl=400"]


def test_a_rate_sweep_reports_each_rates_steady_state() -> None:
    """With a request rate, a row carries the batch, TTFT and TPOT at that rate beside the full-load
    figures: a higher rate runs more requests at a longer TPOT."""
    todo = grid([SMALL], ["1xH100"], [{"request_rate": 1}, {"request_rate": 8}])
    low, high = sweep(todo, workers=1)
    for row in (low, high):
        assert row["status"] == "ok" and row["tpot_ms_at_rate"] < row["tpot_ms"]
    assert low["batch_at_rate"] < high["batch_at_rate"] and low["tpot_ms_at_rate"] < high["tpot_ms_at_rate"]


def test_a_relative_workload_file_is_read_beside_the_scenario_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a fleet file's are: the sweep ran from another folder failed to read 'w.json'."""
    from autoparallel.sweeps import load_scenarios

    f = _profiled(tmp_path, [8, 40, 300, 500] * 10)
    (tmp_path / "s.yaml").write_text(
        f"grid:\n  models: [{SMALL}]\n  clusters: [1xH100]\n  workloads: [{{workload_file: {f.name}}}]\n"
    )
    (tmp_path / "s.csv").write_text(f"model,cluster,workload_file\n{SMALL},1xH100,{f.name}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for name in ("s.yaml", "s.csv"):
        (s,) = load_scenarios(tmp_path / name)
        assert s.to_workload() == load_workload_file(f).model_copy(update={"name": s.to_workload().name})
    (tmp_path / "bad.yaml").write_text("grid:\n  models: [[a, b]]\n  clusters: [1xH100]\n")
    with pytest.raises(InputError, match=r"grid\.models holds a list"):
        load_scenarios(tmp_path / "bad.yaml")
