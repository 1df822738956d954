"""A pool worker that dies (kill -KILL, the out-of-memory killer) broke the process pool, and every
scenario not finished yet became a permanent `internal` row (BrokenProcessPool) that a resume never
retried. Now only the scenario the dead worker was running is an `error` row naming the death; the
others run again on a fresh pool (`execute._run_pooled`, `_SweepPool.blame`)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from autoparallel.errors import AutoParallelError
from autoparallel.sweeps import execute, make_scenario
from autoparallel.sweeps.results import read_rows

SMALL = "meta-llama/Llama-3.2-1B"
KILLER_ISL = 3000


def _fake_solve(scenario: Any, time_limit_s: float) -> dict[str, Any]:
    """A quick row; the scenario at ISL `KILLER_ISL` kills its own worker, as the OOM killer would."""
    if dict(scenario.workload).get("isl") == KILLER_ISL:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.05)
    return {**execute.input_row(scenario), "status": "ok", "message": ""}


def _die_unmarked(scenario: Any, time_limit_s: float) -> dict[str, Any]:
    os.kill(os.getpid(), signal.SIGKILL)
    return {}


def _todo() -> list[Any]:
    return [
        make_scenario(SMALL, "1xH100", {"isl": isl, "osl": 64})
        for isl in (512, KILLER_ISL, *range(600, 1400, 100))
    ]


def test_a_dead_worker_fails_only_its_own_scenario(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(execute, "solve_scenario", _fake_solve)  # the pool forks after this
    out = tmp_path / "r.jsonl"
    todo = _todo()
    res = execute.run_scenarios(todo, workers=2, out=out)
    by_isl = {r["isl"]: r for r in res}
    assert len(res) == len(todo) and len(read_rows(out)) == len(todo)
    dead = by_isl.pop(KILLER_ISL)
    assert dead["status"] == "error" and "worker process running this scenario died" in dead["message"]
    assert "SIGKILL" in dead["message"] and "out-of-memory" in dead["message"]
    assert {r["status"] for r in by_isl.values()} == {"ok"}, [r["message"] for r in by_isl.values()]


def test_a_death_with_no_scenario_to_blame_writes_no_row(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A worker that always dies before it marks its scenario: after the pools it may rebuild, the
    sweep stops with an error and writes no row for what did not run (a resume runs it)."""
    monkeypatch.setattr(execute, "_solve_marked", _die_unmarked)
    out = tmp_path / "r.jsonl"
    with pytest.raises(AutoParallelError, match=r"2 scenarios not run: a worker of the process pool died"):
        execute.run_scenarios(_todo()[:2], workers=2, out=out)
    assert not out.exists() or read_rows(out) == []
