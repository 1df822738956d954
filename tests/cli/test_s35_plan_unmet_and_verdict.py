"""`plan` on mixed clusters: a request rate no deployment carries exits 1 on every path, the
aggregated-vs-disaggregated verdict compares whole deployments when their GPUs differ, `--price`
overrides a fleet file's `prices:` by GPU, and a workload file's burstiness is said to be unused.

Before: `plan meta-llama/Llama-3.1-70B --cluster 2x8xH100+4x8xA100-80G --request-rate 500 ...`
printed "UNMET 455.17 req/s", exit 0, and wrote --plan-file (one pool: exit 1); the verdict on
1x8xH100+2x8xT4 picked 1,459 tokens/s at $4.571/M over 2,524 at $3.258/M by tokens/s per GPU;
`--price H100=5` over a file's `H100-SXM: 1.0` exited 2 ("two prices for H100-SXM"); a workload
file's burstiness 0.24 was dropped without a word."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from autoparallel.cli import main

MIXED = "1x1xH100+1x1xA100-80G"
SHORT = ["--request-rate", "5000", "--isl", "1024", "--osl", "256", "--ttft-ms", "2000", "--tpot-ms", "50"]


@pytest.mark.parametrize("disagg", ["auto", "off"])
def test_a_rate_no_mixed_deployment_carries_exits_1_without_a_plan_file(
    disagg: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """auto: `_deployment_plan` (aggregated and disaggregated both short); off: `fleet_cmd.cmd_fleet`."""
    plan_file = tmp_path / "plan.yaml"
    argv = ["plan", "meta-llama/Llama-3.2-1B", "--cluster", MIXED, *SHORT, "--disagg", disagg]
    assert main([*argv, "--plan-file", str(plan_file)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and not plan_file.exists()
    err = captured.err
    assert "no deployment of meta-llama/Llama-3.2-1B on 1x1xH100-SXM+1x1xA100-SXM-80G (2 GPUs)" in err
    assert "carries 5000 req/s at TTFT ≤ 2000 ms, TPOT ≤ 50 ms" in err
    assert "request_rate: 5000 requests/s arrive; the best aggregated deployment (" in err
    carried = float(re.findall(r"\) carries ([0-9.]+)/s on 2 GPUs", err)[0])
    assert 0 < carried < 5000 and "req/s UNMET" in err
    assert ("the best disaggregated one" in err) == (disagg == "auto")


def test_a_fleet_under_goodput_serves_what_it_can_and_says_unmet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The --fleet help's rule: a fleet file's models share the GPUs; under goodput one short of its rate
    is printed UNMET with a note (JSON `notes`), exit 0; under cost every rate is a demand, exit 1."""
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        "models:\n  - {model: meta-llama/Llama-3.2-1B, request_rate: 5000, isl: 1024, osl: 256, "
        "ttft_ms: 2000, tpot_ms: 50}\n"
    )
    argv = ["plan", "--fleet", str(fleet), "--cluster", MIXED]
    assert main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    (note,) = json.loads(captured.out)["notes"]
    assert note.startswith("meta-llama/Llama-3.2-1B: UNMET ") and "of 5000 req/s" in note
    assert f"note: {note}" in captured.err
    assert main([*argv, "--objective", "cost"]) == 1


def test_the_verdict_compares_whole_deployments_when_their_gpus_differ() -> None:
    """`disagg.measure_for`: per GPU on one GPU type (the single-pool verdicts stand), the whole
    deployment's tokens/s on several (a T4 is not an H100); $ and GPUs are whole figures already."""
    from autoparallel.disagg import MEASURES, WHOLE_MEASURES, measure_for

    one, two = frozenset({"H100-SXM"}), frozenset({"H100-SXM", "T4"})
    for name in MEASURES:
        assert measure_for(name, one) is MEASURES[name]
    assert measure_for("throughput", two).key == "capacity_tokens_per_s"
    assert measure_for("goodput", two).key == "goodput_tokens_per_s"
    assert measure_for("cost", two) is MEASURES["cost"] and measure_for("gpus", two) is MEASURES["gpus"]
    assert set(WHOLE_MEASURES) == {"goodput", "throughput"}


def test_a_mixed_verdict_picks_the_deployment_that_carries_more(capsys: pytest.CaptureFixture[str]) -> None:
    """Throughput on 2 H100s + 2 T4s: disaggregated on the 2 H100s carries 22,712 tokens/s (11,356 per
    GPU), aggregated on all four 41,546 (10,387 per GPU); per GPU picked the one that carries half."""
    argv = ["plan", "meta-llama/Llama-3.2-1B", "--cluster", "1x2xH100+1x2xT4", "--isl", "1024"]
    assert main([*argv, "--osl", "128", "--ttft-ms", "5000", "--tpot-ms", "200", "--json"]) == 0
    comp = json.loads(capsys.readouterr().out)["comparison"]
    a, d = comp["aggregated"], comp["disaggregated"]
    assert a is not None and d is not None, comp["why"]
    total = {k: s["capacity_tokens_per_s_per_gpu"] * s["gpus_used"] for k, s in (("a", a), ("d", d))}
    assert total["a"] > total["d"]
    assert a["capacity_tokens_per_s_per_gpu"] < d["capacity_tokens_per_s_per_gpu"]  # the trap
    assert comp["winner"] == "aggregated", comp["why"]
    assert a["capacity_tokens_per_s"] == pytest.approx(total["a"])
    lead = "objective throughput: capacity tokens/s (whole deployments: their GPUs differ, H100-SXM and T4) "
    assert comp["why"].startswith(lead), comp["why"]


def _priced_fleet(tmp_path: Path) -> str:
    fleet = tmp_path / "f14.yaml"
    fleet.write_text(
        "models:\n  - {model: meta-llama/Llama-3.2-1B, request_rate: 3, isl: 1024, osl: 256}\n"
        "cluster: 1x1xH100+1x1xA100-80G\nprices: {H100-SXM: 1.0, A100-80G: 3.0}\n"
    )
    return str(fleet)


def test_price_overrides_the_fleet_files_price_of_the_same_gpu_spelled_otherwise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = _priced_fleet(tmp_path)
    assert main(["plan", "--fleet", fleet, "--price", "H100=5", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)["deployment"]
    assert d["cluster_usd_per_hour"] == pytest.approx(5.0 + 3.0)  # H100 from --price, A100 from the file
    assert main(["plan", "--fleet", fleet, "--price", "H100=5,H100-SXM=4"]) == 2  # two of the user's own
    assert "two prices for H100-SXM" in capsys.readouterr().err


def test_a_file_price_for_a_gpu_the_overriding_cluster_lacks_is_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = _priced_fleet(tmp_path)
    assert main(["plan", "--fleet", fleet, "--cluster", "1x1xH100", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)["deployment"]
    assert d["cluster_usd_per_hour"] == pytest.approx(1.0)  # the file's H100 price still applies
    assert main(["plan", "--fleet", fleet, "--cluster", "1x1xH100", "--price", "A100=2"]) == 2
    assert "price given for 'A100' (A100-SXM-80G) but no pool" in capsys.readouterr().err


def test_a_workload_files_burstiness_is_said_to_be_unused_by_the_steady_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wl = tmp_path / "gamma.wl.json"
    serving = {"name": "profiled", "isl": 923, "osl": 188, "request_rate": 4.98635, "burstiness": 0.2419}
    wl.write_text(json.dumps({"serving": serving}))
    argv = ["plan", "meta-llama/Llama-3.2-1B", "--cluster", "1x1xH100", "--workload-file", str(wl)]
    assert main([*argv, "--disagg", "off", "--json"]) == 0
    captured = capsys.readouterr()
    (note,) = json.loads(captured.out)["notes"]
    assert note.startswith("the workload file's burstiness 0.2419 ") and "mean rate 4.98635" in note
    assert "--num-prompts N replays" in note and f"note: {note}\n" == captured.err
    assert main([*argv, "--disagg", "off", "--num-prompts", "50"]) == 0  # the replay uses it: no note
    assert "burstiness" not in capsys.readouterr().err
