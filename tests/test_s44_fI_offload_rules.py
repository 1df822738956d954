"""Session 44 (fI): `evaluate` prices only the CPU offload its framework runs (the planner's rule), and a
huge `world_sizes` list is not interpolated whole into the error."""

from __future__ import annotations

import itertools

import pytest

import autoparallel as ap
from autoparallel.configs import TrainingConfig, ZeroStage
from autoparallel.errors import InputError
from autoparallel.frameworks.deepspeed import deepspeed_config
from autoparallel.frameworks.megatron import megatron_args
from autoparallel.models import load_model
from autoparallel.solvers.training.space import TrainingOptions, _state_modes

LLAMA_8B = "meta-llama/Llama-3.1-8B"


def _eval(engine: str, zero: str, *, opt: bool = False, params: bool = False) -> ap.TrainingPlan:
    config = ap.TrainingConfig(
        tp=1, pp=1, dp=8, zero=zero, offload_optimizer=opt, offload_params=params, global_batch=64
    )
    return ap.evaluate(LLAMA_8B, "8xH100", config, compare=False, engine=engine)


def test_optimizer_offload_at_zero_0_is_refused_in_the_emitters_words() -> None:
    """fits True at 27,566 tok/s, though DeepSpeed's ds_config said 'unavailable' (146.6 GiB without it)."""
    m = load_model(LLAMA_8B)
    config = TrainingConfig(tp=1, pp=1, dp=8, zero="0", offload_optimizer=True, global_batch=64)
    for engine, emit in (("deepspeed", deepspeed_config), ("megatron", megatron_args)):
        with pytest.raises(InputError) as emitted:
            emit(m, config)
        with pytest.raises(InputError) as evaluated:
            _eval(engine, "0", opt=True)
        name = "DeepSpeed" if engine == "deepspeed" else "Megatron"
        assert str(evaluated.value) == f"invalid {name} training configuration: {emitted.value}"


def test_parameter_offload_is_refused_under_megatron_and_below_zero_3() -> None:
    """Megatron priced offload_params (fits True at 72.2 GiB, 80.8 without) while keeping parameters on
    the GPU; DeepSpeed at ZeRO 1 evaluated what its emitter refuses ("needs ZeRO-3")."""
    with pytest.raises(
        InputError, match="Megatron training configuration: offload_params has no Megatron-Core"
    ):
        _eval("megatron", "3", params=True)
    with pytest.raises(InputError, match="offload_params has no Megatron-Core"):
        _eval("megatron", "1", params=True)
    m = load_model(LLAMA_8B)
    config = TrainingConfig(tp=1, pp=1, dp=8, zero="1", offload_params=True, global_batch=64)
    with pytest.raises(InputError) as emitted:
        deepspeed_config(m, config)
    with pytest.raises(InputError) as evaluated:
        _eval("deepspeed", "1", params=True)
    assert str(evaluated.value) == f"invalid DeepSpeed training configuration: {emitted.value}"


def test_legitimate_offloads_still_evaluate() -> None:
    assert _eval("deepspeed", "3", params=True).fits
    assert _eval("deepspeed", "3", opt=True, params=True).fits
    for engine in ("deepspeed", "megatron"):
        assert _eval(engine, "1", opt=True).fits
    assert _eval("megatron", "dist", opt=True).fits


@pytest.mark.parametrize("framework", ["deepspeed", "megatron"])
def test_evaluate_accepts_exactly_the_offload_modes_the_planner_builds(framework: str) -> None:
    """One rule: every (stage, offload) the planner's `_state_modes` builds evaluates, no other does."""
    m = load_model(LLAMA_8B)
    options = TrainingOptions(framework=framework, offload=True, grad_reduce_in_bf16=framework == "megatron")
    planned = {(s.zero, s.offload_optimizer, s.offload_params) for s in _state_modes(m, options, False, {})}
    stages = {z for z, _, _ in planned}
    for zero, opt, params in itertools.product(ZeroStage, (False, True), (False, True)):
        if zero not in stages:
            continue  # the stage itself is refused (`zero_stage_problem`)
        if (zero, opt, params) in planned:
            _eval(framework, zero.value, opt=opt, params=params)
        else:
            with pytest.raises(InputError, match="offload"):
                _eval(framework, zero.value, opt=opt, params=params)


def test_a_huge_world_sizes_list_names_a_few_values_out_of_range() -> None:
    """A million counts made a 7.9 MB one-line InputError."""
    with pytest.raises(InputError) as e:
        ap.solve(
            LLAMA_8B,
            "2x8xH100",
            ap.Training(seq_len=4096, global_batch=64),
            settings=ap.SolverSettings(time_limit_s=8, workers=1),
            options=ap.TrainingOptions(world_sizes=(8, 16, *range(17, 30))),
        )
    assert (
        str(e.value)
        == "world_sizes [17, 18, 19, 20, 21, ... and 8 more] must lie in 1..16 (the cluster's GPUs)"
    )
    with pytest.raises(InputError, match=r"^world_sizes \[0, 17, 99\] must lie in 1\.\.16"):
        ap.solve(LLAMA_8B, "2x8xH100", ap.Training(), options=ap.TrainingOptions(world_sizes=(0, 8, 17, 99)))
    with pytest.raises(InputError) as e:
        ap.solve(LLAMA_8B, "2x8xH100", ap.Training(), options=ap.TrainingOptions(world_sizes=range(1, 10**5)))
    assert len(str(e.value)) < 120 and "... and 99,978 more" in str(e.value)
