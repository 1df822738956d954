"""A training infeasibility that `--world-sizes` causes names the restriction: Llama-3.1-8B at seq_len
4096 on 8xH100 with `--world-sizes 1` needs 145.58 GiB on its one GPU, while all 8 GPUs fit it. The
message said "fits 8 x H100-SXM" and blamed memory alone, for `plan` and `pareto` alike."""

from __future__ import annotations

import pytest

from autoparallel.cli import main
from autoparallel.errors import InfeasibleError
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.models.spec import ModelSpec
from autoparallel.solvers.pareto import pareto_training
from autoparallel.solvers.training.solve import _counts_text, solve_training
from autoparallel.solvers.training.space import TrainingOptions
from autoparallel.workload import Training

JOB = ["meta-llama/Llama-3.1-8B", "--cluster", "8xH100", "--train", "--seq-len", "4096"]
JOB += ["--global-batch", "64"]
HEADER = (
    "no training layout of meta-llama/Llama-3.1-8B fits 1 of the 8 x H100-SXM (the GPU counts "
    "--world-sizes allows) for sequence length 4096 and global batch 64"
)


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", *JOB, "--objective", "cost", "--world-sizes", "1"],
        ["pareto", *JOB, "--objectives", "throughput,cost", "--world-sizes", "1"],
    ],
)
def test_world_sizes_named_where_they_bind(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == f"error: {HEADER}"
    # led by the restriction, with the whole cluster's footprint that fits
    assert lines[1].startswith(
        "  - world_sizes: the GPU counts allowed are [1] (--world-sizes, TrainingOptions.world_sizes), "
        "not the cluster's 8; with all 8 GPUs the smallest per-GPU footprint is "
    )
    assert lines[1].endswith("within the 76.81 GiB usable")
    assert lines[2].startswith(
        "  - memory: the smallest per-GPU footprint of any allowed layout is 145.58 GiB"
    )
    assert main(["plan", *JOB, "--objective", "cost", "--world-sizes", "8"]) == 0  # lifting it plans


def _llama(name: str) -> tuple[ModelSpec, Cluster, Training]:
    return load_model(name), Cluster.parse("8xH100"), Training(seq_len=4096, global_batch=64)


def test_whole_cluster_still_too_small_comes_last() -> None:
    """Llama-3.1-405B needs more than 8 H100s: lifting `world_sizes` (4) would not help, and says so."""
    m, c, w = _llama("meta-llama/Llama-3.1-405B")
    with pytest.raises(InfeasibleError) as info:
        solve_training(m, c, w, options=TrainingOptions(world_sizes=(4,)))
    err = info.value
    assert "fits 4 of the 8 x H100-SXM (the GPU counts --world-sizes allows)" in str(err.args[0])
    assert err.reasons[0].startswith("memory: ")
    assert err.reasons[-1].startswith("world_sizes: the GPU counts allowed are [4]")
    assert err.reasons[-1].endswith("still above the 76.81 GiB usable")


def test_pareto_api_names_world_sizes() -> None:
    m, c, w = _llama("meta-llama/Llama-3.1-8B")
    with pytest.raises(InfeasibleError) as info:
        pareto_training(
            m,
            c,
            w,
            objectives=("throughput", "cost"),
            options=TrainingOptions(world_sizes=(1,)),
        )
    assert str(info.value.args[0]) == HEADER
    assert info.value.reasons[0].startswith("world_sizes: ")


def test_default_message_unchanged() -> None:
    """Without `world_sizes`, or with the cluster's own count in it, the message is the whole cluster's."""
    m, c, w = _llama("meta-llama/Llama-3.1-405B")
    errors = []
    for opts in (None, TrainingOptions(world_sizes=(8,)), TrainingOptions(world_sizes=(4, 8))):
        with pytest.raises(InfeasibleError) as info:
            solve_training(m, c, w, options=opts)
        errors.append(str(info.value))
    assert errors[0] == errors[1] == errors[2]
    assert errors[0].startswith(
        "no training layout of meta-llama/Llama-3.1-405B fits 8 x H100-SXM for sequence length 4096"
    )
    assert "world_sizes" not in errors[0]


def test_counts_text() -> None:
    assert _counts_text([1]) == "1"
    assert _counts_text([1, 3]) == "1 or 3"
    assert _counts_text([1, 2, 4]) == "1, 2 or 4"
    assert _counts_text([1, 3], listed=True) == "[1, 3]"
    assert _counts_text(list(range(1, 11))) == "1, 2, 3, 4, 5, ... (10 counts)"
    assert _counts_text(list(range(1, 1025)), listed=True) == "[1, 2, 3, 4, 5, ... (1,024 counts)]"
