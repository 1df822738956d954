"""Wall time of the finite-benchmark replay (perf/serving_load.py), and what the lock-step driver costs.

    uv run python benchmarks/replay_speed.py

DeepSeek-V3 on H200 with ShareGPT-like spread lengths (1,000 in / 300 out, spread 1): one TP8 engine,
and data-parallel + EP engines of 8 and 64 ranks, whose ranks replay in lock-step. Each lock-step run
is timed beside the same ranks replayed independently (`serving_replay.alone` per rank), in the same
process, so the ratio is the driver's cost. Prints seconds per replay (best of three) and the ratio.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import autoparallel.perf.serving_load as sl
import autoparallel.perf.serving_replay as sr
from autoparallel.configs import ServingConfig
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.workload import Serving


def _best_of(runs: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _independent(ranks: list[sr.Rank], price: Callable[[sr.Work], float], graphs: str) -> list[sr.ReplicaRun]:
    return [sr.alone(rank, price) for rank in ranks]


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
    return 0


if __name__ == "__main__":
    sys.exit(main())
