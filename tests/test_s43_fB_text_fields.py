"""A scenario's text fields (name, workload_file, engine, ...) are taken as written: a CSV cell of digits
is not a number, a YAML number is its text (s43 fB, problem 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoparallel.errors import InputError
from autoparallel.sweeps.scenario import TEXT_FIELDS, from_rows, load_scenarios

SMALL = "meta-llama/Llama-3.2-1B"


def test_a_numeric_name_in_csv_is_its_text(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(
        f'model,cluster,isl,osl,name\n{SMALL},1xH100,1000,200,2024\n{SMALL},1xH100,1000,200,"1.50"\n'
    )
    first, second = load_scenarios(path)  # before: exit 2 "name: Input should be a valid string"
    assert first.to_workload().name == "2024" and second.to_workload().name == "1.50"
    assert first.workload_label.startswith("2024 ")


def test_a_numeric_name_in_yaml_is_its_text(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    item = f"{{model: {SMALL}, cluster: 1xH100, workload: {{isl: 1000, osl: 200, name: 2024}}}}"
    path.write_text(f"scenarios:\n  - {item}\n")
    (row,) = load_scenarios(path)
    assert row.to_workload().name == "2024"


def test_a_numeric_workload_file_name_is_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "007").write_text('{"serving": {"isl": 300, "osl": 30}}')
    (tmp_path / "s.csv").write_text(f"model,cluster,workload_file\n{SMALL},1xH100,007\n")
    monkeypatch.chdir(tmp_path)
    (row,) = load_scenarios("s.csv")  # before: the file "7", not found
    assert dict(row.workload)["workload_file"] == "007" and row.to_workload().isl == 300


def test_a_numeric_engine_is_named_as_written() -> None:
    with pytest.raises(InputError, match="engine '2024' is not modelled"):
        from_rows([{"model": SMALL, "cluster": "1xH100", "engine": "2024"}], "x")


def test_the_text_fields_are_the_scenario_string_fields() -> None:
    assert {"name", "workload", "workload_file", "preset", "engine", "objective", "model"} <= TEXT_FIELDS
    assert not {"isl", "osl", "request_rate", "tpot_ms", "seq_len"} & TEXT_FIELDS
