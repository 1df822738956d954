"""Four CLI texts: `profile` says a configured burstiness clamped to its bound (text and --json), a
fleet entry's preset prompts are named as the preset's (`fleet_cmd.fleet_notes`), a --plan-file under
a file says it is a file (`user_file.writable_folder_problem`), and a --quantization list refuses a
value that cannot apply as the value alone is (`fleet_cmd.serving_options`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoparallel.cli import main
from autoparallel.user_file import writable_folder_problem

SMALL = ["meta-llama/Llama-3.2-1B", "--cluster", "1x1xH100"]


def _bench(path: Path, burstiness: float) -> Path:
    n = 20
    doc = {
        "request_rate": 5,
        "burstiness": burstiness,
        "max_concurrency": None,
        "num_prompts": n,
        "input_lens": [100 + i for i in range(n)],
        "output_lens": [10] * n,
    }
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(("shape", "written", "side"), [(0.005, 0.01, "below"), (5000, 1000, "above")])
def test_a_configured_burstiness_outside_the_bound_is_said_clamped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shape: float, written: float, side: str
) -> None:
    """`burstiness 0.005 (the benchmark's gamma shape; 1 = Poisson)` while the file held 0.01."""
    result, out = _bench(tmp_path / "bench.json", shape), tmp_path / "w.json"
    assert main(["profile", str(result), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert json.loads(out.read_text())["serving"]["burstiness"] == written
    said = f"{side} the burstiness bound {written:g}"
    assert said in text and f"written as {written:g}" in text and "0.01 to 1000" in text
    assert main(["profile", str(result), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["serving"]["burstiness"] == written
    assert any(said in n and f"written as {written:g}" in n for n in doc["notes"])


def test_a_configured_burstiness_within_the_bound_has_no_clamp_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _bench(tmp_path / "bench.json", 2.0)
    assert main(["profile", str(result), "--json"]) == 0
    assert "notes" not in json.loads(capsys.readouterr().out)
    assert main(["profile", str(result)]) == 0
    assert "clamped" not in capsys.readouterr().out


def test_a_fleet_entrys_preset_prompts_are_the_presets_not_a_workload_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("models: [{model: meta-llama/Llama-3.2-1B, workload: batch}]\n")
    assert main(["plan", "--fleet", str(fleet), "--cluster", "1x1xH100+1x1xA100-80G"]) == 0
    err = capsys.readouterr().err
    assert "the batch preset's 1000 prompts are planned as the deployment's steady state" in err
    assert "workload file" not in err


def test_a_plan_file_under_a_file_says_it_is_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "somefile.jsonl"
    runs.write_text("{}\n")
    assert writable_folder_problem(runs / "x.yaml") == f"{str(runs)!r} is a file, not a folder"
    assert writable_folder_problem(runs / "a" / "b" / "x.yaml") == f"{str(runs)!r} is a file, not a folder"
    assert "not found" in (writable_folder_problem(tmp_path / "no" / "x.yaml") or "")
    assert main(["plan", *SMALL, "--plan-file", str(runs / "x.yaml")]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "not found" not in err


@pytest.mark.parametrize("listed", ["fp8,awq", "awq,fp8", "none,awq"])
def test_a_quantization_that_cannot_apply_is_refused_in_a_list_as_alone(
    capsys: pytest.CaptureFixture[str], listed: str
) -> None:
    """`--quantization fp8,awq` planned fp8 and dropped awq unsaid, where `awq` alone is exit 2."""
    assert main(["plan", *SMALL, "--quantization", "awq"]) == 2
    alone = capsys.readouterr().err
    assert main(["plan", *SMALL, "--quantization", listed]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --quantization {listed}: 'awq' cannot apply")
    assert len(err.splitlines()) == 1
    reason = "quantization 'awq' needs a checkpoint quantized that way"
    assert reason in alone and reason in err


def test_a_quantization_list_that_applies_still_plans(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", *SMALL, "--quantization", "none,fp8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["quantization"] in (None, "fp8")


def test_a_fleet_quantization_list_refuses_a_value_no_model_takes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("models: [{model: meta-llama/Llama-3.2-1B}]\n")
    assert main(["plan", "--fleet", str(fleet), "--cluster", "1x1xH100", "--quantization", "none,awq"]) == 2
    assert "'awq' cannot apply to meta-llama/Llama-3.2-1B" in capsys.readouterr().err
