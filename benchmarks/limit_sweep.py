"""A sweep over service limits: the tables computed once (`build_space` reuses a space built under
other limits) against computed afresh for every limit (every memo emptied before each plan, as before
the reuse). Both in this process, one after the other, on the same requests; the plans must agree.

Usage: uv run python benchmarks/limit_sweep.py [--model M] [--cluster C] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from autoparallel.errors import InfeasibleError
from autoparallel.hardware import Cluster
from autoparallel.memo import clear_memos
from autoparallel.models import load_model
from autoparallel.solvers.serving.solve import solve_serving
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving

TPOT_MS = (15.0, 20.0, 30.0, 50.0)
TTFT_MS = (300.0, 1000.0, 3000.0)
SETTINGS = SolverSettings(workers=1, seed=0, time_limit_s=60.0)


def sweep(model_name: str, cluster_spec: str, fresh: bool) -> tuple[float, list[Any]]:
    """(wall seconds, the plans) of the limit grid at 4 req/s, 2048/256 tokens."""
    model, cluster = load_model(model_name), Cluster.parse(cluster_spec)
    clear_memos()
    plans: list[Any] = []
    start = time.perf_counter()
    for tpot in TPOT_MS:
        for ttft in TTFT_MS:
            if fresh:
                clear_memos()
            w = Serving(isl=2048, osl=256, request_rate=4.0, tpot_ms=tpot, ttft_ms=ttft)
            try:
                sol = solve_serving(model, cluster, w, settings=SETTINGS, fixes=False)
                plans.append((sol.config, sol.objective_value))
            except InfeasibleError:
                plans.append(None)
    return time.perf_counter() - start, plans


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="meta-llama/Llama-3.1-70B-Instruct")
    ap.add_argument("--cluster", default="2x8xH100")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    fresh_s, fresh = sweep(args.model, args.cluster, fresh=True)
    reused_s, reused = sweep(args.model, args.cluster, fresh=False)
    if fresh != reused:
        raise SystemExit("the reused tables planned otherwise than fresh ones")
    row = {
        "model": args.model,
        "cluster": args.cluster,
        "limits": len(TPOT_MS) * len(TTFT_MS),
        "planned": sum(p is not None for p in reused),
        "fresh_s": round(fresh_s, 2),
        "reused_s": round(reused_s, 2),
        "speedup": round(fresh_s / reused_s, 2),
    }
    print(json.dumps(row) if args.json else "\n".join(f"{k:>8}: {v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
