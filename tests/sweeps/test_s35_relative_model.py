"""A scenario file's relative `workload_file` was read from the file's folder (documented), but its
model from wherever `sweep` ran ("no such file or directory: ../fx/ok"). A model that is a relative
path (`./`, `../`, or a name that exists in the file's folder) is now read from that folder too
(`scenario._anchored_model`); hub and zoo ids stay as written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoparallel.cli import main
from autoparallel.sweeps import load_scenarios
from tests.local_model_config import LLAMA


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp/fx/ok/config.json, tmp/sw/local/config.json, tmp/sw/ (scenario files); cwd: tmp/elsewhere/deep,
    where `../fx/ok` names nothing."""
    for folder in (tmp_path / "fx" / "ok", tmp_path / "sw" / "local"):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps(LLAMA))
    (tmp_path / "elsewhere" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "elsewhere" / "deep")
    return tmp_path


def test_a_rows_relative_model_is_read_from_the_files_folder(layout: Path) -> None:
    f = layout / "sw" / "rel.yaml"
    f.write_text(
        "scenarios:\n"
        "  - {model: ../fx/ok, cluster: 1xH100}\n"
        "  - {model: local, cluster: 1xH100}\n"
        "  - {model: meta-llama/Llama-3.2-1B, cluster: 1xH100}\n"
    )
    a, b, hub = load_scenarios(f)
    assert a.model == str(layout / "sw" / "../fx/ok") and a.load_model().num_layers == 16
    assert b.model == str(layout / "sw" / "local") and b.load_model().num_layers == 16
    assert hub.model == "meta-llama/Llama-3.2-1B"


def test_grid_models_and_csv_rows_are_anchored_too(layout: Path) -> None:
    g = layout / "sw" / "grid.yaml"
    g.write_text("grid:\n  models: [./local, ../fx/ok, llama-3.2-1b]\n  clusters: [1xH100]\n")
    assert [s.model for s in load_scenarios(g)] == [
        str(layout / "sw" / "local"),
        str(layout / "sw" / "../fx/ok"),
        "llama-3.2-1b",
    ]
    c = layout / "sw" / "rows.csv"
    c.write_text("model,cluster\n../fx/ok,1xH100\n")
    assert [s.model for s in load_scenarios(c)] == [str(layout / "sw" / "../fx/ok")]


def test_a_file_in_the_current_folder_keeps_its_models_as_written(layout: Path) -> None:
    (Path.cwd() / "m").mkdir()
    (Path.cwd() / "m" / "config.json").write_text(json.dumps(LLAMA))
    (Path.cwd() / "here.yaml").write_text("scenarios:\n  - {model: ./m, cluster: 1xH100}\n")
    assert [s.model for s in load_scenarios("here.yaml")] == ["./m"]  # the scenario id unchanged


def test_sweep_plans_a_relative_model_from_another_folder(
    layout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = layout / "sw" / "rel.yaml"
    f.write_text("scenarios:\n  - {model: ../fx/ok, cluster: 1xH100}\n")
    args = ["sweep", str(f), "--executor", "serial", "--time-limit", "3", "--no-progress", "--json"]
    assert main(args) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["status"] == "ok", row["message"]
