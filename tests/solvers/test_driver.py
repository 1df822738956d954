"""The one CP-SAT driver: statuses, lexicographic order, k-best cuts and the minimal core."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from toy_encoding import Toy

from autoparallel.errors import InfeasibleError, InternalError, SolverTimeoutError
from autoparallel.hardware import Cluster
from autoparallel.memo import clear_memos
from autoparallel.models import load_model
from autoparallel.solvers import driver
from autoparallel.solvers.serving.solve import solve_serving, solve_serving_top
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving

SETTINGS = SolverSettings(time_limit_s=5.0)


def test_lexicographic_then_k_best_by_no_good_cuts() -> None:
    toy = Toy()
    toy.model.add(toy.x + toy.y <= 12).only_enforce_if(toy.family("budget"))
    run = driver.Run(SETTINGS)
    best = driver.optimize(toy, ("x", "y"), run)
    assert best == (9, 0) and run.status == "OPTIMAL" and run.solves == 2
    more = driver.k_best(toy, ("x", "y"), best, 3, SETTINGS).found
    assert [p for p, _ in more] == [(8, 0), (7, 0)]  # the lexicographic lock of the first solve is gone


def test_weighted_objective_is_normalised_by_each_range() -> None:
    toy = Toy()
    toy.model.add(toy.y >= 9 - toy.x).only_enforce_if(toy.family("trade"))
    point = driver.optimize(toy, {"x": 1.0, "y": 3.0}, driver.Run(SETTINGS))
    assert point == (9, 0)  # x = 9 and y = 0 are both feasible together: nothing to trade
    toy.model.add(toy.y >= 4).only_enforce_if(toy.family("floor"))
    assert driver.optimize(toy, {"x": 1.0, "y": 3.0}, driver.Run(SETTINGS)) == (9, 4)


def _conflicting(explain: bool) -> Toy:
    toy = Toy(explain=explain)
    toy.model.add(toy.x >= 5).only_enforce_if(toy.family("at_least_5"))
    toy.model.add(toy.x <= 3).only_enforce_if(toy.family("at_most_3"))
    toy.model.add(toy.y == 1).only_enforce_if(toy.family("y_is_1"))  # satisfiable: never blamed
    return toy


def test_minimal_core_blames_only_the_conflicting_families() -> None:
    toy = _conflicting(explain=False)
    assert driver.optimize(toy, ("x",), run := driver.Run(SETTINGS)) is None and run.status == "INFEASIBLE"
    with pytest.raises(InternalError, match="free family literals"):
        driver.minimal_core(toy, SETTINGS)  # fixed families: any core would be meaningless
    core = driver.minimal_core(_conflicting(explain=True), SETTINGS)
    assert sorted(core.needed) == ["at_least_5", "at_most_3"] and core.undecided == ()


def test_a_core_keeps_the_more_basic_of_two_families_that_rule_out_the_same_points() -> None:
    """`weights` and `one_request` (created in that order, as memory and max_model_len are) both rule
    out every point that meets `slo`: the core names the earlier, though CP-SAT's sufficient
    assumptions name the later. An
    explanation of Kimi-K2 on 512x8xH100 used to blame max_model_len ("one 2048-token request needs
    0.00 GiB ... 66.20 GiB is left") for plans whose weights do not fit."""
    toy = Toy(explain=True)
    toy.model.add(toy.x + toy.y <= 3).only_enforce_if(toy.family("weights"))  # CP-SAT names the other
    toy.model.add(toy.x <= 3).only_enforce_if(toy.family("one_request"))
    toy.model.add(toy.x >= 5).only_enforce_if(toy.family("slo"))
    core = driver.minimal_core(toy, SETTINGS)
    assert core.needed == ("weights", "slo") and core.undecided == ()


def test_an_optimization_passes_no_assumptions() -> None:
    """The families are fixed on in an optimization's model and never passed as assumptions: with
    assumptions, CP-SAT's interleaved search on two workers stalled at a 112-GPU disaggregated
    deployment of Llama-3.2-1B on 512x8xH100 for 30 s, where one worker, or none assumed, finds the
    4,096-GPU optimum in milliseconds (`test_deployment.py` pins that case)."""
    toy = Toy()
    toy.model.add(toy.x <= 6).only_enforce_if(toy.family("cap"))
    assert driver.optimize(toy, ("x", "y"), driver.Run(SETTINGS)) == (6, 0)
    assert not toy.model.proto.assumptions


def test_timeout_without_a_solution_uses_the_fallback_or_raises() -> None:
    toy = Toy()
    toy.family("none")
    tiny = SolverSettings(time_limit_s=1e-9)
    run = driver.Run(tiny)
    point = driver.optimize(toy, ("x",), run, fallback=(3, 3), fallback_primary=(3.0, 9.0))
    if run.statuses[-1] == "UNKNOWN":  # CP-SAT may still solve this toy before checking the clock
        assert point == (3, 3) and run.status == "FEASIBLE" and run.stats().gap > 0
        with pytest.raises(SolverTimeoutError, match="--time-limit"):
            driver.optimize(Toy(), ("x",), driver.Run(tiny))


def test_a_limit_spent_before_the_search_says_so() -> None:
    """The deadline counts the float model's tables: when they take it all (`plan --time-limit 1` on a
    235B MoE over 128 GPUs with three engines spent 6 s on them), no CP-SAT call is made and the
    error says the search never started, not that CP-SAT found nothing."""
    import time

    run = driver.Run(SETTINGS, deadline=time.perf_counter() - 1.0)
    with pytest.raises(SolverTimeoutError, match="ran out before CP-SAT could start searching"):
        driver.optimize(Toy(), ("x",), run)
    assert run.solves == 0


def test_the_tables_stop_at_the_deadline() -> None:
    """The float model's tables count in the limit and stop at it (checked once a shape), so a small
    --time-limit on a large problem ends near the limit: `plan Qwen/Qwen3-235B-A22B --cluster 16x8xH200
    --engine auto --time-limit 1` spent 6 s on them before it said so, now under 2 s."""
    import time

    from autoparallel.solvers.serving.space import build_space

    model, cluster = load_model("meta-llama/Llama-3.1-8B"), Cluster.parse("1x4xH100")
    with pytest.raises(SolverTimeoutError, match="tables were computed, before CP-SAT could start"):
        build_space(model, cluster, Serving(), ServingOptions(), deadline=time.perf_counter() - 1.0)
    assert build_space(model, cluster, Serving(), ServingOptions(), deadline=None).tables.step_us


def test_serving_top_k_gives_distinct_shapes_inside_one_model() -> None:
    model, cluster = load_model("meta-llama/Llama-3.1-8B"), Cluster.parse("1x4xH100")
    options = ServingOptions(max_num_seqs=(16, 64, 256), enforce_eager=(False,))
    sols = solve_serving_top(model, cluster, Serving(isl=1024, osl=256), options=options, top=4)
    shapes = [(s.config.tp, s.config.pp) for s in sols]
    assert len(shapes) == len(set(shapes)) >= 3
    values = [s.objective_value for s in sols]
    assert values == sorted(values, reverse=True)  # throughput: best first


@pytest.mark.parametrize(
    ("workload", "family"),
    [
        (Serving(isl=1024, osl=256, tpot_ms=0.5), "tpot_slo"),
        (Serving(isl=1024, osl=256, ttft_ms=0.5), "ttft_slo"),
        (Serving(isl=1024, osl=256, request_rate=1e6), "request_rate"),
    ],
)
def test_serving_infeasibility_names_only_the_violated_family(workload: Serving, family: str) -> None:
    model, cluster = load_model("meta-llama/Llama-3.1-8B"), Cluster.parse("1x2xH100")
    options = ServingOptions(max_num_seqs=(8, 64), enforce_eager=(False,))
    with pytest.raises(InfeasibleError) as exc:
        solve_serving(model, cluster, workload, options=options, settings=SETTINGS)
    assert [r.split(":", 1)[0] for r in exc.value.reasons] == [family]


def test_a_rate_beyond_what_the_concurrency_lets_complete_says_so_with_numbers() -> None:
    """4 requests in flight cannot complete 5/s when each takes about a second: the rate's reason is
    computed within the client's concurrency (it quoted the uncapped best, 32/s, which contradicted
    the infeasibility it explained)."""
    import re

    model, cluster = load_model("meta-llama/Llama-3.1-8B"), Cluster.parse("1x2xH100")
    options = ServingOptions(max_num_seqs=(1, 2, 4, 64), enforce_eager=(False,))
    with pytest.raises(InfeasibleError) as exc:
        solve_serving(
            model, cluster, Serving(isl=1024, osl=256, concurrency=4, request_rate=5), options=options
        )
    (rate,) = [r for r in exc.value.reasons if r.startswith("request_rate")]
    found = re.search(r"with at most 4 in flight completes ([\d.]+)/s", rate)
    assert found and float(found.group(1)) < 5


SPENT = SolverSettings(time_limit_s=1e-6)
"""A limit that has passed before the first shape's tables (the fleet's checks alone take longer)."""
ENTRY = [{"model": "meta-llama/Llama-3.1-8B", "request_rate": 5}]


def _fleet(settings: SolverSettings) -> object:
    from autoparallel.fleet import solve_fleet

    return solve_fleet(ENTRY, "1x4xH100", settings=settings)


def _disagg(settings: SolverSettings) -> object:
    from autoparallel.disagg import compare_disagg

    return compare_disagg("meta-llama/Llama-3.1-8B", Serving(), Cluster.parse("1x4xH100"), settings=settings)


def _serving_front(settings: SolverSettings) -> object:
    from autoparallel import api

    return api.pareto("meta-llama/Llama-3.1-8B", "1x4xH100", settings=settings)


def _deployment_front(settings: SolverSettings) -> object:
    from autoparallel import api

    return api.pareto_deployment("meta-llama/Llama-3.1-8B", "1x4xH100", settings=settings)


@pytest.mark.parametrize("call", [_fleet, _disagg, _serving_front, _deployment_front])
def test_every_planning_entry_point_counts_its_tables_in_the_limit(
    call: Callable[[SolverSettings], object],
) -> None:
    """The deployment planner's tables stop at the limit as the serving planner's do: `plan --fleet`
    with four large models on 32x8xH100+32x8xH200 and `--engine auto --time-limit 1` spent 24 s on
    them and then said OPTIMAL. A front's tables get one query's limit; `--disagg`'s comparison one
    limit for both of its deployments. The spaces another test built are dropped first: a space built
    under other service limits is reused, and costs no time (`space.build_space`)."""
    clear_memos()
    with pytest.raises(SolverTimeoutError, match="tables were computed"):
        call(SPENT)
    assert call(SETTINGS)


def test_the_serving_tables_stop_within_an_entry_of_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tables checked the limit once a shape, and one shape's entries (every runtime, batch and
    max_model_len: replays that take 0.1 s each on a busy machine) ran past it: `plan
    deepseek-ai/DeepSeek-V3 --cluster 16x8xH200 --engine auto --time-limit 5` ended after 7 to 10 s of
    its own time under load. Here each entry takes 20 ms; 80 of them run past a 0.3 s limit."""
    import time

    from autoparallel.solvers.serving import space as space_module

    real = space_module._entry

    def slow(*args: object, **kwargs: object) -> None:
        time.sleep(0.02)
        real(*args, **kwargs)  # type: ignore[arg-type]

    clear_memos()
    monkeypatch.setattr(space_module, "_entry", slow)
    options = ServingOptions(max_num_seqs=tuple(range(1, 81)), enforce_eager=(False,))
    start = time.perf_counter()
    with pytest.raises(SolverTimeoutError, match="tables were computed"):
        solve_serving(
            load_model("meta-llama/Llama-3.1-8B"),
            Cluster.parse("1x1xH100"),
            Serving(),
            options=options,
            settings=SolverSettings(time_limit_s=0.3),
        )
    assert time.perf_counter() - start < 1.0  # once a shape: 1.6 s
    clear_memos()


def test_several_workers_run_the_parallel_portfolio_not_the_interleaved_search() -> None:
    """ortools 9.15's interleaved search (`interleave_search`, once used for --workers > 1) aborted the
    whole process on this training plan once the families were no longer passed as assumptions
    (`Check failed: heuristics.fixed_search != nullptr`, exit 134); with them, it stalled a
    disaggregated solve (`test_disagg_oracle.py`)."""
    from autoparallel.solvers.training.solve import solve_training
    from autoparallel.workload import Training

    assert not driver.make_solver(SolverSettings(workers=2)).parameters.interleave_search
    sol = solve_training(
        load_model("Qwen/Qwen3-30B-A3B"),
        Cluster.parse("3x8xH100"),
        Training(seq_len=4096, global_batch=240),
        objective="mfu",
        settings=SolverSettings.create(workers=2),
    )
    assert sol.stats.status == "OPTIMAL"


def test_a_small_model_runs_on_one_worker_whatever_the_settings() -> None:
    """A second worker's neighbourhood search only disturbs models that presolve and the LP settle:
    a Dinkelbach step of Mixtral-8x7B's disaggregated deployment on 512x8xH100 (11 variables) took
    0.03 s on one worker and stopped FEASIBLE after 8.5 s on two, in most runs."""
    two, n = SolverSettings(workers=2), driver.PARALLEL_MIN_VARIABLES
    assert driver.make_solver(two, 1.0, variables=n - 1).parameters.num_workers == 1
    assert driver.make_solver(two, 1.0, variables=n).parameters.num_workers == 2

    from autoparallel.disagg import compare_disagg

    comp = compare_disagg(
        "mistralai/Mixtral-8x7B-v0.1",
        Serving.preset("chatbot"),
        Cluster.parse("512x8xH100"),
        objective="cost_per_mtok",
        settings=SolverSettings.create(workers=2),
    )
    assert comp.disaggregated is not None and comp.disaggregated.solver.status == "OPTIMAL"
