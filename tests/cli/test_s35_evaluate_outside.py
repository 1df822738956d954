"""An evaluated serving configuration that beats the planner's optimum says why the planner cannot
choose it. Before: SGLang Qwen3-30B-A3B at max_num_seqs 128 (a grid value; its pool holds 126)
printed "22.3% above the planner's optimum, with a value off its grid"; session 35 named the
KV-bound batch the planner never planned. The planner now plans it (max_num_seqs 126,
tests/solvers/test_s36_kv_bound_batch.py), so the evaluation is at its optimum."""

from __future__ import annotations

import pytest

from autoparallel.cli import main

WORK = ["--isl", "512", "--osl", "512", "--ttft-ms", "2000", "--tpot-ms", "50"]


def test_a_kv_bound_batch_is_at_the_optimum_the_planner_plans(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["evaluate", "Qwen/Qwen3-30B-A3B", "--cluster", "1x1xH100", *WORK, "--engine", "sglang"]
    assert main([*argv, "--max-num-seqs", "128"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "solver: EVALUATED" in x)
    assert "at the planner's optimum" in line
    assert "never plans" not in line
