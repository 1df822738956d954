"""`sweep --workers` had no cap: a local pool forks every worker up front, so `--workers 4096` of one
scenario on 2 cores spent minutes forking and ~160 s to act on Ctrl-C. The pool now has at most the
machine's cores and the scenarios to run (`execute.pool_size`), as `BOUNDS["workers"]` states and
`plan --workers` keeps to, and says so on stderr when the cores cap it."""

from __future__ import annotations

from typing import Any

import pytest

import autoparallel.bounds
from autoparallel.sweeps import execute, make_scenario

SMALL = "meta-llama/Llama-3.2-1B"


def _two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(autoparallel.bounds, "cpu_cores", lambda: 2)


def _quick_row(scenario: Any, time_limit_s: float) -> dict[str, Any]:
    return {**execute.input_row(scenario), "status": "ok", "message": ""}


def test_pool_size_is_capped_at_the_cores_and_the_scenarios(monkeypatch: pytest.MonkeyPatch) -> None:
    _two_cores(monkeypatch)
    assert execute.pool_size(4096, 1) == 1
    assert execute.pool_size(4096, 100) == 2
    assert execute.pool_size(4096) == 2
    assert execute.pool_size(None, 100) == 2
    assert execute.pool_size(None, 1) == 1
    assert execute.pool_size(1, 100) == 1


def test_the_sweep_pool_gets_the_capped_size_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _two_cores(monkeypatch)
    sizes: list[int] = []

    class Recording(execute._SweepPool):
        def __init__(self, size: int) -> None:
            sizes.append(size)
            super().__init__(min(size, 2))  # never fork thousands, even before the fix

    monkeypatch.setattr(execute, "_SweepPool", Recording)
    monkeypatch.setattr(execute, "solve_scenario", _quick_row)  # the pool forks after this
    todo = [make_scenario(SMALL, "1xH100", {"isl": isl, "osl": 64}) for isl in (256, 512, 1024)]
    res = execute.run_scenarios(todo, workers=4096)
    assert [r["status"] for r in res] == ["ok"] * 3
    assert sizes == [2]
    assert "4096 workers capped at this machine's 2 CPU cores; running 2 processes" in capsys.readouterr().err
    sizes.clear()
    execute.run_scenarios(todo[:1], workers=4096)
    assert sizes == [1]


def test_nothing_left_to_run_starts_no_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[int] = []
    monkeypatch.setattr(execute, "_SweepPool", lambda size: started.append(size))
    with execute.open_executor("process", 8, tasks=0) as pool:
        assert pool is None
    assert started == []
