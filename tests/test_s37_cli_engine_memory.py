"""SGLang's `--mem-fraction-static` and TensorRT-LLM's `free_gpu_memory_fraction`: ServingConfig fields
(None: the engine's default) that size the engine's pool (memory.sglang.sglang_server_kv,
memory.trtllm.trtllm_server_kv) and reach its launch, refused for the wrong engine
(perf.serving_engines.memory_knob_problem) and on plan."""

from __future__ import annotations

import pytest
import yaml

import autoparallel as ap
from autoparallel.cli import main

V007_LOGGED_TOKENS = 367_404
"""SGLang at --mem-fraction-static 0.93, Qwen3-235B-A22B-FP8 on 4 H100 (tp 4): reference row V007 of
shared/reference/vllm_logs_dev.csv."""


def test_sglang_pool_at_a_given_fraction_meets_v007() -> None:
    """At the default (0.823) evaluate said 175,920 tokens where SGLang at 0.93 logged 367,404."""
    config = ap.ServingConfig(tp=4, quantization="fp8", max_model_len=40960, mem_fraction_static=0.93)
    plan = ap.evaluate("Qwen/Qwen3-235B-A22B", "1x4xH100", config, engine="sglang", compare=False)
    assert plan.engine_eval is not None
    tokens = plan.engine_eval.memory.kv_cache_tokens
    assert tokens == pytest.approx(V007_LOGGED_TOKENS, rel=0.02)
    assert plan.memory_rule == "--mem-fraction-static 0.930"
    assert " --mem-fraction-static 0.93 " in plan.command


def test_trtllm_pool_and_yaml_at_a_given_fraction() -> None:
    half = ap.ServingConfig(max_model_len=2048, max_num_seqs=64, free_gpu_memory_fraction=0.45)
    default = half.model_copy(update={"free_gpu_memory_fraction": None})
    tokens = []
    for config in (half, default):
        plan = ap.evaluate("Qwen/Qwen3-8B", "1x1xH100", config, engine="trtllm", compare=False)
        assert plan.engine_eval is not None
        tokens.append(plan.engine_eval.memory.kv_cache_tokens)
        written = yaml.safe_load(plan.engine_artifacts()["extra_options_yaml"])
        given = 0.9 if config.free_gpu_memory_fraction is None else config.free_gpu_memory_fraction
        assert written["kv_cache_config"]["free_gpu_memory_fraction"] == given
    assert tokens[0] == pytest.approx(tokens[1] / 2, rel=0.01)  # 0.45 of the free memory vs 0.9


@pytest.mark.parametrize(
    ("field", "engine", "said"),
    [
        ("mem_fraction_static", "vllm", "mem_fraction_static is SGLang's knob; vLLM sizes its KV pool by"),
        ("mem_fraction_static", "trtllm", "its own free_gpu_memory_fraction (--free-gpu-memory-fraction"),
        ("free_gpu_memory_fraction", "sglang", "its own mem_fraction_static (--mem-fraction-static"),
        ("gpu_memory_utilization", "sglang", "gpu_memory_utilization is vLLM's knob; SGLang sizes its KV"),
    ],
)
def test_another_engines_memory_knob_is_refused_for_its_own(field: str, engine: str, said: str) -> None:
    config = ap.ServingConfig(max_model_len=2048, **{field: 0.5})
    with pytest.raises(ap.InputError, match=said.replace("(", r"\(")):
        ap.evaluate("Qwen/Qwen3-8B", "1x1xH100", config, engine=engine, compare=False)


def test_the_fractions_are_validated() -> None:
    given = ap.ServingConfig(mem_fraction_static=0.5, free_gpu_memory_fraction=1.0)
    assert (given.mem_fraction_static, given.free_gpu_memory_fraction) == (0.5, 1.0)
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="mem_fraction_static"):
            ap.ServingConfig(mem_fraction_static=bad)
        with pytest.raises(ValueError, match="free_gpu_memory_fraction"):
            ap.ServingConfig(free_gpu_memory_fraction=bad)


EVALUATE = ["evaluate", "Qwen/Qwen3-8B", "--cluster", "1x1xH100", "--max-model-len", "2048"]


def test_evaluate_flags(capsys: pytest.CaptureFixture[str]) -> None:
    """`evaluate --engine sglang --gpu-memory-utilization 0.93` told the user SGLang sizes its pool "at
    its default" and there was no flag to give another."""
    assert main([*EVALUATE, "--engine", "sglang", "--mem-fraction-static", "0.8"]) == 0
    assert "--mem-fraction-static 0.8 " in capsys.readouterr().out
    assert main([*EVALUATE, "--engine", "trtllm", "--free-gpu-memory-fraction", "0.6"]) == 0
    assert "free_gpu_memory_fraction: 0.6" in capsys.readouterr().out
    assert main([*EVALUATE, "--engine", "sglang", "--gpu-memory-utilization", "0.93"]) == 2
    err = capsys.readouterr().err
    assert "SGLang sizes its KV pool by its own --mem-fraction-static" in err and len(err.splitlines()) == 1
    assert main([*EVALUATE, "--mem-fraction-static", "0.9"]) == 2
    assert "--mem-fraction-static is SGLang's knob; vLLM" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="2"):  # argparse: out of (0, 1]
        main([*EVALUATE, "--engine", "sglang", "--mem-fraction-static", "1.2"])


def test_plan_refuses_a_fixed_engine_fraction_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """The serving planner's tables size SGLang's and TensorRT-LLM's pools at their defaults."""
    for flag, engine in (("--mem-fraction-static", "sglang"), ("--free-gpu-memory-fraction", "trtllm")):
        assert main(["plan", "Qwen/Qwen3-8B", "--cluster", "1x1xH100", "--engine", engine, flag, "0.9"]) == 2
        err = capsys.readouterr().err
        assert f"{flag}: the planner sizes" in err and "autoparallel evaluate" in err
        assert len(err.splitlines()) == 1


def test_a_fraction_of_one_leaves_nothing_for_start_up() -> None:
    """`--mem-fraction-static 1` was priced as fitting: SGLang sizes the pool out of total ·
    fraction and leaves the rest, here nothing, for its CUDA graphs and activations."""
    import autoparallel as ap

    config = ap.ServingConfig(mem_fraction_static=1.0, max_model_len=2048)
    ev = ap.evaluate("Qwen/Qwen3-8B", "1xH100", config, ap.Serving(isl=512, osl=256), engine="sglang")
    assert ev.engine_eval is not None and not ev.engine_eval.fits
    assert "leaves 0.0 GiB per GPU beside weights and KV pool" in ev.engine_eval.problems[0]
    ok = config.model_copy(update={"mem_fraction_static": 0.9})
    assert ap.evaluate(
        "Qwen/Qwen3-8B", "1xH100", ok, ap.Serving(isl=512, osl=256), engine="sglang"
    ).engine_eval.fits
