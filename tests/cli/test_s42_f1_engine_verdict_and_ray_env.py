"""s42 f1: two things `plan` printed wrong.

1. `plan --engine auto --json` with the disaggregation comparison: `comparison.winner` said "vllm" while
   `comparison.why` and `deployment.mode` said the disaggregated deployment wins (plan_cmd merged the
   engines' comparison, `engine_compare.comparison_dict`, into the disaggregation one and its `winner`
   overwrote the aggregated/disaggregated verdict). The engines' keys are now `engine_winner` and
   `engine_objective` beside `engines`; `winner`, `measure` and `why` are the deployment verdict's.
2. The text launch of a vLLM plan whose Ray data-parallel ranks span nodes left out
   `VLLM_RAY_DP_PACK_STRATEGY=span`, which `--json` carries in `vllm.launch.env`: each line now carries the
   launch's environment, as the disaggregated and whole-cluster launch lines do (`VAR=value line`).
"""

from __future__ import annotations

import json

import pytest

from autoparallel.cli import main

AUTO = ["plan", "meta-llama/Llama-3.1-8B", "--cluster", "1x4xL40S", "--engine", "auto", "--json"]
RAY_DP = ["plan", "meta-llama/Llama-3.1-405B", "--cluster", "4x8xH100", "--engine", "vllm", "--disagg", "off"]


def test_auto_engines_keep_the_disaggregation_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(AUTO) == 0
    out = json.loads(capsys.readouterr().out)
    comp = out["comparison"]
    # the deployment verdict: one winner, the recommended deployment's mode, which its `why` names
    assert comp["winner"] in ("aggregated", "disaggregated")
    assert comp["winner"] == out["deployment"]["mode"]
    assert comp["why"].startswith(f"objective {comp['measure']}:")
    # the engines' comparison under its own keys, its winner the plan's engine
    assert comp["engine_winner"] == out["engine"]
    assert comp["engine_objective"] == out["objective"]
    assert [e["engine"] for e in comp["engines"]] == ["vllm", "sglang", "trtllm"]
    assert "objective" not in comp


def test_auto_engines_without_disaggregation_use_the_same_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*AUTO, "--disagg", "off"]) == 0
    out = json.loads(capsys.readouterr().out)
    comp = out["comparison"]
    assert comp["engine_winner"] == out["engine"] and "winner" not in comp
    assert [e["engine"] for e in comp["engines"]] == ["vllm", "sglang", "trtllm"]


def test_ray_data_parallel_text_launch_prints_its_env(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*RAY_DP, "--json"]) == 0
    launch = json.loads(capsys.readouterr().out)["vllm"]["launch"]
    assert launch["env"] == {"VLLM_RAY_DP_PACK_STRATEGY": "span"}
    assert main(RAY_DP) == 0
    text = capsys.readouterr().out
    section = text[text.index("vllm serve:\n") : text.index("\n\n", text.index("vllm serve:\n"))]
    lines = [x.strip() for x in section.splitlines()]
    serve = [x for x in lines if "vllm serve meta-llama" in x]
    ray = [x for x in lines if "ray start" in x]
    assert len(serve) == 2 and len(ray) == 4  # the headline and node 0's; one Ray line per node
    assert "--data-parallel-backend ray" in serve[0]
    # every line a user copies carries the environment the launch needs
    for line in serve + ray:
        assert line.startswith("VLLM_RAY_DP_PACK_STRATEGY=span "), line
