"""`plan MODEL --cluster ... --disagg auto|on|off`: the side-by-side answer, JSON keys, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

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


RATE_ONLY_PD = [
    "plan",
    "meta-llama/Llama-3.1-70B-Instruct",
    "--cluster",
    "2x8xH100",
    "--isl",
    "2048",
    "--osl",
    "512",
    "--ttft-ms",
    "2000",
    "--tpot-ms",
    "20",
    "--request-rate",
    "8",
    "--objective",
    "cost",
]
"""8 req/s at TPOT 20 ms: no aggregated engine (one engine, or the whole-cluster deployment) carries
it; a 4P:1D disaggregated deployment does."""


def test_only_disaggregation_serves_the_rate(capsys: pytest.CaptureFixture[str]) -> None:
    """The single-engine plan used to raise before the disaggregated solve: `--disagg on` and `auto`
    exited 1 although 4P:1D carries the rate. Now that deployment is the answer, said beside why the
    aggregated one cannot serve (with its numbers); `off` still exits 1."""
    assert main([*RATE_ONLY_PD, "--disagg", "auto"]) == 0
    out = capsys.readouterr().out
    assert "No single-engine (aggregated) plan serves the request:" in out
    assert "request_rate: 8 requests/s arrive" in out and "needs >= 2 engines of tp8pp2" in out
    assert "-> disaggregated: no aggregated deployment" in out
    assert main([*RATE_ONLY_PD, "--disagg", "on", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["single_engine"]["error"].startswith("no vLLM deployment")
    dep = d["deployment"]
    assert dep["mode"] == "disaggregated" and dep["served_rps"] == 8 and dep["unmet_rps"] == 0
    assert main([*RATE_ONLY_PD, "--disagg", "off"]) == 1
    assert "request_rate: 8 requests/s arrive" in capsys.readouterr().err


def test_json_deployment_is_the_chosen_one_with_its_launch(capsys: pytest.CaptureFixture[str]) -> None:
    """`deployment` of a disaggregated winner holds its own figures (it used to carry the aggregated
    deployment's engines[], models[] and totals beside mode "disaggregated") and the NIXL `vllm serve`
    line of every replica and the proxy line (`Comparison.to_dict` dropped the launch)."""
    assert main([*RATE_ONLY_PD, "--disagg", "on", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    dep, dis = d["deployment"], d["comparison"]["disaggregated"]
    assert dep["engines"] == [] and "models" not in dep
    roles = [*dep["prefill"], *dep["decode"]]
    assert dep["gpus_used"] == sum(e["gpus_per_replica"] * e["replicas"] for e in roles) == dis["gpus_used"]
    assert dep["goodput_tokens_per_s"] == dis["goodput_tokens_per_s"] == 8 * 512
    assert dep["usd_per_hour"] == sum(e["usd_per_hour"] for e in roles)
    assert dep["ratio"] == dis["ratio"] and dep["solver"]["status"] == "OPTIMAL"
    for e in roles:
        kv_role = {"prefill": "kv_producer", "decode": "kv_consumer"}[e["role"]]
        assert e["vllm"]["kv_role"] == kv_role and len(e["vllm"]["replicas"]) == e["replicas"]
        for r in e["vllm"]["replicas"]:
            assert (
                f'"kv_role":"{kv_role}"' in r["commands"][0][0]
                and f"--port {r['port']}" in r["commands"][0][0]
            )
    assert "toy_proxy_server.py" in dep["proxy"] and "--prefiller-hosts" in dep["proxy"]
    assert any("round robin" in n for n in dep["notes"])


def test_the_plan_file_holds_the_chosen_deployment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--plan-file` wrote the aggregated whole-cluster deployment whatever the comparison chose. A
    disaggregated winner's plan file has its prefill and decode engines, their NIXL lines and the
    proxy, and no `engines` key (a launcher of aggregated plan files stops there); an aggregated
    winner's is marked `mode: aggregated`."""
    path = tmp_path / "plan.yaml"
    assert (
        main(
            [*LLAMA70, "--tpot-ms", "30", "--cluster", "2x8xH100", "--disagg", "on", "--plan-file", str(path)]
        )
        == 0
    )
    doc = yaml.safe_load(path.read_text())
    assert doc["mode"] == "disaggregated" and "engines" not in doc
    assert {e["kv_role"] for e in doc["prefill"]} == {"kv_producer"}
    assert {e["kv_role"] for e in doc["decode"]} == {"kv_consumer"}
    for e in [*doc["prefill"], *doc["decode"]]:
        for r in e["replicas"]:
            assert "--kv-transfer-config" in r["commands"][0][0]
            assert r["env"]["VLLM_NIXL_SIDE_CHANNEL_HOST"] == r["host"]
    assert "--decoder-ports" in doc["proxy"]
    assert (
        main(
            [
                *LLAMA70,
                "--tpot-ms",
                "30",
                "--cluster",
                "2x8xH100",
                "--disagg",
                "off",
                "--plan-file",
                str(path),
            ]
        )
        == 0
    )
    doc = yaml.safe_load(path.read_text())
    assert doc["mode"] == "aggregated" and doc["engines"]
    capsys.readouterr()


def test_round_robin_loads_no_replica_beyond_its_capacity(capsys: pytest.CaptureFixture[str]) -> None:
    """vLLM's proxy deals requests round robin over each role's replicas. The plan priced prefill
    1x tp1 (1.14 req/s) + 2x tp2 (2.63 req/s each) in proportion to capacity, and round robin then
    sent 1.92 req/s to the tp1 engine (utilisation 1.21). Now every replica of a role carries the
    served rate / its replicas, within its capacity, and the notes say so."""
    argv = ["plan", "Qwen/Qwen3-32B", "--cluster", "1x8xH100", "--isl", "4096", "--osl", "256"]
    argv += ["--ttft-ms", "1500", "--tpot-ms", "25", "--disagg", "on", "--json"]
    assert main(argv) == 0
    dep = json.loads(capsys.readouterr().out)["deployment"]
    served = dep["served_rps"]
    for role in ("prefill", "decode"):
        n = sum(e["replicas"] for e in dep[role])
        for e in dep[role]:
            assert e["load_rps"] == pytest.approx(served / n)
            assert served / n <= e["capacity_rps"] * (1 + 1e-9), (role, e)
    assert any(f"1/{sum(e['replicas'] for e in dep['prefill'])}" in n for n in dep["notes"])
