"""The serving planner offers each (shape, runtime, max_model_len)'s KV-bound max_num_seqs: the most
sequences its KV cache holds at the running context under the tables' no-preemption rule.

Before, max_num_seqs came from the shared grid (2^k, 3·2^k, concurrency shares) alone: where SGLang's
pool holds 126 sequences of Qwen3-30B-A3B (512 / 512 on one H100) the plan was max_num_seqs 96,
2,895 output tokens/s; at 126 the float model gives 3,542 (+22.3%). A relaxed brute force that lets
the KV cache bind beat the planner on 4 of 10 random 1-2-GPU problems (up to 5.4%); now on none.
"""

from __future__ import annotations

from functools import cache

import pytest

from autoparallel.cli import main
from autoparallel.hardware import Cluster
from autoparallel.models import ModelSpec, load_model
from autoparallel.solvers.oracle.serving import enumerate_serving
from autoparallel.solvers.serving.solve import solve_serving
from autoparallel.solvers.serving.space import (
    ServingOptions,
    _holds,
    build_space,
    kv_bound_cap,
)
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving

SETTINGS = SolverSettings(workers=1, seed=0, time_limit_s=30.0)
SGLANG_CASE = ["--cluster", "1x1xH100", "--engine", "sglang", "--isl", "512", "--osl", "512"]


@cache
def _model(name: str) -> ModelSpec:
    return load_model(name)


def test_sglang_plans_the_batch_its_pool_holds() -> None:
    sol = solve_serving(
        _model("Qwen/Qwen3-30B-A3B"),
        Cluster.parse("1x1xH100"),
        Serving(isl=512, osl=512),
        options=ServingOptions(engines=("sglang",)),
        settings=SETTINGS,
        runner_up=False,
    )
    assert sol.config.max_num_seqs == 126 and sol.estimate.perf.batch_size == 126
    assert sol.estimate.perf.kv_capacity_seqs == 126
    assert sol.estimate.perf.output_tokens_per_s > 3500  # 2,895 at the grid's 96
    assert sol.binding[0].startswith("kv_cache: max_num_seqs=128 would need")


@pytest.mark.parametrize(
    ("name", "cluster", "engine", "workload", "objective"),
    [
        ("google/gemma-2-9b", "1x1xH200", "vllm", Serving(isl=4096, osl=256), "throughput"),
        (
            "microsoft/phi-4",
            "1x1xA100-SXM-80G",
            "vllm",
            Serving(isl=4096, osl=1024, concurrency=64),
            "throughput",
        ),
        ("Qwen/Qwen3-8B", "1x2xL40S", "vllm", Serving(isl=2048, osl=512, concurrency=400), "throughput"),
        ("Qwen/Qwen3-30B-A3B", "1x2xH100", "vllm", Serving(isl=2048, osl=512, ttft_ms=3000), "throughput"),
        ("mistralai/Mistral-7B-v0.3", "1x2xA100-SXM-80G", "trtllm", Serving(isl=1024, osl=256), "throughput"),
        ("meta-llama/Llama-3.1-8B", "1x2xL40S", "trtllm", Serving(isl=512, osl=256), "throughput"),
        ("meta-llama/Llama-3.1-8B", "1x1xA100-SXM-80G", "sglang", Serving(isl=4096, osl=256), "cost"),
    ],
)
def test_the_cpsat_optimum_equals_the_oracle_at_a_kv_bound_batch(
    name: str, cluster: str, engine: str, workload: Serving, objective: str
) -> None:
    """Both sides see the KV-bound points (the oracle reads their values from the space and evaluates
    them itself), and the optimum is one of them: a max_num_seqs off the grid."""
    model, c, options = _model(name), Cluster.parse(cluster), ServingOptions(engines=(engine,))
    oracle = enumerate_serving(model, c, workload, objective=objective, options=options)
    sol = solve_serving(
        model, c, workload, objective=objective, options=options, settings=SETTINGS, runner_up=False
    )
    assert oracle.config is not None and oracle.objective_value is not None
    assert sol.objective_value == pytest.approx(oracle.objective_value, rel=1e-6)
    assert sol.config.max_num_seqs == oracle.config.max_num_seqs
    grid = build_space(model, c, workload, options).batches  # with the concurrency shares
    assert sol.config.max_num_seqs not in grid


def test_each_kv_bound_value_is_the_most_the_cache_holds() -> None:
    """The value holds, one more does not (TensorRT-LLM: rounded down to a multiple of pp, one more
    multiple does not hold); it is no grid value; the flat index reads it back."""
    space = build_space(
        _model("meta-llama/Llama-3.1-8B"),
        Cluster.parse("1x2xL40S"),
        Serving(isl=512, osl=256),
        ServingOptions(engines=("vllm", "trtllm"), enforce_eager=(False,)),
    )
    seen = {"vllm": 0, "trtllm": 0}
    odd_rounded = False
    for s, shape in enumerate(space.shapes):
        for r, rt in enumerate(space.runtimes):
            v = space.kv_batch(s, r, 0)
            if not v:
                continue
            seen[rt.engine] += 1
            step = shape.pp if rt.engine == "trtllm" else 1
            assert v % step == 0 and v not in space.batches and v <= kv_bound_cap(rt.engine, shape.pp)
            assert _holds(space, s, r, v, 0) and not _holds(space, s, r, v + step, 0)
            odd_rounded |= step > 1 and _holds(space, s, r, v + 1, 0)
            i = space.flat(s, r, len(space.batches), 0)
            assert (
                space.max_num_seqs_of(i) == v
                and space.config(s, r, len(space.batches), 0, 0, 1).max_num_seqs == v
            )
    assert seen["vllm"] and seen["trtllm"]
    assert odd_rounded  # tp 1 pp 2 on TensorRT-LLM: its cache holds 679, the plan may take 678


def test_a_given_grid_is_the_set_of_allowed_values() -> None:
    space = build_space(
        _model("Qwen/Qwen3-30B-A3B"),
        Cluster.parse("1x1xH100"),
        Serving(isl=512, osl=512),
        ServingOptions(engines=("sglang",), max_num_seqs=(64, 96, 128)),
    )
    assert not space.kv_index and space.n_batches == 3
    assert {space.max_num_seqs_of(i) for i in range(len(space.tables.evaluated))} == {64, 96, 128}


def test_the_launch_lines_carry_the_kv_bound_batch(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "Qwen/Qwen3-30B-A3B", *SGLANG_CASE, "--disagg", "off"]) == 0
    out = capsys.readouterr().out
    assert "max_num_seqs=126," in out and "--max-running-requests 126 " in out
    assert main(["plan", "google/gemma-2-9b", "--cluster", "1x1xH200", "--isl", "4096", "--osl", "256"]) == 0
    out = capsys.readouterr().out
    assert "vllm serve google/gemma-2-9b" in out and "--max-num-seqs 81" in out


def test_trtllm_captures_cuda_graphs_up_to_an_odd_batch() -> None:
    """The options file's max_batch_size is the KV-bound batch (pp 1) and its padded CUDA-graph sizes
    reach it (`memory.trtllm.captured_batch_sizes` keeps the cap itself)."""
    from autoparallel.frameworks.trtllm import trtllm_options
    from autoparallel.memory.trtllm import captured_batch_sizes, padded_cuda_graph_batch_sizes

    sol = solve_serving(
        _model("mistralai/Mistral-7B-v0.3"),
        Cluster.parse("1x2xA100-SXM-80G"),
        Serving(isl=1024, osl=256),
        options=ServingOptions(engines=("trtllm",)),
        settings=SETTINGS,
        runner_up=False,
    )
    b = sol.config.max_num_seqs
    assert b == 371
    opts = trtllm_options(sol.config)
    assert opts["max_batch_size"] == b and opts["cuda_graph_config"] == {
        "max_batch_size": b,
        "enable_padding": True,
    }
    sizes = captured_batch_sizes(padded_cuda_graph_batch_sizes(b), b, int(str(opts["max_num_tokens"])))
    assert sizes[-1] == b


def test_evaluate_names_only_a_kv_bound_batch_the_planner_cannot_plan(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """SGLang's 128 (its pool holding 126) is at the planner's optimum now; a vLLM cache holding 1,618
    sequences is above the 1,024 the planner plans at most there (`kv_bound_cap`)."""
    from autoparallel.explain import VLLM_KV_BOUND_CAP, _kv_bound_cap

    assert kv_bound_cap("vllm", 1) == VLLM_KV_BOUND_CAP
    assert all(_kv_bound_cap(e, pp) == kv_bound_cap(e, pp) for e in ("sglang", "trtllm") for pp in (1, 2))

    def line(argv: list[str]) -> str:
        assert main(["evaluate", *argv]) == 0
        return next(x for x in capsys.readouterr().out.splitlines() if "solver: EVALUATED" in x)

    assert "at the planner's optimum" in line(["Qwen/Qwen3-30B-A3B", *SGLANG_CASE, "--max-num-seqs", "128"])
    tiny = ["Qwen/Qwen3-0.6B", "--cluster", "1x1xH100", "--isl", "256", "--osl", "256", "--tp", "1"]
    assert (
        "which it cannot choose: its KV cache holds 1,618 of max_num_seqs 2,048 running, more than the "
        "1,024 the planner plans at most on vLLM" in line([*tiny, "--max-num-seqs", "2048"])
    )
