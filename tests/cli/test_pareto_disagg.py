"""`pareto MODEL --cluster ... --disagg auto|on|off`: the mixed front's JSON, table, plot and errors;
`sweep --disagg`: rows with the mode and the P:D ratio."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoparallel.cli import main

LONG = [
    "meta-llama/Llama-3.1-8B",
    "--cluster",
    "1x4xH100",
    "--isl",
    "8192",
    "--osl",
    "128",
    "--ttft-ms",
    "2000",
]


def test_json_points_carry_mode_and_roles(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    plot = tmp_path / "front.png"
    # best first on TPOT, the five lowest-TPOT points: a disaggregated one among aggregated ones
    args = ["--disagg", "auto", "--objectives", "tpot,throughput", "--points", "5"]
    assert main(["pareto", *LONG, *args, "--json", "--plot", str(plot)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["objectives"] == ["tpot", "throughput"] and d["disagg"] == "auto" and not d["complete"]
    points = d["points"]
    assert {p["mode"] for p in points} == {"aggregated", "disaggregated"}
    for p in points:
        assert {"tokens_per_s_per_gpu", "ttft_ms", "tpot_ms", "gpus_used", "label"} <= set(p)
        assert p["ttft_ms"] <= 2000
        if p["mode"] == "disaggregated":
            assert p["prefill"] and p["decode"] and p["engines"] == []
            assert (
                p["ratio"]
                == f"{sum(e['replicas'] for e in p['prefill'])}P:{sum(e['replicas'] for e in p['decode'])}D"
            )
            assert {"tp", "replicas", "placement", "role"} <= set(p["decode"][0])
        else:
            assert p["engines"] and p["prefill"] == [] and p["decode"] == [] and p["ratio"] is None
    tpot = [p["objectives"]["tpot"] for p in points]
    assert tpot == sorted(tpot) and len(points) == 5
    assert plot.stat().st_size > 0


def test_table_and_one_mode(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pareto", *LONG, "--disagg", "off", "--objectives", "throughput,gpus"]) == 0
    out = capsys.readouterr().out
    assert "Deployment front: throughput vs gpus (--disagg off)" in out and "0 disaggregated" in out
    assert "disagg " not in out.split("\n", 2)[2] and "modes:" not in out


def test_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    one = ["pareto", "meta-llama/Llama-3.1-8B", "--cluster", "1xH100", "--tpot-ms", "50", "--disagg", "on"]
    assert main(one) == 1
    err = capsys.readouterr().err.strip()
    assert "the smallest takes 1 GPUs, the cluster has 1" in err and "\n" not in err
    assert main(["pareto", *LONG[:-1], "20", "--disagg", "on"]) == 1
    err = capsys.readouterr().err.strip()
    assert "TTFT limit 20 ms < KV transfer" in err and "over NVLink" in err and "\n" not in err
    assert main(["pareto", *LONG, "--disagg", "auto", "--objectives", "throughput,ttft"]) == 2
    err = capsys.readouterr().err.strip()
    assert "ttft is a limit" in err and "\n" not in err
    assert (
        main(["pareto", *LONG, "--disagg", "auto", "--train", "--seq-len", "4096", "--global-batch", "8"])
        == 2
    )


def test_sweep_rows_record_mode_and_ratio(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import pandas as pd

    out = tmp_path / "sweep.csv"
    args = ["sweep", "--models", "meta-llama/Llama-3.1-8B", "--clusters", "1x4xH100", "--isl", "8192"]
    args += ["--osl", "128", "--ttft-ms", "2000", "--tpot-ms", "5.3", "--disagg", "auto,off"]
    assert main([*args, "--workers", "1", "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    rows = pd.read_csv(out)
    assert {"disagg", "mode", "pd_ratio", "agg_tok_s_per_gpu", "disagg_tok_s_per_gpu"} <= set(rows.columns)
    assert (rows["status"] == "ok").all(), rows["message"].tolist()
    tight = rows[rows["disagg"] == "auto"].iloc[0]
    assert tight["mode"] == "disaggregated" and tight["pd_ratio"].endswith("D")
    assert rows[rows["disagg"] == "off"]["mode"].eq("aggregated").all()
    assert rows[rows["disagg"] == "off"]["disagg_tok_s_per_gpu"].isna().all()
