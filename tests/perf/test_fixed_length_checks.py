"""benchmarks/fixed_length_checks.py runs, and its decode-heavy runs land (checks, never fitted)."""

from __future__ import annotations

import importlib

import pytest


def test_fixed_length_checks_print_every_run(capsys: pytest.CaptureFixture[str]) -> None:
    bench = importlib.import_module("benchmarks.fixed_length_checks")
    assert bench.main() == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + len(bench.RUNS)
    for run in bench.RUNS:
        if run.osl == 2000:  # decode-heavy: the decode step model alone
            got = bench.predict(run)
            assert 0.8 <= got.mean_tpot_ms / run.tpot_ms <= 1.2, (run, got.mean_tpot_ms)
