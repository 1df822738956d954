"""`evaluate --train` reproduces a training front's points: it had no --etp nor a stage split, so a
point such as Qwen3-30B-A3B's `tp2 pp1 dp8 ep8 etp1 mb1 z2 none` (198,197 tok/s on the front) was
evaluated at etp = tp (77,685 tok/s), and `L12/13/13/10` at the even split. Each front point's
`plan_cmd.evaluate_command` is the line that gives its figures back."""

from __future__ import annotations

import json
import shlex

import pytest

from autoparallel import api
from autoparallel.cli import main
from autoparallel.cli.plan_cmd import evaluate_command
from autoparallel.configs import ZeroStage
from autoparallel.solvers.training.space import TrainingOptions
from autoparallel.workload import Training

MODEL = "Qwen/Qwen1.5-MoE-A2.7B"
JOB = Training(seq_len=4096, global_batch=64)


def _evaluated(line: str, capsys: pytest.CaptureFixture[str]) -> float:
    """tokens/s of `autoparallel evaluate ... --json` (its JSON keeps 4 decimals)."""
    words = shlex.split(line)
    assert words[:2] == ["autoparallel", "evaluate"]
    assert main([*words[1:], "--json"]) == 0
    return float(json.loads(capsys.readouterr().out)["perf"]["tokens_per_s"])


def test_a_front_point_with_etp_1_evaluates_to_its_front_figure(capsys: pytest.CaptureFixture[str]) -> None:
    front = api.pareto(MODEL, "1x8xH100", workload=JOB)
    point = next(p for p in front if p.config.ep > 1 and p.config.etp == 1)
    line = evaluate_command(point)
    assert line is not None and "--etp 1" in line
    assert _evaluated(line, capsys) == pytest.approx(
        point.perf.tokens_per_s, abs=1e-4
    )  # JSON keeps 4 decimals
    without = line.replace(" --etp 1", "")  # etp = tp, what evaluate priced before
    assert _evaluated(without, capsys) != pytest.approx(point.perf.tokens_per_s, rel=1e-3)


def test_a_front_point_with_an_uneven_split_evaluates_to_its_front_figure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    opts = TrainingOptions(pp_values=(4,), zero_stages=(ZeroStage.DISTRIBUTED_OPTIMIZER,))
    point = api.pareto(MODEL, "1x8xH100", workload=JOB, options=opts, points=1)[0]
    line = evaluate_command(point)
    assert point.config.layers_per_stage == (7, 7, 7, 3)
    assert line is not None and "--layers-per-stage 7,7,7,3" in line
    assert _evaluated(line, capsys) == pytest.approx(
        point.perf.tokens_per_s, abs=1e-4
    )  # JSON keeps 4 decimals


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        (["--pp", "4", "--layers-per-stage", "7,7,7"], "--layers-per-stage 7,7,7: 3 stages given, --pp is 4"),
        (["--pp", "4", "--layers-per-stage", "7,x,7,3"], "expected layer counts like 12,13,13,10"),
        (["--pp", "4", "--layers-per-stage", "0/8/8/8"], "every stage needs at least one layer"),
        (["--pp", "4", "--layers-per-stage", "7/7/7/4"], "sum to 24 (stages_cover_layers)"),
        (["--tp", "2", "--ep", "4", "--etp", "3"], "expert grid etp x ep = 3 x 4 does not tile"),
    ],
)
def test_bad_etp_and_stage_splits_are_one_line_errors(
    flags: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "evaluate",
        MODEL,
        "--cluster",
        "1x8xH100",
        "--train",
        "--seq-len",
        "4096",
        "--global-batch",
        "64",
    ]
    assert main([*argv, *flags]) == 2
    err = capsys.readouterr().err
    assert error in err and len(err.strip().splitlines()) == 1


def test_etp_needs_experts_and_a_training_job(capsys: pytest.CaptureFixture[str]) -> None:
    dense = ["evaluate", "Qwen/Qwen3-0.6B", "--cluster", "1x8xH100", "--tp", "2", "--etp", "1"]
    assert main([*dense, "--train", "--seq-len", "4096", "--global-batch", "64"]) == 2
    assert "--etp 1: Qwen/Qwen3-0.6B has no MoE layers" in capsys.readouterr().err
    assert main(dense) == 2
    assert "--etp does not apply to serving" in capsys.readouterr().err


def test_a_training_fronts_json_names_each_points_evaluate_line(capsys: pytest.CaptureFixture[str]) -> None:
    """`pareto --train --json`: every point carries the `evaluate --train` line that gives back its
    figures, so a point whose etp or stage split evaluate's defaults would change can be checked."""
    base = ["--cluster", "1x4xH100", "--train", "--seq-len", "2048", "--global-batch", "16", "--json"]
    assert main(["pareto", "Qwen/Qwen3-8B", *base]) == 0
    points = json.loads(capsys.readouterr().out)["points"]
    assert points and all(p["evaluate"].startswith("autoparallel evaluate ") for p in points)
    line = shlex.split(points[-1]["evaluate"])[1:]
    assert main([*line, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["perf"]["step_time_s"] == pytest.approx(points[-1]["perf"]["step_time_s"])


def test_the_config_line_says_the_expert_split_and_the_cp_exchange(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The text dropped etp and cp_comm: a plan with whole experts (etp 1 at tp 2) and its runner-up
    with experts split over tp printed as one layout, and an all-to-all CP run as the ring."""
    moe = ["evaluate", MODEL, "--cluster", "1x8xH100", "--train", "--seq-len", "4096"]
    assert main([*moe, "--global-batch", "64", "--tp", "2", "--dp", "4", "--ep", "4", "--etp", "1"]) == 0
    assert "config: tp=2 pp=1 dp=4 cp=1 ep=4 etp=1 vp=1;" in capsys.readouterr().out
    assert main([*moe, "--global-batch", "64", "--tp", "2", "--dp", "4", "--ep", "4"]) == 0
    assert "config: tp=2 pp=1 dp=4 cp=1 ep=4 vp=1;" in capsys.readouterr().out
    dense = ["evaluate", "meta-llama/Llama-3.1-8B", "--cluster", "1x8xH100", "--train", "--seq-len", "32768"]
    assert main([*dense, "--global-batch", "8", "--tp", "2", "--cp", "4", "--cp-comm-type", "a2a"]) == 0
    assert "cp=4 ep=1 cp_comm=a2a vp=1;" in capsys.readouterr().out
