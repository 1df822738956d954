"""The deployment planner (solvers/deployment): CP-SAT over replica counts on fleets and big clusters.

    uv run python benchmarks/deployment.py [--json]

Three parts, all measured in one run on this machine:

1. fleet: 3 models (dense 8B, MoE 30B-A3B, dense 70B) with their own rates and SLOs on 2 GPU types,
   256 GPUs (16x8xH100 + 16x8xA100-80G): table build time, CP-SAT status and wall time per
   objective, candidate engines, and the number of replica-count vectors an enumeration would face
   (Π over candidate engines of (max replicas + 1)). The ratio is enumeration time (that count ×
   the oracle's measured time per vector on a small instance) over CP-SAT's time.
2. cost at a rate: DeepSeek-V3 on 64x8xH100, 20 req/s, ISL 2048 / OSL 512, TTFT <= 2 s,
   TPOT <= 50 ms, objective cost: the plan's $/hour against an exact enumeration of replica counts
   (an unbounded-knapsack dynamic program over every count vector, per GPU budget), and the
   single-engine planner's choice (min $ per M tokens) for comparison.
3. throughput: DeepSeek-V3, Kimi-K2, Qwen3-235B-A22B and Llama-4-Maverick on 64x8xH100 (chatbot:
   1024 / 256 tokens, TTFT 2 s, TPOT 50 ms): GPUs used out of 512 by the deployment planner and by
   the single-engine planner.
4. concurrency caps: the fleet of part 1 without rates, objective throughput, uncapped and with
   each model capped at 1024 / 256 / 128 requests in flight: candidates, CP-SAT status and time,
   requests the plan holds.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.deployment import DeploymentSpace, FleetModel, build_deployment_space, solve_space
from autoparallel.solvers.deployment.oracle import brute_force
from autoparallel.solvers.serving.solve import solve_serving
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving

FLEET = (
    (
        "meta-llama/Llama-3.1-8B-Instruct",
        Serving(isl=1024, osl=256, ttft_ms=1000, tpot_ms=40, request_rate=300),
    ),
    ("Qwen/Qwen3-30B-A3B", Serving(isl=2048, osl=512, ttft_ms=2000, tpot_ms=50, request_rate=80)),
    (
        "meta-llama/Llama-3.3-70B-Instruct",
        Serving(isl=1024, osl=256, ttft_ms=2000, tpot_ms=50, request_rate=40),
    ),
)
FLEET_CLUSTER = "16x8xH100+16x8xA100-80G"
PRICES = {"H100": 2.49, "A100-80G": 1.2}
BIG_MOE = (
    "deepseek-ai/DeepSeek-V3",
    "moonshotai/Kimi-K2-Instruct",
    "Qwen/Qwen3-235B-A22B",
    "meta-llama/Llama-4-Maverick-17B-128E-Instruct",
)
CHATBOT = Serving.preset("chatbot")


def _timed(fn: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def oracle_seconds_per_vector() -> float:
    """The brute-force oracle's time per replica-count vector, on a small real instance."""
    models = [FleetModel(load_model(m), w) for m, w in FLEET[:2]]
    space = build_deployment_space(models, Cluster.parse("1x8xH100+1x8xA100-80G", prices=PRICES))
    keep = []
    for m in range(2):
        keep += [e for e in space.engines if e.model == m][:3]
    small = DeploymentSpace(space.models, space.cluster, tuple(keep), space.serving)
    from autoparallel.solvers.deployment.oracle import vectors

    count = sum(1 for _ in vectors(small))
    _, wall = _timed(lambda: brute_force(small, "cost"))
    return wall / max(count, 1)


def fleet_part(per_vector_s: float) -> dict[str, Any]:
    models = [FleetModel(load_model(m), w, m) for m, w in FLEET]
    cluster = Cluster.parse(FLEET_CLUSTER, prices=PRICES)
    space, build_s = _timed(lambda: build_deployment_space(models, cluster))
    size = space.enumeration_size()
    rows = []
    for objective in ("goodput", "cost", "gpus", "throughput", "cost_per_mtok"):
        plan, wall = _timed(lambda o=objective: solve_space(space, o, SolverSettings(time_limit_s=10)))
        rows.append(
            {
                "objective": objective,
                "status": plan.solver.status,
                "cp_sat_s": round(plan.solver.wall_s, 3),
                "solve_and_decode_s": round(wall, 3),
                "gpus_used": plan.gpus_used,
                "usd_per_hour": round(plan.usd_per_hour, 2),
                "goodput_tokens_per_s": round(plan.goodput_tokens_per_s),
                "enumeration_over_cp_sat": f"{size * per_vector_s / max(plan.solver.wall_s, 1e-9):.2e}",
            }
        )
    return {
        "cluster": FLEET_CLUSTER,
        "gpus": cluster.world_size,
        "models": [m for m, _ in FLEET],
        "table_build_s": round(build_s, 2),
        "candidate_engines": len(space.engines),
        "dominated_engines_dropped": space.dominated,
        "enumeration_vectors": f"{size:.3e}",
        "enumeration_vectors_unpruned": f"{space.unpruned_enumeration_size:.3e}",
        "oracle_s_per_vector": f"{per_vector_s:.2e}",
        "enumeration_s_estimate": f"{size * per_vector_s:.2e}",
        "rows": rows,
    }


def min_gpus_dp(space: DeploymentSpace, model: int = 0) -> tuple[int, float]:
    """Exact minimum GPUs (= $ on one pool) meeting the model's rate, over EVERY replica-count vector:
    best[g] = most capacity with at most g GPUs (unbounded knapsack over the candidate engines; on one
    pool with node-multiple wide engines and power-of-two narrow ones, g <= GPUs is exactly the node
    constraint)."""
    pool = space.cluster.pools[0]
    engines = [e for e in space.engines if e.model == model]
    best = [0] * (pool.world_size + 1)
    for g in range(1, pool.world_size + 1):
        best[g] = max(
            [best[g - 1], *(best[g - e.gpus] + e.capacity_milli_rps for e in engines if e.gpus <= g)]
        )
    need = space.models[model].demand_milli_rps
    gpus = next(g for g in range(pool.world_size + 1) if best[g] >= need)
    return gpus, gpus * pool.usd_per_hour


def cost_part() -> dict[str, Any]:
    model = load_model("deepseek-ai/DeepSeek-V3")
    w = Serving(isl=2048, osl=512, ttft_ms=2000, tpot_ms=50, request_rate=20)
    cluster = Cluster.parse("64x8xH100")
    space, build_s = _timed(lambda: build_deployment_space([FleetModel(model, w, model.name)], cluster))
    plan = solve_space(space, "cost")
    dp_gpus, dp_usd = min_gpus_dp(space)
    single, single_s = _timed(lambda: solve_serving(model, cluster, w, objective="cost", runner_up=False))
    return {
        "case": "DeepSeek-V3 64x8xH100 20 req/s ISL 2048 OSL 512 TTFT 2 s TPOT 50 ms, objective cost",
        "status": plan.solver.status,
        "cp_sat_s": round(plan.solver.wall_s, 3),
        "table_build_s": round(build_s, 2),
        "engines": [
            f"{e.replicas} x tp{e.tp} ep{e.ep} dp{e.dp} ({e.gpus_per_replica} GPUs, "
            f"{e.capacity_rps:.2f} req/s)"
            for e in plan.engines
        ],
        "gpus": plan.gpus_used,
        "usd_per_hour": plan.usd_per_hour,
        "capacity_rps": round(plan.models[0].capacity_rps, 2),
        "enumeration_min_gpus": dp_gpus,
        "enumeration_min_usd_per_hour": dp_usd,
        "matches_enumeration": math.isclose(plan.usd_per_hour, dp_usd),
        "single_engine_planner": {
            "gpus": single.config.gpus,
            "usd_per_hour": single.config.gpus * 3.0,
            "wall_s": round(single_s, 2),
        },
    }


def throughput_part() -> list[dict[str, Any]]:
    cluster = Cluster.parse("64x8xH100")
    rows = []
    for name in BIG_MOE:
        model = load_model(name)
        space, build_s = _timed(
            lambda m=model, n=name: build_deployment_space([FleetModel(m, CHATBOT, n)], cluster)
        )
        plan = solve_space(space, "throughput")
        single = solve_serving(model, cluster, CHATBOT, objective="throughput", runner_up=False)
        rows.append(
            {
                "model": name,
                "status": plan.solver.status,
                "cp_sat_s": round(plan.solver.wall_s, 3),
                "table_build_s": round(build_s, 2),
                "gpus_used": plan.gpus_used,
                "utilisation": round(plan.gpus_used / cluster.world_size, 3),
                "engines": [f"{e.replicas} x tp{e.tp} pp{e.pp} ep{e.ep} dp{e.dp}" for e in plan.engines],
                "tokens_per_s": round(plan.throughput_tokens_per_s),
                "idle_reasons": list(plan.idle_reasons),
                "single_engine_gpus": single.config.gpus,
                "single_engine_tokens_per_s": round(single.estimate.perf.output_tokens_per_s),
            }
        )
    return rows


CAPS = (1024, 256, 128)
"""Part 4: most requests in flight for each model of the fleet (a closed-loop client each)."""


def capped_part() -> dict[str, Any]:
    """The part-1 fleet without rates and under concurrency caps: candidates at several max_num_seqs per
    shape (`space.staircase`) and the `concurrency[m]` family, against the same fleet uncapped."""
    cluster = Cluster.parse(FLEET_CLUSTER, prices=PRICES)
    out: dict[str, Any] = {"caps": list(CAPS)}
    for label, caps in (("uncapped", (None,) * len(FLEET)), ("capped", CAPS)):
        models = [
            FleetModel(load_model(m), w.model_copy(update={"request_rate": None, "concurrency": cap}), m)
            for (m, w), cap in zip(FLEET, caps, strict=True)
        ]
        space, build_s = _timed(lambda ms=models: build_deployment_space(ms, cluster))
        plan, wall = _timed(lambda sp=space: solve_space(sp, "throughput", SolverSettings(time_limit_s=10)))
        held = {
            fm.name: sum(e.max_num_seqs * e.dp * e.replicas for e in plan.engines if e.model == fm.name)
            for fm in models
        }
        out[label] = {
            "candidate_engines": len(space.engines),
            "table_build_s": round(build_s, 2),
            "status": plan.solver.status,
            "cp_sat_s": round(plan.solver.wall_s, 3),
            "solve_and_decode_s": round(wall, 3),
            "gpus_used": plan.gpus_used,
            "tokens_per_s": round(plan.throughput_tokens_per_s),
            "requests_held": held,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    per_vector = oracle_seconds_per_vector()
    report: dict[str, Any] = {
        "fleet": fleet_part(per_vector),
        "cost_at_rate": cost_part(),
        "throughput": throughput_part(),
        "capped": capped_part(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    f = report["fleet"]
    print(
        f"1. fleet {', '.join(f['models'])} on {f['cluster']} ({f['gpus']} GPUs): "
        f"tables {f['table_build_s']} s, "
        f"{f['candidate_engines']} candidate engines ({f['dominated_engines_dropped']} dominated dropped), "
        f"enumeration {f['enumeration_vectors']} vectors ({f['enumeration_vectors_unpruned']} before "
        f"dropping) x {f['oracle_s_per_vector']} s = {f['enumeration_s_estimate']} s"
    )
    for r in f["rows"]:
        print(
            f"   {r['objective']:<14} {r['status']:<9} CP-SAT {r['cp_sat_s']:>6} s (with decode "
            f"{r['solve_and_decode_s']} s)  GPUs {r['gpus_used']:>3}  ${r['usd_per_hour']}/h  goodput "
            f"{r['goodput_tokens_per_s']} tok/s  enumeration/CP-SAT {r['enumeration_over_cp_sat']}"
        )
    c = report["cost_at_rate"]
    print(
        f"2. {c['case']}: {c['status']} in {c['cp_sat_s']} s: {'; '.join(c['engines'])} -> {c['gpus']} GPUs, "
        f"${c['usd_per_hour']:.2f}/h, {c['capacity_rps']} req/s; enumeration minimum "
        f"{c['enumeration_min_gpus']} GPUs "
        f"${c['enumeration_min_usd_per_hour']:.2f}/h (match: {c['matches_enumeration']}); "
        "single-engine planner "
        f"{c['single_engine_planner']['gpus']} GPUs ${c['single_engine_planner']['usd_per_hour']:.0f}/h"
    )
    print("3. throughput on 64x8xH100 (chatbot):")
    for r in report["throughput"]:
        print(
            f"   {r['model']:<48} {r['status']} {r['cp_sat_s']} s: {r['gpus_used']}/512 GPUs "
            f"({r['utilisation']:.0%}) {r['tokens_per_s']} tok/s via {'; '.join(r['engines'])}; "
            "single-engine "
            f"planner {r['single_engine_gpus']}/512 GPUs {r['single_engine_tokens_per_s']} tok/s"
            + (f"; idle: {' '.join(r['idle_reasons'])}" if r["idle_reasons"] else "")
        )

    k = report["capped"]
    print(f"4. the fleet without rates, throughput, caps {k['caps']} requests in flight:")
    for label in ("uncapped", "capped"):
        r = k[label]
        print(
            f"   {label:<9} {r['candidate_engines']} candidates, {r['status']} CP-SAT {r['cp_sat_s']} s "
            f"(with decode {r['solve_and_decode_s']} s), {r['gpus_used']} GPUs, {r['tokens_per_s']} tok/s, "
            f"held {r['requests_held']}"
        )


if __name__ == "__main__":
    main()
