"""Scenario rows: blank workload cells are unset, `kind` decides and is checked, a list where one value
goes is refused (sweeps/scenario.py from_rows, make_workload)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from autoparallel.errors import InputError
from autoparallel.sweeps.scenario import from_rows, grid, load_scenarios
from autoparallel.workload import Serving, Training

MODEL, CLUSTER = "meta-llama/Llama-3.1-8B", "1xH100"


def test_blank_workload_cells_plan_chatbot_as_the_row_without_them(tmp_path: Path) -> None:
    blank = tmp_path / "blank.csv"
    blank.write_text(f"model,cluster,isl,seq_len,name\n{MODEL},{CLUSTER},,,\n")
    bare = tmp_path / "bare.csv"
    bare.write_text(f"model,cluster\n{MODEL},{CLUSTER}\n")
    (got,), (want,) = load_scenarios(blank), load_scenarios(bare)
    assert got == want and got.workload_label == "chatbot"
    assert got.to_workload() == Serving.preset("chatbot")


def test_a_workload_with_only_a_name_is_refused_in_rows_and_grids() -> None:
    with pytest.raises(InputError, match=r"scenario 1: workload 'foo' sets only a name"):
        from_rows([{"model": MODEL, "cluster": CLUSTER, "name": "foo"}], "s.yaml")
    with pytest.raises(InputError, match=r"workload 'foo' sets only a name"):
        grid([MODEL], [CLUSTER], [{"name": "foo"}])
    # a name with a preset or a field still labels the workload
    (s,) = from_rows([{"model": MODEL, "cluster": CLUSTER, "name": "foo", "preset": "rag"}], "s.yaml")
    assert s.to_workload() == Serving.preset("rag").model_copy(update={"name": "foo"})


def _row(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "cluster": CLUSTER, **fields}


@pytest.mark.parametrize(
    ("row", "match"),
    [
        (_row(kind="training"), r"scenario 1: kind 'training' needs training fields \(seq_len"),
        (_row(kind="banana"), r"scenario 1: kind 'banana': expected one of serving, training"),
        (_row(kind=3), r"kind 3: expected one of serving, training"),
        (
            _row(kind="serving", seq_len=4096, global_batch=256),
            r"kind 'serving' contradicts training field 'seq_len'",
        ),
        (_row(kind="serving", workload={"global_batch": 256}), r"contradicts training field 'global_batch'"),
        (_row(kind="training", isl=4096), r"kind 'training' contradicts serving field 'isl'"),
        (_row(kind="training", workload="rag"), r"kind 'training' contradicts serving field 'preset'"),
    ],
)
def test_kind_is_checked_against_the_row(row: dict[str, Any], match: str) -> None:
    with pytest.raises(InputError, match=match) as info:
        from_rows([row], "s.yaml")
    assert "\n" not in str(info.value)


def test_kind_agreeing_with_the_fields_plans_them() -> None:
    serving, training, plain = from_rows(
        [
            _row(kind="Serving", isl=4096),
            _row(kind="training", seq_len=4096, global_batch=256),
            _row(kind="serving"),
        ],
        "s.yaml",
    )
    assert serving.kind == "serving" and serving.to_workload().isl == 4096
    assert training.kind == "training" and training.to_workload() == Training(seq_len=4096, global_batch=256)
    assert plain.to_workload() == Serving.preset("chatbot")


def test_kind_column_in_a_csv_is_checked(tmp_path: Path) -> None:
    f = tmp_path / "s.csv"
    f.write_text(f"model,cluster,kind,isl,seq_len,global_batch\n{MODEL},{CLUSTER},serving,,4096,256\n")
    with pytest.raises(InputError, match=r"s\.csv: scenario 1: kind 'serving' contradicts training field"):
        load_scenarios(f)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model", [MODEL]),
        ("cluster", ["1xH100", "1xA100"]),
        ("objective", {"throughput": 1}),
        ("isl", [1024]),
    ],
)
def test_a_list_or_mapping_where_one_value_goes_is_refused(tmp_path: Path, field: str, value: Any) -> None:
    with pytest.raises(
        InputError, match=rf"s\.yaml: scenario 2: {field} holds a (list|dict); give one value"
    ):
        from_rows([_row(), {**_row(), field: value}], "s.yaml")
    import yaml

    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump({"scenarios": [{**_row(), field: value}]}))
    with pytest.raises(InputError, match=rf"scenario 1: {field} holds a (list|dict)"):
        load_scenarios(f)


def test_a_dropped_tpot_limit_is_not_in_the_label() -> None:
    """At osl 1 the TPOT limit is dropped (no second token to time); the row's label named it
    ("custom osl=1 tpot_ms=5") beside a TPOT column far above it."""
    from autoparallel.sweeps.scenario import make_scenario

    one = make_scenario("meta-llama/Llama-3.2-1B", "1xH100", {"isl": 64, "osl": 1, "tpot_ms": 5})
    two = make_scenario("meta-llama/Llama-3.2-1B", "1xH100", {"isl": 64, "osl": 2, "tpot_ms": 5})
    assert "tpot_ms" not in one.workload_label and "tpot_ms=5" in two.workload_label
