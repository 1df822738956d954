"""`--workers 1` vs `--workers 2`: wall time and answer of the same plans, in one run.

    uv run python benchmarks/solver_workers.py    # ~1.5 minutes on two cores

Each case is a `plan ... --json` command run in this process (`autoparallel.cli.main`), once untimed
(to warm the caches), then once with one CP-SAT worker and once with two; the columns are each run's
wall time (tables and sections included), the single-engine plan's status and CP-SAT seconds, and
whether the two runs reached the same objective values (the plan's and, for serving, the
whole-cluster deployment's), and the disaggregation comparison's status. Several workers run
CP-SAT's parallel portfolio (`solvers/driver.py::make_solver`): a proven optimum must have the same
value either way. One run each, on whatever machine runs it: the ratio is the figure to quote.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from autoparallel.cli import main

CASES = (
    "Qwen/Qwen3-30B-A3B --cluster 2x8xH100 --train --seq-len 4096 --global-batch 256",
    "deepseek-ai/DeepSeek-V3 --cluster 32x8xH100 --train --seq-len 4096 --global-batch 1024",
    "Qwen/Qwen3-30B-A3B --cluster 3x8xH100 --train --seq-len 4096 --global-batch 240 --objective mfu",
    "deepseek-ai/DeepSeek-V3 --cluster 24x8xH100 --train --seq-len 4096 --global-batch 960 --objective mfu",
    "meta-llama/Llama-3.1-70B --cluster 8x8xH100 --train --seq-len 8192 --global-batch 512 --objective memory",  # noqa: E501
    "Qwen/Qwen3-30B-A3B --cluster 512x8xH100",
    "Qwen/Qwen3-235B-A22B --cluster 64x8xH100 --workload batch",
    "deepseek-ai/DeepSeek-V3 --cluster 16x8xH200 --engine auto",
    "meta-llama/Llama-3.1-70B --cluster 32x8xH100 --request-rate 200",
    "meta-llama/Llama-3.2-1B --cluster 512x8xH100",
    "mistralai/Mixtral-8x7B-v0.1 --cluster 512x8xH100 --objective cost",
)


def run(case: str, workers: int) -> tuple[float, dict[str, Any]]:
    """Wall seconds and the JSON of `plan CASE --json --workers N`."""
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["plan", *case.split(), "--json", "--workers", str(workers)])
    wall = time.perf_counter() - start
    if rc != 0:
        raise SystemExit(f"plan {case} --workers {workers}: exit {rc}: {err.getvalue().strip()}")
    return wall, json.loads(out.getvalue())


def values(d: dict[str, Any]) -> tuple[Any, ...]:
    """The objective values a proven optimum fixes: the plan's and the deployment's."""
    s = d["solver"]
    plan = s.get("objective_value", s.get("objective_scaled"))  # serving / training
    return plan, d.get("deployment", {}).get("solver", {}).get("objective_value")


def disagg(d: dict[str, Any]) -> str:
    """The disaggregation comparison's CP-SAT status ('-' where the plan has none)."""
    return str(d.get("comparison", {}).get("disaggregated", {}).get("solver_status", "-"))


def main_() -> None:
    print(
        f"{'case':<96} {'1 worker s':>10} {'2 workers s':>11}  status(1/2)        cpsat s(1/2)  same"
        "  disagg(1/2)"
    )
    totals = [0.0, 0.0]
    for case in CASES:
        run(case, 1)  # warm the model and memo caches, so that neither timed run pays for them
        (w1, d1), (w2, d2) = run(case, 1), run(case, 2)
        totals[0] += w1
        totals[1] += w2
        s1, s2 = d1["solver"], d2["solver"]
        proven = s1["status"] == s2["status"] == "OPTIMAL"
        same = "yes" if values(d1) == values(d2) else ("NO" if proven else "-")
        print(
            f"{case:<96} {w1:>10.2f} {w2:>11.2f}  {s1['status']}/{s2['status']:<9} "
            f"{s1['wall_s']:>5.2f}/{s2['wall_s']:<5.2f}   {same:<4}  {disagg(d1)}/{disagg(d2)}"
        )
    print(f"{'total':<96} {totals[0]:>10.1f} {totals[1]:>11.1f}   ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main_()
