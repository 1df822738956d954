"""Training planner (s43 fF): the rule tp·pp·cp | GPUs named where it empties the space; mfu / cost
planned over fewer GPUs than the cluster's (decomposed exactly by GPUs × step time)."""

from __future__ import annotations

import pytest

from autoparallel.configs import Recompute, ZeroStage
from autoparallel.errors import InfeasibleError
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.oracle.training import enumerate_training
from autoparallel.solvers.settings import SolverSettings
from autoparallel.solvers.training.decoder import why_lost
from autoparallel.solvers.training.solve import solve_training
from autoparallel.solvers.training.space import TrainingOptions, build_space
from autoparallel.workload import Training

SETTINGS = SolverSettings(time_limit_s=10.0, workers=1, seed=0)


# ----- problem 1: the divisibility rule leads the error -------------------------------------------------
def test_pp_not_dividing_the_world_is_named_first() -> None:
    """pp=5 on 32 GPUs: no tp·pp·cp divides 32; the error named only the ZeRO 0/1 rule (which removes
    no degree) and never the rule that emptied the space."""
    model = load_model("meta-llama/Llama-3.1-70B")
    cluster = Cluster.parse("4x8xH100")
    with pytest.raises(InfeasibleError) as info:
        build_space(model, cluster, Training(seq_len=8192, global_batch=64), TrainingOptions(pp_values=(5,)))
    reasons = info.value.reasons
    assert reasons[0].startswith(
        "degrees_divide_world: pp=5: tp·pp·cp = 1·5·1 = 5 does not divide the 32 GPUs"
    )
    assert not any(r.startswith("framework_zero_stages") for r in reasons)


def test_divisibility_does_not_lead_where_other_rules_emptied_the_space() -> None:
    """tp=8 with pp=2 divides 16 GPUs and is removed by another rule (an MoE model needs sequence
    parallelism, which seq_len 4100 does not split into 8): that rule leads, pp=3's divisibility follows."""
    model = load_model("mistralai/Mixtral-8x7B-v0.1")
    cluster = Cluster.parse("2x8xH100")
    opts = TrainingOptions(pp_values=(2, 3), tp_values=(8,), cp_values=(1,))
    with pytest.raises(InfeasibleError) as info:
        build_space(model, cluster, Training(seq_len=4100, global_batch=64), opts)
    reasons = info.value.reasons
    assert [r.split(":")[0] for r in reasons] == ["seq_divides_sp", "degrees_divide_world"]
    assert reasons[1] == "degrees_divide_world: pp=3: tp·pp·cp = 8·3·1 = 24 does not divide the 16 GPUs"


# ----- problem 2: mfu / cost over the GPU counts allowed ------------------------------------------------
WORLDS = TrainingOptions(world_sizes=(4, 7, 8, 16, 32, 64))


@pytest.mark.parametrize("objective", ["cost", "mfu"])
def test_cost_and_mfu_plan_on_fewer_gpus_where_allowed(objective: str) -> None:
    """Llama-3.1-8B, global batch 7 on 8x8xH100: all 64 GPUs cost $158 to 1e9 tokens (MFU 0.31);
    7 GPUs (dp=7) cost $97 (MFU 0.50). Without world sizes they rank the step time on the whole
    cluster, and say so."""
    model = load_model("meta-llama/Llama-3.1-8B")
    cluster = Cluster.parse("8x8xH100")
    work = Training(seq_len=8192, global_batch=7, tokens=1e9)
    fast = solve_training(model, cluster, work, settings=SETTINGS)
    whole = solve_training(model, cluster, work, objective=objective, settings=SETTINGS)
    assert whole.config.world_size == 64
    said = next(b for b in whole.binding if b.startswith("gpus:"))
    assert "--world-sizes" in said and "step time alone" in said
    cheap = solve_training(model, cluster, work, objective=objective, settings=SETTINGS, options=WORLDS)
    assert fast.config.world_size == 64
    assert cheap.config.world_size < 64
    assert cheap.stats.status == "OPTIMAL"
    assert fast.cost is not None and cheap.cost is not None
    assert cheap.cost.usd < 0.7 * fast.cost.usd
    assert cheap.perf.mfu > fast.perf.mfu + 0.1
    gpus = next(b for b in cheap.binding if b.startswith("gpus:"))
    assert f"{cheap.config.world_size} of the cluster's 64 GPUs" in gpus and objective in gpus
    assert "options.world_sizes" in gpus
    assert not any(b.startswith("gpus:") for b in fast.binding)
    # A runner-up on other GPUs loses on GPU time, not on its step (it may be the faster one).
    assert cheap.runner_up is not None
    if cheap.runner_up.config.world_size != cheap.config.world_size:
        assert "more GPU time" in cheap.runner_up.reason or "ties" in cheap.runner_up.reason


def test_world_sizes_given_are_kept() -> None:
    model = load_model("meta-llama/Llama-3.1-8B")
    cluster = Cluster.parse("8x8xH100")
    work = Training(seq_len=8192, global_batch=7, tokens=1e9)
    sol = solve_training(
        model, cluster, work, objective="cost", settings=SETTINGS, options=TrainingOptions(world_sizes=(64,))
    )
    assert sol.config.world_size == 64


def test_decomposed_cost_equals_the_uniform_oracle() -> None:
    """GPUs × step time by triples (each triple's step scaled by its GPUs) equals the brute force's
    least GPUs × step time over the same even-split space of several GPU counts."""
    model = load_model(
        {
            "model_type": "llama",
            "hidden_size": 512,
            "num_attention_heads": 8,
            "num_key_value_heads": 2,
            "head_dim": 64,
            "num_hidden_layers": 4,
            "vocab_size": 4096,
            "intermediate_size": 1024,
        }
    )
    cluster = Cluster.parse("1x8xH100")
    work = Training(seq_len=2048, global_batch=16)
    opts = TrainingOptions(
        world_sizes=(1, 2, 4, 8),
        cp_values=(1,),
        micro_batch_values=(1, 2),
        zero_stages=(ZeroStage.DISTRIBUTED_OPTIMIZER,),
        recompute_modes=(Recompute.NONE, Recompute.FULL),
        non_uniform_stages=False,
        per_stage_recompute=False,
        runner_up=False,
    )
    oracle = enumerate_training(model, cluster, work, objective="cost", options=opts)
    sol = solve_training(model, cluster, work, objective="cost", settings=SETTINGS, options=opts)
    assert sol.stats.status == "OPTIMAL"
    mine = sol.config.world_size * sol.perf.step_time_s
    theirs = oracle.config.world_size * oracle.perf.step_time_s
    assert theirs <= mine * (1 + 1e-9)
    assert mine <= theirs * (1 + 1e-3)


def test_why_lost_by_gpu_time() -> None:
    """The runner-up on fewer GPUs has the longer step but is compared by GPU-seconds."""
    model = load_model("meta-llama/Llama-3.1-8B")
    cluster = Cluster.parse("8x8xH100")
    work = Training(seq_len=8192, global_batch=7)
    # Megatron-FSDP as well as zero=dist (ZeRO 2 / 3 plan with bf16 gradient reduction when asked).
    zero = (ZeroStage.DISTRIBUTED_OPTIMIZER, ZeroStage.GRADIENTS, ZeroStage.PARAMETERS)
    a, b = (
        solve_training(
            model,
            cluster,
            work,
            settings=SETTINGS,
            options=TrainingOptions(world_sizes=(n,), grad_reduce_in_bf16=True, zero_stages=zero),
        )
        for n in (7, 4)
    )
    text = why_lost(a.perf, b.perf, gpus=(7, 4))
    assert text.startswith(
        f"{100 * (4 * b.perf.step_time_s / (7 * a.perf.step_time_s) - 1):.1f}% more GPU time"
    )
    assert "GPU-s per step" in text and "slower" in text


def test_a_weighted_cost_plans_on_fewer_gpus_as_the_name_does() -> None:
    """{"mfu": 1} weighs the GPUs as "cost" does (`solve._weighed_gpus`): 64 GPUs where "cost" planned 7."""
    model, cluster = load_model("meta-llama/Llama-3.1-8B"), Cluster.parse("8x8xH100")
    work = Training(seq_len=4096, global_batch=7, tokens=1e9)
    named = solve_training(model, cluster, work, objective="cost", settings=SETTINGS, options=WORLDS)
    weighted = solve_training(model, cluster, work, objective={"mfu": 1.0}, settings=SETTINGS, options=WORLDS)
    assert weighted.config.world_size == named.config.world_size < 64
