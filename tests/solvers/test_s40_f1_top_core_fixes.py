"""s40 f1: a `--top` list cut by the time limit says so; an infeasibility core never blames a model's
architecture rule beside the limit that binds; the nearest more-GPUs fix tries 3x before 4x."""

from __future__ import annotations

import time
from typing import Any

import pytest
from toy_encoding import Toy

from autoparallel import api
from autoparallel.cli import main
from autoparallel.errors import InfeasibleError, SolverTimeoutError
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers import driver
from autoparallel.solvers.serving.solve import solve_serving
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving

SETTINGS = SolverSettings(time_limit_s=5.0)


def _deadline_after_two_cuts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The k-best search times out once two shapes beyond the first are cut (as a deadline would:
    `optimize` raises SolverTimeoutError when no point is found in time)."""
    real = driver.optimize

    def optimize(enc: Any, *args: Any, **kwargs: Any) -> Any:
        cuts = sum(c.name == "no_good[shape]" for c in enc.model.proto.constraints)
        if cuts >= 3:
            raise SolverTimeoutError("no feasible plan found within 10 s (raise --time-limit)")
        return real(enc, *args, **kwargs)

    monkeypatch.setattr(driver, "optimize", optimize)


# ----- 1. --top cut by the deadline ---------------------------------------------------------------
def test_k_best_says_whether_the_time_limit_cut_the_search() -> None:
    toy = Toy()
    best = driver.optimize(toy, ("x",), driver.Run(SETTINGS))
    assert best == (9, 0)
    done = driver.k_best(toy, ("x",), best, 20, SETTINGS)
    assert len(done.found) == 9 and not done.cut  # every other shape: the enumeration ended by itself
    cut = driver.k_best(Toy(), ("x",), best, 20, SETTINGS, deadline=time.perf_counter())
    assert cut.found == [] and cut.cut


def test_a_top_list_cut_by_the_time_limit_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`plan deepseek-ai/DeepSeek-V3 --cluster 64x8xH200 --top 64 --time-limit 1.8` said "7 distinct
    plan shape(s) ... fit" where 36 do (`k_best` broke on the time-out and told nobody)."""
    _deadline_after_two_cuts(monkeypatch)
    argv = ["plan", "meta-llama/Llama-3.1-8B", "--cluster", "1x4xH100", "--top", "8", "--disagg", "off"]
    assert main([*argv, "--time-limit", "10"]) == 0
    err = capsys.readouterr().err
    assert (
        "note: 3 distinct plan shape(s) (tp x pp x expert parallelism) found before the time limit "
        "(--time-limit 10); more may fit; --top asked for 8"
    ) in err, err
    plans = api.solve_top("meta-llama/Llama-3.1-8B", "1x4xH100", top=8)
    assert len(plans) == 3 and all(p.solver.top_cut for p in plans)
    assert plans[0].to_dict()["solver"]["top_cut"] is True


def test_a_top_list_that_ends_by_itself_keeps_the_old_note(capsys: pytest.CaptureFixture[str]) -> None:
    plans = api.solve_top("meta-llama/Llama-3.2-1B", "1x2xH100", top=64)
    assert 1 < len(plans) < 64 and not any(p.solver.top_cut for p in plans)
    assert "top_cut" not in plans[0].to_dict()["solver"]
    assert (
        main(["plan", "meta-llama/Llama-3.2-1B", "--cluster", "1x2xH100", "--top", "64", "--disagg", "off"])
        == 0
    )
    err = capsys.readouterr().err
    assert (
        f"note: {len(plans)} distinct plan shape(s) (tp x pp x expert parallelism) fit; --top asked for 64"
        in err
    )


# ----- 2. an architecture rule is never offered as removable ---------------------------------------
def test_a_held_family_is_background_unless_it_conflicts_alone() -> None:
    toy = Toy(explain=True)
    toy.model.add(toy.x <= 8).only_enforce_if(toy.family("architecture:rule"))  # guards x = 9
    toy.model.add(toy.x >= 9).only_enforce_if(toy.family("slo"))
    assert sorted(driver.minimal_core(toy, SETTINGS).needed) == ["architecture:rule", "slo"]
    core = driver.minimal_core(toy, SETTINGS, held=("architecture:rule",))
    assert core.needed == ("slo",) and core.undecided == ()

    alone = Toy(explain=True)
    alone.model.add(alone.x <= 3).only_enforce_if(alone.family("architecture:a"))
    alone.model.add(alone.y == 1).only_enforce_if(alone.family("slo"))  # satisfiable: never blamed
    alone.model.add(alone.x >= 5).only_enforce_if(alone.family("architecture:b"))
    core = driver.minimal_core(alone, SETTINGS, held=("architecture:a", "architecture:b"))
    assert sorted(core.needed) == ["architecture:a", "architecture:b"]


def test_an_unmet_ttft_is_not_blamed_on_an_expert_count() -> None:
    """DeepSeek-V3 on 64x8xH200 with 200,000 prompts named `architecture:ep_divides_experts` beside
    ttft_slo ("256 experts are not divisible by ep=512"): without the rule, the ep=512 shape's
    placeholder TTFT of 1 µs met the limit. Mixtral-8x7B (8 experts) on 16 GPUs is the same case."""
    w = Serving(isl=1024, osl=256, ttft_ms=2000, tpot_ms=50, concurrency=200000)
    with pytest.raises(InfeasibleError) as info:
        solve_serving(load_model("mistralai/Mixtral-8x7B-v0.1"), Cluster.parse("2x8xH100"), w, fixes=False)
    head = str(info.value).splitlines()[0]
    assert head.endswith("(isl 1024, osl 256): ttft_slo"), head
    assert [r.split(":")[0] for r in info.value.reasons] == ["ttft_slo"]


def test_an_unmet_ttft_is_not_blamed_on_an_engine_layout() -> None:
    """An engine's layout rules guard unpriced entries too (placeholder TTFT of 1 µs): TensorRT-LLM
    Qwen3-30B-A3B on 1x8xH100 at TTFT 5 ms named `trtllm_attention_dp, ttft_slo`."""
    from autoparallel.solvers.serving.space import ServingOptions

    w = Serving.preset("chatbot").model_copy(update={"ttft_ms": 5.0})
    with pytest.raises(InfeasibleError) as info:
        solve_serving(
            load_model("Qwen/Qwen3-30B-A3B"),
            Cluster.parse("1x8xH100"),
            w,
            options=ServingOptions(engines=("trtllm",)),
            fixes=False,
        )
    assert [r.split(":")[0] for r in info.value.reasons] == ["ttft_slo"]


def test_an_architecture_rule_that_rules_out_every_shape_is_still_named() -> None:
    from autoparallel.solvers.serving.space import ServingOptions

    with pytest.raises(InfeasibleError) as info:
        solve_serving(
            load_model("meta-llama/Llama-3.1-8B"),
            Cluster.parse("1x3xH100"),
            Serving.preset("chatbot"),
            options=ServingOptions(tp_values=(3,), pp_values=(1,)),
        )
    assert str(info.value).splitlines()[0].endswith(": architecture:tp_divides_heads")


# ----- 3. 3x the GPUs before 4x --------------------------------------------------------------------
def test_three_times_the_gpus_is_offered_when_it_serves() -> None:
    """Qwen3-235B-A22B on 2x8xH100 at 100 req/s completes 41.70/s: 3x carries 125, yet the fix was
    4x. Llama-3.1-8B on one H100 at 40 req/s completes 17.3/s: 2x falls short, 3x (three one-GPU
    nodes: no H100 node holds 3) serves, and 4x is not listed beside it."""
    with pytest.raises(InfeasibleError) as info:
        solve_serving(
            load_model("meta-llama/Llama-3.1-8B-Instruct"),
            Cluster.parse("1x1xH100"),
            Serving(request_rate=40),
        )
    more = [f for f in info.value.fixes if "the GPUs" in f]
    assert len(more) == 1 and more[0].startswith("with --cluster 3x1xH100-SXM (3x the GPUs)"), more


def test_fuller_nodes_only_in_sizes_the_gpu_comes_in() -> None:
    from autoparallel.solvers.serving.remedies import _node_size

    assert [n for n in range(1, 9) if _node_size(n, 8)] == [1, 2, 4, 8]  # 1x2 x3 is 3x2, never 1x6
    assert _node_size(24, 72) and _node_size(72, 72) and not _node_size(144, 72)
