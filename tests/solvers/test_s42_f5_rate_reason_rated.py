"""The request_rate reason quoted an entry's full-load capacity where its TTFT limit holds only lower.

Llama-3.1-70B on 2x8xH100 at 2048 / 512 tokens, TTFT 2000 ms, TPOT 20 ms and 8 req/s: the reason said
"completes 6.73/s" while the deployment comparison said "the aggregated one carries 6.53 req/s at
most", 6.6 req/s was infeasible (TTFT 3295 ms with the wait for a free slot) and at 6.6 the reason
said "completes 5.63/s". The table TTFT counts the wait only at a rate the entry carries at full load,
so an entry below the arrival rate met TTFT without it. The reason now reads the deployment planner's
rule (`perf.slot_queue.rated_milli_tps`): what the best plan carries with its TTFT limit holding.
Llama-3.1-8B on one H100 has the same cause (17.30/s at full load, 17.14/s with TTFT ≤ 2000 ms).
"""

from __future__ import annotations

import re

import pytest

from autoparallel.errors import InfeasibleError
from autoparallel.fleet import fleet_of_one, solve_fleet
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.serving.solve import solve_serving_top
from autoparallel.workload import Serving, rps_text

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
CLUSTER = "1x1xH100"
QUOTED = re.compile(
    r"request_rate: [\d.]+ requests/s arrive; the best plan that fits .* (?:completes|carries) ([\d.]+)/s.*"
)
HELD = " with TTFT ≤ {} ms (its wait for a free slot included)"
WORDS = "the best plan that fits and meets TPOT ≤ 50 ms carries {}" + HELD.format(2000)


def _workload(rate: float) -> Serving:
    return Serving(isl=1024, osl=256, ttft_ms=2000, tpot_ms=50, request_rate=rate)


def _reason(rate: float) -> str:
    """The request_rate reason at `rate` requests/s (the request must be infeasible)."""
    with pytest.raises(InfeasibleError) as info:
        solve_serving_top(load_model(MODEL), Cluster.parse(CLUSTER), _workload(rate), fixes=False)
    (reason,) = [r for r in info.value.reasons if r.startswith("request_rate:")]
    return reason


def _quoted(rate: float) -> str:
    """The rate the request_rate reason quotes at `rate` requests/s."""
    found = QUOTED.fullmatch(_reason(rate))
    assert found is not None
    return found.group(1)


def test_the_quoted_rate_is_what_the_deployment_planner_carries() -> None:
    plan = solve_fleet(fleet_of_one(load_model(MODEL), _workload(17.4)), Cluster.parse(CLUSTER))
    carried = plan.deployment.models[0].capacity_rps
    assert carried < 17.4
    assert _quoted(17.4) == rps_text(carried) == "17.14"
    assert _reason(17.4).endswith(WORDS.format("17.14/s"))


def test_a_rate_just_below_the_quoted_one_plans_and_one_above_quotes_it_again() -> None:
    quoted = float(_quoted(17.4))
    plans = solve_serving_top(load_model(MODEL), Cluster.parse(CLUSTER), _workload(quoted), fixes=False)
    assert plans[0].estimate.perf.ttft_ms <= 2000
    # above it, still under the full load's 17.30/s: infeasible, and the same figure (not monotone before)
    assert _quoted(round(quoted + 0.01, 2)) == f"{quoted:.2f}"


def test_the_reported_llama_70b_case_agrees_with_the_comparison() -> None:
    """The reported case: 6.53/s in the reason, as the deployment planner's aggregated plan carries."""
    model, cluster = load_model("meta-llama/Llama-3.1-70B-Instruct"), Cluster.parse("2x8xH100")
    w = Serving(isl=2048, osl=512, ttft_ms=2000, tpot_ms=20, request_rate=8)
    with pytest.raises(InfeasibleError) as info:
        solve_serving_top(model, cluster, w, fixes=False)
    (reason,) = [r for r in info.value.reasons if r.startswith("request_rate:")]
    carried = solve_fleet(fleet_of_one(model, w), cluster).deployment.models[0].capacity_rps
    assert rps_text(carried) == "6.53"
    assert reason.endswith("meets TPOT ≤ 20 ms carries 6.53/s" + HELD.format(2000))


def test_with_several_replicas_the_quote_is_what_this_planner_plans() -> None:
    """Its replicas' slots pooled, as the serving tables pool them (vLLM's data-parallel front end):
    rated per replica, as the deployment planner rates separate engines, Llama-3.1-8B on 1x8xH100
    quoted 137.18/s where 138.3 planned."""
    model, cluster = load_model(MODEL), Cluster.parse("1x8xH100")
    with pytest.raises(InfeasibleError) as info:
        solve_serving_top(model, cluster, _workload(138.5), fixes=False)
    (reason,) = [r for r in info.value.reasons if r.startswith("request_rate:")]
    found = QUOTED.fullmatch(reason)
    assert found is not None
    quoted = float(found.group(1))
    assert quoted >= 138.3
    plans = solve_serving_top(model, cluster, _workload(quoted), fixes=False)
    assert plans[0].estimate.perf.ttft_ms <= 2000
