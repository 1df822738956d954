"""A deployment section printed a bare "OPTIMAL": its optimum is over the candidate engines the
deployment space holds (shapes outside them are listed as not placed), and the line now says so, as
the single-engine line says "over the values the planner searches"."""

from __future__ import annotations

import re

import pytest

from autoparallel.cli import main


def test_the_deployment_line_says_what_its_optimum_is_over(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "meta-llama/Llama-3.1-70B-Instruct", "--cluster", "2x8xH100", "--request-rate", "5"]
    assert main(argv) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("Deployment on"))
    assert re.search(r"OPTIMAL over [1-9]\d* candidate engines?, ", line), line
