"""`plan MODEL --cluster ... --disagg auto|on|off`: the side-by-side answer, JSON keys, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from autoparallel.cli import main
from autoparallel.configs import ServingConfig

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


def test_on_with_a_fleet_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A fleet file plans several models; the comparison is one MODEL's (mixed pools: test_disagg_cli)."""
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("models:\n  - model: meta-llama/Llama-3.1-8B\n    isl: 1024\n    osl: 256\n")
    assert main(["plan", "--fleet", str(fleet), "--cluster", "1x8xH100+1x8xA100-80G", "--disagg", "on"]) == 2
    assert "--disagg on plans one MODEL" in capsys.readouterr().err


def test_prefill_at_full_load_has_an_unbounded_ttft_said_in_words(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a TTFT limit the prefill engines are rated at full load, where an open loop's queue wait
    grows without bound: the table said "TTFT ms ... inf" and the verdict "TTFT inf ms". (Under a
    concurrency cap the clients bound the queue: the closed loop carries less, at a finite TTFT.)"""
    argv = [
        "plan",
        "meta-llama/Llama-3.1-8B-Instruct",
        "--cluster",
        "1x2xH100",
        "--isl",
        "100000",
        "--osl",
        "1024",
    ]
    assert main([*argv, "--disagg", "on"]) == 0
    out = capsys.readouterr().out
    comparison = out[out.index("Aggregated vs disaggregated") :]
    assert "inf" not in comparison.split("Launch")[0]
    assert "unbounded" in comparison and "prefill at full load without a --ttft-ms" in comparison
    assert main([*argv, "--disagg", "on", "--concurrency", "2"]) == 0
    capped = capsys.readouterr().out
    capped = capped[capped.index("Aggregated vs disaggregated") :].split("Launch")[0]
    assert "unbounded" not in capped and "bound by the 2 clients' cycle through both roles" in capped


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
]
"""8 req/s at TPOT 20 ms: no aggregated engine (one engine, or the whole-cluster deployment) carries
it; a 4P:1D disaggregated deployment does. (With `--objective cost` at a rate the deployment planner
is the headline, `RATE_ONLY_PD_COST`.)"""
RATE_ONLY_PD_COST = [*RATE_ONLY_PD, "--objective", "cost"]


def test_only_disaggregation_serves_the_rate(capsys: pytest.CaptureFixture[str]) -> None:
    """The single-engine plan used to raise before the disaggregated solve: `--disagg on` and `auto`
    exited 1 although 4P:1D carries the rate. Now that deployment is the answer, said beside why the
    aggregated one cannot serve (with its numbers); `off` still exits 1."""
    assert main([*RATE_ONLY_PD, "--disagg", "auto"]) == 0
    out = capsys.readouterr().out
    assert "No single-engine (aggregated) plan serves the request:" in out
    assert "request_rate: 8 requests/s arrive" in out and "carries 6.53/s with TTFT ≤ 2000 ms" in out
    assert "-> disaggregated: only the disaggregated deployment serves 8 req/s" in out
    assert main([*RATE_ONLY_PD, "--disagg", "on", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["single_engine"]["error"].startswith("no vLLM deployment")
    dep = d["deployment"]
    assert dep["mode"] == "disaggregated" and dep["served_rps"] == 8 and dep["unmet_rps"] == 0
    assert main([*RATE_ONLY_PD, "--disagg", "off"]) == 1
    assert "request_rate: 8 requests/s arrive" in capsys.readouterr().err


def test_cost_at_a_rate_is_the_deployment_planners(capsys: pytest.CaptureFixture[str]) -> None:
    """`--objective cost` with a rate is the $/hour that sustains it: the deployment planner answers
    (its replicas sized to the rate), not the single-engine planner, whose replica count is the most
    the GPUs hold (DeepSeek-V3 on 64x8xH100 at 20 req/s took 512 GPUs there, 48 here)."""
    assert main([*RATE_ONLY_PD_COST, "--disagg", "auto"]) == 0
    out = capsys.readouterr().out
    assert "No aggregated deployment serves the request:" in out
    assert "-> disaggregated" in out and "objective cost" in out


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
            assert r["commands"][0][0].startswith(f"VLLM_NIXL_SIDE_CHANNEL_HOST={r['host']} vllm serve")
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


@pytest.mark.parametrize(
    ("model", "config"),
    [
        ("deepseek-ai/DeepSeek-V3", ServingConfig(tp=2, replicas=8, enable_expert_parallel=True)),
        ("meta-llama/Llama-3.1-405B", ServingConfig(tp=8, pp=2)),
    ],
    ids=["dp-headless", "ray"],
)
def test_engines_over_several_nodes_carry_the_kv_connector_on_every_node(
    model: str, config: ServingConfig
) -> None:
    """A decode engine on nodes 2 and 3 (`plan deepseek-ai/DeepSeek-V3 --cluster 4x8xH100 --workload
    chatbot --disagg on`: P 1x tp1ep16 | D 1x tp2ep16). Only node 0's line had `--kv-transfer-config`
    (a headless node builds its engine cores from its own flags, vLLM 0.32 entrypoints/cli/serve.py
    `run_headless`), every node exported the first node's VLLM_NIXL_SIDE_CHANNEL_HOST, and the lines
    named `${HEAD_IP}`, which the notes called node 0, as the head of an engine whose head is node 2.
    Now every `vllm serve` line carries the connector and its own node's side-channel host, and every
    line names the engine's own first node."""
    from types import SimpleNamespace

    from autoparallel.disagg_launch import engine_launch
    from autoparallel.hardware import Cluster
    from autoparallel.models import load_model

    placement = SimpleNamespace(nodes=(2, 3), gpu_ids=tuple(range(8)), port=8000)
    engine = SimpleNamespace(
        role="decode", model=model, pool=0, config=config, gpus_per_replica=16, placement=(placement,)
    )
    launch = engine_launch(engine, Cluster.parse("4x8xH100"), load_model(model))
    assert not any("HEAD_IP" in n for n in launch["notes"])
    (replica,) = launch["replicas"]
    assert replica["host"] == "${POOL0_NODE2_IP}" and "VLLM_NIXL_SIDE_CHANNEL_HOST" not in replica["env"]
    serve = [
        (node, line)
        for node, lines in zip((2, 3), replica["commands"], strict=True)
        for line in lines
        if " vllm serve " in line
    ]
    assert [node for node, _ in serve] == ([2, 3] if config.replicas > 1 else [2])
    for node, line in serve:
        assert line.startswith(f"VLLM_NIXL_SIDE_CHANNEL_HOST=${{POOL0_NODE{node}_IP}} vllm serve")
        assert '"kv_role":"kv_consumer"' in line and ("--port 8000" in line) == (node == 2)
    text = json.dumps(replica["commands"])
    assert "HEAD_IP" not in text and text.count("${POOL0_NODE2_IP}") >= 2  # the head, named by node 3


def test_pd_lines_serve_the_id_the_plan_serves(capsys: pytest.CaptureFixture[str]) -> None:
    """`plan llama-3.1-8b ... --disagg on`: the single-engine line served meta-llama/Llama-3.1-8B but
    the prefill and decode lines served the alias `llama-3.1-8b` (the comparison solved before the
    plan was named its model by what the user typed), which `vllm serve` cannot load."""
    argv = ["plan", "llama-3.1-8b", "--cluster", "1x8xH100", "--workload", "chatbot", "--disagg", "on"]
    assert main([*argv, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["vllm"]["command"].startswith("vllm serve meta-llama/Llama-3.1-8B ")
    lines = [
        line
        for role in ("prefill", "decode")
        for e in d["deployment"][role]
        for r in e["vllm"]["replicas"]
        for node in r["commands"]
        for line in node
    ]
    assert lines and all(" vllm serve meta-llama/Llama-3.1-8B " in line for line in lines)


def test_no_decode_engine_says_why_with_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    """It blamed the TPOT limit with no numbers when memory was the reason (70B on 4 L4s)."""
    argv = ["plan", "meta-llama/Llama-3.1-70B-Instruct", "--cluster", "1x4xL4", "--disagg", "on"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "no engine fits in memory (the smallest weight share is" in err
    assert len(err.strip().splitlines()) == 1


def test_a_closed_loop_client_is_charged_its_wait_when_disaggregated(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """1,000 clients of Llama-3.1-70B on 2x8xH100: the aggregated plans were refused for the 26 s their
    queue waits, while 5P:1D was "the answer" at TTFT 1727 ms, holding 261 of them. By Little's law a
    disaggregated client's mean TTFT is C / X - T (T the time a request holds a decode slot)."""
    argv = [
        "plan",
        "meta-llama/Llama-3.1-70B",
        "--cluster",
        "2x8xH100",
        "--ttft-ms",
        "2000",
        "--disagg",
        "on",
    ]
    assert main([*argv, "--concurrency", "1000"]) == 1
    err = capsys.readouterr().err
    assert "client_queue: 1000 requests in flight" in err and "Little's law" in err
    assert main([*argv, "--concurrency", "300", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    dis = d["disaggregated"] if "disaggregated" in d else d["deployment"]
    assert dis["ttft_ms"] <= 2000


def test_each_node_line_is_labelled_with_its_own_node(capsys: pytest.CaptureFixture[str]) -> None:
    """A replica over two nodes printed both nodes' `vllm serve` lines under its first node's address."""
    import re

    assert main(["plan", "deepseek-ai/DeepSeek-V3", "--cluster", "64x8xH100", "--disagg", "on"]) == 0
    out = capsys.readouterr().out
    labelled = re.findall(r"\[(?:prefill|decode) (\S+)\] .*VLLM_NIXL_SIDE_CHANNEL_HOST=(\S+)", out)
    assert labelled and all(label == host for label, host in labelled)
    assert len({label for label, _ in labelled}) > 2


def test_cost_at_a_rate_with_a_replay_or_a_ranking_stays_the_single_engine_plan(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--num-prompts`, `--burstiness` and `--top` ask for one engine's replay or ranking: with them
    cost at a rate is the single-engine plan (the deployment beside it), not refused as a fleet's
    flags; the canonical `cost_per_mtok` reaches the deployment planner as its alias does."""
    argv = ["plan", "Qwen/Qwen3-8B", "--cluster", "1x8xH100", "--request-rate", "10", "--disagg", "off"]
    assert main([*argv, "--objective", "cost", "--num-prompts", "500"]) == 0
    assert main([*argv, "--objective", "cost", "--top", "2"]) == 0
    capsys.readouterr()
    assert main([*argv, "--objective", "cost_per_mtok"]) == 0
    assert "Deployment on 1 node" in capsys.readouterr().out
