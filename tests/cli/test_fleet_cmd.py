"""`autoparallel plan --fleet / --price / --gpus-file / --plan-file`, mixed clusters: JSON shape,
exit codes and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from autoparallel.cli import main
from autoparallel.errors import InputError

FLEET = """
models:
  - model: meta-llama/Llama-3.1-8B-Instruct
    request_rate: 30
    isl: 1024
    osl: 256
    ttft_ms: 1000
    tpot_ms: 40
  - model: Qwen/Qwen3-30B-A3B
    request_rate: 10
    isl: 2048
    osl: 512
    ttft_ms: 2000
    tpot_ms: 50
"""

ENGINE_KEYS = {
    "model",
    "gpu",
    "nodes",
    "tp",
    "pp",
    "ep",
    "dp",
    "replicas",
    "capacity_rps",
    "traffic_share",
    "vllm",
}


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_fleet_on_mixed_pools_json_and_plan_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = _write(tmp_path, "fleet.yaml", FLEET)
    plan_file = tmp_path / "plan.yaml"
    argv = [
        "plan",
        "--fleet",
        fleet,
        "--cluster",
        "1x8xH100+1x8xA100-80G",
        "--price",
        "H100=2.49,A100-80G=1.2",
    ]
    assert main([*argv, "--json", "--plan-file", str(plan_file)]) == 0
    d = json.loads(capsys.readouterr().out)
    dep = d["deployment"]
    assert d["solver"]["status"] == "OPTIMAL" and d["solver"]["gap"] == 0 and d["solver"]["wall_s"] >= 0
    assert {"gpus_used", "gpus_idle", "usd_per_hour", "goodput_tokens_per_s"} <= set(dep)
    assert dep["gpus_used"] + dep["gpus_idle"] == 16
    assert all(set(e) >= ENGINE_KEYS for e in dep["engines"])
    for model, rate in (("meta-llama/Llama-3.1-8B-Instruct", 30), ("Qwen/Qwen3-30B-A3B", 10)):
        engines = [e for e in dep["engines"] if e["model"] == model]
        assert sum(e["capacity_rps"] * e["replicas"] for e in engines) >= rate
        assert sum(e["traffic_share"] * e["replicas"] for e in engines) == pytest.approx(1, abs=1e-3)
    price = {"H100-SXM": 2.49, "A100-SXM-80G": 1.2}
    assert dep["usd_per_hour"] == pytest.approx(
        sum(price[e["gpu"]] * e["replicas"] * e["tp"] * e["pp"] * e["dp"] for e in dep["engines"]), rel=1e-3
    )
    lines = [line for e in dep["engines"] for r in e["vllm"]["commands"] for node in r for line in node]
    assert lines and all(line.startswith("vllm serve ") for line in lines)
    doc = yaml.safe_load(plan_file.read_text())
    assert doc["engines"] and doc["engines"][0]["replicas"][0]["commands"]


def test_fleet_plans_in_the_users_precisions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # `plan --fleet` reads --kv-cache-dtype / --quantization as the single-model plan does (one reader,
    # cli/fleet_cmd.serving_options); it used to plan every engine at the default precisions.
    fleet = _write(tmp_path, "fleet.yaml", FLEET)
    argv = ["plan", "--fleet", fleet, "--cluster", "1x8xH100", "--kv-cache-dtype", "fp8", "--json"]
    assert main(argv) == 0
    engines = json.loads(capsys.readouterr().out)["deployment"]["engines"]
    assert engines and {e["kv_cache_dtype"] for e in engines} == {"fp8"}


def test_plan_model_without_a_rate_uses_the_whole_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "plan",
        "meta-llama/Llama-3.1-8B-Instruct",
        "--cluster",
        "2x8xH100",
        "--isl",
        "1024",
        "--osl",
        "256",
    ]
    assert main([*argv, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["deployment"]["gpus_used"] == 16
    assert d["deployment"]["objective"] == "throughput"


def test_the_whole_cluster_keeps_the_workloads_concurrency(capsys: pytest.CaptureFixture[str]) -> None:
    """At most 24 requests in flight: the single-engine plan and the whole-cluster deployment both hold
    max_num_seqs × data-parallel ranks × replicas ≤ 24 (the deployment once ignored the cap and
    planned 64-request batches), the deployment serving at least what the single engine does."""
    argv = ["plan", "meta-llama/Llama-3.1-8B-Instruct", "--cluster", "2x8xH100", "--concurrency", "24"]
    assert main([*argv, "--disagg", "off", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["config"]["max_num_seqs"] * d["config"]["replicas"] <= 24
    engines = d["deployment"]["engines"]
    assert sum(e["max_num_seqs"] * e["dp"] * e["replicas"] for e in engines) <= 24
    assert d["deployment"]["throughput_tokens_per_s"] >= 0.999 * d["perf"]["output_tokens_per_s"]


def test_custom_gpu_file_and_text_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gpus = _write(tmp_path, "gpus.yaml", "- name: H100-cheap\n  base: H100\n  usd_per_hour: 1.0\n")
    argv = [
        "plan",
        "meta-llama/Llama-3.1-8B-Instruct",
        "--cluster",
        "1x8xH100-cheap+1x8xH100",
        "--gpus-file",
        gpus,
    ]
    assert main([*argv, "--request-rate", "5", "--objective", "cost"]) == 0
    out = capsys.readouterr().out
    assert "H100-cheap (pool 0)" in out and "pool 1" not in out.split("GPUs used")[0]


@pytest.mark.parametrize(
    ("argv", "code", "fragment"),
    [
        (["--cluster", "2x8xH100+1x8xH1000"], 2, "unknown GPU 'H1000'"),
        (["--cluster", "2x8xH100+"], 2, "empty pool"),
        (["--cluster", "1x8xH100🚀"], 2, "characters other than ASCII"),
        (["--cluster", "1x8xH100,ib=1e-300"], 2, "outside 1..100000 Gbit/s"),
        (["--cluster", "1x8xH100", "--price", "H100=-1"], 2, "must be in [0.001, 10000]"),
        (["--cluster", "1x8xH100", "--price", "A100=1"], 2, "no pool of cluster"),
        (["--cluster", "1x8xH100", "--gpus-file", "/nonexistent/gpus.yaml"], 2, "cannot read GPU file"),
    ],
)
def test_bad_input_is_one_line(
    argv: list[str], code: int, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "meta-llama/Llama-3.1-8B-Instruct", *argv]) == code
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("models: [", "not valid YAML or JSON"),
        ("models: []", "models: Tuple should have at least 1 item"),
        ("models:\n  - model: x\n    request_rate: -3", "models[0].request_rate"),
        ("models:\n  - model: x\n    rate: 3", "models[0].rate: Extra inputs are not permitted"),
        ("- model: x", "must be a mapping with a `models:` list"),
    ],
)
def test_malformed_fleet_file_exits_2(
    tmp_path: Path, text: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = _write(tmp_path, "fleet.yaml", text)
    assert main(["plan", "--fleet", fleet, "--cluster", "1x8xH100"]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1


def test_model_larger_than_every_pool_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = _write(
        tmp_path, "fleet.yaml", "models:\n  - model: deepseek-ai/DeepSeek-V3\n    request_rate: 1\n"
    )
    assert main(["plan", "--fleet", fleet, "--cluster", "1x4xL4+1x2xA10G"]) == 1
    err = capsys.readouterr().err
    assert "no engine starts and meets its SLOs on any pool" in err and "GiB" in err


def test_infeasible_demand_is_explained_with_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = _write(
        tmp_path,
        "fleet.yaml",
        "models:\n  - model: meta-llama/Llama-3.1-8B-Instruct\n    request_rate: 5000\n    tpot_ms: 40\n",
    )
    assert main(["plan", "--fleet", fleet, "--cluster", "1x8xH100", "--objective", "cost"]) == 1
    err = capsys.readouterr().err
    assert "5000 req/s" in err and "needs >= " in err and "pool 0 holds" in err and "TPOT 40 ms" in err


def test_a_rate_beyond_the_concurrency_cap_is_explained_by_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """30 req/s with at most 8 in flight: 16 GPUs hold the engines, the cap does not (a fleet file's
    `concurrency:`), and the explanation says how many requests/s the cap allows at best."""
    entry = "  - model: meta-llama/Llama-3.1-8B-Instruct\n    request_rate: 30\n    concurrency: 8\n"
    fleet = _write(tmp_path, "fleet.yaml", "models:\n" + entry)
    assert main(["plan", "--fleet", fleet, "--cluster", "2x8xH100", "--objective", "cost"]) == 1
    err = capsys.readouterr().err
    assert "at most 8 requests in flight" in err and "so at most 8 x " in err
    rps = float(err.split("so at most 8 x ")[1].split("= ")[1].split(" req/s")[0])
    assert 0 < rps < 30


@pytest.mark.parametrize("flags", [["--ttft-ms", "100"], ["--concurrency", "8"], ["--workload", "rag"]])
def test_workload_flags_beside_a_fleet_file_are_refused(
    flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """They were ignored: `--ttft-ms 100` planned engines at TTFT 113 ms without a word."""
    fleet = _write(tmp_path, "fleet.yaml", "models:\n  - model: meta-llama/Llama-3.2-1B\n")
    assert main(["plan", "--fleet", fleet, "--cluster", "1x8xH100", *flags]) == 2
    err = capsys.readouterr().err
    assert f"{flags[0]}: a fleet file gives each model's workload" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("objective", ["ttft", "mfu"])
def test_a_single_engine_objective_for_a_deployment_is_refused(
    objective: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It was replaced by the deployment's default (throughput) without a word."""
    fleet = _write(tmp_path, "fleet.yaml", "models:\n  - model: meta-llama/Llama-3.2-1B\n")
    assert main(["plan", "--fleet", fleet, "--cluster", "1x8xH100", "--objective", objective]) == 2
    assert f"--objective {objective} is for one engine" in capsys.readouterr().err
    assert main(["plan", "--fleet", fleet, "--cluster", "1x8xH100", "--top", "3"]) == 2  # was ignored
    assert "--top 3 ranks one engine's plans" in capsys.readouterr().err


def test_a_fleet_entry_starts_from_a_profiled_workload_file(tmp_path: Path) -> None:
    """`workload_file:` (relative to the fleet file) gives the entry the profiled lengths, their
    quantiles and rate, with the entry's own fields over them; it was not a fleet file key."""
    from autoparallel.fleet import fleet_models, load_fleet
    from autoparallel.workload_profile import load_workload_file

    rows = [
        {"timestamp": 0.5 * i, "prompt_tokens": 300 + i, "completion_tokens": 8 + i % 90} for i in range(200)
    ]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["profile", str(tmp_path / "log.jsonl"), "-o", str(tmp_path / "w.json")]) == 0
    fleet = _write(
        tmp_path,
        "fleet.yaml",
        "models:\n  - {model: meta-llama/Llama-3.2-1B, workload_file: w.json, ttft_ms: 900}\n",
    )
    (fm,) = fleet_models(load_fleet(fleet).models)
    profiled = load_workload_file(tmp_path / "w.json")
    assert fm.workload == profiled.with_updates({"ttft_ms": 900.0})
    assert fm.workload.isl_quantiles is not None and fm.workload.request_rate == profiled.request_rate
    assert main(["plan", "--fleet", fleet, "--cluster", "1x8xH100", "--json"]) == 0
    both = _write(tmp_path, "both.yaml", "models:\n  - {model: m, workload: rag, workload_file: w.json}\n")
    with pytest.raises(InputError, match=r"workload \(a preset\) or workload_file, not both"):
        load_fleet(both)
    missing = _write(
        tmp_path, "missing.yaml", "models:\n  - {model: meta-llama/Llama-3.2-1B, workload_file: no.json}\n"
    )
    with pytest.raises(InputError, match="fleet entry 1: workload file: "):
        fleet_models(load_fleet(missing).models)


def test_a_whole_cluster_section_out_of_time_leaves_the_plan_standing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole-cluster deployment and the disaggregation comparison are sections after the plan,
    each a planning call of its own: when one runs out of time, the plan above stands (exit 0) and
    stderr says which section is missing and why."""
    from autoparallel import disagg, fleet
    from autoparallel.errors import SolverTimeoutError

    def out_of_time(*args: object, **kwargs: object) -> None:
        raise SolverTimeoutError("no feasible plan found within the time limit (raise --time-limit)")

    monkeypatch.setattr(fleet, "solve_fleet", out_of_time)
    monkeypatch.setattr(disagg, "compare_disagg", out_of_time)
    argv = ["plan", "meta-llama/Llama-3.1-8B-Instruct", "--cluster", "1x8xH100", "--engine", "vllm"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "config:" in captured.out and "Whole cluster" not in captured.out
    assert "note: no whole-cluster deployment section: no feasible plan found" in captured.err
    assert "note: no disaggregation comparison: no feasible plan found" in captured.err
    assert main([*argv, "--disagg", "on"]) == 1


def test_cost_takes_a_rate_that_comes_from_a_workload_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--objective cost` is $/hour at the rates when a model has one, $ per M tokens otherwise; a rate
    given by an entry's `workload_file` was not seen (the entry's own `request_rate` was read), so the
    CLI solved $ per M tokens where `ap.solve_fleet(..., objective="cost")` met the rate at least $/hour."""
    rows = [
        {"timestamp": 0.5 * i, "prompt_tokens": 900 + i % 7 * 40, "output_tokens": 240} for i in range(200)
    ]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["profile", str(tmp_path / "log.jsonl"), "-o", str(tmp_path / "traffic.json")]) == 0
    fleet = _write(
        tmp_path,
        "fleet.yaml",
        "models:\n  - {model: Qwen/Qwen3-8B, workload_file: traffic.json, ttft_ms: 2000, tpot_ms: 50}\n"
        "  - {model: meta-llama/Llama-3.2-1B, isl: 1024, osl: 256}\n",
    )
    capsys.readouterr()
    assert main(["plan", "--fleet", fleet, "--cluster", "1x8xH100", "--objective", "cost", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["objective"] == "cost"  # $/hour at the rate (was cost_per_mtok)
    qwen = d["deployment"]["models"][0]
    assert qwen["request_rate"] == pytest.approx(2.0) and qwen["unmet_rps"] == 0


def test_idle_gpus_name_the_model_whose_engines_do_not_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model without a rate would add goodput with any engine that fits: GPUs left idle beside it are
    idle because none of its engines fits them, not because "every request rate is met"."""
    fleet = _write(
        tmp_path,
        "fleet.yaml",
        "models:\n  - model: meta-llama/Llama-3.1-70B-Instruct\n"
        "  - {model: meta-llama/Llama-3.2-1B, request_rate: 5}\n",
    )
    assert main(["plan", "--fleet", fleet, "--cluster", "1x8xH100", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)["deployment"]
    assert d["gpus_idle"] == 1
    (reason,) = d["idle_reasons"]
    assert "no engine of meta-llama/Llama-3.1-70B-Instruct (no rate) fits the rest" in reason
    assert "1 GPU in a shared node" in reason and "every request rate is met" not in reason


def test_price_flag_wins_over_the_fleet_files_prices_per_gpu(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--price` wins over a fleet file's `prices:`, GPU by GPU (the file's H100 price was applied over
    the command line's: 1 GPU of H100 at the file's $1 beat 2 A100s at --price's $1 each)."""
    fleet = _write(
        tmp_path,
        "fleet.yaml",
        "models:\n  - {model: meta-llama/Llama-3.1-8B-Instruct, request_rate: 10, ttft_ms: 1000, "
        "tpot_ms: 40}\nprices: {H100: 1.0, A100-80G: 5.0}\n",
    )
    argv = ["plan", "--fleet", fleet, "--cluster", "1x8xH100+1x8xA100-80G", "--objective", "cost", "--json"]

    def priced(flag: str) -> tuple[float, set[str]]:
        assert main([*argv, "--price", flag]) == 0
        d = json.loads(capsys.readouterr().out)["deployment"]
        return d["usd_per_hour"], {e["gpu"] for e in d["engines"]}

    assert priced("H100=5,A100-80G=1") == (pytest.approx(2.0), {"A100-SXM-80G"})  # both from --price
    assert priced("A100-80G=0.5") == (pytest.approx(1.0), {"H100-SXM"})  # H100 still the file's $1


def test_a_fleet_files_cluster_stands_in_for_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cluster:` in a fleet file is used without --cluster (--cluster wins when given); neither is one
    line. Called past the parser: `plan_cmd._add_common` declares --cluster (its owner makes it optional
    for `plan`)."""
    from autoparallel.cli import build_parser, fleet_cmd

    entry = "models:\n  - {model: meta-llama/Llama-3.2-1B, request_rate: 5}\n"
    with_cluster = _write(tmp_path, "with.yaml", entry + "cluster: 1x2xH100\n")
    without = _write(tmp_path, "without.yaml", entry)
    args = build_parser().parse_args(["plan", "--fleet", with_cluster, "--cluster", "1x8xH100", "--json"])
    assert fleet_cmd.cmd_fleet(args, None) == 0
    assert json.loads(capsys.readouterr().out)["cluster"] == "1x8xH100-SXM"
    args.cluster = None
    assert fleet_cmd.cmd_fleet(args, None) == 0
    assert json.loads(capsys.readouterr().out)["cluster"] == "1x2xH100-SXM"
    args.fleet = without
    with pytest.raises(InputError, match="no cluster: pass --cluster"):
        fleet_cmd.cmd_fleet(args, None)
    args.fleet, args.model = None, "meta-llama/Llama-3.2-1B"
    with pytest.raises(InputError, match="--cluster is required"):
        fleet_cmd.wants_fleet(args)


def test_plan_takes_the_cluster_from_the_fleet_file_through_the_parser(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = "models:\n  - {model: meta-llama/Llama-3.2-1B, request_rate: 5}\n"
    assert (
        main(["plan", "--fleet", _write(tmp_path, "with.yaml", entry + "cluster: 1x2xH100\n"), "--json"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["cluster"] == "1x2xH100-SXM"
    assert main(["plan", "--fleet", _write(tmp_path, "without.yaml", entry)]) == 2
    assert "no cluster" in capsys.readouterr().err
    assert main(["plan", "meta-llama/Llama-3.2-1B"]) == 2
    assert "--cluster is required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["evaluate", "meta-llama/Llama-3.2-1B"])  # evaluate still requires it


def test_a_fleet_of_aliases_serves_the_published_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A fleet file naming `llama-3.2-1b` printed `vllm serve llama-3.2-1b`, which no engine loads."""
    f = _write(tmp_path, "a.yaml", "models:\n  - {model: llama-3.2-1b, request_rate: 5}\n")
    assert main(["plan", "--fleet", f, "--cluster", "1x2xH100"]) == 0
    out = capsys.readouterr().out
    assert "vllm serve meta-llama/Llama-3.2-1B " in out and "vllm serve llama-3.2-1b" not in out


def test_the_smallest_weight_share_is_over_every_allowed_quantization(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It read the first --quantization value only: 189.0 GiB for `none,fp8`, 95.5 for `fp8,none`."""
    f = _write(tmp_path, "f.yaml", "models:\n  - {model: meta-llama/Llama-3.1-405B, request_rate: 1}\n")
    for q in ("none,fp8", "fp8,none"):
        assert main(["plan", "--fleet", f, "--cluster", "1x4xH100", "--quantization", q]) == 1
        assert "smallest weight share is 95.5 GiB" in capsys.readouterr().err


def test_two_spellings_of_one_model_are_one_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`meta-llama/Llama-3.2-1B-Instruct` and `llama-3.2-1b-instruct` were two models serving one id,
    each with a traffic share of 1; the short Instruct name was launched as the base model."""
    f = _write(
        tmp_path,
        "d.yaml",
        "models:\n  - {model: meta-llama/Llama-3.2-1B-Instruct, request_rate: 5}\n"
        "  - {model: llama-3.2-1b-instruct, request_rate: 5}\n",
    )
    assert main(["plan", "--fleet", f, "--cluster", "1x2xH100"]) == 2
    assert "listed twice" in capsys.readouterr().err
    f = _write(tmp_path, "s.yaml", "models:\n  - {model: llama-3.2-1b-instruct, request_rate: 5}\n")
    assert main(["plan", "--fleet", f, "--cluster", "1x2xH100"]) == 0
    assert "vllm serve meta-llama/Llama-3.2-1B-Instruct " in capsys.readouterr().out


def test_idle_gpus_without_a_rate_are_not_said_to_meet_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = _write(tmp_path, "n.yaml", "models:\n  - {model: meta-llama/Llama-3.2-1B, tpot_ms: 40}\n")
    assert (
        main(["plan", "--fleet", f, "--cluster", "1x2xH100+1x2xA100-80G", "--objective", "cost-per-mtok"])
        == 0
    )
    out = capsys.readouterr().out
    assert "idle" in out and "every request rate is met" not in out


def test_priorities_are_said_to_weight_the_objective(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """cost_per_mtok minimizes $ per priority-weighted token and printed the unweighted $ per M tokens
    with no word on it."""
    f = _write(
        tmp_path,
        "p.yaml",
        "models:\n  - {model: meta-llama/Llama-3.2-1B, tpot_ms: 40}\n"
        "  - {model: Qwen/Qwen3-0.6B, tpot_ms: 40, priority: 5}\n",
    )
    assert main(["plan", "--fleet", f, "--cluster", "1x2xH100", "--objective", "cost-per-mtok"]) == 0
    assert "weight each model's tokens in the cost_per_mtok objective" in capsys.readouterr().out
