"""`plan --plan-file` in a folder that does not exist is refused before planning (s34 bug 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoparallel.cli import main


@pytest.mark.parametrize("where", ["missing", "folder"])
def test_a_plan_file_that_cannot_be_written_is_exit_2_before_any_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """The whole plan was printed (--json) before the write failed with exit 2: a script reading stdout
    took a plan whose file was never written."""
    target = tmp_path / "nodir" / "p.yaml" if where == "missing" else tmp_path
    argv = ["plan", "Qwen/Qwen3-8B", "--cluster", "1x1xH100", "--plan-file", str(target), "--json"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "plan file" in lines[0] and str(target) in lines[0]
    assert ("not found" if where == "missing" else "is a folder") in lines[0]


def test_a_fleet_plan_file_in_a_missing_folder_is_exit_2_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("models:\n  - model: Qwen/Qwen3-8B\n    request_rate: 5\n")
    target = tmp_path / "nodir" / "p.yaml"
    argv = ["plan", "--fleet", str(fleet), "--cluster", "1x2xH100", "--plan-file", str(target), "--json"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and "not found" in err and not target.exists()
