"""A sweep's training row with some training fields planned `Training`'s defaults for the rest (s46 fM).

A row of `precision: fp8` alone (or only `seq_len`, only `global_batch`, `tokens` with an engine) was
status ok, labelled `train precision=fp8`, and planned a 4096-token, 1,024-sequence job the user never
described (`Scenario.to_workload` called `Training(**fields)`), where `plan --train`, `pareto --train`,
`evaluate --train` and `sweep --train` refuse a job without `--seq-len` and `--global-batch`. A training
scenario built from a mapping now needs `seq_len` and `global_batch`, refused in one line naming what
is missing; a `Training` object (its fields explicit) is planned as before."""

from __future__ import annotations

from pathlib import Path

import pytest

import autoparallel as ap
from autoparallel.cli import main
from autoparallel.errors import InputError
from autoparallel.sweeps import Scenario, grid, load_scenarios, make_scenario, sweep
from autoparallel.sweeps.execute import run_scenarios

MODEL, CLUSTER = "meta-llama/Llama-3.2-1B", "1x8xH100"
HOW = r"\(a training scenario needs both, as `plan --train` needs --seq-len and --global-batch\)"


def test_a_csv_row_without_seq_len_or_global_batch_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The finding's command: exit 2, one line naming the file, the row and the missing fields, and no
    results file (nothing was solved)."""
    path = tmp_path / "rows.csv"
    path.write_text(f"model,cluster,precision\n{MODEL},{CLUSTER},fp8\n")
    out = tmp_path / "out.csv"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith(f"error: {path}: scenario 1: training workload {{'precision': 'fp8'}}: ")
    assert "missing seq_len and global_batch" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("row", "missing"),
    [
        ("seq_len: 8192", "global_batch"),
        ("global_batch: 64", "seq_len"),
        ("tokens: 1.0e+9, engine: deepspeed", "seq_len and global_batch"),
        ("grad_reduce_in_bf16: true", "seq_len and global_batch"),
        ("workload: {seq_len: 8192}", "global_batch"),
    ],
)
def test_a_yaml_row_without_one_is_refused_naming_it(tmp_path: Path, row: str, missing: str) -> None:
    """The second row is refused by its number, as the file's other row errors are; the first, complete
    row beside it would have planned."""
    path = tmp_path / "rows.yaml"
    path.write_text(
        "scenarios:\n"
        f"  - {{model: {MODEL}, cluster: {CLUSTER}, seq_len: 4096, global_batch: 64}}\n"
        f"  - {{model: {MODEL}, cluster: {CLUSTER}, {row}}}\n"
    )
    with pytest.raises(
        InputError, match=rf"^{path}: scenario 2: training workload .*: missing {missing} {HOW}$"
    ):
        load_scenarios(path)


def test_a_grid_mapping_and_api_mappings_are_refused() -> None:
    """A grid's workload mapping (a file's or the API's), and `sweep`'s row mappings, before solving."""
    with pytest.raises(
        InputError, match=rf"^training workload \{{'global_batch': 64\}}: missing seq_len {HOW}$"
    ):
        sweep(models=MODEL, clusters=CLUSTER, workloads=[{"global_batch": 64}])
    with pytest.raises(
        InputError, match=r"^scenarios: scenario 1: training workload .*: missing global_batch"
    ):
        sweep([{"model": MODEL, "cluster": CLUSTER, "seq_len": 2048}])
    with pytest.raises(InputError, match="missing seq_len and global_batch"):
        make_scenario(MODEL, CLUSTER, {"precision": "fp8"})
    with pytest.raises(InputError, match="missing global_batch"):
        grid([MODEL], [CLUSTER], [{"seq_len": 4096, "global_batch": 64}, {"seq_len": 4096}])


def test_a_grid_file_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text(
        f"grid:\n  models: [{MODEL}]\n  clusters: [{CLUSTER}]\n  workloads: [{{seq_len: 8192}}]\n"
    )
    with pytest.raises(
        InputError, match=rf"^{path}: grid: training workload .*: missing global_batch {HOW}$"
    ):
        load_scenarios(path)


def test_a_hand_built_scenario_is_an_input_row_not_the_defaults() -> None:
    """A `Scenario` built field by field (no `make_scenario`) is refused where it is planned: an input
    error row, never a plan of `Training`'s defaults."""
    bare = Scenario(
        kind="training", model=MODEL, cluster=CLUSTER, workload=(("precision", "fp8"),), engine="megatron"
    )
    (row,) = run_scenarios([bare], workers=1, time_limit_s=30).rows
    assert row["status"] != "ok" and "missing seq_len and global_batch" in row["message"]


def test_complete_rows_and_training_objects_are_unchanged(tmp_path: Path) -> None:
    """A row with both fields is the scenario it was (same id as the mapping and the object's), and a
    `Training` object, whose fields are explicit, still plans (its defaults included)."""
    path = tmp_path / "rows.csv"
    path.write_text(f"model,cluster,seq_len,global_batch,precision\n{MODEL},{CLUSTER},4096,1024,fp8\n")
    (from_file,) = load_scenarios(path)
    mapping = make_scenario(MODEL, CLUSTER, {"seq_len": 4096, "global_batch": 1024, "precision": "fp8"})
    assert from_file == mapping
    assert make_scenario(MODEL, CLUSTER, ap.Training(precision="fp8")).id == mapping.id
    assert from_file.to_workload() == ap.Training(seq_len=4096, global_batch=1024, precision="fp8")
    assert from_file.workload_label == "train seq_len=4096 global_batch=1024 precision=fp8"
    (row,) = sweep(models=MODEL, clusters=CLUSTER, workloads=ap.Training(), workers=1).rows
    assert row["status"] == "ok" and (row["seq_len"], row["global_batch"]) == (4096, 1024)
