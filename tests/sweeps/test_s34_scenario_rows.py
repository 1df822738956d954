"""Scenario rows read as the CLI reads its flags, and equal scenarios share one id.

- A row with only `request_rate` (CSV header model,cluster,request_rate) was a bare custom workload
  without chatbot's SLOs, where `sweep --request-rate` and `plan --request-rate` keep the chatbot
  preset (`scenario.serving_base`, one rule for rows, grids and `sweep`'s flags).
- `request_rate: 5.0` (YAML) and `5` (CSV), or `2x8xh100` and `2x8xH100`, gave two ids for one
  scenario (`Scenario.id` hashes normalised values)."""

from __future__ import annotations

from pathlib import Path

from autoparallel.sweeps import load_scenarios, make_scenario
from autoparallel.workload import Serving

SMALL = "meta-llama/Llama-3.2-1B"


def test_a_rate_alone_keeps_the_chatbot_preset_as_the_cli_does(tmp_path: Path) -> None:
    csv = tmp_path / "s.csv"
    csv.write_text(f"model,cluster,request_rate\n{SMALL},1xH100,2\n")
    (row,) = load_scenarios(csv)
    chatbot = Serving.preset("chatbot")
    w = row.to_workload()
    assert isinstance(w, Serving) and w.request_rate == 2
    assert (w.ttft_ms, w.tpot_ms, w.isl, w.osl) == (
        chatbot.ttft_ms,
        chatbot.tpot_ms,
        chatbot.isl,
        chatbot.osl,
    )
    assert row.workload_label == "chatbot request_rate=2"
    # the scenario `sweep --models ... --request-rate 2` makes (sweep_cmd._workloads), one id
    assert row.id == make_scenario(SMALL, "1xH100", {"request_rate": 2, "preset": "chatbot"}).id
    # a request shape of the user's own still starts from no limits
    own = make_scenario(SMALL, "1xH100", {"isl": 512, "osl": 64, "request_rate": 2}).to_workload()
    assert isinstance(own, Serving) and own.ttft_ms is None and own.tpot_ms is None


def test_equal_scenarios_written_differently_share_one_id(tmp_path: Path) -> None:
    yaml = tmp_path / "s.yaml"
    yaml.write_text(f"- {{model: {SMALL}, cluster: 2x8xh100, request_rate: 5.0, objective: Throughput}}\n")
    csv = tmp_path / "s.csv"
    csv.write_text(f"model,cluster,request_rate\n{SMALL},2x8xH100,5\n")
    (a,), (b,) = load_scenarios(yaml), load_scenarios(csv)
    assert a.id == b.id
    assert make_scenario(SMALL, "16xH100").id == make_scenario(SMALL, " 2x8xH100-SXM ").id
    # different scenarios keep different ids
    assert make_scenario(SMALL, "2x8xH100", {"request_rate": 5.5}).id != b.id
    assert make_scenario(SMALL, "1x8xH100", {"request_rate": 5}).id != b.id
