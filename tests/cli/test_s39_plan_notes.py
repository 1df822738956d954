"""`plan`'s notes and wording: a finite benchmark the deployment planner plans (preset, workload file or
--num-prompts alike, `plan_cmd.unreplayed_note`), the time-out messages' limits, and the nearest fixes'
smallest change of a kind (`remedies.nearest_fixes`)."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any, cast

import pytest

from autoparallel.cli import main
from autoparallel.errors import InfeasibleError, SolverTimeoutError
from autoparallel.hardware import Cluster
from autoparallel.models.spec import ModelSpec
from autoparallel.solvers import driver
from autoparallel.solvers.deployment import driver as deployment_driver
from autoparallel.solvers.serving.decoder import ServingSolution
from autoparallel.solvers.serving.remedies import nearest_fixes
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.solvers.settings import RAISE_LIMIT, SolverSettings
from autoparallel.solvers.training import decompose
from autoparallel.workload import Serving

STEADY = "are planned as the deployment's steady state, not replayed"
GPUS = ["plan", "meta-llama/Llama-3.2-1B", "--cluster", "1x1xH100", "--objective", "gpus"]


def test_a_presets_prompts_under_a_deployment_objective_are_noted_as_the_flag_is(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The batch preset's num_prompts was planned as a steady state without a word (exit 0), where the
    same value as --num-prompts was refused (exit 2) though the deployment planner plans it
    (`DeploymentSpace.open_loop_prompts`): both are now planned and noted, as a workload file's is."""
    argv = [*GPUS, "--workload", "batch", "--request-rate", "1", "--json"]
    assert main(argv) == 0
    preset = capsys.readouterr()
    said = f"the batch preset's 1000 prompts {STEADY}: --objective gpus is planned by the deployment planner"
    assert said in preset.err and said in json.loads(preset.out)["notes"][0]
    assert main([*argv, "--num-prompts", "1000"]) == 0
    flag = capsys.readouterr()
    assert f"--num-prompts 1000: the 1000 prompts {STEADY}" in flag.err
    plans = [json.loads(out)["deployment"]["models"] for out in (flag.out, preset.out)]
    assert plans[0] == plans[1]


def test_a_mixed_pool_sharegpt_burst_is_noted(capsys: pytest.CaptureFixture[str]) -> None:
    """README's sharegpt is --num-prompts 1000: on several pools it was planned as a burst, unsaid."""
    argv = ["plan", "meta-llama/Llama-3.2-1B", "--cluster", "1x1xH100+1x1xA100-80G", "--workload", "sharegpt"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert f"the sharegpt preset's 1000 prompts {STEADY}: a cluster of several GPU pools" in err


def test_burstiness_on_a_deployment_is_refused_without_blaming_the_prompts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--burstiness does nothing where the steady state takes the mean rate: still refused (exit 2), one
    line, and --num-prompts beside it is not named as what cannot be planned."""
    extra = ["--request-rate", "1", "--num-prompts", "9", "--burstiness", "2"]
    assert main([*GPUS, "--isl", "512", "--osl", "128", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --burstiness shapes the arrivals of one engine's benchmark replay; ")
    assert "--num-prompts" not in err and len(err.splitlines()) == 1


def test_a_limit_too_short_to_start_reads_true(capsys: pytest.CaptureFixture[str]) -> None:
    """ "under the 0.05 s a solve needs was left of 0.05 s" said the limit was below itself."""
    argv = ["plan", "meta-llama/Llama-3.2-1B", "--cluster", "1x1xH100", "--time-limit", "0.05"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "the 0.05 s limit left less than the 0.05 s a solve needs" in err and "was left of" not in err


def test_time_out_messages_give_three_significant_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a deadline left printed as the limit with `:g`: "within 2.49997 s"."""
    settings = SolverSettings.create(time_limit_s=2.49997)
    run = driver.Run(settings)
    assert "within 2.5 s: the limit ran out" in driver.timeout_message(run)
    run.solves = 1
    assert driver.timeout_message(run) == f"no feasible plan found within 2.5 s ({RAISE_LIMIT})"

    def unknown(enc: Any, run: driver.Run, time_limit_s: float | None = None) -> None:
        run.status = "UNKNOWN"

    monkeypatch.setattr(driver, "solve_once", unknown)
    with pytest.raises(SolverTimeoutError, match=r"deployment found within 2\.5 s \(raise"):
        deployment_driver._solve(cast(Any, None), driver.Run(settings))
    bounds = cast(Any, {(1, 1, 1): SimpleNamespace(step_us=1.0)})
    past = time.perf_counter() - 1.0  # nothing is solved: the time-out
    with pytest.raises(SolverTimeoutError, match=r"plan found within 2\.5 s \(raise"):
        decompose.solve_by_triples(cast(Any, None), bounds, None, settings, past, runner_up=False)


def test_a_larger_change_of_a_kind_that_already_works_is_not_listed() -> None:
    """Qwen3-8B on 1x8xH100 at 200 req/s listed 4x the GPUs beside 2x, which already carries the rate."""
    solved: list[int] = []

    def solve(cluster: Cluster, workload: Serving, options: ServingOptions, objective: str) -> Any:
        gpus = cluster.world_size
        solved.append(gpus)
        if gpus < 8:
            raise InfeasibleError("rate")
        config = SimpleNamespace(enable_expert_parallel=False, replicas=gpus, tp=1, pp=1, gpus=gpus)
        perf = SimpleNamespace(output_tokens_per_s=1000.0 * gpus, ttft_ms=100.0, tpot_ms=40.0)
        return cast(ServingSolution, SimpleNamespace(config=config, estimate=SimpleNamespace(perf=perf)))

    model = cast(ModelSpec, SimpleNamespace(quantization="fp8"))  # no fp8-weight remedy to try
    options = ServingOptions(kv_cache_dtypes=("auto", "fp8"))  # nor an fp8 KV cache
    fixes = nearest_fixes(
        model,
        Cluster.parse("1x4xH100"),  # 2x: 1x8 (works), 4x: 4x4
        Serving(isl=1024, osl=256, request_rate=200.0),
        options,
        ("request_rate",),
        solve,
        time.perf_counter() + 60,
    )
    assert solved == [8] and len(fixes) == 1 and "(2x the GPUs)" in fixes[0]
