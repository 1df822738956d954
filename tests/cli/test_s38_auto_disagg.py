"""`--engine auto` plans vLLM among its engines, so it compares vLLM's prefill/decode disaggregation
as `--engine vllm` does: DeepSeek-V3 on 16x8xH100 at 400 req/s exited 1 ("no vLLM/SGLang/TensorRT-LLM
deployment serves") under auto while `--engine vllm` served it disaggregated, and the throughput
answer on 64x8xH100 was 136,193 tok/s under auto against 482,462 under vllm. SGLang and TensorRT-LLM
alone say why there is no comparison."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoparallel.cli import main

RATE_ONLY_PD = [
    *("plan", "meta-llama/Llama-3.1-70B-Instruct", "--cluster", "2x8xH100", "--isl", "2048", "--osl", "512"),
    *("--ttft-ms", "2000", "--tpot-ms", "20", "--request-rate", "8"),
]
"""tests/cli/test_disagg_cmd.py's case: no aggregated engine carries 8 req/s at TPOT 20 ms; 4P:1D does."""


def test_auto_serves_what_only_vllm_disaggregation_serves(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The single-engine plan's nearest fixes (three engines' tables solved four more times, 6 of this
    # test's 8 s) are checked in tests/solvers/test_remedies.py; the verdict is what is tested here.
    monkeypatch.setattr("autoparallel.solvers.serving.remedies.nearest_fixes", lambda *a, **k: ())
    assert main([*RATE_ONLY_PD, "--engine", "auto"]) == 0
    out = capsys.readouterr().out
    assert "-> disaggregated: only the disaggregated deployment serves 8 req/s" in out


@pytest.mark.parametrize("engine", ["sglang", "trtllm"])
def test_other_engines_say_there_is_no_comparison(engine: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "Qwen/Qwen3-8B", "--cluster", "1x8xH100", "--engine", engine, "--disagg", "auto"]
    assert main(argv) == 0
    assert f"no disaggregation comparison under --engine {engine}" in capsys.readouterr().err
    assert main([*argv[:-1], "on"]) == 2
    assert "--engine vllm or auto" in capsys.readouterr().err


def test_the_default_limit_counts_the_engines_planned() -> None:
    """At the default 10 s the 8 req/s case above spent the limit explaining three engines' single-engine
    infeasibility and exited 1; the default is now 10 s per serving engine the command plans."""
    import argparse

    from autoparallel.cli.fleet_cmd import time_limit

    def args(engine: str | None, limit: float | None = None, train: bool = False) -> argparse.Namespace:
        return argparse.Namespace(engine=engine, time_limit=limit, train=train)

    assert time_limit(args(None)) is None and time_limit(args("vllm")) is None
    assert time_limit(args("sglang")) is None
    assert time_limit(args("auto")) == 30.0
    assert time_limit(args("auto", 5.0)) == 5.0
    assert time_limit(args("megatron", train=True)) is None


def test_a_rate_the_closed_loop_cannot_carry_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    """`pareto --disagg on` blamed the engines' capacity where a cap's closed loop binds: 3P:1D carries
    18.68 req/s round robin, its 24 clients cycle through it at 16.97, short of 17.5."""
    argv = [
        *("pareto", "Qwen/Qwen3-8B", "--cluster", "1x8xH100", "--isl", "8000", "--osl", "64"),
        *("--concurrency", "24", "--request-rate", "17.5", "--disagg", "on"),
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "bound by the 24 clients' cycle through both roles (closed_loop: the roles alone carry" in err
    assert len(err.strip().splitlines()) == 1


def test_disagg_on_is_answered_when_the_aggregated_side_runs_out(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--disagg on solves the required deployment first and the aggregated one for the comparison in
    half of what is left: Qwen3-8B on 2x8xH100 at 128 clients exited 1 ("ran out while the cost
    model's tables were computed") while its disaggregated deployment solves in 0.2 s. An aggregated
    side out of time is said, not fatal."""
    import autoparallel.disagg as disagg
    from autoparallel.errors import SolverTimeoutError

    def out_of_time(*args: object, **kwargs: object) -> None:
        raise SolverTimeoutError("no feasible plan found within 1 s (raise --time-limit)")

    monkeypatch.setattr(disagg, "solve_fleet", out_of_time)
    argv = ["plan", "Qwen/Qwen3-8B", "--cluster", "1x8xH100", "--concurrency", "64", "--disagg", "on"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "P " in out and "| D " in out
    assert "none planned within half of what the disaggregated one left" in out


def test_disagg_on_with_no_time_left_writes_its_plan_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the comparison spends the whole limit the disaggregated answer is printed, and the
    --plan-file holds it (it was silently not written)."""
    from autoparallel.solvers.settings import SolverSettings

    monkeypatch.setattr(SolverSettings, "until", lambda self, deadline: None)
    out = tmp_path / "plan.yaml"
    argv = ["plan", "Qwen/Qwen3-8B", "--cluster", "1x8xH100", "--concurrency", "64", "--disagg", "on"]
    assert main([*argv, "--plan-file", str(out)]) == 0
    assert "No single-engine plan within the time limit" in capsys.readouterr().out
    assert "mode: disaggregated" in out.read_text()


def test_the_ttft_parts_add_up_under_a_closed_loop(capsys: pytest.CaptureFixture[str]) -> None:
    """Under a closed-loop client whose decode engines bind, the disaggregated TTFT is C / X − T by
    Little's law, past the worst pair's own: the parts summed to 93 of 1,363 ms (Qwen3-8B, 96
    clients). The wait for a decode slot is a part of its own now (here about 47 s of 47.5)."""
    import json

    argv = [
        *("plan", "Qwen/Qwen3-8B", "--cluster", "1x8xH100", "--isl", "128", "--osl", "2048"),
        *("--concurrency", "4000", "--disagg", "on"),
    ]
    assert main([*argv, "--json"]) == 0
    dis = json.loads(capsys.readouterr().out)["comparison"]["disaggregated"]
    parts = dis["ttft_parts_ms"]
    assert sum(parts.values()) == pytest.approx(dis["ttft_ms"])
    assert parts["client_wait"] > 0
