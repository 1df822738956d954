"""A sweep's Megatron training rows could never reach ZeRO 0-3 (s46 fK).

Since s45, Megatron plans ZeRO 0-3 (Megatron-FSDP, the non-distributed optimizer) only with
`--grad-reduce-in-bf16` (`TrainingOptions.grad_reduce_in_bf16`), and a scenario had no such setting:
every Megatron row planned the distributed optimizer while `plan --train --grad-reduce-in-bf16` (and
DeepSpeed rows) reached ZeRO 3. A training scenario now takes `grad_reduce_in_bf16` beside its workload
fields (a row's column, a grid's workload mapping); false or absent is the scenario it always was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import autoparallel as ap
from autoparallel.errors import InputError
from autoparallel.sweeps import grid, load_scenarios, make_scenario
from autoparallel.sweeps.execute import planner_options, run_scenarios
from autoparallel.sweeps.results import read_rows
from autoparallel.sweeps.scenario import from_rows

MODEL, CLUSTER = "meta-llama/Llama-3.2-1B", "1x8xH100"
JOB = {"seq_len": 4096, "global_batch": 256}
SHAPE = ("tp", "pp", "dp", "cp", "micro_batch", "zero", "recompute")


def test_a_row_with_the_option_plans_what_plan_does(capsys: pytest.CaptureFixture[str]) -> None:
    """The sweep's row is `plan --train --grad-reduce-in-bf16`'s plan (ZeRO 3 here); the row without it
    is the default plan (zero=dist), with the scenario id, label and columns it always had."""
    plain = make_scenario(MODEL, CLUSTER, JOB)
    asked = make_scenario(MODEL, CLUSTER, {**JOB, "grad_reduce_in_bf16": True})
    assert (
        "grad_reduce_in_bf16" not in plain.inputs
        and plain.workload_label == "train seq_len=4096 global_batch=256"
    )
    assert asked.inputs["grad_reduce_in_bf16"] is True and asked.id != plain.id
    assert asked.workload_label.endswith(" grad_reduce_in_bf16")
    rows = {r["scenario_id"]: r for r in run_scenarios([plain, asked], workers=1, time_limit_s=60).rows}
    for scenario, flag in ((plain, ()), (asked, ("--grad-reduce-in-bf16",))):
        from autoparallel.cli import main

        args = ["plan", MODEL, "--cluster", CLUSTER, "--train", "--seq-len", "4096", "--global-batch", "256"]
        assert main([*args, *flag, "--time-limit", "60", "--json"]) == 0
        plan = json.loads(capsys.readouterr().out)
        row = rows[scenario.id]
        assert row["status"] == "ok"
        assert {k: row[k] for k in SHAPE} == {k: plan["config"][k] for k in SHAPE}
        assert row["step_time_s"] == pytest.approx(plan["perf"]["step_time_s"], rel=1e-5)  # JSON rounds
    assert rows[plain.id]["zero"] == "dist" and "grad_reduce_in_bf16" not in rows[plain.id]
    assert rows[asked.id]["zero"] == "3" and rows[asked.id]["grad_reduce_in_bf16"] is True


def test_false_is_the_scenario_without_it_and_values_read_as_the_option() -> None:
    plain = make_scenario(MODEL, CLUSTER, JOB)
    assert make_scenario(MODEL, CLUSTER, {**JOB, "grad_reduce_in_bf16": False}) == plain
    assert planner_options(plain) is None
    rows = from_rows(
        [
            {
                "model": MODEL,
                "cluster": CLUSTER,
                "seq_len": "4096",
                "global_batch": "256",
                "grad_reduce_in_bf16": v,
            }
            for v in ("TRUE", "1", "yes", "false", "0", "")
        ],
        "s.csv",
    )
    assert [r.id for r in rows[3:]] == [plain.id] * 3
    assert len({r.id for r in rows[:3]}) == 1 and rows[0].id != plain.id
    opts = planner_options(rows[0])
    assert opts.grad_reduce_in_bf16 and opts.framework == "megatron"
    assert rows[0].to_workload() == ap.Training(seq_len=4096, global_batch=256)
    with pytest.raises(InputError, match="grad_reduce_in_bf16: Input should be a valid boolean"):
        make_scenario(MODEL, CLUSTER, {**JOB, "grad_reduce_in_bf16": "maybe"})
    with pytest.raises(InputError, match=r"mixes training fields \['grad_reduce_in_bf16'\]"):
        make_scenario(MODEL, CLUSTER, {"preset": "chatbot", "grad_reduce_in_bf16": True})


def test_deepspeed_refuses_it_and_a_grid_keeps_it_to_megatron(tmp_path: Path) -> None:
    """`plan --engine deepspeed --grad-reduce-in-bf16` is an input error; so is such a row. A grid with both
    frameworks skips DeepSpeed for the workload that sets it (its DeepSpeed row is the one without it)."""
    asked = {**JOB, "grad_reduce_in_bf16": True}
    with pytest.raises(InputError, match="Megatron's flag; DeepSpeed reduces bf16 gradients already"):
        make_scenario(MODEL, CLUSTER, asked, engine="deepspeed")
    made = grid([MODEL], [CLUSTER], [JOB, asked], engines=["megatron", "deepspeed"])
    assert [(s.engine, "grad_reduce_in_bf16" in s.inputs) for s in made] == [
        ("megatron", False),
        ("deepspeed", False),
        ("megatron", True),
    ]
    with pytest.raises(InputError, match="Megatron's flag"):
        grid([MODEL], [CLUSTER], [asked], engines=["deepspeed"])
    path = tmp_path / "s.yaml"
    path.write_text(
        f"grid:\n  models: [{MODEL}]\n  clusters: [{CLUSTER}]\n"
        "  workloads: [{seq_len: 4096, global_batch: 256, grad_reduce_in_bf16: true}]\n"
        f"scenarios:\n  - {{model: {MODEL}, cluster: {CLUSTER}, seq_len: 4096, global_batch: 256,"
        " grad_reduce_in_bf16: yes}\n"
    )
    a, b = load_scenarios(path)
    assert a.id == b.id == make_scenario(MODEL, CLUSTER, asked).id


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_results_files_keep_the_column_and_old_files_resume(tmp_path: Path, suffix: str) -> None:
    """The flag column round-trips as a flag; a file written before it (no such column) resumes its rows."""
    out = tmp_path / f"r{suffix}"
    plain = make_scenario(MODEL, CLUSTER, JOB)
    asked = make_scenario(MODEL, CLUSTER, {**JOB, "grad_reduce_in_bf16": "true"})
    first = run_scenarios([plain], workers=1, out=out, time_limit_s=60)
    assert first.skipped == 0 and "grad_reduce_in_bf16" not in read_rows(out)[0]
    again = run_scenarios([plain, asked], workers=1, out=out, time_limit_s=60)
    assert again.skipped == 1
    stored = {r["scenario_id"]: r for r in read_rows(out)}
    assert stored[asked.id]["grad_reduce_in_bf16"] is True and stored[asked.id]["zero"] == "3"
    assert stored[plain.id].get("grad_reduce_in_bf16") is None and stored[plain.id]["zero"] == "dist"
    assert run_scenarios([plain, asked], workers=1, out=out, time_limit_s=60).skipped == 2


def test_the_sweep_command_takes_the_flag_for_its_training_rows(capsys: pytest.CaptureFixture[str]) -> None:
    """`sweep --train --grad-reduce-in-bf16` sets it on every training row (Megatron's ZeRO 3 here), skips
    DeepSpeed beside Megatron, refuses it with DeepSpeed alone, and refuses it without --train."""
    from autoparallel.cli import main

    grid_flags = ["sweep", "--models", MODEL, "--clusters", CLUSTER, "--executor", "serial"]
    train = ["--train", "--seq-len", "4096", "--global-batch", "256", "--grad-reduce-in-bf16"]
    assert main([*grid_flags, *train, "--engines", "megatron,deepspeed", "--time-limit", "60", "--json"]) == 0
    out = capsys.readouterr()
    assert "the DeepSpeed rows are left out" in out.err
    (row,) = json.loads(out.out)
    assert (row["engine"], row["zero"], row["grad_reduce_in_bf16"]) == ("megatron", "3", True)
    assert main([*grid_flags, *train, "--engines", "deepspeed"]) == 2
    assert "DeepSpeed reduces bf16 gradients already" in capsys.readouterr().err
    assert main([*grid_flags, "--grad-reduce-in-bf16"]) == 2
    assert "need --train" in capsys.readouterr().err


def test_the_grid_flag_is_refused_with_a_scenario_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sweep F --grad-reduce-in-bf16` dropped the flag in silence (a file's rows never read it): refused
    as --disagg is, naming the file's own column."""
    from autoparallel.cli import main

    path = tmp_path / "s.csv"
    path.write_text(f"model,cluster,seq_len,global_batch\n{MODEL},{CLUSTER},4096,256\n")
    assert main(["sweep", str(path), "--grad-reduce-in-bf16", "--executor", "serial"]) == 2
    assert "`grad_reduce_in_bf16` column" in capsys.readouterr().err
