"""`plan --objective tpot` plans its deployments for TPOT: the whole-cluster section and the
disaggregation comparison were planned for throughput and labelled so (`objectives.deployment_objective`
mapped tpot to None), while `pareto --disagg on --objectives tpot,throughput` found lower TPOTs.
Now both answer the query a deployment front's first point answers (`front.solve_mixed`); ttft,
which a deployment front cannot optimize, is said in a note instead of silently replaced."""

from __future__ import annotations

import json

import pytest

from autoparallel import objectives
from autoparallel.cli import main
from autoparallel.disagg import compare_disagg
from autoparallel.errors import InputError
from autoparallel.fleet import fleet_of_one, solve_fleet
from autoparallel.hardware import Cluster
from autoparallel.solvers.deployment.front import pareto_mixed
from autoparallel.workload import Serving

MODEL = "meta-llama/Llama-3.2-1B"
CLUSTER = "1x4xH100"
WORKLOAD = Serving(isl=2048, osl=512, ttft_ms=2000)


def test_tpot_is_a_deployment_objective_and_ttft_is_said_not_to_be() -> None:
    assert objectives.deployment_objective("tpot", True) == "tpot"
    assert objectives.parse_objective("tpot", "deployment") == ("tpot", "throughput")
    assert objectives.deployment_objective("ttft", False) is None
    note = objectives.deployment_objective_note("ttft", False)
    assert "planned for throughput" in note and "not linear in the replica counts" in note
    assert "\n" not in note and objectives.deployment_objective_note("tpot", False) == ""


@pytest.mark.parametrize("mode", ["on", "off"])
def test_each_mode_gives_the_front_s_least_tpot_then_most_throughput(mode: str) -> None:
    cluster = Cluster.parse(CLUSTER)
    fm = fleet_of_one(MODEL, WORKLOAD)
    first = pareto_mixed(fm[0], cluster, objectives=("tpot", "throughput"), mode=mode, points=1)[0]
    chosen = objectives.deployment_objective("tpot", False)
    assert chosen == "tpot"
    if mode == "on":
        comp = compare_disagg(MODEL, WORKLOAD, cluster, mode="on", objective=chosen)
        d = comp.disaggregated
        assert (d.objective, d.ratio, d.tpot_ms) == ("tpot", first.ratio, first.tpot_ms)
        assert d.capacity_rps * WORKLOAD.osl == pytest.approx(first.throughput_tokens_per_s, rel=1e-12)
    else:
        plan = solve_fleet(fm, cluster, objective=chosen).deployment
        assert plan.objective == "tpot"
        assert max(e.tpot_ms for e in plan.engines) == first.tpot_ms
        assert plan.throughput_tokens_per_s == pytest.approx(first.throughput_tokens_per_s, rel=1e-12)


def test_the_comparison_recommends_the_lower_tpot_when_tpot_is_the_objective() -> None:
    """Llama-3.2-1B on 4 H100s: aggregated tp4 b1 at 1.65 ms beats the best split's 1.70 ms; the
    tokens/s per GPU verdict would pick the split (196 vs 151)."""
    cluster = Cluster.parse(CLUSTER)
    comp = compare_disagg(MODEL, WORKLOAD, cluster, mode="auto", objective="tpot")
    a, d = comp.aggregated, comp.disaggregated
    assert a is not None and d is not None
    assert max(e.tpot_ms for e in a.deployment.engines) < d.tpot_ms
    assert d.tokens_per_s_per_gpu > a.deployment.goodput_tokens_per_s / a.deployment.gpus_used
    assert comp.mode == "aggregated" and comp.why.startswith("objective tpot: TPOT")


def test_tpot_for_a_fleet_of_several_models_is_one_input_error() -> None:
    w = Serving(isl=512, osl=128)
    fleet = [*fleet_of_one("meta-llama/Llama-3.2-1B", w), *fleet_of_one("Qwen/Qwen3-0.6B", w)]
    with pytest.raises(InputError, match="one model's engines; a fleet of 2 models") as info:
        solve_fleet(fleet, "1x8xH100", objective="tpot")
    assert "\n" not in str(info.value)


def test_plan_json_labels_its_deployment_tpot_and_a_ttft_objective_gets_a_note(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["plan", MODEL, "--cluster", "1x2xH100", "--isl", "2048", "--osl", "512"]
    assert main([*argv, "--ttft-ms", "2000", "--disagg", "on", "--objective", "tpot", "--json"]) == 0
    out = capsys.readouterr()
    payload = json.loads(out.out)
    assert payload["deployment"]["objective"] == "tpot" and "planned for" not in out.err
    assert main([*argv, "--disagg", "off", "--objective", "ttft", "--json"]) == 0
    err = capsys.readouterr().err
    assert "note: --objective ttft: the deployment sections are planned for throughput" in err
