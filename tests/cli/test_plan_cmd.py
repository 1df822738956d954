"""`autoparallel plan / evaluate`: exit codes and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoparallel.cli import main


def test_plan_json_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["plan", "meta-llama/Llama-3.2-3B-Instruct", "--cluster", "1x2xH100", "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["vllm"]["command"].startswith("vllm serve meta-llama/Llama-3.2-3B-Instruct")
    assert d["solver"]["status"] in ("OPTIMAL", "FEASIBLE")


def test_plan_text_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["plan", "meta-llama/Llama-3.2-1B", "--cluster", "1xH100", "--isl", "512", "--osl", "128"]) == 0
    )
    out = capsys.readouterr().out
    assert "vllm serve" in out and "KV cache" in out


def test_impossible_request_exits_1_with_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "meta-llama/Llama-3.1-405B", "--cluster", "1x4xL4"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "GiB" in err and "Traceback" not in err


def test_an_infeasible_tensorrt_plan_names_memory_not_a_layout(capsys: pytest.CaptureFixture[str]) -> None:
    """The infeasibility explanation prices every entry, but a TensorRT-LLM attention-DP layout at tp > 1
    has no price (the engine refuses it): the explanation used to stop on that refusal (exit 2, a
    layout message) instead of naming the memory that binds (exit 1, with numbers)."""
    assert main(["plan", "Qwen/Qwen3-235B-A22B", "--cluster", "1x4xH100", "--engine", "trtllm"]) == 1
    err = capsys.readouterr().err
    assert "memory: weights alone need" in err and "enable_attention_dp" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "meta-llama/Llama-3.2-1B", "--cluster", "0xH100"],
        ["plan", "meta-llama/Llama-3.2-1B", "--cluster", "2x8xFOO"],
        ["plan", "no-such/model-x", "--cluster", "1xH100"],
        ["plan", "meta-llama/Llama-3.2-1B", "--cluster", "1xH100", "--workload", "nope"],
        ["plan", "meta-llama/Llama-3.2-1B", "--cluster", "1xH100", "--train"],
    ],
)
def test_bad_input_exits_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "Traceback" not in err


def test_usage_error_exits_2() -> None:
    with pytest.raises(SystemExit) as info:
        main(["plan", "meta-llama/Llama-3.2-1B", "--cluster", "1xH100", "--isl", "0"])
    assert info.value.code == 2


def test_evaluate_serving_json_keys(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["evaluate", "meta-llama/Llama-3.1-8B", "--cluster", "1x2xH100", "--tp", "2", "--json"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and d["fits"]
    for key in ("output_tokens_per_s", "output_tokens_per_s_per_gpu", "ttft_ms", "tpot_ms"):
        assert d["perf"][key] > 0
    assert "gap_to_optimum" in d["solver"]


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_evaluate_optimum_serves_the_model_the_user_named(
    engine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The optimum an evaluation is compared with launches the id the user named: an `-Instruct`
    alias of a zoo entry stays instruct (it used to launch the base model's id), on every engine."""
    argv = ["evaluate", "meta-llama/Llama-3.1-8B-Instruct", "--cluster", "1xH100", "--engine", engine]
    assert main([*argv, "--max-num-seqs", "64", "--json"]) == 0
    solver = json.loads(capsys.readouterr().out)["solver"]
    assert "meta-llama/Llama-3.1-8B-Instruct " in solver["optimum"]["command"]
    assert solver["gap_to_optimum"] > 0


def test_evaluate_that_cannot_start_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["evaluate", "meta-llama/Llama-3.1-70B", "--cluster", "1xH100", "--tp", "1", "--json"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 1 and not d["fits"] and d["problems"]


def test_plan_top_k_lists_several_plans(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "meta-llama/Llama-3.1-8B", "--cluster", "1x4xH100", "--top", "2", "--json"]) == 0
    best = json.loads(capsys.readouterr().out)
    # One shape whatever --top is: the best plan's object, the runners-up under "alternatives".
    assert isinstance(best, dict) and len(best["alternatives"]) == 1
    shape = [(p["config"]["tp"], p["config"]["pp"]) for p in (best, *best["alternatives"])]
    assert shape[0] != shape[1]
    assert main(["plan", "meta-llama/Llama-3.1-8B", "--cluster", "1x4xH100", "--json"]) == 0
    single = json.loads(capsys.readouterr().out)
    assert isinstance(single, dict) and single["alternatives"] == []


def test_plan_train_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "plan",
        "meta-llama/Llama-3.2-1B",
        "--cluster",
        "1x8xH100",
        "--train",
        "--seq-len",
        "4096",
        "--global-batch",
        "64",
        "--json",
    ]
    assert main(argv) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["config"]["world_size"] == 8 and d["perf"]["mfu"] > 0
    assert d["deepspeed"]["config"]["train_batch_size"] == 64


def test_plan_train_for_deepspeed_keeps_to_what_deepspeed_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """Training plans were Megatron's only: an MoE plan under ZeRO-3 (Megatron-FSDP) came with a
    ds_config that DeepSpeed's engine refuses, and no way to plan for DeepSpeed. `--engine deepspeed`
    keeps to the stages DeepSpeed runs; the Megatron plan says why its ds_config is not expressible."""
    argv = ["plan", "Qwen/Qwen3-30B-A3B", "--cluster", "1x8xH100", "--train", "--seq-len", "4096"]
    argv += ["--global-batch", "64", "--json"]
    # Megatron-FSDP (ZeRO-3 as priced) is planned with bf16 gradient reduction, when asked.
    assert main([*argv, "--grad-reduce-in-bf16"]) == 0
    megatron = json.loads(capsys.readouterr().out)
    assert megatron["config"]["zero"] == "3"
    assert "Native DeepSpeed MoE is not supported" in megatron["deepspeed"]["config"]["unavailable"]
    assert main([*argv, "--engine", "deepspeed"]) == 0
    ds = json.loads(capsys.readouterr().out)
    assert ds["config"]["zero"] != "3" and "train_batch_size" in ds["deepspeed"]["config"]
    assert (megatron["framework"], ds["framework"]) == ("megatron", "deepspeed")
    assert main([*argv, "--engine", "megatron", "--grad-reduce-in-bf16"]) == 0
    assert json.loads(capsys.readouterr().out)["config"] == megatron["config"]
    assert main([*argv, "--engine", "vllm"]) == 2
    assert "takes --engine megatron or deepspeed" in capsys.readouterr().err
    assert main(["plan", "Qwen/Qwen3-30B-A3B", "--cluster", "1x8xH100", "--engine", "deepspeed"]) == 2
    assert "is a training framework: add --train" in capsys.readouterr().err


def test_evaluate_training_json_keys(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "evaluate",
        "meta-llama/Llama-3.2-1B",
        "--cluster",
        "1x8xH100",
        "--train",
        "--tp",
        "2",
        "--pp",
        "1",
        "--dp",
        "4",
        "--micro-batch",
        "2",
        "--global-batch",
        "64",
        "--seq-len",
        "4096",
        "--zero",
        "1",
        "--recompute",
        "selective",
        "--json",
    ]
    assert main(argv) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["fits"] and d["memory"]["peak_gib"] > 0
    for key in ("step_time_s", "tokens_per_s_per_gpu", "tflops_per_gpu", "hfu", "mfu"):
        assert d["perf"][key] > 0


def test_evaluate_training_bad_batch_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "evaluate",
        "meta-llama/Llama-3.2-1B",
        "--cluster",
        "1x8xH100",
        "--train",
        "--tp",
        "2",
        "--dp",
        "4",
        "--micro-batch",
        "3",
        "--global-batch",
        "64",
        "--seq-len",
        "4096",
    ]
    assert main(argv) == 2
    assert "multiple" in capsys.readouterr().err


def test_pareto_and_sweep_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pareto", "meta-llama/Llama-3.2-1B", "--cluster", "1x2xH100", "--points", "3"]) == 0
    assert "Pareto front" in capsys.readouterr().out
    assert (
        main(["pareto", "meta-llama/Llama-3.2-1B", "--cluster", "1xH100", "--objectives", "throughput"]) == 2
    )
    capsys.readouterr()
    assert (
        main(
            [
                "sweep",
                "--models",
                "meta-llama/Llama-3.2-1B",
                "--clusters",
                "1xH100,1xT4",
                "--workloads",
                "chatbot",
                "--json",
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 and rows[0]["status"] == "ok"
    assert main(["sweep", "--models", "meta-llama/Llama-3.2-1B", "--clusters", "1xH100"]) == 0
    assert "tok/s" in capsys.readouterr().out


TRAIN_FRONT = ["--train", "--seq-len", "2048", "--global-batch", "16"]


@pytest.mark.parametrize("extra", [[], ["--disagg", "auto"], TRAIN_FRONT])
def test_pareto_counts_its_points_on_a_progress_bar(
    extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A front is one or two CP-SAT queries a point, each up to --time-limit (a 27-point training front
    of Qwen3-30B-A3B on 16 H100s took 2 minutes): `--progress` counts the points on stderr, as `sweep`
    counts its scenarios, and the JSON on stdout stays clean."""
    argv = ["pareto", "meta-llama/Llama-3.2-1B", "--cluster", "1x2xH100", "--points", "3", "--json", *extra]
    assert main([*argv, "--progress"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["points"] and "3 points" in err
    assert main([*argv, "--no-progress"]) == 0
    assert "points" not in capsys.readouterr().err


def test_pareto_train_takes_the_training_defaults_and_refuses_serving_flags(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`pareto --train` without `--precision` failed on "precision=None", without `--objectives` it
    refused its own serving default (throughput,tpot), and it ignored `--ttft-ms` in silence; it now
    fills the training defaults (bf16; throughput vs headroom) and refuses the other mode's flags,
    as `plan` and `evaluate` do."""
    train = ["pareto", "meta-llama/Llama-3.2-1B", "--cluster", "1x2xH100", "--train", "--seq-len", "2048"]
    assert main([*train, "--global-batch", "16", "--points", "3", "--json"]) == 0
    front = json.loads(capsys.readouterr().out)
    assert front["objectives"] == ["throughput", "memory"]
    assert main([*train, "--global-batch", "16", "--ttft-ms", "5"]) == 2
    assert "--ttft-ms does not apply to a training job" in capsys.readouterr().err
    assert main(["pareto", "meta-llama/Llama-3.2-1B", "--cluster", "1x2xH100", "--seq-len", "2048"]) == 2
    assert "--seq-len does not apply to serving" in capsys.readouterr().err


def test_evaluate_other_engines(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["evaluate", "meta-llama/Llama-3.2-1B", "--cluster", "1xH100", "--engine", "sglang"]
    assert main(argv) == 0
    assert "sglang.launch_server" in capsys.readouterr().out


def _evaluate_small(engine: str, *extra: str) -> list[str]:
    """`evaluate` argv for Llama-3.2-1B on one H100 with `engine` and `extra` flags."""
    return ["evaluate", "meta-llama/Llama-3.2-1B", "--cluster", "1xH100", "--engine", engine, *extra]


@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm"])
def test_evaluate_at_a_request_rate_reports_that_load(
    engine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --request-rate the figures at that load come beside the full-load ones (which the limits
    are checked against): fewer running requests, a shorter TPOT."""
    argv = _evaluate_small(engine, "--request-rate", "2")
    assert main([*argv, "--json"]) in (0, 1)
    d = json.loads(capsys.readouterr().out)
    perf = d["perf"]
    at = perf["at_request_rate"]
    assert (
        at["request_rate"] == 2 and at["batch_size"] < perf["batch_size"] and at["tpot_ms"] < perf["tpot_ms"]
    )
    main(argv)
    assert "at 2 requests/s:" in capsys.readouterr().out


@pytest.mark.parametrize("engine", ["sglang", "trtllm"])
def test_evaluate_a_batch_on_other_engines_replays_it(
    engine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A `batch` workload (N prompts at once) on SGLang or TensorRT-LLM is replayed with that engine's
    scheduler, as on vLLM: the finite benchmark's lines come with the steady state."""
    argv = _evaluate_small(engine, "--workload", "batch")
    assert main([*argv, "--json"]) == 0
    bench = json.loads(capsys.readouterr().out)["perf"]["benchmark"]
    assert bench["num_prompts"] == 1000 and bench["output_tokens_per_s"] > 0 and bench["mean_ttft_ms"] > 0
    assert main(argv) == 0
    assert "finite benchmark (1000 prompts sent at once" in capsys.readouterr().out


def test_num_prompts_at_a_rate_replays_vllm_bench_serve_at_that_rate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--num-prompts 300 --request-rate 4`: the replay sends 300 prompts as `vllm bench serve
    --request-rate 4` does (Poisson), so it lasts at least 75 s and delivers about 4 x osl tokens/s,
    where the same prompts sent at once take a few seconds. `--burstiness 0.1` sends them in
    clumps: the same mean rate, longer queues."""
    argv = ["evaluate", "Qwen/Qwen3-8B", "--cluster", "1x1xH100", "--isl", "300", "--osl", "100"]
    argv += ["--num-prompts", "300", "--json"]
    runs = {}
    for name, extra in (("at once", []), ("poisson", ["--request-rate", "4"])):
        assert main([*argv, *extra]) == 0
        runs[name] = json.loads(capsys.readouterr().out)["perf"]["benchmark"]
    assert main([*argv, "--request-rate", "4", "--burstiness", "0.1"]) == 0
    runs["bursty"] = json.loads(capsys.readouterr().out)["perf"]["benchmark"]
    at_once, poisson, bursty = runs["at once"], runs["poisson"], runs["bursty"]
    assert at_once["request_rate"] is None and at_once["duration_s"] < 20
    assert poisson["request_rate"] == 4 and poisson["duration_s"] >= 75
    assert 0.9 * 400 < poisson["output_tokens_per_s"] <= 400 * 1.01
    assert poisson["mean_ttft_ms"] < 0.1 * at_once["mean_ttft_ms"]
    assert bursty["burstiness"] == 0.1 and bursty["peak_batch"] > 2 * poisson["peak_batch"]
    assert bursty["p99_ttft_ms"] > poisson["p99_ttft_ms"]
    assert main([*argv[:-1], "--request-rate", "4"]) == 0
    assert "300 prompts at 4 requests/s, Poisson arrivals" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--burstiness", "0.5", "--request-rate", "2"], "add --num-prompts"),
        (["--burstiness", "0.5", "--num-prompts", "10"], "give a request_rate"),
        (
            [
                "--num-prompts",
                "10",
                "--burstiness",
                "2",
                "--request-rate",
                "2",
                "--cluster",
                "1x1xH100+1x1xA100-80G",
            ],
            "has no replay",
        ),
    ],
)
def test_replay_flags_that_would_do_nothing_are_refused(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["plan", "Qwen/Qwen3-8B", "--cluster", "1x1xH100", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_plan_for_a_batch_replays_the_chosen_plan(engine: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`plan --workload batch` (N prompts at once) replays the chosen plan's benchmark with its engine's
    scheduler; the alternatives of --top are not replayed."""
    argv = [
        "plan",
        "meta-llama/Llama-3.2-1B",
        "--cluster",
        "1x2xH100",
        "--workload",
        "batch",
        "--engine",
        engine,
    ]
    assert main([*argv, "--top", "2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["engine"] == engine and d["perf"]["benchmark"]["num_prompts"] == 1000
    assert all("benchmark" not in alt["perf"] for alt in d["alternatives"])


def test_evaluating_moe_replicas_without_ep_says_they_run_separately(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`evaluate --dp N` on a MoE model without EP prices N separate engines and launches them so;
    a note says vLLM's --data-parallel-size would be another deployment. Dense models get no note."""
    assert main(["evaluate", "Qwen/Qwen3-30B-A3B", "--cluster", "1x8xH100", "--tp", "2", "--dp", "4"]) == 0
    out, err = capsys.readouterr()
    assert "4 separate engines" in err and "CUDA_VISIBLE_DEVICES=6,7" in out
    assert (
        main(["evaluate", "meta-llama/Llama-3.1-8B", "--cluster", "1x8xH100", "--tp", "2", "--dp", "4"]) == 0
    )
    out, err = capsys.readouterr()
    assert "separate engines" not in err and "--data-parallel-size 4" in out


def test_custom_shape_does_not_inherit_chatbot_limits(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "meta-llama/Llama-3.2-1B", "--cluster", "1xH100", "--isl", "65536", "--osl", "64"]
    argv.append("--json")
    assert main(argv) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["workload"]["ttft_ms"] is None and d["workload"]["name"] == "custom"


def test_plan_may_choose_fp8_when_allowed(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["plan", "meta-llama/Llama-3.1-8B", "--cluster", "1xL4", "--isl", "4096", "--osl", "512", "--json"]
    assert main(base) == 0
    plain = json.loads(capsys.readouterr().out)
    assert plain["config"]["kv_cache_dtype"] == "auto" and plain["config"]["quantization"] is None
    assert main([*base, "--kv-cache-dtype", "auto,fp8", "--quantization", "none,fp8"]) == 0
    widened = json.loads(capsys.readouterr().out)
    tps = widened["perf"]["output_tokens_per_s"]
    assert tps >= plain["perf"]["output_tokens_per_s"]  # a wider space never loses
    assert "fp8" in (widened["config"]["kv_cache_dtype"], widened["config"]["quantization"])


@pytest.mark.parametrize("flag", [["--kv-cache-dtype", ","], ["--gpu-memory-utilization", "x"]])
def test_plan_bad_allowed_values_exit_2(flag: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "meta-llama/Llama-3.2-1B", "--cluster", "1xH100", *flag]) == 2
    assert capsys.readouterr().err.startswith("error:")


# ----- regressions of issue 8 (one solver core, one registry, one source per fact) -------------------
def test_bfloat16_kv_cache_plans_normally(capsys: pytest.CaptureFixture[str]) -> None:
    # The tables and the float model once took KV bytes from two functions (1 vs 2 bytes): exit 3.
    argv = [
        "plan",
        "meta-llama/Llama-3.1-70B",
        "--cluster",
        "1x4xH100",
        "--isl",
        "8192",
        "--osl",
        "1024",
        "--kv-cache-dtype",
        "bfloat16",
        "--json",
    ]
    assert main(argv) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["config"]["kv_cache_dtype"] == "bfloat16" and d["fits"]
    assert "--kv-cache-dtype bfloat16" in d["vllm"]["command"]


def test_training_headroom_objective_from_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "plan",
        "meta-llama/Llama-3.2-1B",
        "--cluster",
        "1x8xH100",
        "--train",
        "--seq-len",
        "2048",
        "--global-batch",
        "64",
        "--objective",
        "headroom",
        "--json",
        "--time-limit",
        "5",
    ]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["objective"] == "memory>throughput"


def test_a_training_objective_for_serving_is_a_clear_input_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "meta-llama/Llama-3.2-1B", "--cluster", "1xH100", "--objective", "mfu"]) == 2
    err = capsys.readouterr().err
    assert "'mfu' is a training objective" in err and "Traceback" not in err


def test_pareto_accepts_the_headroom_alias(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "pareto",
        "meta-llama/Llama-3.2-1B",
        "--cluster",
        "1x2xH100",
        "--objectives",
        "throughput,headroom",
        "--points",
        "3",
    ]
    assert main(argv) == 0
    assert "throughput vs memory" in capsys.readouterr().out


def test_sweep_with_an_objective_no_workload_accepts_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sweep", "--models", "meta-llama/Llama-3.2-1B", "--clusters", "1xH100", "--objective", "mfu"]
    assert main(argv) == 2
    assert "'mfu' is a training objective" in capsys.readouterr().err


def test_deepseek_v3_training_is_explained_by_memory_alone(capsys: pytest.CaptureFixture[str]) -> None:
    # 1024 = micro-batch 1 × dp 128 × grad-accum 8: the batch, ZeRO/pipeline and stage rules all hold, so
    # none of them may be blamed; memory is the cause, with its numbers.
    argv = [
        "plan",
        "deepseek-ai/DeepSeek-V3",
        "--cluster",
        "16x8xH100",
        "--train",
        "--seq-len",
        "4096",
        "--global-batch",
        "1024",
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err
    reasons = [line for line in err.splitlines() if line.startswith("  - ")]
    assert len(reasons) == 1 and reasons[0].startswith("  - memory:"), err
    assert "GiB" in reasons[0] and "usable" in reasons[0]


def test_sharegpt_preset_replays_1000_prompts_of_the_published_shape(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--workload sharegpt` is `vllm bench serve --dataset-name sharegpt --num-prompts 1000`: a finite
    benchmark drawn from ShareGPT's published length histograms, so the short outputs pull the mean
    TPOT (a mean over requests) above the median, as published ShareGPT runs show."""
    assert main([*_evaluate_small("vllm", "--workload", "sharegpt"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["workload"]["osl_quantiles"] and d["config"]["max_model_len"] == 2048
    bench = d["perf"]["benchmark"]
    assert bench["num_prompts"] == 1000 and bench["mean_tpot_ms"] > 1.2 * bench["median_tpot_ms"]


@pytest.mark.parametrize(
    ("cluster", "engine", "seqs"),
    [
        ("1xH100", "vllm", 1024),
        ("1xA100-80G", "vllm", 256),
        ("1xL4", "vllm", 256),
        ("1xH100", "sglang", 4096),  # the request slots its pool gives, 2,048 to 4,096
        ("1xH100", "trtllm", 2048),  # trtllm-serve max_batch_size (BuildConfig) per stage
    ],
)
def test_evaluate_without_max_num_seqs_takes_the_engines_default(
    cluster: str, engine: str, seqs: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """`evaluate` prices what a bare server runs: vLLM's own max_num_seqs for the GPU (1,024 on GPUs of
    70 GiB and more but A100, 256 on the rest), SGLang's from its pool (`--max-running-requests` left
    to SGLang); TensorRT-LLM its max_batch_size 2048 per pipeline stage."""
    argv = ["evaluate", "meta-llama/Llama-3.2-1B", "--cluster", cluster, "--engine", engine, "--json"]
    assert main(argv) in (0, 1)
    assert json.loads(capsys.readouterr().out)["config"]["max_num_seqs"] == seqs


def test_the_time_limit_bounds_the_whole_plan_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`plan MODEL` solves the single-engine plan, then the whole-cluster deployment and the
    disaggregation comparison: each section gets what the one --time-limit leaves, and a section with
    nothing left is skipped with a note. Each used to get the whole limit (`plan meta-llama/Llama-3.2-1B
    --cluster 512x8xH100 --time-limit 5` took 6.4 s in the fuzz)."""
    import time

    from autoparallel import api, disagg, fleet

    limits: dict[str, float] = {}
    real_top, real_fleet, real_compare = api.solve_top, fleet.solve_fleet, disagg.compare_disagg

    def slow_top(*a: object, **k: object) -> object:
        limits["plan"] = k["settings"].time_limit_s  # type: ignore[union-attr]
        time.sleep(0.6)
        return real_top(*a, **k)  # type: ignore[arg-type]

    def spy(name: str, real: object) -> object:
        def call(*a: object, **k: object) -> object:
            limits[name] = k["settings"].time_limit_s  # type: ignore[union-attr]
            return real(*a, **k)  # type: ignore[operator]

        return call

    monkeypatch.setattr(api, "solve_top", slow_top)
    monkeypatch.setattr(fleet, "solve_fleet", spy("whole", real_fleet))
    monkeypatch.setattr(disagg, "compare_disagg", spy("disagg", real_compare))
    argv = ["plan", "meta-llama/Llama-3.2-1B", "--cluster", "2x8xH100", "--json"]
    assert main([*argv, "--time-limit", "20"]) == 0
    assert 19.9 < limits["plan"] <= 20 and limits["disagg"] <= limits["whole"] < 19.4
    capsys.readouterr()
    limits.clear()
    assert main([*argv, "--time-limit", "0.5"]) == 0  # the plan itself ends at its limit
    err = capsys.readouterr().err
    assert "no whole-cluster deployment section: the sections above spent the time limit" in err
    assert "no disaggregation comparison: the sections above spent the time limit" in err
    assert set(limits) == {"plan"}


def test_the_whole_cluster_section_says_how_it_compares_with_the_plan_above(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The single-engine plan holds one EP engine; the deployment below it may split the GPUs into
    several (Qwen3-30B-A3B under SGLang on 2x8xH100: 21% more). The two sections gave two answers
    and no word on which serves more."""
    argv = ["plan", "Qwen/Qwen3-30B-A3B", "--cluster", "2x8xH100", "--engine", "sglang"]
    assert main([*argv, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    mine, theirs = d["deployment"]["throughput_tokens_per_s"], d["perf"]["output_tokens_per_s"]
    assert mine > theirs
    assert main(argv) == 0
    out = capsys.readouterr().out
    import re

    pattern = r"vs the single-engine plan above: ([\d,]+) vs ([\d,]+) output tokens/s at capacity"
    found = re.search(pattern, out)
    assert found is not None  # the JSON rounds to 0.1 tokens/s, the text to 1: compare within 1
    assert [float(g.replace(",", "")) for g in found.groups()] == pytest.approx([mine, theirs], abs=1.0)
    assert out.index("Whole cluster") < found.start() < out.index("Deployment on")


def test_a_plan_file_that_cannot_be_written_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--plan-file` holds the whole-cluster deployment (or the disaggregated one the comparison picks).
    When the time limit is spent before that section, the command exited 0 and wrote nothing, leaving
    an older file of that name as if it were this plan's; now it exits 1 and says so."""
    import time

    from autoparallel import api

    real_top = api.solve_top

    def slow_top(*a: object, **k: object) -> object:
        time.sleep(1.1)  # the plan then has its 1 s from here; the sections after it none
        return real_top(*a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(api, "solve_top", slow_top)
    path = tmp_path / "pf.yaml"
    path.write_text("stale\n")
    argv = ["plan", "meta-llama/Llama-3.2-1B", "--cluster", "2x8xH100", "--time-limit", "1"]
    assert main([*argv, "--plan-file", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"--plan-file {path}: not written (a file of that name is left as it was)" in err
    assert "time limit" in err and path.read_text() == "stale\n"


@pytest.mark.parametrize("command", ["plan", "evaluate", "pareto"])
def test_a_preset_and_a_workload_file_together_are_refused(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A workload file's SLOs silently replaced the preset's; fleet entries and sweep scenarios refuse
    the pair, and so do the commands."""
    from autoparallel.workload import Serving

    traffic = tmp_path / "traffic.json"
    traffic.write_text(Serving(isl=512, osl=128, request_rate=2).model_dump_json())
    argv = [command, "meta-llama/Llama-3.2-1B", "--cluster", "1xH100", "--workload", "chatbot"]
    assert main([*argv, "--workload-file", str(traffic)]) == 2
    err = capsys.readouterr().err.strip()
    assert "a workload is a preset or a workload file, not both" in err and err.count("\n") == 0


def test_the_whole_cluster_section_names_the_shapes_it_could_not_place(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Node packing takes engine sizes in a divisibility chain; the shapes outside it were dropped in
    silence, under an OPTIMAL that the single-engine plan above could beat (72-GPU GB200 nodes)."""
    assert main(["plan", "meta-llama/Llama-3.2-1B", "--cluster", "1x6xH100"]) == 0
    out = capsys.readouterr().out
    assert "not placed (size neither a power of two up to the node / NVLink domain nor whole nodes)" in out
    assert "tp=1 pp=3" in out


def test_a_rate_beyond_one_engine_is_served_by_the_whole_cluster_deployment(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`plan` fell back only to disaggregation: with --disagg off (or an engine without it) a rate no
    single engine carries exited 1 while the whole-cluster deployment it would print carried it
    (Llama-3.1-70B on 3x8xH100 at 55.6 requests/s: the best single plan completes 55.47/s). No TTFT
    limit: with one, both count the wait for a free slot at the rate (`perf.rate_slot_wait_s`,
    `deployment.space.rated_milli_tps`), and the single engine's pooled ranks carry about as much as
    the deployment's separate engines."""
    argv = ["plan", "meta-llama/Llama-3.1-70B", "--cluster", "3x8xH100", "--isl", "512", "--osl", "512"]
    argv += ["--tpot-ms", "60", "--request-rate", "55.6", "--disagg", "off"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("No single-engine plan serves the request:") and "UNMET" not in out
    assert "Whole cluster (deployment planner, several engines):" in out
    assert main([*argv, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert "single_engine" in d and d["deployment"]["mode"] == "aggregated"


def test_top_never_repeats_a_shape_of_an_moe_model(capsys: pytest.CaptureFixture[str]) -> None:
    """The k-best cut forbade "not all" of a shape's twins (tp 1 with EP over one replica is the plain
    tp 1 shape), which one-hot shapes always meet: `--top 6` of Qwen3-30B-A3B on 2 H100s listed its
    fifth plan twice instead of saying that 5 shapes fit."""
    assert main(["plan", "Qwen/Qwen3-30B-A3B", "--cluster", "2xH100", "--json", "--top", "6"]) == 0
    captured = capsys.readouterr()
    d = json.loads(captured.out)
    configs = [
        (p["config"]["tp"], p["config"]["pp"], p["config"]["replicas"]) for p in [d, *d["alternatives"]]
    ]
    shapes = [
        (p["config"]["tp"], p["config"]["pp"], p["config"]["enable_expert_parallel"])
        for p in [d, *d["alternatives"]]
    ]
    assert len(set(shapes)) == len(shapes) and len(configs) == 5
    assert "5 distinct plan shape(s)" in captured.err


def test_a_plan_file_says_when_it_is_not_at_the_objective_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--objective ttft --plan-file` wrote the throughput deployment with no word: ttft is a
    single-engine objective the deployment planner does not take."""
    f = tmp_path / "p.yaml"
    argv = ["plan", "meta-llama/Llama-3.2-1B", "--cluster", "1x2xH100", "--plan-file", str(f)]
    assert main([*argv, "--objective", "ttft"]) == 0
    assert "--objective ttft is a single-engine objective" in capsys.readouterr().err
    assert main([*argv, "--objective", "throughput"]) == 0
    assert "single-engine objective" not in capsys.readouterr().err


def test_flags_over_the_default_preset_keep_its_name_and_say_which_limit_it_imposes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--request-rate` alone kept the chatbot limits but named the workload custom, so the fix
    "a looser --tpot-ms" did not say the preset imposed it; a limit the user gave is not the preset's."""
    argv = ["plan", "meta-llama/Llama-3.1-8B-Instruct", "--cluster", "1x1xL4", "--request-rate", "0.5"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert (
        "serves the chatbot workload" in err and "a looser --tpot-ms (the chatbot preset imposes it)" in err
    )
    assert main([*argv, "--tpot-ms", "60"]) == 1
    err = capsys.readouterr().err
    assert "a looser --tpot-ms" in err and "preset imposes it" not in err


def test_a_tpot_limit_on_one_token_outputs_is_dropped_with_a_note(capsys: pytest.CaptureFixture[str]) -> None:
    """TPOT times the tokens after the first; `vllm bench serve` reports it only for outputs longer
    than one token. `--osl 1 --tpot-ms 30` exited 1 on tpot_slo, and `--tpot-ms 50` chose
    max_num_seqs 1 (a third of the throughput) to meet a limit nothing measures."""
    from autoparallel.workload import Serving

    assert Serving(osl=1, tpot_ms=30).tpot_ms is None and Serving(osl=1, osl_cv=1, tpot_ms=30).tpot_ms == 30
    argv = ["plan", "meta-llama/Llama-3.2-1B", "--cluster", "1xH100", "--isl", "1024", "--osl", "1"]
    assert main([*argv, "--tpot-ms", "1", "--json"]) == 0
    captured = capsys.readouterr()
    assert "--tpot-ms dropped" in captured.err
    assert main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["config"] == json.loads(captured.out)["config"]
    assert main([*argv, "--disagg", "off"]) == 0
    assert "step ms (one-token outputs: no TPOT)" in capsys.readouterr().out
