"""`build_space` dropped every (ep, etp=1) shape whose ep does not divide dp·cp: the check ran before the
etp loop, although Megatron-Core's expert grid [etp, ep, edp, pp] only needs etp·ep to divide
tp·cp·dp (megatron/core/parallel_state.py `initialize_model_parallel`, the expert RankGenerator).
Qwen3-30B-A3B on 8x8xH100 at global batch 127 (dp = 1) planned tp=8, pp=8, ep=1 while tp=8, ep=8,
etp=1 is legal."""

from __future__ import annotations

from functools import cache

import autoparallel as ap
from autoparallel.configs import TrainingConfig
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.models.spec import ModelSpec
from autoparallel.solvers.training.space import TrainingOptions, TrainingSpace, build_space
from autoparallel.validation import expert_grid_problem, training_problems

QWEN_MOE = "Qwen/Qwen3-30B-A3B"


@cache
def _model() -> ModelSpec:
    return load_model(QWEN_MOE)


@cache
def _space(framework: str = "megatron") -> TrainingSpace:
    options = TrainingOptions(framework="deepspeed" if framework == "deepspeed" else "megatron")
    work = ap.Training(seq_len=4096, global_batch=127)
    return build_space(_model(), Cluster.parse("8x8xH100"), work, options)


def test_the_space_holds_every_legal_ep_etp_pair() -> None:
    space = _space()
    labels = {s.label() for s in space.shapes}
    assert "tp=8,pp=8,cp=1,ep=8,etp=1,dp=1" in labels
    assert "tp=4,pp=16,cp=1,ep=4,etp=1,dp=1" in labels
    # every pair of the domains whose grid tiles the stage is there, and only those
    seen = {(s.tp, s.pp, s.cp, s.dp) for s in space.shapes}
    eps = {s.ep for s in space.shapes}
    for tp, pp, cp, dp in seen:
        for ep in eps:
            for etp in dict.fromkeys((tp, 1)):
                legal = expert_grid_problem(_model(), tp, cp, dp, ep, etp) is None
                there = any(
                    (s.tp, s.pp, s.cp, s.dp, s.ep, s.expert_tp) == (tp, pp, cp, dp, ep, etp)
                    for s in space.shapes
                )
                assert there == legal, (tp, pp, cp, dp, ep, etp)


def test_evaluate_and_the_space_apply_one_rule() -> None:
    """Every shape of the space passes `training_problems`; a grid that does not tile is refused by
    both, with the same sentence."""
    space = _space()
    for shape in space.shapes:
        cfg = space.config(shape, 1, space.state_modes[0])
        assert not [p for p in training_problems(_model(), space.cluster, cfg) if "expert_grid" in p]
    bad = TrainingConfig(tp=2, pp=8, dp=2, ep=8, etp=1, seq_len=4096, global_batch=128)
    (problem,) = [p for p in training_problems(_model(), None, bad) if "expert_grid" in p]
    assert problem == expert_grid_problem(_model(), 2, 1, 2, 8, 1)
    assert "etp x ep = 1 x 8" in problem and "4 ranks" in problem


def test_deepspeed_plans_share_the_rule() -> None:
    """DeepSpeed builds etp = 1 expert groups from consecutive ranks (deepspeed/utils/groups.py
    `_create_expert_and_data_parallel`) and etp = tp ones inside its data-parallel ranks
    (`_create_expert_data_and_model_parallel`): the grid rule at each degree."""
    labels = {s.label() for s in _space("deepspeed").shapes}
    assert "tp=4,pp=16,cp=1,ep=4,etp=1,dp=1" in labels  # tp 8 would replicate the 4 KV heads
    assert all((s.dp * s.cp) % s.ep == 0 for s in _space("deepspeed").shapes if s.expert_tp > 1)


def test_the_planner_uses_expert_parallelism_beyond_dp() -> None:
    plan = ap.solve(
        QWEN_MOE,
        "8x8xH100",
        ap.Training(seq_len=4096, global_batch=127),
        options=ap.TrainingOptions(runner_up=False),
    )
    c = plan.config
    assert c.ep > 1 and (c.dp * c.cp) % c.ep, c
    assert not training_problems(_model(), Cluster.parse("8x8xH100"), c)
