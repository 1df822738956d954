"""Three command-line fixes: a remedy credits a TTFT limit to the workload only where the workload set
it (not --ttft-ms); duplicate sweep scenarios are merged with a note, under their first spelling; and
`evaluate --train --sequence-parallel off` evaluates the plans `plan --train` / `pareto --train` print
with sequence parallelism off (seq 4097 at tp 8), which evaluate could not express (exit 2)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from autoparallel.cli import main

if TYPE_CHECKING:
    from autoparallel.sweeps.scenario import Scenario

WORKLOAD = {"name": "profiled", "isl": 1490, "osl": 420, "max_model_len": 3738, "num_prompts": 300}
PLAN = ["plan", "meta-llama/Llama-3.1-8B", "--cluster", "1x4xH100"]


def _workload_file(tmp_path: Path, **extra: float) -> str:
    path = tmp_path / "wl.json"
    path.write_text(json.dumps({"serving": {**WORKLOAD, **extra}}))
    return str(path)


def test_a_flag_limit_is_not_credited_to_the_workload_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*PLAN, "--workload-file", _workload_file(tmp_path), "--ttft-ms", "300"]) == 1
    err = capsys.readouterr().err
    assert "+ a looser --ttft-ms: the fastest plan reaches" in err
    assert "sets it" not in err  # was "(the workload 'profiled' sets it)": the file has no ttft_ms


def test_a_file_limit_is_still_credited_to_the_workload_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*PLAN, "--workload-file", _workload_file(tmp_path, ttft_ms=300)]) == 1
    assert "+ a looser --ttft-ms (the workload 'profiled' sets it): " in capsys.readouterr().err


DUPLICATES = """scenarios:
  - {model: meta-llama/Llama-3.1-8B, cluster: 1x2xH100, workload: chatbot}
  - {model: meta-llama/Llama-3.1-8B, cluster: 1x2xH100, workload: chatbot}
  - {model: meta-llama/Llama-3.1-8B, cluster: 1x2xH100, workload: {preset: chatbot}}
  - {model: meta-llama/Llama-3.1-8B, cluster: 1x2xH100-SXM, workload: chatbot}
"""


def test_duplicate_scenarios_are_merged_with_a_note_under_the_first_spelling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(DUPLICATES)
    assert main(["sweep", str(path), "--executor", "serial"]) == 0
    captured = capsys.readouterr()
    assert "3 duplicate scenarios merged" in captured.err
    assert captured.err.count("duplicate") == 1  # one line
    assert "1 scenarios (1 ok)" in captured.out
    assert "1x2xH100-SXM" not in captured.out  # the first row's spelling, not the last one's
    assert " 1x2xH100 " in captured.out


def test_distinct_scenarios_keep_the_first_spelling() -> None:
    from autoparallel.sweeps.execute import distinct_scenarios
    from autoparallel.sweeps.scenario import grid

    scenarios = grid(["meta-llama/Llama-3.1-8B"], ["1x2xH100-SXM", "1x2xH100"], ["chatbot"], ["throughput"])
    assert len(scenarios) == 2
    (only,) = distinct_scenarios(scenarios)
    assert only.cluster == scenarios[0].cluster


TRAIN = ["llama-3.1-8b", "--train", "--cluster", "1x8xH100", "--seq-len", "4097", "--global-batch", "8"]
TRAIN += ["--precision", "fp8"]
LAYOUT = ["--tp", "8", "--pp", "1", "--dp", "1", "--cp", "1", "--micro-batch", "8", "--zero", "2"]
LAYOUT += ["--recompute", "none"]


def test_evaluate_takes_sequence_parallelism_off_and_gives_the_plans_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["plan", *TRAIN, "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["config"]["tp"] == 8 and plan["config"]["sequence_parallel"] is False
    assert main(["evaluate", *TRAIN, *LAYOUT, "--sequence-parallel", "off", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["config"]["sequence_parallel"] is False
    assert got["perf"]["step_time_s"] == pytest.approx(plan["perf"]["step_time_s"])
    assert got["perf"]["tokens_per_s"] == pytest.approx(plan["perf"]["tokens_per_s"])
    # the default stays what evaluate did: sequence parallelism on, refused at seq 4097 over tp 8
    assert main(["evaluate", *TRAIN, *LAYOUT]) == 2
    assert "seq_len=4097 is not a multiple of tp" in capsys.readouterr().err
    assert main(["evaluate", *TRAIN, *LAYOUT, "--sequence-parallel", "on"]) == 2
    capsys.readouterr()


def test_sequence_parallel_is_a_training_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "llama-3.1-8b", "--cluster", "1x8xH100", "--sequence-parallel", "off"]) == 2
    assert "--sequence-parallel does not apply to serving" in capsys.readouterr().err


def test_front_points_without_sequence_parallelism_name_their_evaluate_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["pareto", *TRAIN, "--json"]) == 0
    points = json.loads(capsys.readouterr().out)["points"]
    off = [p for p in points if p["config"]["tp"] > 1 and not p["config"]["sequence_parallel"]]
    assert off and all(p["evaluate"] for p in off)  # was null
    point = off[0]
    line = shlex.split(point["evaluate"])
    assert "--sequence-parallel" in line and line[line.index("--sequence-parallel") + 1] == "off"
    assert main([*line[1:], "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["perf"]["step_time_s"] == pytest.approx(point["perf"]["step_time_s"])


def test_a_sweep_rows_own_limit_is_not_credited_to_its_workload_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A scenario's own ttft_ms over a workload file, beside the file or inside a `workload:` mapping
    (which was refused: "unknown workload field 'file_workload'"), is one scenario whose nearest fix
    does not credit the file."""
    _workload_file(tmp_path)
    rows = (
        "scenarios:\n"
        "  - {model: meta-llama/Llama-3.1-8B, cluster: 1x4xH100, workload_file: wl.json, ttft_ms: 300}\n"
        "  - {model: meta-llama/Llama-3.1-8B, cluster: 1x4xH100, workload: {workload_file: wl.json, "
        "ttft_ms: 300}}\n"
    )
    (tmp_path / "s.yaml").write_text(rows)
    assert main(["sweep", str(tmp_path / "s.yaml"), "--executor", "serial", "--json"]) == 0
    captured = capsys.readouterr()
    (row,) = json.loads(captured.out)
    assert "1 duplicate scenario merged" in captured.err
    assert row["status"] == "infeasible"
    assert "nearest feasible change: a looser --ttft-ms: " in row["message"]


def _given_while_solving(monkeypatch: pytest.MonkeyPatch) -> list[frozenset[str]]:
    """The `remedies.GIVEN_LIMITS` each `solve_scenario` call solves under, recorded."""
    from autoparallel.solvers.serving import remedies
    from autoparallel.sweeps import execute

    seen: list[frozenset[str]] = []
    solve = execute._solve_scenario

    def spy(scenario: Scenario, time_limit_s: float) -> dict[str, Any]:
        seen.append(remedies.GIVEN_LIMITS.get())
        return solve(scenario, time_limit_s)

    monkeypatch.setattr(execute, "_solve_scenario", spy)
    return seen


def test_a_serving_objects_preset_limit_is_credited_to_the_preset(monkeypatch: pytest.MonkeyPatch) -> None:
    """A scenario built from `Serving.preset("chatbot")` carries ttft_ms / tpot_ms among its fields (shown
    copies of the object's): they counted as the scenario's own, and the nearest fix never said "the
    chatbot preset imposes it", which `autoparallel.solve` of the same object says.

    Each check below fails on the code before the fix (sweeps/scenario.py and execute.py of 9c910f4^,
    which set GIVEN_LIMITS to every limit field of the scenario): the limits solved under were
    {ttft_ms, tpot_ms}, the fix read "a looser --ttft-ms: " with no credit, and `given_limits` did not
    exist."""
    from autoparallel.sweeps.execute import solve_scenario
    from autoparallel.sweeps.scenario import make_scenario
    from autoparallel.workload import Serving

    seen = _given_while_solving(monkeypatch)
    workload = Serving.preset("chatbot").with_updates({"isl": 12000})  # TTFT 2474 ms on 2 L40S
    scenario = make_scenario("Qwen/Qwen3-32B-FP8", "1x2xL40S", workload)
    row = solve_scenario(scenario)
    assert seen == [frozenset()]  # was {ttft_ms, tpot_ms}: the object's limits read as the row's own
    assert row["status"] == "infeasible"
    assert "nearest feasible change: a looser --ttft-ms (the chatbot preset imposes it): " in row["message"]
    assert scenario.given_limits == frozenset()


def test_the_limits_a_row_wrote_are_given_and_only_those() -> None:
    from autoparallel.sweeps.scenario import make_scenario
    from autoparallel.workload import Serving

    def given(workload: str | dict[str, object] | Serving) -> frozenset[str]:
        return make_scenario("meta-llama/Llama-3.1-8B", "1x1xH100", workload).given_limits

    assert given("chatbot") == frozenset()
    assert given({"preset": "chatbot", "ttft_ms": 2000}) == {"ttft_ms"}  # as plan --ttft-ms 2000
    assert given({"request_rate": 2, "tpot_ms": 60}) == {"tpot_ms"}
    assert given(Serving.preset("chatbot")) == frozenset()
    assert given(Serving(name="mine", ttft_ms=300, tpot_ms=20)) == frozenset()  # the object's own
    assert given({"seq_len": 4096, "global_batch": 64}) == frozenset()


def test_a_serving_objects_own_limit_is_credited_as_the_api_credits_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sweep from a `Serving` object says what `autoparallel.solve` says: a named workload's limit is
    the workload's; a preset's limit changed by the caller is not the preset's.

    The named workload fails on the code before the fix (9c910f4^: its limits were solved under
    GIVEN_LIMITS {ttft_ms, tpot_ms}, and the fix read "a looser --ttft-ms: " with no credit). The
    changed preset limit is a guard: it reads the same before and after, and is kept because a fix
    that credited every `Serving` object's limits to its preset name would say "the chatbot preset
    imposes it" of a limit the caller set."""
    from autoparallel.sweeps.execute import solve_scenario
    from autoparallel.sweeps.scenario import make_scenario
    from autoparallel.workload import Serving

    seen = _given_while_solving(monkeypatch)
    base = Serving.preset("chatbot").with_updates({"isl": 12000})
    for workload, credit in (
        (base.with_updates({"name": "mine"}), "a looser --ttft-ms (the workload 'mine' sets it): "),
        (base.with_updates({"ttft_ms": 1500}), "a looser --ttft-ms: "),
    ):
        row = solve_scenario(make_scenario("Qwen/Qwen3-32B-FP8", "1x2xL40S", workload))
        assert f"nearest feasible change: {credit}" in row["message"]
    assert seen == [frozenset(), frozenset()]  # the first was {ttft_ms, tpot_ms}
