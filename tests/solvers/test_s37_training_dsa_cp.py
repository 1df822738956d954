"""DeepSeek-V3.2 (DeepSeek Sparse Attention) was planned with context parallelism its own Megatron
emitter refuses: `plan deepseek-ai/DeepSeek-V3.2 --cluster 64x8xH200 --train --seq-len 16384
--global-batch 256` gave tp=8 pp=16 dp=2 cp=2 cp_comm=p2p with "(not expressible: ...)" under
Megatron-LM and DeepSpeed. Megatron-Core's `TransformerConfig.__post_init__`
(megatron/core/transformer/transformer_config.py, `experimental_attention_variant == "dsa"`) asserts
every cp_comm_type is allgather when context_parallel_size > 1, an exchange the planner does not
price; `validation.cp_comm_problem` now refuses cp > 1 for such layers, in the space, the oracle
and `evaluate` alike, and the plan says why cp stayed 1."""

from __future__ import annotations

from functools import cache

import pytest

import autoparallel as ap
from autoparallel.configs import TrainingConfig, ZeroStage
from autoparallel.errors import InputError
from autoparallel.frameworks._megatron_model import architecture_args
from autoparallel.frameworks.megatron import megatron_args
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.models.spec import ModelSpec
from autoparallel.solvers.oracle.training import enumerate_training
from autoparallel.solvers.settings import SolverSettings
from autoparallel.solvers.training.solve import solve_training
from autoparallel.solvers.training.space import TrainingOptions, build_space
from autoparallel.validation import cp_comm_problem, training_problems

V32 = "deepseek-ai/DeepSeek-V3.2"
CLUSTER = "64x8xH200"
JOB = ap.Training(seq_len=16384, global_batch=256)
FAST = SolverSettings(time_limit_s=30.0, workers=1, seed=0)
RULE = "cp_comm_type allgather (TransformerConfig.__post_init__)"


@cache
def _v32() -> ModelSpec:
    return load_model(V32)


def test_the_rule_refuses_every_exchange_the_planner_prices() -> None:
    for comm in ("p2p", "a2a"):
        problem = cp_comm_problem(_v32(), 8, 16, 2, comm)
        assert problem is not None and RULE in problem and f"not {comm}" in problem
    assert cp_comm_problem(_v32(), 8, 16, 1, "p2p") is None
    # dense-attention MLA (DeepSeek-V3) keeps ring attention
    assert cp_comm_problem(load_model("deepseek-ai/DeepSeek-V3"), 8, 16, 2, "p2p") is None


def test_the_space_holds_no_cp_above_one_and_says_why() -> None:
    space = build_space(_v32(), Cluster.parse(CLUSTER), JOB, TrainingOptions())
    assert space.shapes and all(s.cp == 1 for s in space.shapes)
    assert any(RULE in why for why in space.excluded["cp_comm_rule"])


def test_the_plan_has_megatron_arguments_and_names_the_rule() -> None:
    sol = solve_training(_v32(), Cluster.parse(CLUSTER), JOB, settings=FAST)
    assert sol.config.cp == 1
    args = megatron_args(_v32(), sol.config)
    assert "--experimental-attention-variant" in args and "--context-parallel-size" in args
    assert args[args.index("--context-parallel-size") + 1] == "1"
    assert any(line.startswith("cp_comm_rule: cp stays 1:") and RULE in line for line in sol.binding)


def test_evaluate_refuses_cp2_p2p_with_the_rules_reason() -> None:
    config = TrainingConfig(
        tp=8, pp=16, dp=2, cp=2, ep=8, etp=1, micro_batch=1, global_batch=256, seq_len=16384,
        zero=ZeroStage.DISTRIBUTED_OPTIMIZER,
    )  # fmt: skip
    problems = training_problems(_v32(), Cluster.parse(CLUSTER), config)
    assert any(RULE in p and p.endswith("(cp_comm_rule)") for p in problems)
    with pytest.raises(InputError, match="cp_comm_rule"):
        ap.evaluate(V32, CLUSTER, config, JOB)
    with pytest.raises(InputError, match="allgather"):  # the emitter agrees
        architecture_args(_v32(), config)


def test_the_oracle_searches_the_same_space() -> None:
    """The enumeration oracle (`solvers/oracle/training.py`, over `build_space`) picked cp=2 here too."""
    options = TrainingOptions(
        tp_values=(8,), pp_values=(16,), ep_values=(8,), zero_stages=(ZeroStage.DISTRIBUTED_OPTIMIZER,)
    )
    oracle = enumerate_training(_v32(), Cluster.parse(CLUSTER), JOB, options=options)
    assert oracle.config.cp == 1
