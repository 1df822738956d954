"""`autoparallel sweep` and `autoparallel pareto` on the command line: files written, resume, and bad
input as one line with exit 2 (a results file already written is left as it was)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoparallel.cli import main
from autoparallel.sweeps.results import read_rows

SMALL = "meta-llama/Llama-3.2-1B"


def test_sweep_grid_flags_write_csv_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.csv"
    argv = [
        "sweep",
        "--models",
        SMALL,
        "--clusters",
        "1xH100",
        "--isl",
        "1024,4096",
        "--osl",
        "128",
        "--objectives",
        "throughput,cost",
        "--out",
        str(out),
        "--executor",
        "serial",
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert text.startswith("4 scenarios (4 ok)") and "custom isl=4096 osl=128" in text
    rows = read_rows(out)
    assert len(rows) == 4 and {r["objective"] for r in rows} == {"throughput", "cost"}
    assert main([*argv[:6], "1024,4096,8192", *argv[7:]]) == 0
    assert "4 from the results file" in capsys.readouterr().out
    assert len(read_rows(out)) == 6


def test_sweep_training_from_flags(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "sweep",
        "--models",
        SMALL,
        "--clusters",
        "1x2xH100",
        "--train",
        "--seq-len",
        "1024",
        "--global-batch",
        "16",
        "--engines",
        "deepspeed",
        "--workers",
        "1",
        "--json",
    ]
    assert main(argv) == 0
    import json

    (row,) = json.loads(capsys.readouterr().out)
    assert row["kind"] == "training" and row["engine"] == "deepspeed" and row["status"] == "ok"


def test_sweep_scenario_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(f"scenarios:\n  - {{model: {SMALL}, cluster: 1xH100, workload: rag}}\n")
    out = tmp_path / "r.jsonl"
    assert main(["sweep", str(f), "--out", str(out), "--workers", "1"]) == 0
    assert read_rows(out)[0]["preset"] == "rag"


@pytest.mark.parametrize(
    "content, extra, match",
    [
        ("grid: [models: x\n", [], "not valid YAML or JSON"),
        ("scenarios:\n  - {model: m, cluster: 1xH100, gpu: H100}\n", [], "unknown column 'gpu'"),
        (
            f"scenarios:\n  - {{model: {SMALL}, cluster: 1xH100}}\n",
            ["--executor", "dask://127.0.0.1:9"],
            "cannot reach the Dask scheduler",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_keeps_results(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    content: str,
    extra: list[str],
    match: str,
) -> None:
    from autoparallel.sweeps import execute

    monkeypatch.setattr(execute, "DASK_CONNECT_TIMEOUT_S", 0.5)
    out = tmp_path / "r.jsonl"
    out.write_text('{"scenario_id": "0123456789abcdef", "status": "ok"}\n')
    before = out.read_bytes()
    f = tmp_path / "s.yaml"
    f.write_text(content)
    assert main(["sweep", str(f), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1
    assert out.read_bytes() == before


def test_sweep_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "--models", SMALL]) == 2
    assert main(["sweep", "--models", SMALL, "--clusters", "1xH100", "--seq-len", "1024"]) == 2
    assert main(["sweep", "--models", SMALL, "--clusters", "1xH100", "--isl", "x"]) == 2
    assert "not a number" in capsys.readouterr().err
    # Serving axes beside --train were dropped in silence.
    train = ["sweep", "--models", SMALL, "--clusters", "1xH100", "--train", "--seq-len", "1024"]
    assert main([*train, "--global-batch", "16", "--ttft-ms", "5", "--workloads", "rag"]) == 2
    assert "--ttft-ms, --workloads: serving only; not with --train" in capsys.readouterr().err


def test_pareto_table_plot_weights_and_stated_cap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pandas as pd

    out, plot = tmp_path / "f.parquet", tmp_path / "f.png"
    argv = [
        "pareto",
        SMALL,
        "--cluster",
        "1xH100",
        "--isl",
        "1024",
        "--osl",
        "1024",
        "--objectives",
        "throughput,ttft,cost",
        "--points",
        "4",
        "--out",
        str(out),
        "--plot",
        str(plot),
        "--weights",
        "ttft=1",
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "4 points, CUT at --points 4" in text and "*knee" in text and "<- weighted" in text
    table = pd.read_parquet(out)
    assert len(table) == 4 and table["knee"].sum() == 1
    assert plot.stat().st_size > 10_000


def test_pareto_bad_objectives_and_weights_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pareto", SMALL, "--cluster", "1x2xH100", "--objectives", "throughput"]) == 2
    assert main(["pareto", SMALL, "--cluster", "1x2xH100", "--objectives", "throughput,gpus"]) == 2
    assert main(["pareto", SMALL, "--cluster", "1x2xH100", "--weights", "ttft=x"]) == 2
    assert "--objectives needs two or more" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--out", "f.txt"], "use one of .parquet, .csv, .jsonl"),
        (["--out", "no/such/f.csv"], "folder 'no/such' not found"),
        (["--plot", "f.jpg"], "use a .png or .svg file name"),
        (["--weights", "ttft=1"], "weight for 'ttft', which is not an objective of this front"),
        (["--weights", "tpot=-1"], "weights must be >= 0 with one > 0"),
    ],
)
@pytest.mark.parametrize("disagg", [[], ["--disagg", "auto"]])
def test_pareto_checks_its_outputs_and_weights_before_solving(
    flags: list[str],
    fragment: str,
    disagg: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A bad --out / --plot file name or --weights was an error only after the whole front was solved."""
    from autoparallel import api

    def solved(*args: object, **kwargs: object) -> None:
        raise AssertionError("the front was solved before the flags were checked")

    monkeypatch.setattr(api, "pareto", solved)
    monkeypatch.setattr(api, "pareto_deployment", solved)
    argv = ["pareto", SMALL, "--cluster", "1x2xH100", "--objectives", "throughput,tpot", *disagg, *flags]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.splitlines()) == 1


def test_a_flag_alone_adjusts_the_chatbot_preset_as_plan_reads_it(capsys: pytest.CaptureFixture[str]) -> None:
    """`sweep --request-rate 5` dropped the chatbot preset's limits (max_num_seqs 384 at TPOT 85 ms)
    where `plan --request-rate 5` keeps them (192 at 43 ms); --isl / --osl still start from none."""
    argv = ["sweep", "--models", "meta-llama/Llama-3.2-1B", "--clusters", "1x1xH100", "--json"]
    assert main([*argv, "--request-rate", "5"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["workload"] == "chatbot request_rate=5" and row["tpot_ms"] <= 50
    assert main([*argv, "--isl", "512", "--osl", "128"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["workload"].startswith("custom")


def test_disagg_on_a_training_sweep_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sweep", "--models", "meta-llama/Llama-3.2-1B", "--clusters", "1x8xH100", "--train"]
    assert main([*argv, "--seq-len", "4096", "--global-batch", "64", "--disagg", "on"]) == 2
    assert "disagg applies to serving workloads" in capsys.readouterr().err
