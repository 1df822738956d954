"""An output file in a folder that exists but takes no new file (/proc) was found out only after the
whole plan or front had run and printed (`plan --plan-file /proc/p.yaml --json`: the JSON on stdout,
then exit 2). `user_file.writable_folder_problem` tries a nameless temporary file there first:
permission bits say nothing for root."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoparallel.cli import main
from autoparallel.user_file import writable_folder_problem

UNWRITABLE = Path("/proc/autoparallel-plan.yaml")
KNOBS = ("gpu_memory_utilization", "mem_fraction_static", "free_gpu_memory_fraction")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux's /proc")
def test_a_folder_that_takes_no_file_is_named_before_planning(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "plan",
        "meta-llama/Llama-3.1-8B",
        "--cluster",
        "1x8xH100",
        "--json",
        "--plan-file",
        str(UNWRITABLE),
    ]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and "takes no new file" in err and len(err.strip().splitlines()) == 1


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux's /proc")
def test_a_results_file_is_checked_the_same_way(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["pareto", "meta-llama/Llama-3.1-8B", "--cluster", "1x8xH100", "--out", "/proc/front.csv"]
    assert main(argv) == 2
    assert "takes no new file" in capsys.readouterr().err


def test_a_writable_folder_passes_and_leaves_nothing(tmp_path: Path) -> None:
    assert writable_folder_problem(tmp_path / "plan.yaml") is None
    assert list(tmp_path.iterdir()) == []
    assert writable_folder_problem(tmp_path) == "it is a folder"
    assert "not found" in (writable_folder_problem(tmp_path / "no" / "plan.yaml") or "")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux's /proc")
def test_a_plot_is_checked_before_the_front_is_solved(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["pareto", "meta-llama/Llama-3.1-8B", "--cluster", "1x8xH100", "--plot", "/proc/front.png"]
    assert main(argv) == 2
    assert (
        "cannot write --plot '/proc/front.png': folder '/proc' takes no new file" in capsys.readouterr().err
    )


def test_a_plans_json_has_only_its_engines_pool_knob(capsys: pytest.CaptureFixture[str]) -> None:
    """The two fields added for SGLang's and TensorRT-LLM's pool knobs were printed as nulls on every
    engine's plan (and vLLM's on none): each plan's config carries its own engine's knob only."""
    import json

    for engine, field in (("vllm", "gpu_memory_utilization"), ("sglang", "mem_fraction_static")):
        assert main(["plan", "Qwen/Qwen3-8B", "--cluster", "1xH100", "--engine", engine, "--json"]) == 0
        config = json.loads(capsys.readouterr().out)["config"]
        knobs = {
            k
            for k in config
            if k in ("gpu_memory_utilization", "mem_fraction_static", "free_gpu_memory_fraction")
        }
        assert knobs == {field}


@pytest.mark.parametrize(
    "argv",
    [
        ["pareto", "Qwen/Qwen3-8B", "--cluster", "1x4xH100", "--out", ""],
        ["pareto", "Qwen/Qwen3-8B", "--cluster", "1x4xH100", "--plot", " "],
        ["plan", "Qwen/Qwen3-8B", "--cluster", "1x4xH100", "--plan-file", ""],
    ],
)
def test_an_empty_output_path_is_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """`--out ""` was read as no output: exit 0, nothing written."""
    assert main(argv) == 2
    assert "an empty path" in capsys.readouterr().err


def test_a_deployment_fronts_trtllm_engines_carry_no_vllm_knob(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    argv = ["pareto", "Qwen/Qwen3-8B", "--cluster", "1x4xH100", "--disagg", "off", "--engine", "trtllm"]
    assert main([*argv, "--objectives", "cost,throughput", "--json"]) == 0
    engines = [e for p in json.loads(capsys.readouterr().out)["points"] for e in p["engines"]]
    assert engines and all(e["engine"] == "trtllm" and "gpu_memory_utilization" not in e for e in engines)
