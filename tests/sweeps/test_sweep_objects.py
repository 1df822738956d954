"""`ap.sweep` from Python: ModelSpec, Cluster, Serving and Training objects travel with their scenarios
and are planned exactly as `ap.solve` plans them; grid axes take a lone item; every other argument is
checked before anything is solved (they were AttributeErrors, TypeErrors or one error row per
scenario)."""

from __future__ import annotations

import pytest

import autoparallel as ap
from autoparallel.errors import InputError
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.sweeps import make_scenario
from autoparallel.workload import Serving, Training

M = "meta-llama/Llama-3.2-1B"


def _rows(**kw: object) -> list[dict[str, object]]:
    return list(ap.sweep(executor="serial", progress=False, time_limit_s=20, **kw))  # type: ignore[arg-type]


def test_objects_are_planned_as_given_not_reloaded_by_name() -> None:
    zoo = load_model(M)
    edited = zoo.model_copy(update={"layers": zoo.layers[:8]})  # the zoo's name, half its layers
    priced = Cluster.parse("1x8xH100").with_prices({"H100": 9.0})
    serving = Serving(isl=700, osl=90, tpot_ms=20, isl_cv=0.8)
    for model in (zoo, edited):
        assert (make_scenario(model, "1x8xH100").model_json is None) == (model is zoo)
    assert make_scenario(M, priced).cluster_json is not None
    assert make_scenario(M, Cluster.parse("1x8xH100")).cluster_json is None
    rows = _rows(models=[edited], clusters=[priced], workloads=[serving], objectives=["cost"])
    plan = ap.solve(edited, priced, serving, "cost")
    (row,) = rows
    assert row["status"] == "ok" and (row["isl"], row["osl"], row["tpot_ms_slo"]) == (700, 90, 20.0)
    assert row["throughput_tok_s_per_gpu"] == pytest.approx(plan.perf.output_tokens_per_s_per_gpu)
    assert row["usd_per_million_tokens"] == pytest.approx(plan.perf.usd_per_million_tokens)
    as_zoo = ap.solve(zoo, "1x8xH100", serving, "cost")
    assert row["usd_per_million_tokens"] != pytest.approx(as_zoo.perf.usd_per_million_tokens)


def test_a_training_object_is_a_training_scenario() -> None:
    t = Training(seq_len=2048, global_batch=64)
    (row,) = _rows(models=M, clusters="1x8xH100", workloads=t, objectives="mfu")
    assert row["status"] == "ok" and row["kind"] == "training" and row["seq_len"] == 2048
    plan = ap.solve(M, "1x8xH100", t, "mfu")
    assert row["throughput_tok_s_per_gpu"] == pytest.approx(plan.perf.tokens_per_s_per_gpu)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"clusters": [3]}, r"clusters\[0\] must be a cluster string like '2x8xH100' or a Cluster, got int"),
        ({"models": [M, 3]}, r"models\[1\] must be a model id, a path or a ModelSpec, got int"),
        ({"workloads": [None]}, r"workloads\[0\] must be a preset name, .*got NoneType"),
        ({"workloads": [[1, 2]]}, r"workloads\[0\] must be .*got list"),
        ({"engines": [3]}, r"engines\[0\] must be an engine name or None, got int"),
        ({"models": []}, "models must be a non-empty list"),
        ({"models": 3}, "models must be a list of a model id, a path or a ModelSpec, got int"),
        ({"workers": 0}, r"workers=0: must be in \[1"),
        ({"workers": "2"}, "workers='2': must be an integer"),
        ({"time_limit_s": float("nan")}, "time_limit_s=nan: must be a finite number"),
        ({"executor": 3}, "executor must be 'process', 'serial', 'dask://HOST:PORT' or an Executor, got int"),
        ({"out": 3}, "out must be a results file's path, got int"),
        ({"progress": "yes"}, "progress must be True, False or None, got str"),
    ],
)
def test_bad_arguments_are_one_input_error_before_any_solve(kw: dict[str, object], match: str) -> None:
    args = {"models": [M], "clusters": ["1x8xH100"], "workloads": ["chatbot"], **kw}
    with pytest.raises(InputError, match=match):
        ap.sweep(**args)  # type: ignore[arg-type]


def test_a_lone_item_is_one_item_not_its_characters() -> None:
    """objectives="throughput" once ran the objectives 't', 'h', ... and failed on the first."""
    (row,) = _rows(
        models=M, clusters="1x8xH100", workloads="chatbot", objectives="throughput", engines="vllm"
    )
    assert row["status"] == "ok" and row["objective"] == "throughput"


def test_a_scenario_rows_workload_may_be_an_object() -> None:
    """`{"model": ..., "cluster": ..., "workload": Serving(...)}` is that workload, whole (a row's
    `workload:` key was read as a mapping of fields and refused the object's content)."""
    from autoparallel.sweeps.scenario import from_rows

    row = {"model": M, "cluster": "1x8xH100"}
    for w in (Serving(isl=700, osl=90, isl_cv=0.5), Training(seq_len=1024, global_batch=8)):
        (s,) = from_rows([{**row, "workload": w}], "rows")
        assert s.to_workload() == w
    with pytest.raises(InputError, match="workload fields beside it"):
        from_rows([{**row, "workload": Serving(), "isl": 5}], "rows")


def test_a_finite_benchmark_row_carries_the_replay_plan_shows() -> None:
    """`batch` (1,000 prompts at once): `plan` prints the replay (what `vllm bench serve` measures) next
    to the steady state; a sweep row carried the steady state only."""
    result = ap.sweep(models=M, clusters="1x8xH100", workloads=["batch", "chatbot"], executor="serial")
    batch, chatbot = list(result)
    assert "bench tok/s" in result.table()
    bench = ap.with_benchmark(ap.solve(M, "1x8xH100", "batch")).benchmark
    assert bench is not None and batch["bench_output_tok_s"] == pytest.approx(bench.output_tokens_per_s)
    assert batch["bench_output_tok_s"] < batch["throughput_tok_s"]  # the ramp-down tail
    assert chatbot.get("bench_output_tok_s") is None
    assert "bench tok/s" not in ap.sweep(models=M, clusters="1x8xH100", executor="serial").table()
