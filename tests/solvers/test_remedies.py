"""Infeasible serving requests come with the nearest feasible changes, each a solved plan."""

from __future__ import annotations

import math

import pytest

from autoparallel.errors import InfeasibleError
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.serving.solve import solve_serving
from autoparallel.workload import Serving


def test_a_missed_tpot_limit_suggests_fp8_weights_and_names_the_preset() -> None:
    with pytest.raises(InfeasibleError) as exc:
        solve_serving(load_model("Qwen/Qwen3-32B"), Cluster.parse("1x2xL40S"), Serving.preset("chatbot"))
    err = exc.value
    assert [r.split(":")[0] for r in err.reasons] == ["tpot_slo"]
    fp8 = next(f for f in err.fixes if f.startswith("with --quantization fp8"))
    tpot = float(fp8.rsplit("TPOT ", 1)[1].split(" ms")[0])
    assert tpot <= 50.0  # the suggested plan meets the preset's limit, by the float model
    assert any("the chatbot preset imposes it" in f for f in err.fixes)
    assert "nearest feasible changes" in str(err)


def test_no_change_is_invented_when_none_works() -> None:
    with pytest.raises(InfeasibleError) as exc:
        model = load_model("meta-llama/Llama-3.1-405B")
        solve_serving(model, Cluster.parse("1x4xL4"), Serving.preset("chatbot"))
    assert exc.value.fixes == ()  # 4x the L4s still cannot hold 756 GiB of weights


def test_a_fix_that_fails_is_skipped_without_an_explanation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the request itself is explained: each failed trial of a nearest fix used to build its
    complete tables and solve its minimal core too, so `plan mistralai/Mixtral-8x7B-v0.1 --cluster
    16x8xH100 --tpot-ms 1 --engine sglang` spent its 10 s limit before it found the looser TPOT."""
    from autoparallel.solvers.serving import explain

    calls: list[object] = []
    real = explain.explain_infeasible

    def counted(*a: object, **k: object) -> InfeasibleError:
        calls.append(a)
        return real(*a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(explain, "explain_infeasible", counted)
    with pytest.raises(InfeasibleError) as exc:
        model = load_model("meta-llama/Llama-3.1-405B")
        solve_serving(model, Cluster.parse("1x4xL4"), Serving.preset("chatbot"))
    assert exc.value.fixes == () and len(calls) == 1  # every fix failed; only the request explained


def test_a_looser_limit_is_one_the_plan_meets_and_the_reason_shows_it_above() -> None:
    """DeepSeek-V3 on 8 H200 reached TPOT 5.03 ms: the reason said "reaches 5.0 ms" against a 5 ms
    limit, and the fix "reaches 5.0 ms", a limit that still fails. The reason shows as many digits as
    it takes, and the fix names a limit, rounded up, that the planner then meets (the limit here is
    the fastest TPOT cut to two decimals, just below it)."""
    model, cluster = load_model("deepseek-ai/DeepSeek-V3"), Cluster.parse("1x8xH200")
    fastest = solve_serving(model, cluster, Serving(), objective="tpot").estimate.perf.tpot_ms
    below = math.floor(fastest * 100) / 100
    assert below < fastest
    with pytest.raises(InfeasibleError) as exc:
        solve_serving(model, cluster, Serving(tpot_ms=below))
    (reason,) = exc.value.reasons
    reached = float(reason.split("reaches ")[1].split(" ms")[0])
    assert reached > below
    fix = next(f for f in exc.value.fixes if "--tpot-ms" in f and "admits it" in f)
    limit = float(fix.split("so --tpot-ms ")[1].split(" admits")[0])
    assert solve_serving(model, cluster, Serving(tpot_ms=limit)).estimate.perf.tpot_ms <= limit


def test_a_value_over_its_limit_is_never_shown_equal_to_it() -> None:
    from autoparallel.workload import ms_over

    assert (ms_over(5.03, 5, 1), ms_over(11.02, 3, 1), ms_over(50.004, 50, 1)) == ("5.03", "11.0", "50.004")
    assert (ms_over(2000.4, 2000, 0), ms_over(2100.0, 2000, 0)) == ("2000.4", "2100")


def test_fp8_weights_are_suggested_on_gpus_without_fp8_cores() -> None:
    """vLLM runs FP8 weights on Ampere (Marlin W8A16): Llama-3.1-405B on 8 A100s fits with them, and
    the suggestion was skipped because the GPU has no FP8 tensor cores."""
    with pytest.raises(InfeasibleError) as exc:
        solve_serving(
            load_model("meta-llama/Llama-3.1-405B"), Cluster.parse("1x8xA100-80G"), Serving.preset("chatbot")
        )
    assert any(f.startswith("with --quantization fp8") for f in exc.value.fixes), exc.value.fixes


def test_an_expert_parallel_fix_reads_as_one_engine() -> None:
    """An attention-DP + EP fix under TensorRT-LLM is one engine, not "8 x tp=1" copies of the whole
    model (it was DeepSeek-V3 on 16 H100s until the lock-step of its ranks was priced: tp8 pp2 now
    serves that chatbot better)."""
    from autoparallel.solvers.serving.space import ServingOptions

    with pytest.raises(InfeasibleError) as exc:
        solve_serving(
            load_model("Qwen/Qwen3-235B-A22B"),
            Cluster.parse("1x4xH100"),
            Serving.preset("chatbot"),
            options=ServingOptions(engines=("trtllm",)),
        )
    more = [f for f in exc.value.fixes if "the GPUs" in f]
    ep = [f for f in more if "expert-parallel" in f]
    assert ep and all("one expert-parallel engine of" in f for f in ep), more


def test_conflicting_limits_are_each_stated_under_the_others() -> None:
    """The rate reason took the best plan that fits whatever its TPOT (17.49/s at TPOT 85 ms against a
    50 ms limit, 17.3/s asked: it said more than the rate it refused), and the TPOT reason a plan that
    met the limit. Each is now the best under the workload's other limits (the rate is 17.4/s since
    the capacity became 17.305/s: a lone request's own prompt is no longer charged to it)."""
    import re

    w = Serving(isl=1024, osl=256, ttft_ms=2000, tpot_ms=50, request_rate=17.4)
    with pytest.raises(InfeasibleError) as info:
        solve_serving(load_model("meta-llama/Llama-3.1-8B-Instruct"), Cluster.parse("1x1xH100"), w)
    text = str(info.value)
    # the rate is rated with the TTFT limit holding, its wait for a free slot included (s42 f5)
    rate = re.search(r"meets TPOT ≤ 50 ms carries ([\d.]+)/s with TTFT ≤ 2000 ms", text)
    tpot = re.search(r"TTFT ≤ 2000 ms, 17.4 requests/s reaches ([\d.]+) ms", text)
    assert rate is not None and float(rate.group(1)) < 17.4
    assert tpot is not None and float(tpot.group(1)) > 50


def test_more_gpus_fill_the_node_first_and_name_the_cluster_solved_on() -> None:
    """ "4 x H100 (2x the GPUs)" was solved on 2x2xH100 (pp over the network) while 1x4xH100 serves
    more; on one-GPU nodes it tried pp only and found no fix where tp 2 on one node serves."""
    w = Serving(isl=1024, osl=256, ttft_ms=2000, tpot_ms=50, max_model_len=131072)
    with pytest.raises(InfeasibleError) as info:
        solve_serving(load_model("meta-llama/Llama-3.1-8B-Instruct"), Cluster.parse("1x1xL4"), w)
    assert any(f.startswith("with --cluster 1x2xL4 (2x the GPUs)") for f in info.value.fixes)


def test_a_looser_limit_past_six_digits_is_printed_in_full() -> None:
    """100,000 clients on eight H100s wait about 711 s: the fix said `--ttft-ms 711376` (`:g` keeps
    six digits) for a plan reaching 711376.33 ms, a limit that fails again."""
    w = Serving(isl=1024, osl=256, concurrency=100000, ttft_ms=500)
    with pytest.raises(InfeasibleError) as exc:
        solve_serving(load_model("meta-llama/Llama-3.1-8B"), Cluster.parse("1x8xH100"), w)
    fix = next(f for f in exc.value.fixes if "--ttft-ms" in f and "admits it" in f)
    limit = float(fix.split("so --ttft-ms ")[1].split(" admits")[0])
    reached = float(fix.split("reaches ")[1].split(" ms")[0])
    assert limit >= reached > 1e5


def test_a_ttft_conflict_at_a_rate_quotes_a_plan_that_carries_it() -> None:
    """With no plan meeting both other limits, the TTFT reason quoted the fastest plan that fits,
    whatever the rate it carries (max_num_seqs 1 at 82 ms "at 17.4 requests/s", which carries 4): its
    TTFT held no wait for a free slot. It now quotes the fastest plan that carries the rate, its wait
    for a free slot at that rate included (`perf.rate_slot_wait_s`)."""
    import re

    w = Serving(isl=1024, osl=256, ttft_ms=300, tpot_ms=40, request_rate=17.3)
    with pytest.raises(InfeasibleError) as info:
        solve_serving(load_model("meta-llama/Llama-3.1-8B-Instruct"), Cluster.parse("1x1xH100"), w)
    ttft = re.search(r"fits and carries 17.3 requests/s reaches ([\d.]+) ms \(its wait", str(info.value))
    assert ttft is not None and float(ttft.group(1)) > 300
