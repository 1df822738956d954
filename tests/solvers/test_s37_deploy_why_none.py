"""Deployment fronts and disaggregated plans that find nothing name what binds, with numbers.

`pareto --disagg on|off` said only "no aggregated deployment ... meets TTFT 20 ms, TPOT 50 ms" or
"... meets the workload"; `front._why_none` now adds the planners' own explanations (the aggregated
deployment planner's `explain.infeasible_reasons`, the disaggregated planner's
`disagg_plan.why_infeasible`). A disaggregated plan on 1x8xA100-80G at TPOT 20 ms said "no prefill
and decode engines ... fit side by side" where the smallest decode engine meeting TPOT (tp8) and the
smallest prefill engine (tp2) need 10 GPUs of 8 (`roles.pair_problem`).
"""

from __future__ import annotations

import functools

import pytest

from autoparallel.errors import InfeasibleError
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.models.spec import ModelSpec
from autoparallel.solvers.deployment import FleetModel
from autoparallel.solvers.deployment.disagg_plan import solve_roles
from autoparallel.solvers.deployment.front import pareto_mixed
from autoparallel.solvers.deployment.roles import build_role_space
from autoparallel.workload import PRESETS


@functools.cache
def _llama70b() -> ModelSpec:
    return load_model("meta-llama/Llama-3.1-70B")


def _why(fm: FleetModel, cluster: str, mode: str) -> str:
    with pytest.raises(InfeasibleError) as info:
        pareto_mixed(fm, Cluster.parse(cluster), mode=mode)
    text = str(info.value)
    assert "\n" not in text
    return text


def test_aggregated_front_names_the_fastest_ttft() -> None:
    fm = FleetModel(_llama70b(), PRESETS["chatbot"].model_copy(update={"ttft_ms": 20.0}))
    text = _why(fm, "1x8xH100", "off")
    assert text.startswith(
        "no aggregated deployment of meta-llama/Llama-3.1-70B on 1x8xH100-SXM meets TTFT 20 ms"
    )
    assert "best TTFT 105 ms (tp=8 pp=1) > 20 ms" in text


def test_a_disaggregated_front_of_one_client_holds_one_decode_slot() -> None:
    """A prefill slot does not count against the cap (a request holds it, then a decode slot): one
    client has a disaggregated front, each point's decode engines holding one request. It was refused
    ("the least they hold is 1 + 1 = 2")."""
    batch = PRESETS["batch"].model_copy(update={"osl": 2000, "concurrency": 1})
    front = pareto_mixed(FleetModel(_llama70b(), batch), Cluster.parse("1x8xH100"), mode="on")
    points = list(front)
    assert points and all(p.disaggregated is not None for p in points)
    assert all(sum(e.replicas * e.max_num_seqs * e.dp for e in p.disaggregated.decode) == 1 for p in points)


def test_a_prefill_and_a_decode_engine_too_big_together_name_each_role() -> None:
    fm = FleetModel(_llama70b(), PRESETS["chatbot"].model_copy(update={"tpot_ms": 20.0}))
    cluster = Cluster.parse("1x8xA100-80G")
    want = (
        "the smallest decode engine meeting TPOT 20 ms is tp8 (8 GPUs) and the smallest prefill engine "
        "meeting TTFT 2000 ms tp2 (2 GPUs): 2 + 8 = 10 GPUs, the cluster has 8"
    )
    with pytest.raises(InfeasibleError) as info:
        solve_roles(build_role_space([fm], cluster))
    assert want in str(info.value) and "side by side" not in str(info.value)
    assert want in _why(fm, "1x8xA100-80G", "on")
