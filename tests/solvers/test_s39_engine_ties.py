"""Every reported serving point keeps CUDA graphs where its eager twin ties, and `--engine auto`'s
winner keeps its plan in the comparison whatever its solver status.

Before: `solve.prefer_cuda_graphs` ran on the plan only. Each engine's best (`engine_bests`), the
`--top` alternatives and the runner-up (`driver.k_best`) kept whichever of the tied twins CP-SAT
found: Qwen3-0.6B on one H200 (`--engine auto`) listed SGLang with `--disable-cuda-graph`, its reason
"[it runs ..., eager where TensorRT-LLM runs ...]"; on 1x8xH200 (`--engine sglang --top 3`) both
alternatives and the runner-up were eager at the same numbers as with graphs. And under a tight
`--time-limit` a FEASIBLE plan was not handed to `engine_bests` (only an OPTIMAL one was), whose own
solve of that engine could time out: Qwen3-30B-A3B on 1x8xH100 was planned on TensorRT-LLM while the
comparison said TensorRT-LLM had "no plan found within the time limit".
"""

from __future__ import annotations

from typing import Any

import pytest

from autoparallel import api
from autoparallel.engine_compare import comparison_dict
from autoparallel.errors import SolverTimeoutError
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.plan import ServingPlan
from autoparallel.solvers import driver
from autoparallel.solvers.serving import solve as serving_solve
from autoparallel.solvers.serving.solve import solve_serving, solve_serving_top
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving

SETTINGS = SolverSettings(workers=1, seed=0, time_limit_s=30.0)
ENGINES = ("vllm", "sglang", "trtllm")
CHATBOT = Serving.preset("chatbot")
SMALL = "Qwen/Qwen3-0.6B"


def test_each_engines_best_keeps_cuda_graphs_where_eager_ties() -> None:
    model, cluster = load_model(SMALL), Cluster.parse("1x1xH200")
    sol = solve_serving(
        model, cluster, CHATBOT, options=ServingOptions(engines=ENGINES), settings=SETTINGS, runner_up=False
    )
    bests = {b.engine: b.solution for b in sol.engines}
    assert set(bests) == set(ENGINES) and all(s is not None for s in bests.values())
    for engine, best in bests.items():
        assert best is not None
        alone = solve_serving(
            model,
            cluster,
            CHATBOT,
            options=ServingOptions(engines=(engine,)),
            settings=SETTINGS,
            runner_up=False,
        )
        # the same optimum as the engine planned alone, with its graphs whenever that one has them
        assert best.objective_value == pytest.approx(alone.objective_value, rel=1e-9)
        assert best.config.enforce_eager == alone.config.enforce_eager
        assert not best.config.enforce_eager


def test_the_engine_comparison_does_not_cite_a_tied_eagerness() -> None:
    plan = api.solve(SMALL, "1x1xH200", "chatbot", options=ServingOptions(engines=ENGINES), settings=SETTINGS)
    assert isinstance(plan, ServingPlan)
    rows = {r["engine"]: r for r in comparison_dict(plan)["engines"]}
    sglang = rows["sglang"]
    assert sglang["feasible"] and not sglang["config"]["enforce_eager"]
    assert "--disable-cuda-graph" not in sglang["command"]
    assert "eager" not in sglang.get("why_not", "")


def test_top_alternatives_and_runner_up_keep_cuda_graphs_where_eager_ties() -> None:
    model, cluster = load_model(SMALL), Cluster.parse("1x8xH200")
    options = ServingOptions(engines=("sglang",))
    sols = solve_serving_top(model, cluster, CHATBOT, options=options, settings=SETTINGS, top=3)
    assert len(sols) == 3
    assert len({(s.config.tp, s.config.pp) for s in sols}) == 3  # k-best's shapes, still distinct
    assert all(not s.config.enforce_eager for s in sols)
    assert sols[0].runner_up is not None and not sols[0].runner_up.config.enforce_eager
    for sol in sols[1:]:
        # the alternative is the optimum of its shape (tp, pp fixed), which keeps its graphs too
        shape = ServingOptions(engines=("sglang",), tp_values=(sol.config.tp,), pp_values=(sol.config.pp,))
        alone = solve_serving(model, cluster, CHATBOT, options=shape, settings=SETTINGS, runner_up=False)
        assert sol.objective_value == pytest.approx(alone.objective_value, rel=1e-9)
        assert not alone.config.enforce_eager


def test_the_winners_row_carries_its_plan_when_it_is_only_feasible(monkeypatch: pytest.MonkeyPatch) -> None:
    """The overall solve ends FEASIBLE (a tight limit), and the winning engine's own solve would time
    out: its row is the plan, its status FEASIBLE (deterministic: the driver is patched, not timed)."""
    real = driver.optimize
    winner: list[str] = []

    def optimize(enc: Any, chain: Any, run: driver.Run, **kw: Any) -> Any:
        fixed = list(kw.get("fixed", ()))
        if not winner:  # the plan over all engines: as if the limit cut it short
            point = real(enc, chain, run, **kw)
            assert point is not None
            run.status = "FEASIBLE"
            winner.append(enc.space.runtimes[point.runtime].engine)
            return point
        if any(lit is enc.vars.engine.get(winner[0]) for lit in fixed):
            raise SolverTimeoutError("no feasible plan found within 1 s (raise --time-limit)")
        return real(enc, chain, run, **kw)

    monkeypatch.setattr(driver, "optimize", optimize)
    plan = api.solve(SMALL, "1x1xH200", "chatbot", options=ServingOptions(engines=ENGINES), settings=SETTINGS)
    assert isinstance(plan, ServingPlan) and plan.solver.status == "FEASIBLE"
    rows = {r["engine"]: r for r in comparison_dict(plan)["engines"]}
    row = rows[plan.engine]
    assert row["feasible"] and row["winner"] and "note" not in row
    assert row["status"] == "FEASIBLE"
    assert row["output_tokens_per_s"] == pytest.approx(plan.perf.output_tokens_per_s)
    assert serving_solve.driver.optimize is optimize  # the patch was the driver the planner used
