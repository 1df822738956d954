"""Training mfu / cost over several GPU counts (s44 fA): ties, exact in the float model but split by the
solver's µs rounding, go to the shortest step (decompose.py's second pass, the oracle alike); `pareto
--train` takes `--world-sizes` (cost / mfu fronts) and refuses it on fronts that plan the whole cluster."""

from __future__ import annotations

import json

import pytest

from autoparallel.cli import main
from autoparallel.configs import ZeroStage
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.oracle.training import enumerate_training
from autoparallel.solvers.settings import SolverSettings
from autoparallel.solvers.training.decompose import solve_by_triples
from autoparallel.solvers.training.solve import solve_training
from autoparallel.solvers.training.space import TrainingOptions, build_space
from autoparallel.solvers.training.tables import build_tables
from autoparallel.workload import Training

SETTINGS = SolverSettings(time_limit_s=10.0, workers=1, seed=0)
MODEL = {
    "model_type": "llama",
    "hidden_size": 1024,
    "num_attention_heads": 8,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "num_hidden_layers": 4,
    "vocab_size": 32000,
    "intermediate_size": 3072,
}
WORKLOAD = Training(seq_len=2048, global_batch=64)
WORLDS = (8, 16, 32, 64)
# Megatron-FSDP as well as zero=dist: ZeRO 2 / 3 as priced run in Megatron with bf16 gradient
# reduction, which plans take when asked (`validation.framework_zero_stages`).
FSDP = {
    "grad_reduce_in_bf16": True,
    "zero_stages": (ZeroStage.DISTRIBUTED_OPTIMIZER, ZeroStage.GRADIENTS, ZeroStage.PARAMETERS),
}


@pytest.mark.parametrize("objective", ["cost", "mfu"])
def test_a_float_tie_goes_to_the_shortest_step(objective: str) -> None:
    """dp 8, 16, 32, 64 of one layout cost the same GPU-seconds in floats (the step scales with dp); in
    the solver's integers each GPU count rounds its step up differently, and the least (8 GPUs) won:
    an 8x slower plan at the same price (Llama-3.1-8B on 8x8xH100: 4.0 h instead of 0.5 h)."""
    model, cluster = load_model(MODEL), Cluster.parse("8x8xH100")
    options = TrainingOptions(world_sizes=WORLDS, **FSDP)
    sol = solve_training(model, cluster, WORKLOAD, objective=objective, settings=SETTINGS, options=options)
    assert sol.stats.status == "OPTIMAL"
    assert sol.stats.gap == 0 and sol.stats.objective_value == sol.stats.bound  # the bound moves with the tie
    assert sol.config.world_size == 64  # was 8
    assert sol.runner_up is not None and sol.runner_up.config.world_size != 64
    slow = sol.runner_up
    assert "ties with the chosen plan" in slow.reason and "slower" in slow.reason
    cost, other = 64 * sol.perf.step_time_s, slow.config.world_size * slow.step_time_s
    assert cost == pytest.approx(other, rel=1e-9)  # the same GPU-seconds, a faster step
    assert sol.perf.step_time_s < slow.step_time_s / 7


@pytest.mark.parametrize("objective", ["cost", "mfu"])
def test_the_oracle_breaks_the_tie_the_same_way(objective: str) -> None:
    model, cluster = load_model(MODEL), Cluster.parse("8x8xH100")
    options = TrainingOptions(world_sizes=WORLDS, non_uniform_stages=False, per_stage_recompute=False, **FSDP)
    oracle = enumerate_training(model, cluster, WORKLOAD, objective=objective, options=options)
    sol = solve_training(
        model,
        cluster,
        WORKLOAD,
        objective=objective,
        settings=SETTINGS,
        options=options.model_copy(update={"runner_up": False}),
    )
    assert oracle.config.world_size == sol.config.world_size == 64
    assert (oracle.config.tp, oracle.config.pp, oracle.config.dp) == (
        sol.config.tp,
        sol.config.pp,
        sol.config.dp,
    )
    assert oracle.perf.step_time_s == pytest.approx(sol.perf.step_time_s, rel=1e-6)
    assert oracle.objective_value == pytest.approx(64 * sol.perf.step_time_s, rel=1e-9)


def test_a_real_cost_difference_is_not_a_tie() -> None:
    """Global batch 8 on 8x8xH100: 16 GPUs step 1.9x faster than 8 but cost 3.5% more GPU-seconds in
    floats; within the solver's worst-case rounding, yet no tie: the cheaper 8 GPUs stay."""
    model, cluster = load_model(MODEL), Cluster.parse("8x8xH100")
    wl = Training(seq_len=2048, global_batch=8)
    for options in (
        TrainingOptions(world_sizes=WORLDS),
        TrainingOptions(world_sizes=WORLDS, non_uniform_stages=False, per_stage_recompute=False),
    ):
        sol = solve_training(model, cluster, wl, objective="cost", settings=SETTINGS, options=options)
        assert sol.config.world_size == 8
    oracle = enumerate_training(model, cluster, wl, objective="cost", options=options)
    assert oracle.config.world_size == 8


def test_one_gpu_count_plans_as_before() -> None:
    """Without world sizes cost ranks the step time on the whole cluster: the throughput plan, no second
    pass (`_decomposable` gives ("throughput",))."""
    model, cluster = load_model(MODEL), Cluster.parse("1x8xH100")
    plans = [
        solve_training(model, cluster, WORKLOAD, objective=o, settings=SETTINGS)
        for o in ("cost", "throughput")
    ]
    assert plans[0].config == plans[1].config and plans[0].perf.step_time_s == plans[1].perf.step_time_s
    assert plans[0].stats.status == "OPTIMAL"


def test_solve_by_triples_takes_only_known_pairs() -> None:
    t = build_tables(build_space(load_model(MODEL), Cluster.parse("1x8xH100"), WORKLOAD, TrainingOptions()))
    with pytest.raises(ValueError, match="no decomposition"):
        solve_by_triples(t, {}, None, SETTINGS, 0.0, False, "throughput", "memory")


PARETO = ["pareto", "meta-llama/Llama-3.1-8B", "--train", "--cluster", "8x8xH100", "--seq-len", "8192"]


def test_pareto_train_takes_world_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    """A cost front over fewer GPUs, as `plan --train --world-sizes`; each point reports its GPUs."""
    argv = [*PARETO, "--global-batch", "64", "--objectives", "throughput,cost", "--world-sizes", "8,16"]
    assert main([*argv, "--time-limit", "20", "--json"]) == 0
    points = json.loads(capsys.readouterr().out)["points"]
    assert points and {p["config"]["world_size"] for p in points} <= {8, 16}
    assert main([*argv, "--time-limit", "20"]) == 0
    out = capsys.readouterr().out
    assert "GPUs" in out.splitlines()[1]


def test_pareto_train_refuses_world_sizes_without_cost(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*PARETO, "--global-batch", "64", "--world-sizes", "8,16"]
    assert main(argv) == 2  # throughput,headroom: the whole cluster
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--world-sizes" in err and "cost" in err
    assert "the default objectives throughput,headroom plan" in err  # not "--objectives ...", not given
    assert main([*argv[:-2], "--objectives", "throughput,cost", "--world-sizes", "8,x"]) == 2
    assert "give GPU counts" in capsys.readouterr().err
    assert main(["pareto", "meta-llama/Llama-3.1-8B", "--cluster", "1x8xH100", "--world-sizes", "8"]) == 2
    assert "does not apply to serving" in capsys.readouterr().err
