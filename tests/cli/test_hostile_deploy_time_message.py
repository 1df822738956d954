"""A time limit below what a solve needs names that, not a disaggregation comparison that never ran."""

from __future__ import annotations

import pytest

from autoparallel.cli import main
from autoparallel.solvers.settings import MIN_LEFT_S


@pytest.mark.parametrize(
    "extra",
    [["--disagg", "off"], ["--train", "--seq-len", "4096", "--global-batch", "64"]],
)
def test_a_tiny_limit_does_not_blame_the_disaggregation_comparison(
    extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["plan", "meta-llama/Llama-3.1-8B-Instruct", "--cluster", "1x8xH100", "--time-limit", "0.001"]
    assert main([*argv, *extra]) == 1
    err = capsys.readouterr().err
    assert "--disagg on" not in err, err
    assert f"{MIN_LEFT_S:g} s a solve needs" in err and "0.001 s" in err, err


def test_the_dp_note_follows_a_valid_configuration_and_names_what_was_given(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`evaluate openai/gpt-oss-20b --cluster 1x8xH100 --tp 3` printed a note about "--dp 2" (never
    given) before the error that tp=3 cannot split the heads."""
    assert main(["evaluate", "openai/gpt-oss-20b", "--cluster", "1x8xH100", "--tp", "3"]) == 2
    assert "note:" not in capsys.readouterr().err
    assert main(["evaluate", "openai/gpt-oss-20b", "--cluster", "1x8xH100", "--tp", "2"]) == 0
    assert "note: 4 replicas (filling the cluster) without" in capsys.readouterr().err
