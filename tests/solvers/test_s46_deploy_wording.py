"""One model's deployment that cannot carry its rate spoke of "the fleet's request rates" (s46 hunt): a
`plan --request-rate` or a sweep row has one model, and the line now says so."""

from __future__ import annotations

import pytest

from autoparallel.cli import main


def test_one_models_rate_is_no_fleets(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "meta-llama/Llama-3.2-1B", "--cluster", "1xL4", "--request-rate", "5000"]
    assert main([*argv, "--objective", "cost", "--time-limit", "30"]) == 1
    err = capsys.readouterr().err
    assert "the cluster cannot serve the model's request rate at its SLOs" in err and "fleet" not in err
