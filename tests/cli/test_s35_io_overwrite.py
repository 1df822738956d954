"""An output path that is one of the command's inputs is refused (exit 2, one line) before anything is
read or planned: `profile LOG -o LOG` and `plan ... --plan-file` naming the --fleet file, the
--workload-file, the --gpus-file, a fleet entry's workload file or the model's config.json wrote over
the input, exit 0 (s35 bug 1)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from autoparallel.cli import main
from autoparallel.models.zoo import find_entry

MODEL = "Qwen/Qwen3-0.6B"


def _refused(argv: list[str], victim: Path, capsys: pytest.CaptureFixture[str], what: str) -> None:
    before = victim.read_bytes()
    assert main(argv) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1, err
    assert what in lines[0] and "would destroy that input" in lines[0]
    assert victim.read_bytes() == before  # the input is intact


def _log(tmp_path: Path) -> Path:
    log = tmp_path / "log.jsonl"
    rows = [{"prompt_tokens": 100 + i, "output_tokens": 50 + i, "timestamp": 0.2 * i} for i in range(20)]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return log


def test_profile_output_over_its_own_log_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _log(tmp_path)
    _refused(["profile", str(log), "-o", str(log)], log, capsys, "the request log")
    monkeypatch.chdir(tmp_path)  # another spelling of the same file, and a hard link to it
    _refused(["profile", "log.jsonl", "-o", f"../{tmp_path.name}/./log.jsonl"], log, capsys, "request log")
    os.link(log, tmp_path / "hard.jsonl")
    _refused(["profile", "log.jsonl", "-o", "hard.jsonl"], log, capsys, "request log")


def test_profile_to_another_file_still_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = _log(tmp_path)
    out = tmp_path / "w.json"
    assert main(["profile", str(log), "-o", str(out)]) == 0
    assert "serving" in json.loads(out.read_text())


def test_plan_file_over_the_fleet_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = tmp_path / "F.yaml"
    fleet.write_text(f"models:\n  - model: {MODEL}\n    request_rate: 5\n")
    argv = ["plan", "--fleet", str(fleet), "--cluster", "1x8xH100", "--plan-file", str(fleet)]
    _refused(argv, fleet, capsys, "the --fleet file")


def test_plan_file_over_a_fleet_entry_workload_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sub").mkdir()
    wl = tmp_path / "sub" / "wl.json"
    wl.write_text(json.dumps({"serving": {"name": "w", "isl": 500, "osl": 100, "request_rate": 2}}))
    fleet = tmp_path / "F.yaml"
    fleet.write_text(f"models:\n  - model: {MODEL}\n    workload_file: sub/wl.json\n")
    argv = ["plan", "--fleet", str(fleet), "--cluster", "1x8xH100", "--plan-file", str(wl)]
    _refused(argv, wl, capsys, "workload_file of fleet entry")


def test_plan_file_over_the_workload_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wl = tmp_path / "wl.json"
    wl.write_text(json.dumps({"serving": {"name": "w", "isl": 500, "osl": 100}}))
    argv = ["plan", MODEL, "--cluster", "1x8xH100", "--workload-file", str(wl), "--plan-file", str(wl)]
    _refused(argv, wl, capsys, "the --workload-file")


def test_plan_file_over_the_gpus_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gpus = tmp_path / "gpus.yaml"
    gpus.write_text(
        "gpus:\n  - {name: Foo, vendor: nvidia, arch: Hopper, memory_gb_nominal: 80, memory_gib: 79, "
        "bf16_tflops: 100, fp16_tflops: 100, hbm_tbps: 2, nvlink_gbps: 0, pcie_gen: 4, pcie_gbps: 32, "
        "max_gpus_per_node: 8, usd_per_hour: 1}\n"
    )
    argv = ["plan", MODEL, "--cluster", "1x8xH100", "--gpus-file", str(gpus), "--plan-file", str(gpus)]
    _refused(argv, gpus, capsys, "the --gpus-file")


@pytest.mark.parametrize("named", ["folder", "file"])
def test_plan_file_over_the_model_config_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], named: str
) -> None:
    entry = find_entry(MODEL)
    assert entry is not None
    config = tmp_path / "config.json"
    config.write_text(json.dumps(dict(entry.config)))
    model = str(tmp_path) if named == "folder" else str(config)
    argv = ["plan", model, "--cluster", "1x8xH100", "--plan-file", str(config)]
    _refused(argv, config, capsys, "the model's config")
