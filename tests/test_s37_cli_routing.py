"""`plan`'s choice of planner on the resolved workload, and the refusals that name why a request went
to the deployment planner (fleet_cmd._cost_at_a_rate, fleet_cmd.deployment_reason, plan_cmd.cmd_plan)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoparallel.cli import main

QWEN = ["plan", "Qwen/Qwen3-8B", "--cluster", "1x4xH100", "--disagg", "off"]
SHAPE = ["--isl", "1024", "--osl", "256"]


def _file(tmp_path: Path, **serving: float) -> str:
    path = tmp_path / "wf.json"
    path.write_text(json.dumps({"serving": {"isl": 1024, "osl": 256, **serving}}), encoding="utf-8")
    return str(path)


def test_cost_at_a_rate_with_a_files_prompts_is_the_single_engine_replay_as_with_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A workload file carrying num_prompts went to the deployment planner (no replay, no note), where
    the same workload as flags got the single-engine plan with its replay."""
    wf = _file(tmp_path, request_rate=4.0, num_prompts=200)
    assert main([*QWEN, "--workload-file", wf, "--objective", "cost", "--json"]) == 0
    from_file = json.loads(capsys.readouterr().out)
    flags = [*SHAPE, "--request-rate", "4", "--num-prompts", "200"]
    assert main([*QWEN, *flags, "--objective", "cost", "--json"]) == 0
    from_flags = json.loads(capsys.readouterr().out)
    for d in (from_file, from_flags):
        assert d["perf"]["benchmark"]["num_prompts"] == 200 and "deployment" in d  # and the deployment
    assert from_file["config"] == from_flags["config"]


def test_cost_at_a_rate_without_prompts_stays_the_deployment_planners(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file's burstiness without num_prompts asks for no replay: the $/hour at the rate, as before."""
    wf = _file(tmp_path, request_rate=4.0, burstiness=0.5)
    assert main([*QWEN, "--workload-file", wf, "--objective", "cost"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("Deployment on 1 node") and "burstiness 0.5" in captured.err


def test_a_files_prompts_under_a_deployment_objective_are_said_not_replayed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--num-prompts with --objective goodput is refused; a file's num_prompts was accepted silently."""
    wf = _file(tmp_path, request_rate=4.0, num_prompts=200)
    assert main([*QWEN, "--workload-file", wf, "--objective", "goodput", "--json"]) == 0
    captured = capsys.readouterr()
    note = "the workload file's 200 prompts are planned as the deployment's steady state, not replayed"
    assert note in captured.err and note in json.loads(captured.out)["notes"][0]
    assert "--objective goodput is planned by the deployment planner" in captured.err


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (
            ["--request-rate", "5", "--objective", "gpus", "--top", "3"],
            "--top 3 ranks one engine's plans by shape; --objective gpus is planned by the deployment "
            "planner, which gives one optimal plan (drop --top)",
        ),
        (
            [
                "--request-rate",
                "5",
                "--objective",
                "cost_per_mtok",
                "--num-prompts",
                "9",
                "--burstiness",
                "2",
            ],
            "--burstiness shapes the arrivals of one engine's benchmark replay; --objective cost_per_mtok",
        ),
    ],
)
def test_a_deployment_objectives_refusal_says_why_not_fleet_or_mixed_pools(
    extra: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The refusal said "a --fleet or mixed-pool deployment has no replay" to a user who gave neither."""
    assert main(["plan", "Qwen/Qwen3-8B", "--cluster", "1x4xH100", *SHAPE, *extra]) == 2
    err = capsys.readouterr().err
    assert said in err and "mixed-pool" not in err and len(err.splitlines()) == 1


def test_a_mixed_pool_refusal_names_the_pools(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "Qwen/Qwen3-8B", "--cluster", "1x4xH100+1x4xA100-80G", "--request-rate", "2"]
    argv += ["--num-prompts", "10", "--burstiness", "2"]
    assert main(argv) == 2
    assert (
        "a cluster of several GPU pools (1x4xH100+1x4xA100-80G) is planned by the deployment planner, "
        in (capsys.readouterr().err)
    )


def test_a_fleet_entrys_workload_file_prompts_are_said_not_replayed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A fleet entry's workload file with num_prompts was planned silently (its prompts capping the
    engine's max_num_seqs), where `plan MODEL --workload-file` notes it and inline keys are refused."""
    (tmp_path / "np.json").write_text('{"serving": {"isl": 512, "osl": 128, "num_prompts": 200}}')
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("models:\n  - model: Qwen/Qwen3-8B\n    workload_file: np.json\n")
    assert main(["plan", "--fleet", str(fleet), "--cluster", "1x8xH100"]) == 0
    assert "200 prompts are planned as the deployment's steady state, not replayed" in capsys.readouterr().err
