"""A serving space built for the same request under other service limits is reused (`build_space`):
its tables never read the TTFT / TPOT limits, so a looser limit's remedy or a sweep over the limits
computes them once. The plan from a reused space equals the plan from fresh tables."""

from __future__ import annotations

from autoparallel.hardware import Cluster
from autoparallel.memo import clear_memos
from autoparallel.models import load_model
from autoparallel.solvers.serving.solve import solve_serving
from autoparallel.solvers.serving.space import ServingOptions, build_space
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving

SETTINGS = SolverSettings(workers=1, seed=0, time_limit_s=30.0)
LOOSE = Serving(isl=1024, osl=256, request_rate=3.0, ttft_ms=2000, tpot_ms=60)
TIGHT = LOOSE.model_copy(update={"ttft_ms": 300.0, "tpot_ms": 15.0})


def test_other_limits_reuse_the_tables_and_carry_their_own_workload() -> None:
    model, cluster = load_model("Qwen/Qwen3-8B"), Cluster.parse("1x4xH100")
    clear_memos()
    loose = build_space(model, cluster, LOOSE, ServingOptions())
    tight = build_space(model, cluster, TIGHT, ServingOptions())
    assert tight.tables is loose.tables
    assert (tight.workload, loose.workload) == (TIGHT, LOOSE)
    # what the tables read is part of the key: another rate, options or cluster computes them again
    faster = build_space(model, cluster, LOOSE.model_copy(update={"request_rate": 6.0}), ServingOptions())
    assert faster.tables is not loose.tables
    fp8 = build_space(model, cluster, LOOSE, ServingOptions(kv_cache_dtypes=("auto", "fp8")))
    assert fp8.tables is not loose.tables
    wider = build_space(model, Cluster.parse("1x8xH100"), LOOSE, ServingOptions())
    assert wider.tables is not loose.tables


def test_a_plan_from_a_reused_space_equals_one_from_fresh_tables() -> None:
    model, cluster = load_model("meta-llama/Llama-3.1-8B"), Cluster.parse("1x4xH100")
    clear_memos()
    solve_serving(model, cluster, LOOSE, settings=SETTINGS)  # builds the space under the loose limits
    reused = solve_serving(model, cluster, TIGHT, settings=SETTINGS, objective="ttft")
    clear_memos()
    fresh = solve_serving(model, cluster, TIGHT, settings=SETTINGS, objective="ttft")
    assert reused.config == fresh.config
    assert reused.estimate == fresh.estimate
    assert reused.estimate.perf.tpot_ms <= 15.0 and reused.estimate.perf.ttft_ms <= 300.0


def test_a_full_cache_drops_its_oldest_space_only() -> None:
    """Emptied whole at the 17th build, a sweep over more requests lost every reuse."""
    from autoparallel.solvers.serving import space as space_module

    model, cluster, opts = (
        load_model("Qwen/Qwen3-0.6B"),
        Cluster.parse("1xH100"),
        ServingOptions(max_num_seqs=(1, 2)),
    )
    kept = space_module.SPACES_KEPT
    clear_memos()
    built = [build_space(model, cluster, Serving(isl=128, osl=100 + k), opts) for k in range(kept + 1)]
    assert len(space_module._SPACES) == kept
    oldest = build_space(model, cluster, Serving(isl=128, osl=100, tpot_ms=50), opts)
    assert oldest.tables is not built[0].tables  # the oldest went, and is built again
    middle = build_space(model, cluster, Serving(isl=128, osl=100 + kept // 2, ttft_ms=500), opts)
    assert middle.tables is built[kept // 2].tables  # the others stay
