"""CP-SAT's LP relaxation with and without the enforced constraints: wall time and answer of the same
plans, in one run.

    uv run python benchmarks/solver_linearization.py    # ~2.5 minutes on two cores

`solvers/driver.py::make_solver` sets `linearization_level` 2: the LP takes every linear constraint,
those behind an enforcement literal included (each constraint family's rules are). CP-SAT's default,
1, leaves those out, so the LP bound of a lexicographic tie-break (cost, once throughput is kept at its
optimum) stayed at one GPU's price while the search enumerated. Each case is `plan ... --json` run in
this process (`autoparallel.cli.main`) with the default limit and one worker, once untimed (to warm
the caches), then at level 1 and at level 2; the columns are each run's wall time (tables and
sections included), the whole-cluster deployment's CP-SAT status at each level and the disaggregation
comparison's. One run each, on whatever machine runs it: the ratio is the figure to quote.
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
from autoparallel.solvers import driver
from benchmarks.solver_workers import CASES, disagg

CAPPED = (
    "Qwen/Qwen3-8B --cluster 2x8xH100 --concurrency 128",
    "Qwen/Qwen3-8B --cluster 1x8xH100+1x8xA100-80G --concurrency 96",
    "Qwen/Qwen3-8B --cluster 2x8xH100+1x8xA100-80G --concurrency 1024",
    "meta-llama/Llama-3.1-70B --cluster 4x8xH100 --concurrency 256 --disagg auto",
)

_make_solver = driver.make_solver
_level = {"now": 2}


def _at_level(*args: Any, **kwargs: Any) -> Any:
    solver = _make_solver(*args, **kwargs)
    solver.parameters.linearization_level = _level["now"]
    return solver


def run(case: str, level: int) -> tuple[float, dict[str, Any] | None]:
    """Wall seconds and the JSON of `plan CASE --json` at LP linearization `level` (None: exit ≠ 0)."""
    _level["now"] = level
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["plan", *case.split(), "--json", "--workers", "1"])
    wall = time.perf_counter() - start
    return wall, json.loads(out.getvalue()) if rc == 0 else None


def deployment(d: dict[str, Any] | None) -> str:
    """The whole-cluster deployment's CP-SAT status ('-' where the plan has none, 'exit' on failure)."""
    if d is None:
        return "exit"
    return str(d.get("deployment", {}).get("solver", {}).get("status", "-"))


def main_() -> None:
    driver.make_solver = _at_level  # type: ignore[assignment]
    print(f"{'case':<96} {'level 1 s':>9} {'level 2 s':>9}  deployment(1/2)     disagg(1/2)")
    totals = [0.0, 0.0]
    for case in (*CASES, *CAPPED):
        run(case, 2)  # warm the model and memo caches
        (w1, d1), (w2, d2) = run(case, 1), run(case, 2)
        totals[0] += w1
        totals[1] += w2
        dis = "/".join(disagg(d) if d is not None else "exit" for d in (d1, d2))
        print(f"{case:<96} {w1:>9.2f} {w2:>9.2f}  {deployment(d1):>8}/{deployment(d2):<10} {dis}")
    print(f"{'total':<96} {totals[0]:>9.1f} {totals[1]:>9.1f}   ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main_()
