"""Scenarios carrying `disagg`: grid axis, YAML (bare on / off), CSV column, validation, stable ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from autoparallel.errors import InputError
from autoparallel.sweeps import grid, load_scenarios, make_scenario

MODEL = "meta-llama/Llama-3.1-8B"


def test_ids_without_disagg_are_unchanged_and_modes_differ() -> None:
    plain = make_scenario(MODEL, "1x8xH100", "chatbot")
    assert "disagg" not in plain.inputs and plain.disagg is None
    modes = [make_scenario(MODEL, "1x8xH100", "chatbot", disagg=d) for d in ("auto", "on", "off")]
    assert len({plain.id, *(s.id for s in modes)}) == 4
    assert modes[0].inputs["disagg"] == "auto" and "[disagg auto]" in modes[0].label


def test_grid_axis_skips_training() -> None:
    train = {"seq_len": 4096, "global_batch": 64}
    out = grid([MODEL], ["1x8xH100"], ["chatbot", train], disaggs=["auto", "off"])
    assert [(s.kind, s.disagg) for s in out] == [("serving", "auto"), ("serving", "off"), ("training", None)]


def test_yaml_and_csv(tmp_path: Path) -> None:
    y = tmp_path / "s.yaml"
    y.write_text(f"grid:\n  models: [{MODEL}]\n  clusters: [1x8xH100]\n  disagg: [on, off, auto]\n")
    assert [s.disagg for s in load_scenarios(y)] == ["on", "off", "auto"]  # YAML 1.1 booleans mapped back
    c = tmp_path / "s.csv"
    c.write_text(f"model,cluster,tpot_ms,disagg\n{MODEL},1x8xH100,20,auto\n{MODEL},1x8xH100,20,\n")
    rows = load_scenarios(c)
    assert [s.disagg for s in rows] == ["auto", None]
    assert dict(rows[0].workload) == {"tpot_ms": 20}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"disagg": "maybe"}, "expected one of auto, on, off"),
        (
            {"workload": {"seq_len": 4096, "global_batch": 64}, "disagg": "auto"},
            "does not apply to a training",
        ),
    ],
)
def test_bad_disagg_is_an_input_error(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InputError, match=match):
        make_scenario(MODEL, "1x8xH100", **kwargs)
