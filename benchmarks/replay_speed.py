"""Wall time of the finite-benchmark replay (perf/serving_load.py), and what the lock-step driver costs.

    uv run python benchmarks/replay_speed.py

DeepSeek-V3 on H200 with ShareGPT-like spread lengths (1,000 in / 300 out, spread 1): one TP8 engine,
and data-parallel + EP engines of 8 and 64 ranks, whose ranks replay in lock-step. Each lock-step run
is timed beside the same ranks replayed independently (`serving_replay.alone` per rank), in the same
process, so the ratio is the driver's cost. Prints seconds per replay (best of three) and the ratio;
then, for replays from one replica to 64 lock-step ranks, the scheduler passes, the requests running
in them and the seconds per pass, against which the replay's pass budget is charged.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np

import autoparallel.perf.serving_load as sl
import autoparallel.perf.serving_replay as sr
from autoparallel.configs import ServingConfig
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.workload import SHAREGPT_ISL_QUANTILES, SHAREGPT_OSL_QUANTILES, Serving


def _best_of(runs: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _independent(ranks: list[sr.Rank], price: Callable[[sr.Work], float], graphs: str) -> list[sr.ReplicaRun]:
    return [sr.alone(rank, price) for rank in ranks]


def _pass_cases() -> list[tuple[str, str, ServingConfig, Serving, bool]]:
    def sharegpt(n: int) -> Serving:
        return Serving(
            isl=300,
            osl=200,
            num_prompts=n,
            isl_quantiles=SHAREGPT_ISL_QUANTILES,
            osl_quantiles=SHAREGPT_OSL_QUANTILES,
        )

    def fixed(n: int) -> Serving:
        return Serving(isl=1024, osl=256, num_prompts=n)

    def spread(isl: int, osl: int, n: int) -> Serving:
        return Serving(isl=isl, osl=osl, num_prompts=n, isl_cv=1.0, osl_cv=1.0)

    qwen, llama, v3 = "Qwen/Qwen3-8B", "meta-llama/Llama-3.1-8B-Instruct", "deepseek-ai/DeepSeek-V3"
    one = ServingConfig(max_num_seqs=1024)
    wide = ServingConfig(tp=1, replicas=64, enable_expert_parallel=True)
    # The last field: the replay is one the pass cost is fitted on (the others are only checked).
    return [
        (qwen, "1x1xH100", one, sharegpt(1000), False),
        (qwen, "1x1xH100", one, sharegpt(10000), True),
        (qwen, "1x1xH100", one, spread(1000, 1000, 4000), False),
        (qwen, "1x8xH100", ServingConfig(replicas=8), sharegpt(8000), False),
        (llama, "1x4xL4", ServingConfig(tp=4, max_num_seqs=48), fixed(20000), True),
        ("meta-llama/Llama-3.1-70B", "1x4xH100", ServingConfig(tp=4), spread(1000, 300, 3000), False),
        (v3, "1x8xH200", wide.model_copy(update={"replicas": 8}), spread(1000, 300, 1000), False),
        (v3, "8x8xH200", wide, spread(1000, 300, 5000), True),
    ]  # fmt: skip


def pass_costs() -> None:
    """Seconds per scheduler pass against the requests running in it and whether its step carries a
    prompt, over replays from one replica to 64 lock-step ranks: a pass's cost fitted as
    a + c · running + p · [prompt] (least squares) on the replays marked fit and checked on the
    others, the source of `serving_replay.PASS_REQUEST_WEIGHT` (a / c) and `PROMPT_PASS_UNITS`
    (p / a), and of `serving_load.MAX_REPLAY_PASSES`'s seconds (µs a unit)."""
    original = sl.PassBudget
    budgets: list[sr.PassBudget] = []

    def kept(limit: float, run: str) -> sr.PassBudget:
        budgets.append(original(limit, run))
        return budgets[-1]

    rows: list[tuple[str, str, int, int, sr.PassBudget, float, bool]] = []
    sl.PassBudget = kept  # type: ignore[misc]
    try:
        for name, cluster, config, workload, fit in _pass_cases():
            model, c = load_model(name), Cluster.parse(cluster)
            cfg = config.model_copy(update={"max_model_len": 4096})
            sl.run_benchmark(model, c, cfg, workload.model_copy(update={"num_prompts": 16}))  # warm memos
            start = time.perf_counter()
            sl.run_benchmark(model, c, cfg, workload)
            took = time.perf_counter() - start
            rows.append((name, cluster, cfg.replicas, workload.num_prompts or 0, budgets[-1], took, fit))
    finally:
        sl.PassBudget = original  # type: ignore[misc]
    features = np.array([[1.0, b.requests / b.passes, b.prompt_passes / b.passes] for *_, b, _, _ in rows])
    us = np.array([took / b.passes * 1e6 for *_, b, took, _ in rows])
    fit = np.array([row[-1] for row in rows])
    (a, c, p), *_ = np.linalg.lstsq(features[fit], us[fit], rcond=None)
    print(
        "\nmodel                     cluster  replicas prompts  passes running/pass with-prompt us/pass"
        "  model  units us/unit  split"
    )
    for (name, cluster, replicas, prompts, b, took, is_fit), f, measured in zip(
        rows, features, us, strict=True
    ):
        print(
            f"{name:24s}  {cluster:8s} {replicas:8d} {prompts:7d} {b.passes:7d} {f[1]:12.1f} {f[2]:11.0%} "
            f"{measured:7.0f} {float(f @ (a, c, p)):6.0f} {b.spent:6.0f} {took / b.spent * 1e6:7.0f}  "
            f"{'fit' if is_fit else 'checked'}"
        )
    per_unit = [took / b.spent * 1e6 for *_, b, took, _ in rows]
    print(
        f"a pass: {a:.0f} us + {c:.2f} us a running request + {p:.0f} us with a prompt; "
        f"a / c = {a / c:.0f} (PASS_REQUEST_WEIGHT {sr.PASS_REQUEST_WEIGHT}), "
        f"p / a = {p / a:.2f} (PROMPT_PASS_UNITS {sr.PROMPT_PASS_UNITS:g}); "
        f"{min(per_unit):.0f}-{max(per_unit):.0f} us a unit"
    )


def main() -> int:
    model = load_model("deepseek-ai/DeepSeek-V3")
    cases = [
        ("TP8, one engine", "1x8xH200", ServingConfig(tp=8, max_num_seqs=256, max_model_len=4096), 1000),
        ("DP8 + EP", "1x8xH200", ServingConfig(tp=1, replicas=8, enable_expert_parallel=True), 1000),
        ("DP64 + EP", "8x8xH200", ServingConfig(tp=1, replicas=64, enable_expert_parallel=True), 5000),
    ]
    print("case              prompts   lock-step s   independent s   ratio")
    for name, cluster, config, prompts in cases:
        c = Cluster.parse(cluster)
        cfg = config.model_copy(update={"max_model_len": 4096})
        w = Serving(isl=1000, osl=300, num_prompts=prompts, isl_cv=1.0, osl_cv=1.0)

        def run(cl: Cluster = c, cf: ServingConfig = cfg, wl: Serving = w) -> object:
            return sl.run_benchmark(model, cl, cf, wl)

        locked = _best_of(3, run)
        original = sl.lockstep
        sl.lockstep = _independent
        try:
            alone = _best_of(3, run)
        finally:
            sl.lockstep = original
        print(f"{name:16s}  {prompts:7d}   {locked:11.2f}   {alone:13.2f}   {locked / alone:5.2f}")
    pass_costs()
    return 0


if __name__ == "__main__":
    sys.exit(main())
