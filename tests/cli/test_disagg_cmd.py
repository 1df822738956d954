"""`plan MODEL --cluster ... --disagg auto|on|off`: the side-by-side answer, JSON keys, exit codes."""

from __future__ import annotations

import json

import pytest

from autoparallel.cli import main

LLAMA70 = ["plan", "meta-llama/Llama-3.1-70B", "--isl", "2048", "--osl", "512", "--ttft-ms", "2000"]


def test_side_by_side_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*LLAMA70, "--tpot-ms", "30", "--cluster", "2x8xH100", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    dep, comp = d["deployment"], d["comparison"]
    assert dep["mode"] in ("aggregated", "disaggregated") and comp["winner"] == dep["mode"]
    agg, dis = comp["aggregated"], comp["disaggregated"]
    for side in (agg, dis):
        assert {"tokens_per_s_per_gpu", "ttft_ms", "tpot_ms", "usd_per_million_tokens"} <= set(side)
        assert side["ttft_ms"] <= 2000 and side["tpot_ms"] <= 30
        assert side["gpus_used"] <= 16
    better = max(("aggregated", agg), ("disaggregated", dis), key=lambda s: s[1]["tokens_per_s_per_gpu"])[0]
    assert dep["mode"] == better
    parts = dis["ttft_parts_ms"]
    assert sum(parts.values()) == pytest.approx(dis["ttft_ms"])
    assert parts["kv_transfer"] > 0
    if dep["mode"] == "disaggregated":
        assert dep["prefill"] and dep["decode"]
    else:
        assert dep["prefill"] == [] and dep["decode"] == []


def test_text_says_why_and_off_skips(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*LLAMA70, "--tpot-ms", "30", "--cluster", "2x8xH100"]) == 0
    out = capsys.readouterr().out
    assert "Aggregated vs disaggregated" in out and "tokens/s/GPU" in out and "-> " in out
    assert main([*LLAMA70, "--tpot-ms", "30", "--cluster", "2x8xH100", "--disagg", "off"]) == 0
    assert "Aggregated vs disaggregated" not in capsys.readouterr().out


def test_too_small_for_two_engines(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["plan", "meta-llama/Llama-3.1-8B", "--cluster", "1xH100", "--tpot-ms", "50"]
    assert main([*args, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["deployment"]["mode"] == "aggregated" and d["comparison"]["disaggregated"] is None
    assert "needs a prefill and a decode engine" in d["comparison"]["why"]
    assert main([*args, "--disagg", "on"]) == 1
    err = capsys.readouterr().err
    assert "the cluster has 1 GPUs" in err and "Traceback" not in err


def test_ttft_below_the_kv_transfer_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*LLAMA70[:-1], "20", "--cluster", "2x8xH100", "--disagg", "on"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "TTFT limit 20 ms < KV transfer" in err and "ms" in err


def test_bad_mode_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*LLAMA70, "--cluster", "2x8xH100", "--disagg", "maybe"])
    assert exc.value.code == 2


def test_on_with_mixed_pools_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*LLAMA70, "--cluster", "1x8xH100+1x8xA100-80G", "--disagg", "on"]) == 2
    assert "--disagg on plans one MODEL" in capsys.readouterr().err


def test_prefill_at_full_load_has_an_unbounded_ttft_said_in_words(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a TTFT limit the prefill engines are rated at full load, where an open loop's queue wait
    grows without bound: the table said "TTFT ms ... inf" and the verdict "TTFT inf ms"."""
    argv = [
        "plan",
        "meta-llama/Llama-3.1-8B-Instruct",
        "--cluster",
        "2x8xH100",
        "--isl",
        "100000",
        "--osl",
        "1024",
    ]
    assert main([*argv, "--disagg", "on", "--concurrency", "8"]) == 0
    out = capsys.readouterr().out
    comparison = out[out.index("Aggregated vs disaggregated") :]
    assert "inf" not in comparison.split("Launch")[0]
    assert "unbounded" in comparison and "prefill at full load without a --ttft-ms" in comparison
