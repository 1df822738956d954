"""`sweep --workers N` with an executor that has no local pool (serial, dask://) was silently
ignored; it is an input error now, one line, exit 2 (`sweep_cmd._check_workers`)."""

from __future__ import annotations

import pytest

from autoparallel.cli import main

ARGV = ["sweep", "--models", "meta-llama/Llama-3.2-1B", "--clusters", "1xH100", "--workers", "3"]


@pytest.mark.parametrize(
    ("executor", "why"),
    [("serial", "runs in this process"), ("dask://127.0.0.1:1", "the Dask cluster's own workers")],
)
def test_workers_with_an_executor_without_a_pool_is_refused(
    executor: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*ARGV, "--executor", executor]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--workers 3 sizes the local process pool" in err and why in err
