"""s42 f7: the training planner's world sizes follow the launchers' node shape rule, an infeasible plan
names the cp values the sequence length dropped (and the ZeRO/pipeline rule in the framework's own
terms), and the time and cost to a token budget count whole steps."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import autoparallel as ap
from autoparallel.configs import TrainingConfig, ZeroStage
from autoparallel.errors import InfeasibleError, InputError
from autoparallel.frameworks._common import node_shape
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.perf.training import cost_to_tokens, training_perf, training_perf_dict
from autoparallel.solvers.settings import SolverSettings
from autoparallel.solvers.training.solve import _zero_pipeline_reason, solve_training
from autoparallel.solvers.training.space import TrainingOptions, build_space, world_size_problem
from autoparallel.workload import Training

LLAMA_8B = "meta-llama/Llama-3.1-8B"
FAST = SolverSettings(time_limit_s=30.0, workers=1, seed=0)


# ----- 1. world sizes: the launchers' node shape rule -------------------------------------------------
def test_world_sizes_of_unlaunchable_counts_alone_are_refused_up_front() -> None:
    """9 GPUs on 2x8xH100 solved OPTIMAL, then `to_dict` raised: now one InputError naming the rule."""
    job = ap.Training(seq_len=8192, global_batch=63)
    with pytest.raises(InputError, match=r"world_sizes \[9\]: node shape rule: 9 GPUs .*whole nodes of 8"):
        ap.solve(LLAMA_8B, "2x8xH100", job, options=ap.TrainingOptions(world_sizes=(9,)))
    with pytest.raises(InputError, match=r"world_sizes \[9, 12\]: node shape rule"):
        ap.solve(LLAMA_8B, "2x8xH100", job, options=ap.TrainingOptions(world_sizes=(9, 12)))


def test_unlaunchable_world_sizes_are_dropped_with_the_reason() -> None:
    space = build_space(
        load_model(LLAMA_8B),
        Cluster.parse("2x8xH100"),
        Training(seq_len=8192, global_batch=64),
        TrainingOptions(world_sizes=(8, 9, 16)),
    )
    assert {s.world for s in space.shapes} == {8, 16}
    assert any("world size 9" in r for r in space.excluded["node_shape"])


@pytest.mark.parametrize(
    "spec", ["2x8xH100", "3x8xH100", "2x6xH100", "2x72xGB200", "3x6xGB200", "2x9xGB200", "1x8xH100"]
)
def test_the_planner_rule_is_the_launch_lines_rule(spec: str) -> None:
    cluster = Cluster.parse(spec)
    for world in range(1, cluster.world_size + 1):
        try:
            node_shape(world, cluster)
            launches = True
        except InputError:
            launches = False
        assert launches == (world_size_problem(world, cluster) is None), world


def test_evaluate_applies_the_rule_as_the_cli_does() -> None:
    config = TrainingConfig(tp=1, dp=9, seq_len=8192, global_batch=63)
    with pytest.raises(InputError, match=r"9 GPUs do not fill whole nodes of 8"):
        ap.evaluate(LLAMA_8B, "2x8xH100", config, compare=False)


# ----- 2. the cp values the sequence length dropped, and zero_pipeline per framework -----------------------
def _infeasible(model: str, cluster: str, seq: int, batch: int, **opts: Any) -> InfeasibleError:
    with pytest.raises(InfeasibleError) as info:
        solve_training(
            load_model(model),
            Cluster.parse(cluster),
            Training(seq_len=seq, global_batch=batch),
            settings=FAST,
            options=TrainingOptions(runner_up=False, **opts),
        )
    return info.value


def test_infeasibility_names_the_cp_values_the_sequence_dropped() -> None:
    """131070 is no multiple of 2·cp for any cp > 1; 131072 plans tp=8 cp=8 on 8x8xH100. Megatron-FSDP
    (ZeRO 2 / 3, bf16 gradient reduction asked for) is kept to pp = 1: zero_pipeline in its terms."""
    fsdp = (ZeroStage.DISTRIBUTED_OPTIMIZER, ZeroStage.GRADIENTS, ZeroStage.PARAMETERS)
    err = _infeasible(
        "meta-llama/Llama-3.1-70B", "8x8xH100", 131070, 7, grad_reduce_in_bf16=True, zero_stages=fsdp
    )
    first = err.reasons[0]
    assert first.startswith("cp_divides_sequence: Megatron's load-balanced context parallelism")
    assert "seq_len 131070 is no multiple of 2·cp for cp 2, 4, 8, 16, 32, which leaves cp 1" in first
    assert "padded to 131072 tokens" in first and "cp=8" in first
    zero = next(r for r in err.reasons if r.startswith("zero_pipeline"))
    assert "DeepSpeed" not in zero and "Megatron-FSDP" in zero and "zero=dist" in zero
    assert any(r.startswith("memory:") for r in err.reasons)


def test_no_cp_line_where_the_relaxation_does_not_fit() -> None:
    err = _infeasible("meta-llama/Llama-3.1-405B", "1x8xH100", 131070, 7)
    assert not any(r.startswith("cp_divides_sequence") for r in err.reasons)


def test_zero_pipeline_in_deepspeed_terms() -> None:
    shapes = (SimpleNamespace(pp=1), SimpleNamespace(pp=4))
    fake: Any = SimpleNamespace(
        space=SimpleNamespace(shapes=shapes, options=SimpleNamespace(framework="deepspeed"))
    )
    text = _zero_pipeline_reason(fake)
    assert "DeepSpeed's PipelineEngine runs ZeRO 0 or 1 only" in text and text.endswith("[1, 4]")
    fake.space.options.framework = "megatron"
    assert "DeepSpeed" not in _zero_pipeline_reason(fake)


# ----- 3. time and cost to a token budget, in whole steps -------------------------------------------------
def test_a_budget_below_one_step_costs_one_step() -> None:
    model, cluster = load_model(LLAMA_8B), Cluster.parse("1x8xH100")
    cfg = TrainingConfig(tp=1, dp=8, seq_len=8192, global_batch=128)
    perf = training_perf(model, cluster, cfg)
    cost = cost_to_tokens(model, cluster, cfg, 1000, perf=perf)
    assert cost.steps == 1 and cost.tokens == 1000
    assert cost.time_s == pytest.approx(perf.step_time_s)
    assert cost.usd == pytest.approx(perf.step_time_s / 3600 * 8 * cluster.gpu.usd_per_hour)
    two = cost_to_tokens(model, cluster, cfg, 128 * 8192 + 1, perf=perf)
    assert two.steps == 2 and two.time_s == pytest.approx(2 * perf.step_time_s)
    out = training_perf_dict(perf, cost)
    assert out["steps_to_train"] == 1 and out["tokens_to_train"] == 1000


def test_the_text_says_the_whole_steps_and_cents(capsys: pytest.CaptureFixture[str]) -> None:
    from autoparallel.cli import main

    argv = ["plan", "meta-llama/Llama-3.1-8B", "--train", "--cluster", "1x8xH100", "--seq-len", "8192"]
    assert main([*argv, "--global-batch", "128", "--tokens", "1000"]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("to train")]
    assert line.startswith("to train 1,000 tokens (1 step): ") and line.endswith("GPU-hours, $0.10"), line
