"""vLLM's gpu_memory_utilization is left out of SGLang and TensorRT-LLM configs in every JSON that shows
one (s34 bug 3): the runner-up, the evaluated plan's optimum and `plan --engine auto`'s comparison,
as `ServingPlan.to_dict` leaves it out of the plan's own config (docs/sweeps.md)."""

from __future__ import annotations

import json

import pytest

from autoparallel import api
from autoparallel.cli import main
from autoparallel.configs import ServingConfig
from autoparallel.plan import RunnerUp

KNOB = "gpu_memory_utilization"


def test_config_dict_and_the_runner_up_drop_the_knob_off_vllm() -> None:
    from autoparallel.configs import config_dict

    c = ServingConfig(tp=2)
    assert KNOB in config_dict(c) and KNOB in config_dict(c, "vllm")
    for engine in ("sglang", "trtllm"):
        assert KNOB not in config_dict(c, engine)
        assert KNOB not in RunnerUp(config=c, why_lost="slower", engine=engine).to_dict()["config"]
    assert KNOB in RunnerUp(config=c, why_lost="slower", engine="vllm").to_dict()["config"]


@pytest.mark.parametrize("engine", ["sglang", "trtllm"])
def test_the_optimum_an_evaluation_is_compared_with_has_no_vllm_knob(engine: str) -> None:
    plan = api.evaluate("Qwen/Qwen3-8B", "1x1xH100", ServingConfig(), "chatbot", compare=True, engine=engine)
    optimum = plan.to_dict()["solver"]["optimum"]
    assert optimum is not None and KNOB not in optimum["config"]
    assert KNOB not in plan.to_dict()["config"]


def test_plan_engine_auto_compares_engines_without_the_vllm_knob_off_vllm(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["plan", "Qwen/Qwen3-8B", "--cluster", "1x1xH100", "--engine", "auto", "--json"]) == 0
    engines = json.loads(capsys.readouterr().out)["comparison"]["engines"]
    assert {e["engine"] for e in engines} == {"vllm", "sglang", "trtllm"}
    for e in engines:
        if "config" in e:
            assert (KNOB in e["config"]) == (e["engine"] == "vllm"), e["engine"]
