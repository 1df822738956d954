"""Aggregated vs disaggregated (prefill/decode) serving: the four scenarios of issue 10.

    uv run python benchmarks/disagg.py [--json]

Per scenario, both deployment spaces (the same serving tables read as aggregated engines and as
prefill / decode roles) solved by CP-SAT for throughput (then cost) at the SLOs; reported: each
optimum's tokens/s/GPU, TTFT, TPOT, $/M tokens, GPUs used, solver status, the P:D ratio, the winner,
and wall times (space build + solve for each mode), all measured in one run on this machine.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from autoparallel.disagg import _agg_summary, _disagg_summary
from autoparallel.fleet import FleetPlan, fleet_of_one
from autoparallel.hardware import Cluster
from autoparallel.solvers.deployment import build_deployment_space, solve_space
from autoparallel.solvers.deployment.disagg_plan import solve_roles
from autoparallel.solvers.deployment.roles import build_role_space
from autoparallel.workload import Serving

SCENARIOS = (
    ("meta-llama/Llama-3.1-70B", "2x8xH100", Serving(isl=2048, osl=512, ttft_ms=2000, tpot_ms=30)),
    ("Qwen/Qwen3-32B", "1x8xH200", Serving(isl=4000, osl=1000, ttft_ms=2000, tpot_ms=30)),
    ("deepseek-ai/DeepSeek-V3", "4x8xH200", Serving(isl=4000, osl=1000, ttft_ms=2000, tpot_ms=30)),
    ("Qwen/Qwen3-235B-A22B", "2x8xH200", Serving(isl=4000, osl=1000, ttft_ms=2000, tpot_ms=30)),
)
OBJECTIVE = ("throughput", "cost")


def scenario(model: str, cluster_spec: str, workload: Serving) -> dict[str, Any]:
    cluster = Cluster.parse(cluster_spec)
    fleet = fleet_of_one(model, workload)
    t0 = time.perf_counter()
    agg: dict[str, Any] | None
    try:
        space = build_deployment_space(fleet, cluster)
        deployment = solve_space(space, OBJECTIVE)
        plan = FleetPlan(cluster=cluster, deployment=deployment, specs={fm.name: fm.model for fm in fleet})
        agg = _agg_summary(plan)
    except Exception as exc:  # an infeasible mode is a result, reported as such
        agg = {"error": str(exc)}
    t1 = time.perf_counter()
    dis: dict[str, Any] | None
    try:
        rs = build_role_space(fleet, cluster)
        dis = _disagg_summary(solve_roles(rs, OBJECTIVE))
        assert dis is not None
        dis["candidate_engines"] = len(rs.space.engines)
    except Exception as exc:
        dis = {"error": str(exc)}
    t2 = time.perf_counter()
    out: dict[str, Any] = {
        "model": model,
        "cluster": cluster_spec,
        "isl": workload.isl,
        "osl": workload.osl,
        "ttft_ms": workload.ttft_ms,
        "tpot_ms": workload.tpot_ms,
        "aggregated": agg,
        "disaggregated": dis,
        "aggregated_wall_s": t1 - t0,
        "disaggregated_wall_s": t2 - t1,
    }
    a = (agg or {}).get("tokens_per_s_per_gpu", 0.0)
    d = (dis or {}).get("tokens_per_s_per_gpu", 0.0)
    out["winner"] = "disaggregated" if d > a else "aggregated"
    out["disagg_over_agg"] = d / a if a else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [scenario(*s) for s in SCENARIOS]
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return
    for r in rows:
        print(
            f"{r['model']} on {r['cluster']} (ISL {r['isl']} / OSL {r['osl']}, TTFT <= {r['ttft_ms']:g} ms, "
            f"TPOT <= {r['tpot_ms']:g} ms)"
        )
        for mode in ("aggregated", "disaggregated"):
            s = r[mode]
            wall = r[f"{mode}_wall_s"]
            if "error" in s:
                print(f"  {mode:13s} infeasible: {s['error']}  [{wall:.2f} s]")
                continue
            ratio = f", {s['ratio']}, bound by {s['bound']}" if mode == "disaggregated" else ""
            print(
                f"  {mode:13s} {s['layout']}{ratio}: {s['tokens_per_s_per_gpu']:.0f} tokens/s/GPU on "
                f"{s['gpus_used']} GPUs, TTFT {s['ttft_ms']:.0f} ms, TPOT {s['tpot_ms']:.1f} ms, "
                f"${s['usd_per_million_tokens']:.3f}/M tokens, {s['solver_status']} [{wall:.2f} s]"
            )
        ratio = r["disagg_over_agg"]
        print(f"  winner: {r['winner']}" + (f" (disaggregated / aggregated = {ratio:.2f})" if ratio else ""))


if __name__ == "__main__":
    main()
