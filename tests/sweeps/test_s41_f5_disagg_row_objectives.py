"""A sweep row with `disagg` takes the deployment objectives `plan --disagg` takes (gpus,
cost_per_mtok, goodput), and the row solves at them.

The row `{model: Qwen/Qwen3-32B, cluster: 2x8xH100+2x8xA100-80G, isl: 4096, osl: 512, request_rate:
8, ttft_ms: 800, tpot_ms: 30, disagg: on, objective: gpus}` exited 2 with "unknown serving objective
'gpus'; 'gpus' is a deployment objective", while `plan ... --disagg on --objective gpus` plans it: a
disagg row is planned by the deployment planner (`execute.disagg_columns`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoparallel.cli import main
from autoparallel.errors import InputError
from autoparallel.objectives import canonical
from autoparallel.sweeps import make_scenario

MODEL = "Qwen/Qwen3-32B"
WORKLOAD = {"isl": 4096, "osl": 512, "request_rate": 8, "ttft_ms": 800, "tpot_ms": 30}


@pytest.mark.parametrize("objective", ["gpus", "cost_per_mtok", "cost-per-mtok", "goodput", "GPUS"])
@pytest.mark.parametrize("disagg", ["on", "auto", "off", True])
def test_a_disagg_row_takes_a_deployment_objective(objective: str, disagg: str | bool) -> None:
    scenario = make_scenario(MODEL, "2x8xH100", WORKLOAD, objective, disagg=disagg)
    assert scenario.objective == canonical(objective, "deployment")  # the registry's spelling (session 44)


def test_a_row_without_a_comparison_still_refuses_one() -> None:
    """The single-engine plan (no disagg; `disagg: off` under another engine) has serving objectives."""
    with pytest.raises(InputError, match="unknown serving objective 'gpus'; 'gpus' is a deployment"):
        make_scenario(MODEL, "2x8xH100", WORKLOAD, "gpus")
    with pytest.raises(InputError, match="unknown serving objective 'gpus'"):
        make_scenario(MODEL, "2x8xH100", WORKLOAD, "gpus", engine="sglang", disagg="off")


def test_a_disagg_row_names_the_deployment_objectives_it_takes() -> None:
    with pytest.raises(
        InputError, match=r"'mfu' is a training objective.*also takes a deployment objective \("
    ):
        make_scenario(MODEL, "2x8xH100", WORKLOAD, "mfu", disagg="on")


def test_one_objective_spelled_two_ways_is_one_scenario() -> None:
    ids = {make_scenario(MODEL, "2x8xH100", WORKLOAD, o, disagg="on").id for o in ("gpus", "GPUS", " gpus")}
    assert len(ids) == 1


def test_the_rows_solve_as_plan_disagg_plans_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = (("2x8xH100+2x8xA100-80G", "GPUS"),)  # the report's row (the others: the unit tests above)
    rows = "".join(
        f"  - {{model: {MODEL}, cluster: {cluster}, isl: 4096, osl: 512, request_rate: 8, ttft_ms: 800, "
        f"tpot_ms: 30, disagg: on, objective: {objective}}}\n"
        for cluster, objective in cases
    )
    path = tmp_path / "s.yaml"
    path.write_text("scenarios:\n" + rows)
    assert main(["sweep", str(path), "--executor", "serial", "--json"]) == 0  # exited 2
    out = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in out] == ["ok"]
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in WORKLOAD.items()]
    for row, (cluster, objective) in zip(out, cases, strict=True):
        plan = [MODEL, "--cluster", cluster, *flags, "--disagg", "on", "--objective", objective.lower()]
        assert main(["plan", *plan, "--json"]) == 0
        disagg = json.loads(capsys.readouterr().out)["comparison"]["disaggregated"]
        assert row["mode"] == "disaggregated"  # required by on
        assert (row["engines"], row["gpus"]) == (disagg["layout"], disagg["gpus_used"])
        assert row["usd_per_hour"] == pytest.approx(disagg["usd_per_hour"])
