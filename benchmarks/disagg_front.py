"""Fronts mixing aggregated and disaggregated deployments (issue 10, item 5), measured in one run.

    uv run python benchmarks/disagg_front.py [--json] [--skip-cut]

Per scenario, the exact throughput-vs-TPOT front over whole-cluster deployments whose points may be
aggregated or disaggregated (`solvers/deployment/front.pareto_mixed`, TTFT a limit): wall time (space
build + every CP-SAT query), CP-SAT time and calls, points, and which points are disaggregated with
their P:D ratio. Then the effect of the front loop's redundant cut (the first objective no better
than at the last point found) on one front, solved with and without it in the same run.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers import pareto
from autoparallel.solvers.deployment.front import pareto_mixed
from autoparallel.solvers.deployment.space import FleetModel
from autoparallel.workload import Serving

SCENARIOS = (
    ("meta-llama/Llama-3.1-70B", "2x8xH100", Serving(isl=2048, osl=512, ttft_ms=2000)),
    ("meta-llama/Llama-3.1-70B", "2x8xH100", Serving(isl=2048, osl=512, ttft_ms=2000, tpot_ms=30)),
    ("deepseek-ai/DeepSeek-V3", "4x8xH200", Serving(isl=4000, osl=1000, ttft_ms=2000)),
)
CUT = ("meta-llama/Llama-3.1-8B", "1x8xH100", Serving(isl=2048, osl=256, ttft_ms=1000))


def front(model: str, cluster: str, workload: Serving) -> dict[str, Any]:
    t0 = time.perf_counter()
    f = pareto_mixed(FleetModel(load_model(model), workload), Cluster.parse(cluster))
    wall = time.perf_counter() - t0
    return {
        "model": model,
        "cluster": cluster,
        "slo": f"TTFT {workload.ttft_ms} ms" + (f", TPOT {workload.tpot_ms} ms" if workload.tpot_ms else ""),
        "wall_s": round(wall, 2),
        "cpsat_s": round(f.wall_s, 2),
        "solves": f.solves,
        "points": len(f),
        "complete": f.complete,
        "candidates": f.candidates,
        "disaggregated": [(i, p.ratio, p.label) for i, p in enumerate(f) if p.mode == "disaggregated"],
        "front": [
            (p.mode, p.label, round(p.tokens_per_s_per_gpu), round(p.ttft_ms), round(p.tpot_ms, 2)) for p in f
        ],
    }


def cut_effect() -> dict[str, Any]:
    model, cluster, workload = CUT
    with_cut = front(model, cluster, workload)
    keep = pareto._no_better_first
    pareto._no_better_first = lambda *args: None
    try:
        without = front(model, cluster, workload)
    finally:
        pareto._no_better_first = keep
    return {
        "scenario": f"{model} on {cluster}",
        "points": (with_cut["points"], without["points"]),
        "cpsat_s_with_cut": with_cut["cpsat_s"],
        "cpsat_s_without_cut": without["cpsat_s"],
        "same_front": with_cut["front"] == without["front"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--skip-cut", action="store_true", help="skip the with/without-cut comparison")
    args = parser.parse_args()
    out: dict[str, Any] = {"fronts": [front(*s) for s in SCENARIOS]}
    if not args.skip_cut:
        out["cut"] = cut_effect()
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for r in out["fronts"]:
        print(
            f"{r['model']} on {r['cluster']} ({r['slo']}): {r['points']} points "
            f"({'complete' if r['complete'] else 'not proven complete'}), {len(r['disaggregated'])} "
            f"disaggregated, wall {r['wall_s']} s (CP-SAT {r['cpsat_s']} s, {r['solves']} calls, "
            f"{r['candidates']} candidate engines)"
        )
        for i, (mode, label, per_gpu, ttft, tpot) in enumerate(r["front"]):
            print(
                f"  {i:2d} {mode:13s} {label:45s} {per_gpu:6d} tok/s/GPU  TTFT {ttft:5d} ms  TPOT {tpot} ms"
            )
    if "cut" in out:
        c = out["cut"]
        print(
            f"cut: {c['scenario']}: CP-SAT {c['cpsat_s_with_cut']} s with it, {c['cpsat_s_without_cut']} s "
            f"without ({c['points'][0]} / {c['points'][1]} points, same front: {c['same_front']})"
        )


if __name__ == "__main__":
    main()
