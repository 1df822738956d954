"""Where SGLang's or TensorRT-LLM's KV cache holds more than the max_num_seqs grid's top (1,024), the
planner offers the engine's own cap (`kv_bound_cap`: SGLang 4,096 request slots, TensorRT-LLM's
max_batch_size 2,048 × pp) as that entry's batch.

Before, an entry whose cap held offered nothing above the grid: Qwen3-0.6B on one H200 at 128 / 256
tokens was planned at 1,024 (TensorRT-LLM 76,243 output tokens/s, "OPTIMAL") while 2,048 runs at
86,425 (+13%); on the smaller H100, whose cache holds 1,631, the plan was 1,631 - the bigger GPU got
the smaller batch. SGLang: 1,024 at 53,757 against 71,898 at 4,096.
"""

from __future__ import annotations

import pytest

from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.oracle.serving import enumerate_serving
from autoparallel.solvers.serving.solve import solve_serving
from autoparallel.solvers.serving.space import ServingOptions, _holds, build_space, kv_bound_cap
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving

SETTINGS = SolverSettings(workers=1, seed=0, time_limit_s=30.0)
WORKLOAD = Serving(isl=128, osl=256)


@pytest.mark.parametrize(("engine", "cap"), [("trtllm", 2048), ("sglang", 4096)])
def test_a_cache_above_the_grid_runs_the_engines_cap(engine: str, cap: int) -> None:
    model, cluster = load_model("Qwen/Qwen3-0.6B"), Cluster.parse("1x1xH200")
    options = ServingOptions(engines=(engine,), tp_values=(1,))
    space = build_space(model, cluster, WORKLOAD, options)
    assert kv_bound_cap(engine, 1) == cap and _holds(space, 0, 0, cap, 0)
    sol = solve_serving(model, cluster, WORKLOAD, options=options, settings=SETTINGS, runner_up=False)
    assert sol.config.max_num_seqs == cap
    # above the CUDA-graph reach eager and graphs tie at full load: the plan keeps the graphs
    # (`solve.prefer_cuda_graphs`; SGLang had been planned with --disable-cuda-graph)
    assert not sol.config.enforce_eager
    assert sol.estimate.perf.kv_capacity_seqs > cap  # the cache holds more: the cap binds
    assert sol.binding[0].startswith(f"max_num_seqs: {cap} is the most")
    oracle = enumerate_serving(model, cluster, WORKLOAD, objective="throughput", options=options)
    assert oracle.objective_value is not None
    assert sol.objective_value == pytest.approx(oracle.objective_value, rel=1e-6)
