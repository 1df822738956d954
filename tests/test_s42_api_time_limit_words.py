"""A time-out raised through the Python API names the API's knob beside the command line's flag:
`ap.solve(...)` under `SolverSettings.create(time_limit_s=...)` said only "(raise --time-limit)"."""

from __future__ import annotations

import pytest

import autoparallel as ap
from autoparallel.errors import SolverTimeoutError


def test_an_api_time_out_names_time_limit_s() -> None:
    spent = ap.SolverSettings.create(time_limit_s=0.001)
    with pytest.raises(
        SolverTimeoutError, match=r"raise --time-limit, or SolverSettings' time_limit_s in Python"
    ):
        ap.solve("meta-llama/Llama-3.1-8B", "1x4xH100", settings=spent)
