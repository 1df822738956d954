"""Megatron's sequence parallelism cuts each context-parallel rank's seq_len / cp tokens into tp parts
(megatron/core/tensor_parallel/mappings.py `_reduce_scatter_along_first_dim` asserts it): plans at
seq 2049 on 4x8xH100 emitted tp=8 with --sequence-parallel, which Megatron refuses at the first
reduce-scatter."""

from __future__ import annotations

import pytest

import autoparallel as ap
from autoparallel.cli import main
from autoparallel.configs import TrainingConfig
from autoparallel.frameworks.megatron import megatron_arg_dict, megatron_notes
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.training.space import TrainingOptions, build_space
from autoparallel.validation import sp_sequence_problem, training_problems

LLAMA_70B = "meta-llama/Llama-3.1-70B"
QWEN_MOE = "Qwen/Qwen3-30B-A3B"


def test_the_rule_names_the_tokens_per_context_parallel_rank() -> None:
    assert sp_sequence_problem(4096, 8, 2) is None
    assert sp_sequence_problem(2049, 8, 1, sequence_parallel=False) is None
    assert sp_sequence_problem(2049, 1) is None
    cfg = TrainingConfig(tp=4, cp=2, dp=1, seq_len=4100, global_batch=1)
    problems = training_problems(load_model(LLAMA_70B), None, cfg)
    assert any("4100 / 2 = 2050" in p and p.endswith("(seq_divides_sp)") for p in problems), problems
    assert not training_problems(
        load_model(LLAMA_70B), None, cfg.model_copy(update={"sequence_parallel": False})
    )


def test_megatron_refuses_an_moe_model_at_tp_above_1_without_sequence_parallelism() -> None:
    cfg = TrainingConfig(tp=2, dp=4, ep=4, seq_len=4096, global_batch=8, sequence_parallel=False)
    problems = training_problems(load_model(QWEN_MOE), None, cfg)
    assert any(p.endswith("(moe_needs_sp)") for p in problems), problems


def test_a_dense_plan_runs_such_shapes_without_sequence_parallelism() -> None:
    model, cluster = load_model(LLAMA_70B), Cluster.parse("4x8xH100")
    space = build_space(model, cluster, ap.Training(seq_len=2049, global_batch=256), TrainingOptions())
    split = [s for s in space.shapes if s.tp > 1]
    assert split and not any(s.sequence_parallel for s in split)
    shape = split[0]
    cfg = space.config(shape, 1, space.state_modes[0])
    assert not cfg.sequence_parallel and not training_problems(model, cluster, cfg)
    assert shape.label().endswith(",nosp")
    assert "--sequence-parallel" not in megatron_arg_dict(model, cfg, cluster=cluster)
    assert any("no --sequence-parallel at tp=" in n and "2049" in n for n in megatron_notes(model, cfg))
    # a sequence that divides keeps it
    even = build_space(model, cluster, ap.Training(seq_len=2048, global_batch=256), TrainingOptions())
    assert all(s.sequence_parallel for s in even.shapes)


def test_an_moe_plan_leaves_such_shapes_out_and_says_why() -> None:
    space = build_space(
        load_model(QWEN_MOE),
        Cluster.parse("1x8xH100"),
        ap.Training(seq_len=2049, global_batch=64),
        TrainingOptions(),
    )
    assert {s.tp for s in space.shapes} == {1}
    assert any("2049" in m for m in space.excluded["seq_divides_sp"])


def test_evaluate_refuses_it_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["evaluate", LLAMA_70B, "--cluster", "4x8xH100", "--train", "--seq-len", "4100"]
    assert main([*argv, "--global-batch", "256", "--tp", "4", "--cp", "2"]) == 2
    err = capsys.readouterr().err
    assert "2050" in err and "seq_divides_sp" in err and err.count("\n") <= 1
