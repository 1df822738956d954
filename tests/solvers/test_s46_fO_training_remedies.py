"""An infeasible training job names the nearest changes that fit it in memory, each checked on the
planner's own space: Llama-3.1-70B on 2x8xH100 at seq_len 8192 needs 79.12 GiB per GPU under
Megatron's default zero=dist (76.81 GiB usable), and said only "the smallest per-GPU footprint of any
allowed layout", while `--grad-reduce-in-bf16` (ZeRO 0-3) and `--engine deepspeed` both plan it."""

from __future__ import annotations

import time

import pytest

import autoparallel as ap
from autoparallel.cli import main
from autoparallel.configs import ZeroStage
from autoparallel.errors import InfeasibleError
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.training.remedies import nearest_fixes
from autoparallel.solvers.training.solve import solve_training
from autoparallel.solvers.training.space import TrainingOptions, build_space
from autoparallel.solvers.training.tables import build_tables
from autoparallel.workload import Training

L70, L405 = "meta-llama/Llama-3.1-70B", "meta-llama/Llama-3.1-405B"
JOB = [L70, "--cluster", "2x8xH100", "--train", "--seq-len", "8192", "--global-batch", "256"]
BF16_FIX = (
    "with --grad-reduce-in-bf16 (ZeRO 0-3, bf16 gradient reduction): the smallest per-GPU footprint is "
    "70.49 GiB (tp=8,pp=2,cp=1,ep=1,dp=1, micro-batch 1, zero=0, full recompute), which fits the "
    "76.81 GiB usable"
)


def _infeasible(model: str, cluster: str, seq: int, batch: int, **opts: object) -> InfeasibleError:
    with pytest.raises(InfeasibleError) as info:
        solve_training(
            load_model(model),
            Cluster.parse(cluster),
            Training(seq_len=seq, global_batch=batch),
            options=TrainingOptions(**opts),  # type: ignore[arg-type]
        )
    return info.value


def test_the_command_names_the_flag_with_its_footprint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", *JOB]) == 1  # still infeasible: exit 1
    err = capsys.readouterr().err
    assert "  - memory: the smallest per-GPU footprint of any allowed layout is 79.12 GiB" in err
    assert (
        "the allowed layouts leave out ZeRO 0-3, which Megatron runs only with --grad-reduce-in-bf16" in err
    )
    assert "  nearest feasible changes:\n" in err
    assert f"  + {BF16_FIX}\n" in err
    assert "  + with --engine deepspeed (DeepSpeed's ZeRO, bf16 gradients): the smallest per-GPU " in err
    assert "  + with --cluster 4x8xH100-SXM (2x the GPUs): the smallest per-GPU footprint is 41.30 GiB" in err


def test_each_named_change_plans() -> None:
    """The changes are no guesses: the job plans under each (ZeRO 3 with the flag or DeepSpeed)."""
    m, w = load_model(L70), Training(seq_len=8192, global_batch=256)
    for cluster, opts in (
        ("2x8xH100", TrainingOptions(grad_reduce_in_bf16=True, runner_up=False)),
        ("2x8xH100", TrainingOptions(framework="deepspeed", runner_up=False)),
        ("4x8xH100", TrainingOptions(runner_up=False)),
    ):
        sol = solve_training(m, Cluster.parse(cluster), w, options=opts)
        assert sol.memory.peak_gib <= 76.82
    bf16 = solve_training(m, Cluster.parse("2x8xH100"), w, options=TrainingOptions(grad_reduce_in_bf16=True))
    assert bf16.config.zero is ZeroStage.PARAMETERS


def test_the_api_error_carries_the_fixes() -> None:
    with pytest.raises(InfeasibleError) as info:
        ap.solve(L70, "2x8xH100", Training(seq_len=8192, global_batch=256))
    assert info.value.fixes[0] == BF16_FIX
    assert info.value.reasons[0].startswith("memory: ")


def test_no_claim_where_the_flag_does_not_fit() -> None:
    """Llama-3.1-405B on 8 H100s at seq_len 8192 needs 898.07 GiB (zero=dist), 798.85 GiB with the
    flag: neither the flag nor DeepSpeed nor 2-4x the GPUs is claimed."""
    err = _infeasible(L405, "1x8xH100", 8192, 64)
    assert "898.07 GiB" in err.reasons[0]
    assert err.fixes == ()
    flagged = _infeasible(L405, "1x8xH100", 8192, 64, grad_reduce_in_bf16=True)
    assert "798.85 GiB" in flagged.reasons[0]  # the flag's own footprint, above the 76.81 usable


def test_a_job_given_the_flag_is_unchanged() -> None:
    """With --grad-reduce-in-bf16 given, nothing names the flag (nor DeepSpeed, which the CLI refuses
    beside it), and the memory reason has no note of stages left out."""
    err = _infeasible(L405, "1x8xH100", 8192, 64, grad_reduce_in_bf16=True)
    text = str(err)
    assert "grad-reduce" not in text and "deepspeed" not in text
    assert err.reasons == (
        "memory: the smallest per-GPU footprint of any allowed layout is 798.85 GiB (tp=8,pp=1,cp=1,ep=1,"
        "dp=1, micro-batch 1, zero=0, full recompute), but H100-SXM offers 76.81 GiB usable after margins",
    )
    # the fitting job planned with the flag: what the hunt saw (tp2 cp2 dp4, ZeRO 3)
    plan = ap.solve(
        L70,
        "2x8xH100",
        Training(seq_len=8192, global_batch=256),
        options=TrainingOptions(grad_reduce_in_bf16=True),
    )
    c = plan.config
    assert (c.tp, c.pp, c.cp, c.dp, c.zero) == (2, 1, 2, 4, ZeroStage.PARAMETERS)


def test_fixes_keep_the_time_limit_and_can_be_off() -> None:
    """Past the deadline no change is tried; `fixes=False` (the cp relaxation's own trial) asks none;
    under --world-sizes the GPUs stay as given (`_world_sizes_reason` names lifting it)."""
    m, c, w = load_model(L70), Cluster.parse("2x8xH100"), Training(seq_len=8192, global_batch=256)
    t = build_tables(build_space(m, c, w, TrainingOptions()))
    assert nearest_fixes(t, time.perf_counter()) == ()
    assert len(nearest_fixes(t, time.perf_counter() + 60)) == 3
    with pytest.raises(InfeasibleError) as info:
        solve_training(m, c, w, fixes=False)
    assert info.value.fixes == ()
    worlds = _infeasible(L70, "2x8xH100", 8192, 256, world_sizes=(16,))
    assert not any("--cluster" in f for f in worlds.fixes)
    assert worlds.fixes[0] == BF16_FIX
