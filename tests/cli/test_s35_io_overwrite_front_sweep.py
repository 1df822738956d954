"""`pareto --out/--plot` and `sweep --out` naming a file the command reads are refused before anything
runs (exit 2, one line), as `profile -o` and `--plan-file` are. Before: `pareto --workload-file w.json
--out w.json` wrote the front over the workload file, exit 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoparallel.cli import main


def test_pareto_out_naming_its_workload_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wl = tmp_path / "w.jsonl"
    wl.write_text(json.dumps({"isl": 512, "osl": 128}) + "\n")
    before = wl.read_bytes()
    argv = ["pareto", "Qwen/Qwen3-0.6B", "--cluster", "1x1xH100", "--workload-file", str(wl)]
    argv += ["--out", str(wl)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "is the --workload-file" in err and len(err.strip().splitlines()) == 1
    assert wl.read_bytes() == before


def test_sweep_out_naming_its_scenario_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "s.csv"
    spec.write_text("model,cluster\nQwen/Qwen3-0.6B,1x1xH100\n")
    before = spec.read_bytes()
    assert main(["sweep", str(spec), "--out", str(spec), "--no-progress"]) == 2
    assert "is the scenario file" in capsys.readouterr().err
    assert spec.read_bytes() == before
