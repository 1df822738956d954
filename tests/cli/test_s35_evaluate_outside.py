"""An evaluated serving configuration that beats the planner's optimum says why the planner cannot
choose it. Before: SGLang Qwen3-30B-A3B at max_num_seqs 128 (a grid value; its pool holds 126)
printed "22.3% above the planner's optimum, with a value off its grid"."""

from __future__ import annotations

import pytest

from autoparallel.cli import main

WORK = ["--isl", "512", "--osl", "512", "--ttft-ms", "2000", "--tpot-ms", "50"]


def test_a_kv_bound_batch_is_named_as_what_the_planner_never_plans(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["evaluate", "Qwen/Qwen3-30B-A3B", "--cluster", "1x1xH100", *WORK, "--engine", "sglang"]
    assert main([*argv, "--max-num-seqs", "128"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "solver: EVALUATED" in x)
    assert (
        "above the planner's optimum, which it cannot choose: its KV cache holds 126 of max_num_seqs 128"
        in line
    )
    assert "off its grid" not in line.split("cannot choose:")[0]
