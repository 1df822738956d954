"""Session 44: a text plan folds its per-node launch lines; the API's token budget has the CLI's bound."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

import autoparallel as ap
from autoparallel.cli import main
from autoparallel.explain import NODES_SHOWN, _node_blocks


def test_many_nodes_print_the_first_two_a_count_and_the_last(capsys: pytest.CaptureFixture[str]) -> None:
    """10,000 nodes printed one block each (20,059 lines, 3.1 MB); --json keeps every node's lines."""
    argv = ["plan", "meta-llama/Llama-3.2-1B", "--cluster", "12x8xH100", "--time-limit", "20"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "  node 0:" in out and "  node 1:" in out and "  node 11:" in out
    assert "  node 2:" not in out and "  node 10:" not in out
    assert "... 9 more nodes, launched as their neighbours with their own ranks (--json has all)" in out
    assert main([*argv, "--json"]) == 0
    assert "--data-parallel-start-rank 80 " in capsys.readouterr().out


def test_few_nodes_print_every_block() -> None:
    blocks = [[f"node {i}:", f"  line {i}"] for i in range(NODES_SHOWN)]
    assert _node_blocks(blocks) == [x for b in blocks for x in b]


@pytest.mark.parametrize("tokens", [1e-300, 0.5])
def test_a_token_budget_below_one_token_is_refused(tokens: float) -> None:
    """`plan --train --tokens 0.5` exits 2 (`must be in [1, 1e+16]`); the API planned "0 tokens (1 step)"."""
    with pytest.raises(ValidationError):
        ap.Training(tokens=tokens)
    assert ap.Training(tokens=1).tokens == 1


def test_a_remedy_on_one_expert_parallel_rank_is_singular() -> None:
    """`+ with --kv-cache-dtype fp8: 8 GPUs as one expert-parallel engine of 1 data-parallel ranks`."""
    from types import SimpleNamespace

    from autoparallel.solvers.serving.remedies import _describe

    perf = SimpleNamespace(output_tokens_per_s=15304.0, ttft_ms=900.0, tpot_ms=30.0)
    for ranks, said in ((1, "of 1 data-parallel rank of tp=8"), (2, "of 2 data-parallel ranks of tp=4")):
        config = SimpleNamespace(replicas=ranks, tp=8 // ranks, pp=1, gpus=8, enable_expert_parallel=True)
        assert said in _describe(SimpleNamespace(estimate=SimpleNamespace(perf=perf), config=config))  # type: ignore[arg-type]
